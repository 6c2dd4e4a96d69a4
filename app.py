"""Equivariant latent explorer: entry point and navigation frame.

Run with ``streamlit run app.py``. Draws the shared sidebar once (model,
projection, node order, seeds, colour) and routes to the pages.
"""

import streamlit as st

from app_pages import _common

st.set_page_config(page_title="Equivariant latent explorer", page_icon=":material/360:", layout="wide")

_common.sidebar()
nav = st.navigation([
    st.Page("app_pages/home.py", title="Overview", icon=":material/home:", default=True),
    st.Page("app_pages/latent_maps.py", title="Latent maps", icon=":material/scatter_plot:"),
    st.Page("app_pages/interpolation.py", title="Interpolation", icon=":material/timeline:"),
    st.Page("app_pages/orbits.py", title="Orbits", icon=":material/autorenew:"),
    st.Page("app_pages/downstream.py", title="Downstream", icon=":material/bar_chart:"),
])
nav.run()
_common.finish_url()
