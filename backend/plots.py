"""Figure builders (Plotly) and molecule drawings (RDKit SVG); no Streamlit here.

Pages call these and only draw what comes back. Every marker carries its
global row id in ``customdata`` (Plotly's point index counts within a trace,
and a map coloured by a category has one trace per category), and every
colour bar names its unit.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go


def molecule_svg(mol, size: tuple[int, int] = (260, 200), valid: bool = True, reason: str = "") -> str:
    """SVG drawing of an RDKit molecule (RDKit ``MolDraw2DSVG``).

    An invalid molecule is drawn without sanitization inside a thick red frame
    with the word INVALID and the reason, never as a normal-looking picture.
    ``mol=None`` gives a framed placeholder.
    """
    from rdkit import Chem
    from rdkit.Chem.Draw import rdMolDraw2D

    import textwrap

    w, h = size
    # an invalid drawing keeps a band above (INVALID) and below (the reason, up to two lines)
    # free of the molecule, so that neither text lies on bonds nor is cut off at the frame
    top, bottom = (30, 30) if not valid else (0, 0)
    lines = textwrap.wrap(reason, max(12, int((w - 12) / 5.6)), max_lines=2, placeholder=" …") if not valid else []
    body = ""
    if mol is not None and mol.GetNumAtoms():
        m = Chem.Mol(mol)
        if not valid:
            m.UpdatePropertyCache(strict=False)
        dh = h - top - bottom
        drawer = rdMolDraw2D.MolDraw2DSVG(w, dh)
        opts = drawer.drawOptions()
        opts.clearBackground = False
        opts.padding = 0.12  # keep bonds off the frame when the drawing is scaled to a column
        try:
            rdMolDraw2D.PrepareAndDrawMolecule(drawer, m, kekulize=valid)
        except Exception:  # drawing an unsanitizable graph can still fail in RDKit
            drawer = rdMolDraw2D.MolDraw2DSVG(w, dh)
            drawer.DrawMolecule(m)
        drawer.FinishDrawing()
        svg = drawer.GetDrawingText()
        body = svg[svg.find(">", svg.find("<svg")) + 1: svg.rfind("</svg>")]
        if top:
            body = f'<g transform="translate(0,{top})">{body}</g>'
    mark = ""
    if not valid:
        text = "".join(f'<text x="{w / 2}" y="{h - 22 + 11 * i + (5 if len(lines) == 1 else 0)}" '
                       f'text-anchor="middle" font-family="sans-serif" font-size="10" '
                       f'fill="#d00000">{html.escape(line)}</text>' for i, line in enumerate(lines))
        mark = (f'<title>INVALID: {html.escape(reason)}</title>'
                f'<rect x="2" y="2" width="{w - 4}" height="{h - 4}" fill="#ffecec" fill-opacity="0.35" '
                f'stroke="#d00000" stroke-width="5"/>'
                f'<text x="{w / 2}" y="22" text-anchor="middle" font-family="sans-serif" '
                f'font-size="18" font-weight="bold" fill="#d00000">INVALID</text>{text}')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
            f'viewBox="0 0 {w} {h}"><rect width="{w}" height="{h}" fill="white"/>{body}{mark}</svg>')


def image_svg(image: np.ndarray, size: tuple[int, int] = (200, 200)) -> str:
    """SVG with a grey-scale image (H, W) in [0, 1] embedded as a PNG (white = 1, shown dark-on-light).

    Pixels are drawn unsmoothed (``image-rendering: pixelated``). Uses Pillow
    (a Streamlit dependency) for the PNG.
    """
    import base64
    import io

    from PIL import Image

    img = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    pil = Image.fromarray((255 * (1.0 - img)).round().astype(np.uint8), mode="L")
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    w, h = size
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">'
            f'<rect width="{w}" height="{h}" fill="white"/>'
            f'<image width="{w}" height="{h}" style="image-rendering:pixelated" '
            f'preserveAspectRatio="xMidYMid meet" href="data:image/png;base64,{data}"/></svg>')


def code_heatmap(values: np.ndarray, title: str) -> go.Figure:
    """Heatmap of one code (c, N): one row per regular field, one column per fibre position."""
    v = np.asarray(values)
    fig = go.Figure(go.Heatmap(z=v, x=[f"g{j}" for j in range(v.shape[1])],
                               y=[f"field {i}" for i in range(v.shape[0])], colorscale="RdBu",
                               zmid=0.0, colorbar=dict(title=dict(text="value"))))
    fig.update_layout(title=title, height=300, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title="fibre position (rotation 2πk/N)")
    return fig


def color_column(table: pd.DataFrame, option) -> tuple[np.ndarray, str]:
    """Display values of a colour option and the colour-bar title with its unit."""
    values = table[option.key].to_numpy()
    if not option.categorical:
        values = values.astype(np.float64) * option.scale
    return values, f"{option.key} [{option.unit}]"


#: a continuous colour is drawn as this many constant-colour traces (equal-width bins of the
#: colour range): Plotly converts a per-point colour array point by point in JavaScript (about
#: 0.5-0.8 s per 130k-point map in headless Chromium), a constant trace colour once
COLOUR_BINS = 32
#: WebGL maps with more points than this are drawn at one canvas pixel per CSS pixel
#: (``plotGlPixelRatio=1``) instead of Plotly's default 2, a quarter of the pixels to draw
LARGE_MAP_POINTS = 50_000
#: fixed plot margins (pixels) of the maps: automatic margins (Streamlit's theme turns them on
#: for both axes) measure the tick labels after the first draw and then draw the whole WebGL
#: scene a second time
MAP_MARGIN = dict(l=58, r=10, t=30, b=48)
MAP_MARGIN_COLOURBAR = 96
#: ``meta`` of a map's point traces (one per colour bin or category): the page's map component
#: (``app_pages/components/map_chart``) draws these itself, every other trace with Plotly
MAP_POINTS_META = "elx_points"


def map_chart_config(n_points: int) -> dict:
    """Plotly config for ``st.plotly_chart`` of a map of ``n_points`` points.

    Above :data:`LARGE_MAP_POINTS` the WebGL canvas gets one pixel per CSS pixel
    (``plotGlPixelRatio=1``; Plotly's default 2 draws four times the pixels and reads
    them back the same way, which on a machine without a GPU is most of a redraw); the
    3-pixel markers are as large as before, only less sharp on a high-density screen.

    Parameters
    ----------
    n_points : int, points on the map.

    Returns
    -------
    dict, empty for small maps.
    """
    return {"plotGlPixelRatio": 1} if int(n_points) > LARGE_MAP_POINTS else {}


def _bin_edges(lo: float, hi: float, k: int) -> np.ndarray:
    """``k + 1`` equal-width edges from ``lo`` to ``hi`` (float64)."""
    return np.linspace(lo, hi, k + 1)


def colour_range(values) -> tuple[float, float]:
    """The continuous colour range of a map: the 1st-99th percentile of the finite values; their
    min-max where that is empty; a unit-wide range around a single value; (0, 1) without any.
    Shared by :func:`latent_map` and :func:`user_input_colours`, so inputs match their map."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if not len(finite):
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(finite, [1, 99]))
    if not hi > lo:
        lo, hi = float(finite.min()), float(finite.max())
    if not hi > lo:  # one value: a unit-wide range around it
        lo, hi = lo - 0.5, lo + 0.5
    return lo, hi


