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
double-click in box / lasso mode clears the selection. Hover shows the point's row and
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend import plots

FRONTEND = Path(__file__).resolve().parent / "frontend"
#: the meta value of the traces the component draws itself (set by ``backend.plots.latent_map``)
POINTS_META = plots.MAP_POINTS_META
#: small traces (paths, orbits, highlighted inputs) are drawn as SVG up to this many points;
#: a WebGL trace would give each chart a WebGL context again
SVG_TRACE_LIMIT = 20_000
HEIGHT = 460


def enabled() -> bool:
    """True unless ``$ELX_MAP_COMPONENT`` is ``0`` / ``false`` / ``no`` (the component is the default)."""
    return os.environ.get("ELX_MAP_COMPONENT", "1").strip().lower() not in ("0", "false", "no")


@dataclass(frozen=True)
class MapPayload:
    """What the component is sent for one figure (built once per figure, kept by the caller)."""

    spec: str  # JSON: {"data": [...], "layout": {...}, "groups": [...]} without the points
    points: bytes  # x, y float32, rows int32, group uint16, each array padded to 4 bytes
    n: int  # points
    coords_rev: str  # hash of x, y and rows: unchanged coordinates are not decoded again
    rev: str  # hash of everything


def _is_points(trace) -> bool:
    return getattr(trace, "meta", None) == POINTS_META


def payload(fig) -> MapPayload:
    """Split a map figure into the points the component draws and the rest Plotly draws.

    Parameters
    ----------
    fig : go.Figure whose point traces carry ``meta="elx_points"``, one constant marker
        colour each and the row ids as ``customdata`` (``backend.plots.latent_map``). The
        other traces are passed on (WebGL traces of at most :data:`SVG_TRACE_LIMIT`
        points are drawn as SVG); each point trace becomes a *group* (colour, opacity,
        size, name, hover template) and, when it shows in the legend, a legend entry of no
        points (clicking it hides the group).

    Returns
    -------
    MapPayload
    """
    import plotly.io as pio

    xs, ys, rows, groups, meta, traces = [], [], [], [], [], []
    for trace in fig.data:
        if not _is_points(trace):
            t = trace.to_plotly_json()
            n = len(t.get("x", []) if t.get("x") is not None else [])
            if t.get("type") == "scattergl" and n <= SVG_TRACE_LIMIT:
                t["type"] = "scatter"
            traces.append(t)
            continue
        g = len(meta)
        x = np.asarray(trace.x, dtype=np.float32)
        xs.append(x)
        ys.append(np.asarray(trace.y, dtype=np.float32))
        rows.append(np.asarray(trace.customdata, dtype=np.int32).reshape(len(x), -1)[:, 0])
        groups.append(np.full(len(x), g, dtype=np.uint16))
        marker = trace.marker
        show = trace.showlegend is not False
        meta.append({"color": marker.color, "opacity": 1.0 if marker.opacity is None else float(marker.opacity),
                     "size": 3 if marker.size is None else float(marker.size), "name": trace.name or "",
                     "hover": trace.hovertemplate or "row %{customdata}", "legend": show})
        if show:  # a legend entry without points (the group is drawn by the component)
            traces.append({"type": "scatter", "x": [None], "y": [None], "mode": "markers", "name": trace.name,
                           "marker": {"color": marker.color, "size": 8}, "showlegend": True,
                           "legendgroup": f"elx{g}", "meta": f"elx_group_{g}", "hoverinfo": "skip"})
    cat = (lambda parts, dt: np.concatenate(parts).astype(dt, copy=False) if parts else np.zeros(0, dt))
    x, y = cat(xs, np.float32), cat(ys, np.float32)
    r, grp = cat(rows, np.int32), cat(groups, np.uint16)
    # in row order: the same coordinates under every colour (only the groups change), and no
    # colour drawn on top of the others
    order = np.argsort(r, kind="stable")
    x, y, r, grp = x[order], y[order], r[order], grp[order]
    n = len(x)
    if n:  # an invisible trace over the points' extent: Plotly's autorange then frames them
        ok = np.isfinite(x) & np.isfinite(y)
        lo = [float(x[ok].min()), float(y[ok].min())] if ok.any() else [0.0, 0.0]
        hi = [float(x[ok].max()), float(y[ok].max())] if ok.any() else [1.0, 1.0]
        traces.insert(0, {"type": "scatter", "x": [lo[0], hi[0]], "y": [lo[1], hi[1]], "mode": "markers",
                          "marker": {"size": 3, "opacity": 0}, "showlegend": False, "hoverinfo": "skip",
                          "customdata": [-1, -1], "meta": "elx_extent"})
    layout = fig.layout.to_plotly_json()
    for ax in ("xaxis", "yaxis"):  # light grid and zero lines (no template: Plotly's are dark)
        layout.setdefault(ax, {}).setdefault("gridcolor", "#ececec")
        layout[ax].setdefault("zerolinecolor", "#cfcfcf")
    spec = pio.to_json({"data": traces, "layout": layout, "groups": meta}, validate=False)
    grp_bytes = grp.tobytes() + (b"\0\0" if n % 2 else b"")  # keep 4-byte alignment
    points = x.tobytes() + y.tobytes() + r.tobytes() + grp_bytes
    coords_rev = hashlib.blake2b(x.tobytes() + y.tobytes() + r.tobytes(), digest_size=12).hexdigest()
    rev = hashlib.blake2b(spec.encode() + grp_bytes + coords_rev.encode(), digest_size=12).hexdigest()
    return MapPayload(spec=spec, points=points, n=n, coords_rev=coords_rev, rev=rev)


def with_traces(data: MapPayload, traces) -> MapPayload:
    """``data`` with more Plotly traces (``go`` traces or dicts) drawn above the points, e.g. a
    page's overlay on a kept map; the points are not touched (cheap: the spec only)."""
    if not traces:
        return data
    spec = json.loads(data.spec)
    for trace in traces:
        t = trace if isinstance(trace, dict) else json.loads(trace.to_json())
        if t.get("type") == "scattergl" and len(t.get("x") or []) <= SVG_TRACE_LIMIT:
            t = dict(t, type="scatter")
        spec["data"].append(t)
    text = json.dumps(spec)
    rev = hashlib.blake2b(text.encode() + data.rev.encode(), digest_size=12).hexdigest()
    return MapPayload(spec=text, points=data.points, n=data.n, coords_rev=data.coords_rev, rev=rev)


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
