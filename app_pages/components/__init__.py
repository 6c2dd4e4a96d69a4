"""Streamlit custom components of the pages (no Streamlit page here)."""