def latent_map(coords: np.ndarray, table: pd.DataFrame, option, title: str | None = None,
               bins: int = COLOUR_BINS) -> go.Figure:
    """Lean WebGL scatter of a 2-D map coloured by ``option``.

    Lean means what the browser receives is small and typed: ``x`` and ``y`` are
    float32 arrays and ``customdata`` is one int32 row id per point (the global row
    of ``table``; Plotly's own point index counts within a trace, and every map has
    several traces). No per-point text or colour array: each trace has one colour.

    * **Categorical** colour: one trace per category, each a distinct colour, with a
      legend; hover shows the row and the category.
    * **Continuous** colour: the colour range (1st-99th percentile of the finite
      values, so a few outliers do not wash out the rest) is cut into ``bins``
      equal-width bins, one trace of constant Viridis colour per bin (values beyond
      the range fall in the end bins, as a clipped colour scale would draw them;
      points without a value form a grey trace ``no value``). Hover shows the row
      and the bin's range in the colour's unit; the page's table shows the exact
      value. The first trace draws the colour bar (titled with the unit): one point
      at NaN, not drawn, with row id -1, which selections ignore. Bins rather than a
      per-point colour array, because Plotly converts such an array point by point
      in JavaScript on every draw (0.5-0.8 s of a 130k-point map in headless
      Chromium), a trace's constant colour once (``python -m backend benchmark``
      measures both figures).

    Plotly encodes typed numpy arrays as base64 ``bdata``: 12 bytes per point
    (16 in base64), about 2.2 MB of JSON for 130k points.

    Parameters
    ----------
    coords : ndarray (M, 2), map coordinates (PC 1, PC 2).
    table : DataFrame with M rows and the column ``option.key``.
    option : ColorOption, the colour (``categorical``, ``key``, ``unit``, ``scale``).
    title : optional figure title. Pages pass ``None`` and write the title
        above the chart, where the Plotly toolbar cannot cover it.
    bins : int, colour bins of a continuous colour (≥ 2).

    Returns
    -------
    go.Figure with no forced drag mode: Streamlit then lets a click select
    one point (``clickmode="event+select"``) and offers lasso / box in the
    toolbar (forcing ``dragmode="lasso"`` makes Streamlit drop click
    selection). Margins are fixed (:data:`MAP_MARGIN`, axes without automatic
    margins), so drawing the figure draws the WebGL scene once. Draw it with
    ``config=map_chart_config(M)``.

    Raises
    ------
    ValueError
        If ``bins < 2``.
    """
    if bins < 2:
        raise ValueError(f"need at least 2 colour bins, got {bins}")
    values, cbar = color_column(table, option)
    n = len(table)
    coords = np.asarray(coords, dtype=np.float32)
    rows = np.arange(n, dtype=np.int32)
    fig = go.Figure()
    marker = dict(size=3, opacity=0.7)
    if option.categorical:
        cats = np.unique(values)
        palette = categorical_palette(len(cats))
        for cat, color in zip(cats, palette):
            sel = values == cat
            fig.add_trace(go.Scattergl(
                x=coords[sel, 0], y=coords[sel, 1], mode="markers", name=str(cat),
                customdata=rows[sel], marker=dict(marker, color=color), meta=MAP_POINTS_META,
                hovertemplate=f"row %{{customdata}}<br>{cbar}: {cat}<extra></extra>"))
    else:
        import plotly.colors as pcolors

        values = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(values)
        finite = values[ok]
        lo, hi = colour_range(values)
        edges = _bin_edges(float(lo), float(hi), bins)
        which = np.full(n, -1, dtype=np.int64)
        which[ok] = np.clip(np.floor((finite - lo) / (hi - lo) * bins).astype(np.int64), 0, bins - 1)
        colours = pcolors.sample_colorscale("Viridis", list((np.arange(bins) + 0.5) / bins))
        nowhere = np.full(1, np.nan, dtype=np.float32)
        # the colour bar: a trace of one point that is not drawn (NaN position; row id -1, which
        # selections ignore), whose marker carries the continuous scale from lo to hi
        fig.add_trace(go.Scattergl(
            x=nowhere, y=nowhere, customdata=np.full(1, -1, dtype=np.int32), mode="markers", name=cbar,
            showlegend=False, hoverinfo="skip",
            marker=dict(color=np.array([lo], dtype=np.float32), colorscale="Viridis", cmin=float(lo),
                        cmax=float(hi), showscale=True, size=3,
                        colorbar=dict(title=dict(text=cbar, side="right"), thickness=14))))
        order = np.argsort(which, kind="stable")
        starts = np.searchsorted(which[order], np.arange(-1, bins + 1))
        for b in range(-1, bins):
            idx = order[starts[b + 1]:starts[b + 2]]
            if not len(idx):
                continue
            if b < 0:
                name, color, label = "no value", "#9e9e9e", "no value"
            else:
                label = (f"≤ {edges[1]:.4g}" if b == 0 else f"≥ {edges[b]:.4g}" if b == bins - 1
                         else f"{edges[b]:.4g} to {edges[b + 1]:.4g}")
                name, color = f"{cbar} {label}", colours[b]
            fig.add_trace(go.Scattergl(
                x=coords[idx, 0], y=coords[idx, 1], mode="markers", name=name, customdata=rows[idx],
                showlegend=False, marker=dict(marker, color=color), meta=MAP_POINTS_META,
                hovertemplate=f"row %{{customdata}}<br>{cbar}: {label}<extra></extra>"))
    margin = dict(MAP_MARGIN, t=40 if title else MAP_MARGIN["t"])
    if not option.categorical:
        margin["r"] = MAP_MARGIN_COLOURBAR
    fig.update_layout(height=460, margin=margin,
                      # categorical maps have no colour bar: the legend goes on the right;
                      # continuous maps keep the right for the colour bar, the legend goes below
                      # (the legend's title names the colour, its entries are the categories)
                      legend=dict(itemsizing="constant", title=dict(text=cbar)) if option.categorical else
                      dict(itemsizing="constant", orientation="h", yanchor="top", y=-0.2, x=0.0,
                           xanchor="left"),
                      xaxis=dict(title=dict(text="PC 1", standoff=6), automargin=False),
                      yaxis=dict(title=dict(text="PC 2", standoff=6), automargin=False),
                      uirevision="map")
    if title:
        fig.update_layout(title=title)
    return fig


