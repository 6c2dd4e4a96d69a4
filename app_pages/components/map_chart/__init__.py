"""A map chart that stays mounted: a Streamlit custom component drawing a 2-D map's points itself.

``st.plotly_chart`` mounts a new chart for every new figure and hands it to Plotly twice;
Plotly then draws every point in WebGL, which without a GPU (SwiftShader) costs about 0.3 CPU
s per draw of a 130,831-point map. This component keeps one iframe per map for the whole
session and, on new arguments, redraws only what changed:

* the **points** (the traces :func:`backend.plots.latent_map` marks with
  ``meta="elx_points"``) go over as typed bytes (x, y float32, row id int32, group uint16:
  14 bytes per point) and are drawn by the component into a 2-D canvas (a few ms per draw
  for 130k points) inside Plotly's plot area, under the figure's other traces;
* **everything else** of the figure (axes, colour bar, legend, any extra trace such as
  paths, orbits or highlighted inputs, drawn as SVG) goes to ``Plotly.react`` as JSON,
  only when it changed;
* coordinates that did not change (a new colour) are not decoded again (the arguments
  carry a hash of them).

Selections come back as row ids, like ``st.plotly_chart``'s ``on_select`` did: a click
selects the nearest point within 6 pixels, box and lasso (Plotly's toolbar; the geometry
from Plotly's ``plotly_selected`` event) select every drawn point inside, and a
double-click in box / lasso mode clears the selection. The page sends the current selection
back (``with_selection``): the selected rows are drawn at full colour and the others dimmed on
both maps, whichever map (and kind of selection) made it. Hover shows the point's row and
its trace's hover text. Plotly comes from the installed ``plotly`` package
(``package_data/plotly.min.js``), copied next to the component's page on first use:
nothing is fetched from the internet.

Behind ``$ELX_MAP_COMPONENT`` (``1`` = on, ``0`` = ``st.plotly_chart``; see :func:`enabled`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from backend.map_payload import (POINTS_META, SVG_TRACE_LIMIT, MapPayload, payload, with_selection,  # noqa: F401
                                 with_traces)

FRONTEND = Path(__file__).resolve().parent / "frontend"
HEIGHT = 460


def enabled() -> bool:
    """True unless ``$ELX_MAP_COMPONENT`` is ``0`` / ``false`` / ``no`` (the component is the default)."""
    return os.environ.get("ELX_MAP_COMPONENT", "1").strip().lower() not in ("0", "false", "no")


def _built_frontend() -> Path:
    """The component's folder (its page, script and Plotly's bundled ``plotly.min.js``): copied
    once into the cache folder (``$ELX_CACHE_DIR``, else the temporary folder), as Streamlit
    serves a component's files from one folder and never follows links out of it."""
    import plotly

    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    files = sorted(p for p in FRONTEND.iterdir() if p.is_file())
    h = hashlib.blake2b(digest_size=8)
    for p in files:
        h.update(p.name.encode() + p.read_bytes())
    h.update(plotly.__version__.encode())
    from backend.data.qm9 import cache_dir

    error = None
    for base in (lambda: cache_dir() / "components", lambda: Path(tempfile.gettempdir())):
        tmp = None
        try:
            out = base() / f"map_chart-{h.hexdigest()}"
            if (out / "plotly.min.js").exists():
                return out
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix="map_chart-", dir=out.parent))
            for p in files:
                shutil.copyfile(p, tmp / p.name)
            shutil.copyfile(js, tmp / "plotly.min.js")
            try:
                tmp.rename(out)
            except OSError:  # another process built it meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
            if (out / "plotly.min.js").exists():
                return out
        except OSError as exc:  # e.g. a full disk: try the next folder
            error = exc
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
    raise error or OSError("could not write the map component's files")


_COMPONENT = None


def _component():
    global _COMPONENT
    if _COMPONENT is None:
        import streamlit.components.v1 as components

        _COMPONENT = components.declare_component("elx_map_chart", path=str(_built_frontend()))
    return _COMPONENT


def ready() -> bool:
    """True when the component's files are in place (False, logged, when they cannot be written,
    e.g. on a full disk: the page then draws with ``st.plotly_chart``)."""
    try:
        _component()
    except OSError as exc:
        import logging

        logging.getLogger(__name__).warning("map component unavailable, using st.plotly_chart: %s", exc)
        return False
    return True


def map_chart(data: MapPayload, key: str, config: dict | None = None, on_change=None, height: int = HEIGHT):
    """Draw one map (see the module docstring) and return its last selection.

    Parameters
    ----------
    data : MapPayload from :func:`payload` (build it once per figure and keep it).
    key : str, the widget key; the chart stays mounted while the key stays the same (a new
        key, e.g. after *Clear selection*, gives a new chart without a selection).
    config : Plotly config (e.g. the toolbar), optional.
    on_change : callback run (before the rerun) when the selection changed.
    height : int, pixels.

    Returns
    -------
    dict or None: ``{"rows": [row ids], "kind": "points" | "box" | "lasso" | "none", "seq": n}``
    for the last selection made on this chart (an empty ``rows`` list after a deselect).
    """
    return _component()(spec=data.spec, points=data.points, n=data.n, coords_rev=data.coords_rev,
                        rev=data.rev, config=json.dumps(config or {}), height=int(height), key=key,
                        default=None, on_change=on_change)


def selected_rows(value) -> list[int]:
    """Row ids of a selection returned by :func:`map_chart` (empty for none), ascending and unique."""
    if not isinstance(value, dict):
        return []
    return sorted({int(r) for r in value.get("rows") or [] if int(r) >= 0})
