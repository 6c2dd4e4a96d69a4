"""Starting the app under Streamlit's AppTest, shared by the page tests."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

APP = str(ROOT / "app.py")


def run_app(page: str | None = None, query: dict | None = None, timeout: float = 240) -> AppTest:
    """Run ``app.py`` with ``query`` as URL parameters, then switch to ``page`` (a path such as
    ``app_pages/orbits.py``) if given; fails the test on an exception box."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def map_charts(at: AppTest) -> list:
    """The charts a page drew: ``st.plotly_chart`` elements and instances of the maps' own
    component (``app_pages/components/map_chart``, on unless ``ELX_MAP_COMPONENT=0``)."""
    return list(at.get("plotly_chart")) + list(at.get("component_instance"))