def categorical_palette(k: int) -> list[str]:
    """``k`` distinct colours that all stay visible on a white background.

    Plotly's default qualitative colours plus Dark24 for more than ten
    categories; the light ones of the default (``#FECB52`` yellow, ``#B6E880``
    pale green, which made digit 9 almost invisible) are replaced by darker
    shades.
    """
    import plotly.express as px

    base = [c for c in px.colors.qualitative.Plotly if c not in ("#FECB52", "#B6E880")]
    base += ["#B8860B", "#2E8B57"]
    base += [c for c in px.colors.qualitative.Dark24 if c not in base]
    return [base[i % len(base)] for i in range(k)]


#: at most this many selected rows are ringed on a big map (SVG markers: thousands stay quick to draw)
SELECTION_RING_CAP = 3_000
#: ``meta`` of the ring trace marking the selection on a big map
SELECTION_META = "elx_selection"
SELECTION_RING_COLOR = "#ff0040"
#: the rings' marker size (pixels); the map component's invisible extent trace has markers as
#: large, so that Plotly's autorange (which pads for marker sizes) does not change when rings appear
SELECTION_RING_SIZE = 13


def selection_rings(coords: np.ndarray, rows, cap: int = SELECTION_RING_CAP) -> tuple[go.Scatter | None, int]:
    """The selection on a big map: an open ring around each selected row's point.

    An SVG trace (drawn above the map's points by Plotly and by the map component alike) of
    strong red rings, ``customdata = -1`` (a later box or lasso over a ring
    selects the row under it, never the ring) and no hover of its own.

    Parameters
    ----------
    coords : ndarray (M, 2), the map's coordinates of all rows.
    rows : sequence of int, selected rows (ids >= M or < 0 are skipped).
    cap : int, most rings drawn; a larger selection is thinned evenly (every k-th row in
        ascending order), so the rings still show where the selection lies.

    Returns
    -------
    (trace or None, number of rings drawn); ``None`` for an empty selection.
    """
    coords = np.asarray(coords)
    sel = np.asarray(sorted({int(r) for r in rows}), dtype=np.int64)
    sel = sel[(sel >= 0) & (sel < len(coords))]
    if not len(sel):
        return None, 0
    if len(sel) > cap:
        sel = sel[np.linspace(0, len(sel) - 1, int(cap)).round().astype(np.int64)]
    xy = np.asarray(coords[sel], dtype=np.float64)
    if xy.shape[1] < 2:  # a one-dimensional map: the points lie on PC 1
        xy = np.column_stack([xy[:, 0], np.zeros(len(xy))])
    trace = go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers", name="selection", showlegend=False,
                       hoverinfo="skip", customdata=np.full(len(sel), -1, dtype=np.int32), meta=SELECTION_META,
                       marker=dict(symbol="circle-open", size=SELECTION_RING_SIZE, color=SELECTION_RING_COLOR,
                                   line=dict(width=2.5, color=SELECTION_RING_COLOR)),
                       selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=1)))
    return trace, len(sel)


