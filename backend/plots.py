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

    w, h = size
    body = ""
    if mol is not None and mol.GetNumAtoms():
        m = Chem.Mol(mol)
        if not valid:
            m.UpdatePropertyCache(strict=False)
        drawer = rdMolDraw2D.MolDraw2DSVG(w, h)
        opts = drawer.drawOptions()
        opts.clearBackground = False
        try:
            rdMolDraw2D.PrepareAndDrawMolecule(drawer, m, kekulize=valid)
        except Exception:  # drawing an unsanitizable graph can still fail in RDKit
            drawer = rdMolDraw2D.MolDraw2DSVG(w, h)
            drawer.DrawMolecule(m)
        drawer.FinishDrawing()
        svg = drawer.GetDrawingText()
        body = svg[svg.find(">", svg.find("<svg")) + 1: svg.rfind("</svg>")]
    mark = ""
    if not valid:
        short = html.escape(reason[:60])
        mark = (f'<rect x="2" y="2" width="{w - 4}" height="{h - 4}" fill="#ffecec" fill-opacity="0.35" '
                f'stroke="#d00000" stroke-width="5"/>'
                f'<text x="{w / 2}" y="22" text-anchor="middle" font-family="sans-serif" '
                f'font-size="18" font-weight="bold" fill="#d00000">✗ INVALID</text>'
                f'<text x="{w / 2}" y="{h - 10}" text-anchor="middle" font-family="sans-serif" '
                f'font-size="10" fill="#d00000">{short}</text>')
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


def latent_map(coords: np.ndarray, table: pd.DataFrame, option, title: str,
               label_col: str = "smiles", id_col: str = "qm9_index") -> go.Figure:
    """WebGL scatter of a 2-D map coloured by ``option``.

    ``customdata[:, 0]`` of every marker is its global row id and
    ``customdata[:, 1]`` the data set's own id (``id_col``, e.g. QM9's index).
    Hover shows ``label_col`` (e.g. the SMILES), the id and the colour value
    through a ``hovertemplate``, so the figure carries each string once and
    the numbers as binary arrays (about 4 MB for 130k points instead of 15 MB
    of preformatted hover texts). Categorical options get one trace per
    category; continuous ones a Viridis colour bar titled with the unit.
    """
    values, cbar = color_column(table, option)
    n = len(table)
    ids = table[id_col].to_numpy(np.int64) if id_col in table else np.arange(n)
    custom = np.stack([np.arange(n, dtype=np.int64), ids], axis=1)
    labels = table[label_col].astype(str).to_numpy() if label_col in table else None
    head = ("%{text}<br>" if labels is not None else "") + f"{id_col}: %{{customdata[1]}}<br>"
    fig = go.Figure()
    marker = dict(size=3, opacity=0.7)
    if option.categorical:
        for cat in np.unique(values):
            sel = values == cat
            fig.add_trace(go.Scattergl(
                x=coords[sel, 0], y=coords[sel, 1], mode="markers", name=f"{option.key}={cat}",
                customdata=custom[sel], marker=marker,
                text=None if labels is None else labels[sel],
                hovertemplate=head + f"{cbar}: {cat}<extra></extra>"))
    else:
        fig.add_trace(go.Scattergl(
            x=coords[:, 0], y=coords[:, 1], mode="markers", name="codes",
            customdata=custom, text=labels,
            hovertemplate=head + f"{cbar}: %{{marker.color:.4g}}<extra></extra>",
            marker=dict(**marker, color=values, colorscale="Viridis", showscale=True,
                        colorbar=dict(title=dict(text=cbar)))))
    fig.update_layout(title=title, height=460, margin=dict(l=10, r=10, t=40, b=10),
                      dragmode="lasso", legend=dict(itemsizing="constant"),
                      xaxis_title="PC 1", yaxis_title="PC 2")
    return fig


def add_selection(fig: go.Figure, coords: np.ndarray, rows) -> go.Figure:
    """Highlight data rows with open red circles (customdata = row id)."""
    sel = np.asarray(rows, dtype=np.int64)
    if len(sel):
        fig.add_trace(go.Scattergl(
            x=coords[sel, 0], y=coords[sel, 1], mode="markers", name="selected",
            customdata=sel[:, None], hoverinfo="skip",
            marker=dict(size=12, color="rgba(0,0,0,0)", line=dict(color="red", width=2))))
    return fig


def add_path(fig: go.Figure, path_xy: np.ndarray, name: str, color: str, current: int | None = None,
             valid: np.ndarray | None = None) -> go.Figure:
    """Overlay a path (k, 2) on a map; valid steps filled, invalid ones as crosses; the
    slider's current step as a large star. Path markers carry ``customdata = -1 - step``
    so selections can tell them from data rows."""
    k = len(path_xy)
    symbols = None if valid is None else np.where(valid, "circle", "x")
    fig.add_trace(go.Scatter(
        x=path_xy[:, 0], y=path_xy[:, 1], mode="lines+markers", name=name,
        customdata=(-1 - np.arange(k))[:, None], hovertext=[f"{name}: step {i}" for i in range(k)],
        hoverinfo="text", line=dict(color=color, width=3),
        marker=dict(size=9, color=color, symbol=symbols, line=dict(color="white", width=1))))
    if current is not None:
        fig.add_trace(go.Scatter(
            x=[path_xy[current, 0]], y=[path_xy[current, 1]], mode="markers", showlegend=False,
            hoverinfo="skip", customdata=[[-1 - current]],
            marker=dict(size=20, symbol="star", color=color, line=dict(color="black", width=1))))
    return fig


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
    fig.add_trace(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode=mode, name=name, hoverinfo="name",
                             customdata=np.full((len(xy), 1), -1), line=dict(color=color, width=2),
                             marker=marker))
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
    fig.update_layout(height=380, xaxis_type="log", xaxis_title="random templates k",
                      yaxis_title="linear-probe accuracy [%]", legend=dict(orientation="h", y=-0.25),
                      margin=dict(l=10, r=10, t=30, b=10))
    return fig


def distortion_plot(dist: pd.DataFrame) -> go.Figure:
    """Per projection: the range of ``||s(z1) - s(z2)|| / d([z1], [z2])`` divided by its median
    (min, max as an error bar around 1), log axis; an isometry is a point at 1."""
    med = dist["ratio_median"].replace(0, np.nan)
    lo, hi = dist["ratio_min"] / med, dist["ratio_max"] / med
    fig = go.Figure(go.Scatter(x=dist["projection"], y=np.ones(len(dist)), mode="markers",
                               error_y=dict(type="data", symmetric=False, array=hi - 1, arrayminus=1 - lo),
                               name="min / max over pairs (÷ median)"))
    fig.update_layout(height=330, yaxis_type="log", yaxis_title="distance ratio ÷ median",
                      margin=dict(l=10, r=10, t=30, b=10), showlegend=False)
    return fig
