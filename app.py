"""Equivariant latent explorer: entry point and navigation frame.

Run with ``streamlit run app.py``. Draws the shared sidebar once (model,
projection, node order, seeds, colour) and routes to the pages.
"""

import streamlit as st

from app_pages import _common

st.set_page_config(page_title="Equivariant latent explorer", page_icon="🔄", layout="wide")

_common.sidebar()
nav = st.navigation([
    st.Page("app_pages/home.py", title="Overview", icon="🏠", default=True),
    st.Page("app_pages/latent_maps.py", title="Latent maps", icon="🗺️"),
    st.Page("app_pages/interpolation.py", title="Interpolation", icon="↔️"),
    st.Page("app_pages/orbits.py", title="Orbits", icon="🔁"),
    st.Page("app_pages/downstream.py", title="Downstream", icon="📊"),
])
nav.run()