def selection_overview(raw_xy: np.ndarray, inv_xy: np.ndarray, rows, context: int = 4000,
                       seed: int = 0) -> go.Figure:
    """Small two-panel figure: the selected rows on both maps, over a grey sample of all points.

    Drawn below the big maps, which mark the selection themselves
    (:func:`selection_rings`); this one shows it at a glance on both maps side by side.

    Parameters
    ----------
    raw_xy, inv_xy : ndarray (M, 2), coordinates of all rows on the two maps.
    rows : sequence of int, selected rows.
    context : number of randomly chosen rows drawn in grey for orientation.
    """
    from plotly.subplots import make_subplots

    m = len(raw_xy)
    rng = np.random.default_rng(seed)
    ctx = rng.choice(m, min(context, m), replace=False) if m else np.zeros(0, dtype=np.int64)
    sel = np.asarray(rows, dtype=np.int64)
    fig = make_subplots(rows=1, cols=2, subplot_titles=("equivariant map", "invariant map"))
    for col, xy in ((1, np.asarray(raw_xy, np.float32)), (2, np.asarray(inv_xy, np.float32))):
        fig.add_trace(go.Scattergl(x=xy[ctx, 0], y=xy[ctx, 1], mode="markers", hoverinfo="skip",
                                   marker=dict(size=3, color="#c7c7c7"), showlegend=False), 1, col)
        fig.add_trace(go.Scattergl(x=xy[sel, 0], y=xy[sel, 1], mode="markers", showlegend=False,
                                   customdata=sel.astype(np.int32),
                                   hovertemplate="row %{customdata}<extra>selected</extra>",
                                   marker=dict(size=9, color="#d62728", line=dict(color="black", width=1))),
                      1, col)
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10))
    return fig


