"""Downloads of what the dashboard shows: map coordinates, invariant features, figures.

Every function returns the bytes of one file, so the same call serves a Streamlit
download button and a notebook (``Path("maps.parquet").write_bytes(...)``).

* :func:`maps_table` + :func:`csv_bytes` / :func:`parquet_bytes`: one row per input
  with its row number, id, both maps' 2-D coordinates (``raw_pc1, raw_pc2, inv_pc1,
  inv_pc2``, PCA units) and the data set's properties as stored;
* :func:`features_npz_bytes` / :func:`features_csv_bytes`: the invariant features
  ``s(z)`` themselves, with the row numbers and the projection's name;
* :func:`figure_html_bytes`: a Plotly figure as a self-contained HTML page (plotly.js
  embedded, about 4.8 MB more, so it opens offline). PNG is not produced on the server:
  Plotly's static export (kaleido) needs a Chrome installation at run time; the
  chart's own toolbar has a camera button that saves a PNG in the browser.

Parquet is written with pyarrow (a dependency of Streamlit, pinned in
``requirements.txt``).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

#: megabytes of plotly.js that :func:`figure_html_bytes` embeds (checked against the installed
#: plotly by a test)
PLOTLY_JS_MB = 4.8
#: bytes per point a map adds to that HTML (x, y, row id and colour as JSON; measured on the
#: dashboard's 130,831-point maps: 7.2 MB in all)
HTML_BYTES_PER_POINT = 20

#: coordinate columns of :func:`maps_table`
COORD_COLUMNS = ("raw_pc1", "raw_pc2", "inv_pc1", "inv_pc2")


def maps_table(table: pd.DataFrame, maps, id_col: str | None = None, rows=None) -> pd.DataFrame:
    """Both maps' coordinates with row numbers, ids and every scalar property.

    Parameters
    ----------
    table : DataFrame
        The data set's table, M rows (ids, properties in their stored units, split ...).
    maps : backend.views.Maps
        Maps fitted on the same M rows (``maps.raw.coords``, ``maps.inv.coords``: (M, 2)).
    id_col : str, optional
        Column that identifies an input; placed right after ``row``.
    rows : sequence of int, optional
        Only these rows (default: all).

    Returns
    -------
    DataFrame
        Columns ``row`` (0..M-1), ``id_col``, ``raw_pc1, raw_pc2, inv_pc1, inv_pc2``
        (float32, PCA units of each map), then the other columns of ``table`` whose values
        are numbers, booleans or text (columns holding lists or arrays are left out).

    Raises
    ------
    ValueError
        If the maps do not have one point per table row.
    """
    m = len(table)
    if len(maps.raw.coords) != m or len(maps.inv.coords) != m:
        raise ValueError(f"the maps have {len(maps.raw.coords)} / {len(maps.inv.coords)} points, the table {m} rows")
    idx = np.arange(m) if rows is None else np.asarray(rows, dtype=np.int64)
    out = pd.DataFrame({"row": idx})
    if id_col and id_col in table and id_col != "row":
        out[id_col] = table[id_col].to_numpy()[idx]
    for name, mp in (("raw", maps.raw), ("inv", maps.inv)):
        out[f"{name}_pc1"] = np.asarray(mp.coords[idx, 0], dtype=np.float32)
        out[f"{name}_pc2"] = np.asarray(mp.coords[idx, 1], dtype=np.float32)
    for col in table.columns:
        if col in out.columns:
            continue
        values = table[col].iloc[idx]
        if values.dtype.kind in "biufcmM" or _is_text(values):
            out[col] = values.to_numpy()
    return out


def _is_text(values: pd.Series) -> bool:
    if values.dtype.kind not in "OU" and not isinstance(values.dtype, pd.StringDtype):
        return False
    sample = values.dropna().head(1000)
    return all(isinstance(v, str) for v in sample)


def csv_bytes(df: pd.DataFrame) -> bytes:
    """A table as UTF-8 CSV bytes: a header line, one line per row, no index column.

    Parameters
    ----------
    df : DataFrame, e.g. from :func:`maps_table`.

    Returns
    -------
    bytes
    """
    return df.to_csv(index=False).encode("utf-8")


def parquet_available() -> bool:
    """True when pyarrow can be imported (Parquet downloads are offered only then)."""
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def parquet_bytes(df: pd.DataFrame) -> bytes:
    """The table as a Parquet file (pyarrow, snappy compression, no index); column dtypes are
    kept (coordinates stay float32).

    Parameters
    ----------
    df : DataFrame, e.g. from :func:`maps_table`.

    Returns
    -------
    bytes
        ``pandas.read_parquet(io.BytesIO(b))`` gives the same rows and columns.

    Raises
    ------
    ImportError
        If pyarrow is not installed (see :func:`parquet_available`).
    """
    buf = io.BytesIO()
    df.to_parquet(buf, engine="pyarrow", index=False)
    return buf.getvalue()


def features_npz_bytes(features: np.ndarray, projection: str, ids=None, **meta) -> bytes:
    """The invariant features ``s(z)`` as a compressed ``.npz`` (no pickled objects).

    Parameters
    ----------
    features : ndarray (M, F)
        One row per input, in the data set's row order.
    projection : str
        Name of the projection (stored as the string ``projection``).
    ids : array (M,), optional
        Ids of the inputs (numbers or strings), stored as ``id``.
    **meta : str or number
        Further scalars to store (e.g. ``action="C_8"``, ``seed=0``).

    Returns
    -------
    bytes
        ``np.load(io.BytesIO(b))`` gives ``features`` (M, F) float32, ``row`` (M,) int64,
        ``projection``, ``id`` if given, and ``meta``'s keys.
    """
    feats = np.asarray(features, dtype=np.float32)
    arrays = {"features": feats, "row": np.arange(len(feats), dtype=np.int64), "projection": np.array(str(projection))}
    if ids is not None:
        ids = np.asarray(ids)
        arrays["id"] = ids.astype(str) if ids.dtype.kind == "O" else ids
    for key, value in meta.items():
        arrays[key] = np.asarray(value) if isinstance(value, (int, float, np.number)) else np.array(str(value))
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def features_csv_bytes(features: np.ndarray, ids=None, id_col: str = "id") -> bytes:
    """The invariant features as CSV: ``row``, the id column if given, ``f0 .. f{F-1}``.

    Parameters
    ----------
    features : ndarray (M, F)
    ids : array (M,), optional
    id_col : str
        Name of the id column.
    """
    feats = np.asarray(features, dtype=np.float32)
    df = pd.DataFrame(feats, columns=[f"f{i}" for i in range(feats.shape[1])])
    if ids is not None:
        df.insert(0, id_col, np.asarray(ids))
    df.insert(0, "row", np.arange(len(feats)))
    return csv_bytes(df)


def figure_html_bytes(fig, title: str | None = None) -> bytes:
    """A Plotly figure as one self-contained HTML file (plotly.js embedded: works offline).

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
    title : str, optional
        Set as the figure's title in the file (the dashboard writes titles above its charts).

    Returns
    -------
    bytes
        UTF-8 HTML; about 4.8 MB of plotly.js plus the figure's data.
    """
    import plotly.graph_objects as go

    out = go.Figure(fig)
    if title:
        out.update_layout(title=title, margin=dict(t=60))
    return out.to_html(include_plotlyjs=True, full_html=True).encode("utf-8")
