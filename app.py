"""Equivariant latent explorer: entry point and navigation frame.

Run with ``streamlit run app.py``. Draws the shared sidebar once (model,
projection, node order, seeds, colour) and routes to the pages.

With ``$ELX_RUN_TIMING_LOG`` set to a file path, every full script run (sidebar + page; not
fragment reruns) appends one JSON line to that file: ``end`` (Unix time, s), ``ms`` (wall time
of the run in this server thread, from the first line of this file to the end of the page,
including waits for locks, the GIL and caches), ``page`` (URL path), ``session`` and
``outcome`` (``ok``, or the name of the exception that ended the run, e.g. ``RerunException``
when a widget change restarted it). ``benchmarks/load_test.py`` reads it.
"""

import logging
import os
import time
from pathlib import Path

_RUN_START = time.perf_counter()

import streamlit as st  # noqa: E402

from app_pages import _common, _uploads  # noqa: E402

# a local image: a ":material/...:" favicon is fetched by the browser from fonts.gstatic.com
st.set_page_config(page_title="Equivariant latent explorer",
                   page_icon=str(Path(__file__).resolve().parent / "app_pages" / "favicon.png"), layout="wide")


def _log_run(page: str, outcome: str) -> None:
    """Append this run's wall time to ``$ELX_RUN_TIMING_LOG`` (one short line, one write)."""
    import json

    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    line = json.dumps({"end": round(time.time(), 3), "ms": round(1000 * (time.perf_counter() - _RUN_START), 1),
                       "page": page, "session": ctx.session_id if ctx else "", "outcome": outcome}) + "\n"
    try:
        with open(os.environ["ELX_RUN_TIMING_LOG"], "a") as fh:  # O_APPEND: concurrent runs' lines stay whole
            fh.write(line)
    except OSError as exc:  # a benchmark aid: never let it break a page
        logging.getLogger(__name__).warning("could not append to ELX_RUN_TIMING_LOG: %s", exc)


_outcome, _page = "ok", ""
try:
    _common.sidebar()
    _uploads.sidebar_section()  # "Your own molecules / images" (models with inputs only)
    _common.one_history_entry_per_page_switch()
    nav = st.navigation([
        st.Page("app_pages/home.py", title="Overview", icon=":material/home:", default=True),
        st.Page("app_pages/latent_maps.py", title="Latent maps", icon=":material/scatter_plot:"),
        st.Page("app_pages/interpolation.py", title="Interpolation", icon=":material/timeline:"),
        st.Page("app_pages/orbits.py", title="Orbits", icon=":material/autorenew:"),
        st.Page("app_pages/downstream.py", title="Downstream", icon=":material/bar_chart:"),
    ])
    _page = nav.url_path
    nav.run()
    _common.finish_url()
except BaseException as exc:  # recorded, then re-raised unchanged (Streamlit's stop/rerun included)
    _outcome = type(exc).__name__
    if _outcome == "StopException":  # a page that stopped early still gets its URL written
        try:
            _common.finish_url()
        except Exception:  # never hide the stop behind a URL problem
            pass
    raise
finally:
    if os.environ.get("ELX_RUN_TIMING_LOG"):
        _log_run(_page, _outcome)