def add_path(fig: go.Figure, path_xy: np.ndarray, name: str, color: str, current: int | None = None,
             valid: np.ndarray | None = None) -> go.Figure:
    """Overlay a path (k, 2) on a map (WebGL, like the map, so it is drawn above the points); valid steps filled, invalid ones as crosses; the
    slider's current step as a large star. Path markers carry ``customdata = -1 - step``
    so selections can tell them from data rows."""
    k = len(path_xy)
    symbols = None if valid is None else np.where(valid, "circle", "x")
    fig.add_trace(go.Scattergl(
        x=path_xy[:, 0], y=path_xy[:, 1], mode="lines+markers", name=name,
        customdata=(-1 - np.arange(k))[:, None], hovertext=[f"{name}: step {i}" for i in range(k)],
        hoverinfo="text", line=dict(color=color, width=3),
        marker=dict(size=9, color=color, symbol=symbols, line=dict(color="white", width=1))))
    if current is not None:
        fig.add_trace(go.Scattergl(
            x=[path_xy[current, 0]], y=[path_xy[current, 1]], mode="markers", showlegend=False,
            hoverinfo="skip", customdata=[[-1 - current]],
            marker=dict(size=20, symbol="star", color=color, line=dict(color="black", width=1))))
    return fig


def path_detail_svg(paths: list[tuple[str, str, np.ndarray, np.ndarray, np.ndarray | None]], step: int,
                    size: tuple[int, int] = (340, 230)) -> str:
    """Two small panels (equivariant map, invariant map) with the interpolation paths and the
    current step as a star, as one SVG string.

    Drawn as plain SVG, not as a Plotly chart: moving the step slider then
    updates a few kilobytes of markup instead of re-rendering a Plotly chart, which is most of
    what a slider step costs in the browser.

    Parameters
    ----------
    paths : list of ``(name, colour, xy_on_raw_map (k, 2), xy_on_inv_map (k, 2), valid (k,) or None)``.
    step : int in ``0..k-1``.
    size : (width, height) of one panel in pixels.
    """
    w, h = size
    pad, top = 14, 26
    panels = []
    for p_i, title in enumerate(("on the equivariant map", "on the invariant map")):
        pts = np.concatenate([np.asarray(p[2 + p_i], dtype=np.float64) for p in paths])
        lo, hi = pts.min(0), pts.max(0)
        span = np.where(hi - lo > 0, hi - lo, 1.0)

        def px(xy, lo=lo, span=span):
            x = pad + (np.asarray(xy)[:, 0] - lo[0]) / span[0] * (w - 2 * pad)
            y = top + (1 - (np.asarray(xy)[:, 1] - lo[1]) / span[1]) * (h - top - pad)
            return np.stack([x, y], 1)

        body = [f'<text x="{w / 2}" y="16" text-anchor="middle" font-family="sans-serif" font-size="13" '
                f'fill="#555">{title}</text>',
                f'<rect x="1" y="{top - 6}" width="{w - 2}" height="{h - top + 5}" fill="none" stroke="#e5e5e5"/>']
        for name, color, raw_xy, inv_xy, valid in paths:
            xy = px(raw_xy if p_i == 0 else inv_xy)
            line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
            body.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2"/>')
            for i, (x, y) in enumerate(xy):
                if valid is not None and not valid[i]:
                    body.append(f'<path d="M{x - 4:.1f},{y - 4:.1f}L{x + 4:.1f},{y + 4:.1f}M{x - 4:.1f},'
                                f'{y + 4:.1f}L{x + 4:.1f},{y - 4:.1f}" stroke="{color}" stroke-width="2"/>')
                else:
                    body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"/>')
            x, y = xy[step]
            star = " ".join(f"{x + r * np.sin(a):.1f},{y - r * np.cos(a):.1f}"
                            for a, r in zip(np.arange(10) * np.pi / 5, [11, 4.5] * 5))
            body.append(f'<polygon points="{star}" fill="{color}" stroke="black" stroke-width="1"/>')
        panels.append(f'<g transform="translate({p_i * (w + 10)},0)">{"".join(body)}</g>')
    legend = "".join(
        f'<g transform="translate({10 + 170 * i},{h + 14})"><line x1="0" y1="0" x2="22" y2="0" '
        f'stroke="{c}" stroke-width="3"/><text x="28" y="4" font-family="sans-serif" font-size="12" '
        f'fill="#333">{html.escape(n)}</text></g>' for i, (n, c, *_rest) in enumerate(paths))
    total_w, total_h = 2 * w + 10, h + 24
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" '
            f'viewBox="0 0 {total_w} {total_h}"><rect width="{total_w}" height="{total_h}" fill="white"/>'
            f'{"".join(panels)}{legend}</svg>')


