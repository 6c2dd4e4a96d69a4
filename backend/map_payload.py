"""What the map component (``app_pages/components/map_chart``) is sent for one map figure.

:func:`payload` splits a figure of :func:`backend.plots.latent_map` into the points, as typed
bytes the component draws into a 2-D canvas (x, y float32, row id int32, group uint16: 14
bytes per point), and the rest of the figure (axes, colour bar, legend, small overlay traces),
as Plotly JSON; :func:`with_traces` adds overlays to a kept payload and :func:`with_selection`
the rows the component draws at full colour over the others, dimmed. Pure data packing, no
Streamlit: the component's own module draws it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from backend import plots

#: the meta value of the traces the component draws itself (set by ``backend.plots.latent_map``)
POINTS_META = plots.MAP_POINTS_META
#: small traces (paths, orbits, highlighted inputs) are drawn as SVG up to this many points;
#: a WebGL trace would give each chart a WebGL context again
SVG_TRACE_LIMIT = 20_000


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
    if n:  # an invisible trace over the points' extent: Plotly's autorange then frames them, with
        # the padding of the selection's rings (no shift of the axes when a selection appears)
        ok = np.isfinite(x) & np.isfinite(y)
        lo = [float(x[ok].min()), float(y[ok].min())] if ok.any() else [0.0, 0.0]
        hi = [float(x[ok].max()), float(y[ok].max())] if ok.any() else [1.0, 1.0]
        traces.insert(0, {"type": "scatter", "x": [lo[0], hi[0]], "y": [lo[1], hi[1]], "mode": "markers",
                          "marker": {"size": plots.SELECTION_RING_SIZE, "opacity": 0}, "showlegend": False,
                          "hoverinfo": "skip", "customdata": [-1, -1], "meta": "elx_extent"})
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


def with_selection(data: MapPayload, rows) -> MapPayload:
    """``data`` with the page's current selection: the component draws these rows at full colour
    and dims the others (as right after a box or lasso on that chart), whichever map, and
    whatever kind of selection (click, box, lasso) made it. No rows: ``data`` unchanged (no
    dimming). Cheap: the spec only, the points are not touched."""
    rows = sorted({int(r) for r in rows or [] if int(r) >= 0})
    if not rows:
        return data
    spec = json.loads(data.spec)
    spec["selected"] = rows
    text = json.dumps(spec)
    rev = hashlib.blake2b(text.encode() + data.rev.encode(), digest_size=12).hexdigest()
    return MapPayload(spec=text, points=data.points, n=data.n, coords_rev=data.coords_rev, rev=rev)
