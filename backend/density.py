"""Maps that scale to millions of codes: density rasters, selections mapped to rows, synthetic codes.

A WebGL scatter sends every point to the browser (about 21-26 bytes of Plotly
JSON per point) and the browser redraws all of them on every change. Above
:data:`DENSITY_THRESHOLD` points a map is drawn instead as a **server-side
density raster** (datashader aggregates the points into ``width x height``
pixels; the browser receives one ``go.Heatmap`` of that size, whatever the
number of points), coloured by the count of codes per pixel or by the mean
(continuous colour) / most frequent value (categorical colour) per pixel.
Box and lasso selections on such a map come back from the browser as a range
or a polygon in data coordinates; :func:`rows_in_box` and
:func:`rows_in_lasso` map them back to every row whose map coordinates fall
inside (vectorised numpy / ``matplotlib.path.Path``).

The synthetic codes (:func:`synthetic_codes`) exercise this without a model:
seeded S_n codes (M, n, 1) drawn around a few cluster centres, generated in
fixed chunks into preallocated arrays, and :func:`streaming_pca_map` fits and
applies the 2-D PCA map chunk by chunk, so memory stays at the size of the
outputs while encoding or projecting.

No Streamlit here. Source of the rasters: datashader (``Canvas.points`` with
``count`` / ``mean`` / ``count_cat`` reductions), https://datashader.org.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go

#: maps with more points than this are drawn as density rasters. Measured (see
#: ``benchmarks/scale_maps.py`` and the README): the lean scatter costs ~21-26 bytes of
#: JSON per point, so 200k points are ~5 MB sent on every rerun and redrawn in the
#: browser on every colour change (already seconds at 130k), while the raster is
#: ~1-2 MB whatever the number of points.
DENSITY_THRESHOLD = 200_000
try:  # ``$ELX_DENSITY_THRESHOLD`` moves it (e.g. 100000: QM9's 130,831-point maps become rasters)
    DENSITY_THRESHOLD = max(0, int(os.environ.get("ELX_DENSITY_THRESHOLD") or DENSITY_THRESHOLD))
except ValueError:
    pass  # not a whole number: the default
#: raster size in pixels (the map is about this large on a wide screen)
RASTER_WIDTH, RASTER_HEIGHT = 500, 350
#: selections on a density map list at most this many rows (the count is always exact)
SELECTION_DISPLAY_CAP = 1000


def use_density(n_points: int, threshold: int = DENSITY_THRESHOLD) -> bool:
    """True when a map of ``n_points`` points is drawn as a density raster (more than ``threshold``)."""
    return int(n_points) > int(threshold)


def _ranges(coords: np.ndarray, pad: float = 0.01) -> tuple[tuple[float, float], tuple[float, float]]:
    """Padded (x_range, y_range) of ``coords`` (M, 2); a degenerate axis gets width 1."""
    out = []
    for j in range(2):
        lo, hi = (float(np.nanmin(coords[:, j])), float(np.nanmax(coords[:, j]))) if len(coords) else (0.0, 1.0)
        width = hi - lo
        if not np.isfinite(width) or width <= 0:
            lo, hi, width = lo - 0.5, lo + 0.5, 1.0
        out.append((lo - pad * width, hi + pad * width))
    return out[0], out[1]


def density_figure(coords: np.ndarray, values: np.ndarray | None = None, option=None,
                   width: int = RASTER_WIDTH, height: int = RASTER_HEIGHT) -> go.Figure:
    """Density raster of a 2-D map, drawn as a Plotly heatmap with its axes in map (PC) units.

    Parameters
    ----------
    coords : ndarray (M, 2)
        Map coordinates (PC 1, PC 2) of every point.
    values : ndarray (M,), optional
        Display values of the colour (as :func:`backend.plots.color_column` returns them).
        ``None``: colour by the number of codes per pixel.
    option : ColorOption, optional
        The colour's key, unit and kind. Continuous: each pixel shows the **mean** of the
        values of its points; categorical: the **most frequent** category of its points.
        ``None`` (or ``values`` None): the count per pixel (log10 colour scale).
    width, height : int
        Raster size in pixels (columns along PC 1, rows along PC 2).

    Returns
    -------
    go.Figure
        One ``go.Heatmap`` (``z`` float32 (height, width), ``x`` / ``y`` the pixel centres
        in PC units, empty pixels NaN, hover: PC 1, PC 2 and the pixel's value),
        a colour bar naming the unit (and for categories one tick per category), and an
        invisible two-point scatter at the corners so Plotly offers box and lasso
        selection (a heatmap alone is not selectable). ``dragmode="select"``: dragging
        draws a box; the page maps it to rows with :func:`rows_in_box` /
        :func:`rows_in_lasso`. The size sent to the browser does not grow with M.

    Raises
    ------
    ValueError
        If ``coords`` is not (M, 2) or ``values`` has another length.

    Notes
    -----
    Source: datashader ``Canvas(plot_width, plot_height, x_range, y_range).points`` with
    ``count()``, ``mean(v)`` or ``count_cat(v)``; a point on the upper edge of the range
    falls in the last pixel (the range is padded by 1 % on each side).
    """
    import datashader as ds

    coords = np.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"coords must be (M, 2), got {coords.shape}")
    m = len(coords)
    if values is not None and len(values) != m:
        raise ValueError(f"values have {len(values)} rows, coords {m}")
    x_range, y_range = _ranges(coords)
    # float32 maps stay float32 (no copy of 10M points); datashader bins either
    xy = coords if coords.dtype in (np.float32, np.float64) else coords.astype(np.float64)
    frame = {"x": xy[:, 0], "y": xy[:, 1]}
    mode = "count" if values is None or option is None else ("cat" if option.categorical else "mean")
    cats = None
    if mode == "mean":
        frame["v"] = np.asarray(values, dtype=np.float32 if np.asarray(values).dtype == np.float32 else np.float64)
    elif mode == "cat":
        codes, cats = pd.factorize(pd.Series(values), sort=True)
        frame["v"] = pd.Categorical.from_codes(codes, categories=range(len(cats)))
    df = pd.DataFrame(frame, copy=False)
    canvas = ds.Canvas(plot_width=int(width), plot_height=int(height), x_range=x_range, y_range=y_range)
    counts = canvas.points(df, "x", "y", ds.count()).values.astype(np.float32)
    xs = np.linspace(x_range[0], x_range[1], int(width) + 1)
    ys = np.linspace(y_range[0], y_range[1], int(height) + 1)
    xc, yc = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    empty = counts == 0
    if mode == "count":
        z = np.where(empty, np.nan, np.log10(np.maximum(counts, 1))).astype(np.float32)
        top = float(np.nanmax(z)) if np.isfinite(z).any() else 1.0
        ticks = [t for t in range(0, int(np.ceil(top)) + 1)]
        colorbar = dict(title=dict(text="codes per pixel [count]", side="right"), thickness=14,
                        tickvals=ticks, ticktext=[f"{10 ** t:,}" for t in ticks])
        trace = go.Heatmap(z=z, x=xc, y=yc, colorscale="Viridis", colorbar=colorbar,
                           hovertemplate="PC 1 %{x:.3g}, PC 2 %{y:.3g}<br>log10 codes per pixel: %{z:.2f}"
                                         "<extra></extra>")
    elif mode == "mean":
        agg = canvas.points(df, "x", "y", ds.mean("v")).values.astype(np.float32)
        z = np.where(empty, np.nan, agg).astype(np.float32)
        label = f"{option.key} [{option.unit}]"
        colorbar = dict(title=dict(text=f"{label}, mean per pixel", side="right"), thickness=14)
        trace = go.Heatmap(z=z, x=xc, y=yc, colorscale="Viridis", colorbar=colorbar,
                           hovertemplate=f"PC 1 %{{x:.3g}}, PC 2 %{{y:.3g}}<br>mean {label}: %{{z:.4g}}"
                                         "<extra></extra>")
    else:
        from backend.plots import categorical_palette

        agg = canvas.points(df, "x", "y", ds.count_cat("v")).values  # (height, width, K)
        k = len(cats)
        z = np.where(empty, np.nan, agg.argmax(axis=2)).astype(np.float32)
        palette = categorical_palette(k)
        if k == 1:
            scale = [[0.0, palette[0]], [1.0, palette[0]]]
        else:  # one flat band per category
            scale = []
            for i, col in enumerate(palette):
                scale += [[i / k, col], [(i + 1) / k, col]]
        colorbar = dict(title=dict(text=f"{option.key} [{option.unit}], most frequent per pixel", side="right"),
                        thickness=14, tickvals=[(i + 0.5) * (k - 1) / k for i in range(k)] if k > 1 else [0],
                        ticktext=[str(c) for c in cats])
        trace = go.Heatmap(z=z, x=xc, y=yc, colorscale=scale, zmin=-0.5 if k == 1 else 0,
                           zmax=0.5 if k == 1 else k - 1, colorbar=colorbar,
                           hovertemplate="PC 1 %{x:.3g}, PC 2 %{y:.3g}<extra></extra>")
    fig = go.Figure(trace)
    # two invisible corner points: without a selectable trace Plotly offers no box / lasso
    fig.add_trace(go.Scatter(x=[x_range[0], x_range[1]], y=[y_range[0], y_range[1]], mode="markers",
                             marker=dict(opacity=0, size=1), hoverinfo="skip", showlegend=False,
                             customdata=[-1, -1], name="range"))
    fig.update_layout(height=460, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="PC 1", yaxis_title="PC 2",
                      xaxis=dict(range=list(x_range)), yaxis=dict(range=list(y_range)),
                      dragmode="select", uirevision="map",
                      meta=dict(density=True, points=m, width=int(width), height=int(height)))
    return fig


def rows_in_box(coords: np.ndarray, x_range, y_range) -> np.ndarray:
    """Rows whose map coordinates lie in a box (edges included).

    Parameters
    ----------
    coords : ndarray (M, 2), map coordinates.
    x_range, y_range : pairs of float, the box's corners in map units (any order, as
        Plotly's ``selection.box[i].x`` / ``.y`` give them).

    Returns
    -------
    ndarray (K,) int64, ascending row numbers.
    """
    coords = np.asarray(coords)
    x0, x1 = sorted(float(v) for v in x_range)
    y0, y1 = sorted(float(v) for v in y_range)
    x, y = coords[:, 0], coords[:, 1]
    return np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)).astype(np.int64)


def rows_in_lasso(coords: np.ndarray, xs, ys) -> np.ndarray:
    """Rows whose map coordinates lie inside a lasso polygon.

    Parameters
    ----------
    coords : ndarray (M, 2), map coordinates.
    xs, ys : sequences of float (P,), the polygon's vertices in map units (closed
        implicitly), as Plotly's ``selection.lasso[i].x`` / ``.y`` give them.

    Returns
    -------
    ndarray (K,) int64, ascending rows strictly inside (points exactly on an edge
    may go either way, as in ``matplotlib.path.Path.contains_points``). Fewer than
    three vertices select nothing.

    Notes
    -----
    The polygon's bounding box is applied first (numpy), so only candidate rows go
    through ``matplotlib.path.Path.contains_points`` (even-odd rule).
    """
    from matplotlib.path import Path

    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if len(xs) < 3 or len(xs) != len(ys):
        return np.zeros(0, dtype=np.int64)
    cand = rows_in_box(coords, (xs.min(), xs.max()), (ys.min(), ys.max()))
    if not len(cand):
        return cand
    pts = np.asarray(coords)[cand].astype(np.float64)
    inside = Path(np.column_stack([xs, ys])).contains_points(pts)
    return cand[inside]


def rows_in_selection(coords: np.ndarray, selection: dict | None) -> np.ndarray:
    """All rows inside the boxes and lassos of a Streamlit Plotly selection state.

    Parameters
    ----------
    coords : ndarray (M, 2), the map's coordinates.
    selection : the ``selection`` part of ``st.plotly_chart``'s event: Streamlit 1.67
        delivers ``{"points": [...], "box": [{"xref", "yref", "x": [x0, x1],
        "y": [y0, y1]}], "lasso": [{"xref", "yref", "x": [...], "y": [...]}]}`` with
        box and lasso in data (PC) coordinates; several shapes (shift-drag) are united.

    Returns
    -------
    ndarray (K,) int64, ascending unique rows (empty when there is no box or lasso).
    """
    selection = selection or {}
    parts = [rows_in_box(coords, b.get("x", ()), b.get("y", ()))
             for b in selection.get("box", []) or [] if len(b.get("x", ())) == 2 and len(b.get("y", ())) == 2]
    parts += [rows_in_lasso(coords, s.get("x", ()), s.get("y", ())) for s in selection.get("lasso", []) or []]
    if not parts:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.concatenate(parts)).astype(np.int64)


# ---------------------------------------------------------------- synthetic codes

#: generation chunk (fixed: the codes depend on the seed only, not on how they are read)
SYNTH_CHUNK = 65_536


@dataclass(frozen=True)
class SyntheticCodes:
    """Seeded synthetic S_n codes and their metadata.

    Attributes
    ----------
    stored : ndarray (M, n, 1) float32, codes "as stored": cluster centre + noise, slots in
        the centre's order.
    random : ndarray (M, n, 1) float32, the same codes with their slots permuted by ``perms``
        (``random[i] = stored[i, perms[i]]``, :class:`backend.groups.PermutationAction`).
    perms : ndarray (M, n) int8, one permutation per code.
    cluster : ndarray (M,) int8, the centre each code was drawn around.
    radius : ndarray (M,) float32, Euclidean norm of the code (latent units; invariant).
    """

    stored: np.ndarray
    random: np.ndarray
    perms: np.ndarray
    cluster: np.ndarray
    radius: np.ndarray


def synthetic_codes(m: int, seed: int = 0, n: int = 9, clusters: int = 6, noise: float = 0.35,
                    progress: Callable[[float, str], None] | None = None) -> SyntheticCodes:
    """``m`` seeded S_n codes (M, n, 1) around ``clusters`` centres, generated in fixed chunks.

    Every chunk of :data:`SYNTH_CHUNK` codes is drawn from its own generator
    ``default_rng([seed, chunk_index])`` straight into preallocated arrays, so the peak
    memory is the outputs (about ``m * (9 n + 5)`` bytes) plus one chunk, and code ``i``
    depends only on ``i``, ``seed`` and the shape parameters (not on ``m``). The centres
    are drawn from ``default_rng(seed)``; the invariant map (sorting) separates the
    clusters while the raw map of randomly permuted codes smears them.

    Parameters
    ----------
    m : int, number of codes (≥ 0).
    seed : int, seed of the centres, noise and permutations.
    n : int, node slots (≤ 127, the permutations are int8).
    clusters : int, number of centres.
    noise : float, standard deviation of the Gaussian noise around a centre (latent units).
    progress : callable ``(fraction, message)``, optional, called after each chunk.

    Returns
    -------
    SyntheticCodes, with read-only arrays.

    Raises
    ------
    ValueError
        If ``m < 0``, ``n`` is not in 1..127 or ``clusters < 1``.
    """
    if m < 0 or not 1 <= n <= 127 or clusters < 1:
        raise ValueError(f"need m >= 0, 1 <= n <= 127, clusters >= 1; got m={m}, n={n}, clusters={clusters}")
    centres = np.random.default_rng(seed).normal(0.0, 2.0, (clusters, n)).astype(np.float32)
    stored = np.empty((m, n, 1), np.float32)
    random = np.empty((m, n, 1), np.float32)
    perms = np.empty((m, n), np.int8)
    cluster = np.empty(m, np.int8 if clusters <= 127 else np.int32)
    radius = np.empty(m, np.float32)
    for c, start in enumerate(range(0, m, SYNTH_CHUNK)):
        stop = min(start + SYNTH_CHUNK, m)
        rng, b = np.random.default_rng([seed, c]), stop - start  # whole chunks: row i never depends on m
        k = rng.integers(0, clusters, SYNTH_CHUNK)[:b]
        z = centres[k] + rng.normal(0.0, noise, (SYNTH_CHUNK, n)).astype(np.float32)[:b]
        p = np.argsort(rng.random((SYNTH_CHUNK, n))[:b], axis=1)
        stored[start:stop, :, 0] = z
        random[start:stop, :, 0] = np.take_along_axis(z, p, axis=1)
        perms[start:stop] = p
        cluster[start:stop] = k
        radius[start:stop] = np.linalg.norm(z, axis=1)
        if progress is not None:
            progress(stop / m, f"generated {stop:,} / {m:,}")
    for arr in (stored, random, perms, cluster, radius):  # read-only: LatentCodes then shares, not copies
        arr.flags.writeable = False
    return SyntheticCodes(stored, random, perms, cluster, radius)


def streaming_pca_map(features: Callable[[int, int], np.ndarray], m: int, chunk: int = SYNTH_CHUNK):
    """2-D PCA map of ``m`` rows read chunk by chunk (two passes), without holding them all.

    Kept for callers of this module; the work is :func:`backend.embedding.pca_map_chunked`
    (which :func:`backend.embedding.pca_map` also uses for tall data): float64 mean and
    scatter matrix accumulated over chunks, the top two eigenvectors of the covariance
    (the same axes as the SVD of the centred data, up to float error, same sign rule), and
    the coordinates written into a preallocated (m, 2) float32 array.

    Parameters
    ----------
    features : callable ``(start, stop) -> ndarray (stop - start, D)``, the rows to map
        (e.g. a projection applied to a slice of the codes).
    m : int, number of rows (≥ 2).
    chunk : int, rows per call of ``features``.

    Returns
    -------
    backend.embedding.Map2D

    Raises
    ------
    ValueError
        If ``m < 2``.
    """
    from backend.embedding import pca_map_chunked

    return pca_map_chunked(features, m, chunk)