def add_orbit(fig: go.Figure, xy: np.ndarray, name: str, color: str, closed: bool = False,
              star: bool = False) -> go.Figure:
    """Overlay an orbit (G, 2) on a map: markers, joined in order (and closed) when ``closed``;
    a single large star when ``star``. Markers carry ``customdata = -1`` so selections ignore them."""
    xy = np.asarray(xy)
    if closed and len(xy) > 1:
        xy = np.concatenate([xy, xy[:1]])
    mode = "markers" if (star or not closed) else "lines+markers"
    marker = dict(size=18 if star else 7, color=color, symbol="star" if star else "circle",
                  line=dict(color="black" if star else "white", width=1))
    fig.add_trace(go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode=mode, name=name, hoverinfo="name",
                             customdata=np.full((len(xy), 1), -1), line=dict(color=color, width=2),
                             marker=marker))
    return fig


#: fill of a user's input that has no value of the map's colour (the maps' "no value" grey)
NO_VALUE_GREY = "#9e9e9e"
#: name of the trace of a user's inputs on the maps
USER_INPUTS_NAME = "your inputs"


def user_input_colours(values: np.ndarray, reference: np.ndarray, option) -> list[str]:
    """Marker fills for a user's inputs that match a map's colouring, grey where a value is missing.

    Parameters
    ----------
    values : ndarray (A,), the inputs' display values (NaN or None where unknown).
    reference : ndarray (M,), the map's display values (:func:`color_column` of the data set).
    option : ColorOption, the map's colour.

    Returns
    -------
    list of A CSS colours: a continuous value on the Viridis scale over the map's 1st-99th
    percentile range (as :func:`latent_map`, clipped at its ends); a category in its map colour
    (:func:`categorical_palette` of the map's sorted categories); :data:`NO_VALUE_GREY` for a
    missing value or a category the map does not have. Never black, never dropped.
    """
    import plotly.colors as pcolors

    values = np.asarray(values, dtype=object if option.categorical else np.float64)
    out = [NO_VALUE_GREY] * len(values)
    if option.categorical:
        cats = list(np.unique(np.asarray(reference)))
        palette = categorical_palette(len(cats))
        for i, v in enumerate(values):
            if v is not None and v in cats:
                out[i] = palette[cats.index(v)]
        return out
    lo, hi = colour_range(reference)
    ok = np.flatnonzero(np.isfinite(values))
    if len(ok):
        where = np.clip((values[ok] - lo) / (hi - lo), 0.0, 1.0)
        for i, c in zip(ok, pcolors.sample_colorscale("Viridis", list(where))):
            out[i] = c
    return out


