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


def color_column(table: pd.DataFrame, option) -> tuple[np.ndarray, str]:
    """Display values of a colour option and the colour-bar title with its unit."""
    values = table[option.key].to_numpy()
    if not option.categorical:
        values = values.astype(np.float64) * option.scale
    return values, f"{option.key} [{option.unit}]"


def latent_map(coords: np.ndarray, table: pd.DataFrame, option, title: str,
               hover_cols: tuple[str, ...] = ("qm9_index", "smiles"),
               max_hover: int = 200_000) -> go.Figure:
    """WebGL scatter of a 2-D map coloured by ``option``.

    ``customdata[:, 0]`` of every marker is its global row id. Categorical
    options get one trace per category; continuous ones a Viridis colour bar
    titled with the unit.
    """
    values, cbar = color_column(table, option)
    rows = np.arange(len(table))
    hover_text = None
    if len(table) <= max_hover:
        parts = [table[c].astype(str).to_numpy() for c in hover_cols if c in table]
        label = [f"{c}: " for c in hover_cols if c in table]
        hover_text = np.array(["<br>".join(lbl + p[i] for lbl, p in zip(label, parts)) for i in rows])
        shown = values if option.categorical else np.round(values, 4)
        hover_text = np.char.add(np.char.add(hover_text.astype(str), f"<br>{cbar}: "), shown.astype(str))
    fig = go.Figure()
    marker = dict(size=3, opacity=0.7)
    if option.categorical:
        for cat in np.unique(values):
            sel = values == cat
            fig.add_trace(go.Scattergl(
                x=coords[sel, 0], y=coords[sel, 1], mode="markers", name=f"{option.key}={cat}",
                customdata=rows[sel][:, None], marker=marker,
                text=None if hover_text is None else hover_text[sel], hoverinfo="text"))
    else:
        fig.add_trace(go.Scattergl(
            x=coords[:, 0], y=coords[:, 1], mode="markers", name="codes",
            customdata=rows[:, None], text=hover_text, hoverinfo="text",
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