def add_user_inputs(fig: go.Figure, xy: np.ndarray, hover: list[str], colours: list[str],
                    name: str = USER_INPUTS_NAME) -> go.Figure:
    """Overlay a user's inputs (A, 2) on a map as a highlighted trace: large diamonds with a dark
    outline, filled with ``colours`` (:func:`user_input_colours`), one legend entry ``name``.

    An SVG trace (drawn above the WebGL points); markers carry ``customdata = -1`` so map
    selections ignore them; ``hover`` holds one text per input (escaped here; a new line
    becomes a line break).

    Raises
    ------
    ValueError
        If ``xy``, ``hover`` and ``colours`` differ in length.
    """
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    if not len(xy) == len(hover) == len(colours):
        raise ValueError(f"{len(xy)} positions, {len(hover)} hover texts and {len(colours)} colours")
    fig.add_trace(go.Scatter(
        x=xy[:, 0], y=xy[:, 1], mode="markers", name=name, customdata=np.full(len(xy), -1),
        text=[html.escape(str(t)).replace("\n", "<br>") for t in hover],
        hovertemplate="%{text}<extra>" + name + "</extra>",
        marker=dict(symbol="diamond", size=15, color=list(colours), line=dict(color="#c2185b", width=2.5)),
        showlegend=True))
    return fig


def code_bar(values: np.ndarray, mask: np.ndarray | None, title: str) -> go.Figure:
    """Bar chart of one per-node code (n, d): one bar group per slot, atoms vs empty slots."""
    v = np.asarray(values)
    fig = go.Figure()
    for c in range(v.shape[1]):
        colors = None if mask is None else np.where(mask, "#1f77b4", "#c7c7c7")
        fig.add_trace(go.Bar(x=[f"slot {i}" for i in range(v.shape[0])], y=v[:, c],
                             name=f"channel {c}", marker_color=colors))
    fig.update_layout(title=title, height=240, margin=dict(l=10, r=10, t=40, b=10), showlegend=v.shape[1] > 1)
    return fig


# ---------------------------------------------------------------- downstream results

def r2_bars(summary: pd.DataFrame, probe: str) -> go.Figure:
    """Grouped bars: R² (mean ± std over seeds) of one probe per property, one colour per representation.

    ``summary`` is ``probes_summary.csv`` of the QM9 evaluation (columns
    ``representation, probe, target, r2_mean, r2_std``).
    """
    df = summary[summary["probe"] == probe]
    fig = go.Figure()
    for rep, part in df.groupby("representation", sort=False):
        fig.add_trace(go.Bar(x=part["target"], y=part["r2_mean"], name=rep,
                             error_y=dict(type="data", array=part["r2_std"].fillna(0.0))))
    fig.update_layout(barmode="group", height=380, yaxis_title="R² on test molecules",
                      xaxis_title="QM9 property", title=f"Probe: {probe}",
                      legend=dict(orientation="h", y=-0.25), margin=dict(l=10, r=10, t=40, b=10))
    return fig


def accuracy_bars(summary: pd.DataFrame) -> go.Figure:
    """Grouped bars: accuracy (mean ± std over seeds) per representation, one colour per probe."""
    fig = go.Figure()
    for probe, part in summary.groupby("probe", sort=False):
        fig.add_trace(go.Bar(x=part["representation"], y=100 * part["accuracy_mean"], name=probe,
                             error_y=dict(type="data", array=100 * part["accuracy_std"].fillna(0.0))))
    fig.update_layout(barmode="group", height=380, yaxis_title="digit accuracy on the test split [%]",
                      legend=dict(orientation="h", y=-0.3), margin=dict(l=10, r=10, t=30, b=10))
    return fig


def accuracy_vs_k(k_summary: pd.DataFrame, baselines: dict[str, float] | None = None) -> go.Figure:
    """Accuracy (mean ± std over seeds) of each random projection against the number of templates
    ``k`` (log axis), with horizontal lines for ``baselines`` (name -> accuracy in [0, 1])."""
    fig = go.Figure()
    for rep, part in k_summary.groupby("representation", sort=False):
        part = part.sort_values("k")
        fig.add_trace(go.Scatter(x=part["k"], y=100 * part["accuracy_mean"], mode="lines+markers", name=rep,
                                 error_y=dict(type="data", array=100 * part["accuracy_std"].fillna(0.0))))
    for i, (name, acc) in enumerate((baselines or {}).items()):
        fig.add_hline(y=100 * acc, line_dash="dot", annotation_text=name,
                      annotation_position="bottom right" if i % 2 else "top left")
    ks = sorted(k_summary["k"].unique())
    fig.update_layout(height=380, xaxis_title="random templates k",
                      # ticks at the measured k (Plotly's own log ticks read "2 5 10 2 5 100")
                      xaxis=dict(type="log", tickmode="array", tickvals=ks, ticktext=[f"{int(k)}" for k in ks]),
                      yaxis_title="linear-probe accuracy [%]", legend=dict(orientation="h", y=-0.25),
                      margin=dict(l=10, r=10, t=30, b=10))
    return fig


def log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values 1, 2, 5 x 10^j covering ``[lo, hi]`` (positive) for a log axis, so every
    label is a plain number (Plotly's automatic log ticks label minor ticks "2" and "5")."""
    lo, hi = max(float(lo), 1e-12), max(float(hi), 1e-12)
    out = [m * 10.0 ** e for e in range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1)
           for m in (1, 2, 5)]
    inside = [t for t in out if lo / 1.0001 <= t <= hi * 1.0001]
    return inside if len(inside) >= 2 else [t for t in out if lo / 10 <= t <= hi * 10]


def distortion_plot(dist: pd.DataFrame) -> go.Figure:
    """Per projection: the range of ``||s(z1) - s(z2)|| / d([z1], [z2])`` divided by its median
    (min, max as an error bar around 1), log axis; an isometry is a point at 1."""
    med = dist["ratio_median"].replace(0, np.nan)
    lo, hi = dist["ratio_min"] / med, dist["ratio_max"] / med
    fig = go.Figure(go.Scatter(x=dist["projection"], y=np.ones(len(dist)), mode="markers",
                               error_y=dict(type="data", symmetric=False, array=hi - 1, arrayminus=1 - lo),
                               name="min / max over pairs (÷ median)"))
    finite = np.concatenate([lo[np.isfinite(lo)], hi[np.isfinite(hi)], [1.0]])
    ticks = log_ticks(finite[finite > 0].min(), finite.max())
    fig.update_layout(height=330, yaxis_title="distance ratio ÷ median",
                      yaxis=dict(type="log", tickmode="array", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks]),
                      margin=dict(l=10, r=10, t=30, b=10), showlegend=False)
    return fig
