"""backend/export.py: the bytes behind the download buttons read back to the same rows."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from backend import codes_upload as cu
from backend import export, views


@pytest.fixture(scope="module")
def data_and_maps():
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    np.savez(buf, codes=rng.normal(size=(120, 3, 8)), action="C_8", digit=rng.integers(0, 5, 120),
             energy=rng.normal(size=120), name=np.array([f"m{i}" for i in range(120)]))
    data = cu.parse_codes(buf.getvalue(), "e.npz")
    enc = cu.CodesEntry(data).encode_dataset(0)
    return data, enc, views.compute_maps(enc, "random", "max_filtering", 0, 0)


def test_maps_table_csv_and_parquet_round_trip(data_and_maps):
    data, enc, maps = data_and_maps
    df = export.maps_table(enc.table, maps, "code_id")
    assert list(df.columns[:6]) == ["row", "code_id", "raw_pc1", "raw_pc2", "inv_pc1", "inv_pc2"]
    assert {"digit", "energy", "code_norm"} <= set(df.columns) and len(df) == 120
    from_csv = pd.read_csv(io.BytesIO(export.csv_bytes(df)))
    assert export.parquet_available()
    from_parquet = pd.read_parquet(io.BytesIO(export.parquet_bytes(df)))
    for back in (from_csv, from_parquet):
        assert list(back.columns) == list(df.columns) and len(back) == len(df)
        assert back["row"].tolist() == list(range(120))
        assert back["code_id"].astype(str).tolist() == enc.table["code_id"].astype(str).tolist()
        np.testing.assert_allclose(back[["raw_pc1", "raw_pc2"]], maps.raw.coords, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(back[["inv_pc1", "inv_pc2"]], maps.inv.coords, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(back["energy"], enc.table["energy"], rtol=1e-12)
    assert from_parquet["inv_pc1"].dtype == np.float32


def test_maps_table_subset_and_unsupported_columns(data_and_maps):
    _, enc, maps = data_and_maps
    table = enc.table.copy()
    table["listy"] = [[1, 2]] * len(table)  # not a scalar column: left out
    df = export.maps_table(table, maps, "code_id", rows=[5, 2])
    assert df["row"].tolist() == [5, 2] and "listy" not in df
    np.testing.assert_allclose(df[["raw_pc1", "raw_pc2"]], maps.raw.coords[[5, 2]])
    with pytest.raises(ValueError, match="the table 10 rows"):
        export.maps_table(table.iloc[:10], maps)


def test_features_npz_and_csv_round_trip(data_and_maps):
    _, enc, maps = data_and_maps
    ids = enc.table["code_id"].to_numpy()
    with np.load(io.BytesIO(export.features_npz_bytes(maps.projected, "max_filtering", ids, model="m", seed=3)),
                 allow_pickle=False) as z:
        np.testing.assert_array_equal(z["features"], maps.projected.astype(np.float32))
        assert z["row"].tolist() == list(range(120)) and z["id"].tolist()[:2] == ["m0", "m1"]
        assert str(z["projection"]) == "max_filtering" and str(z["model"]) == "m" and int(z["seed"]) == 3
    back = pd.read_csv(io.BytesIO(export.features_csv_bytes(maps.projected, ids, "code_id")))
    assert list(back.columns[:3]) == ["row", "code_id", "f0"] and back.shape == (120, 2 + maps.projected.shape[1])
    np.testing.assert_allclose(back.iloc[:, 2:].to_numpy(), maps.projected, rtol=1e-6, atol=1e-6)


def test_figure_html_embeds_plotly_and_needs_no_network():
    fig = go.Figure(go.Scattergl(x=[1, 2], y=[3, 4]))
    html = export.figure_html_bytes(fig, "My map").decode("utf-8")
    assert html.lstrip().lower().startswith(("<!doctype html>", "<html>")) and "My map" in html
    import re

    assert all("src=" not in tag for tag in re.findall(r"<script[^>]*>", html))  # plotly.js is inline
    assert len(html) > 3_000_000
    assert fig.layout.title.text is None  # the figure itself is not changed


def test_the_html_size_the_export_page_states_matches_a_real_map():
    """The page states ``PLOTLY_JS_MB + points * HTML_BYTES_PER_POINT``; check both constants
    on the installed plotly and on a map built like the dashboard's (continuous colour)."""
    import plotly.offline

    from backend import plots
    from backend.families.base import ColorOption

    assert abs(len(plotly.offline.get_plotlyjs()) / 1e6 - export.PLOTLY_JS_MB) < 0.3
    m = 20_000
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"gap": rng.normal(size=m)})
    fig = plots.latent_map(rng.normal(size=(m, 2)), table, ColorOption("gap", "gap", "eV"))
    size = len(export.figure_html_bytes(fig, "t"))
    per_point = (size - len(plotly.offline.get_plotlyjs())) / m
    assert 0.6 * export.HTML_BYTES_PER_POINT < per_point < 1.4 * export.HTML_BYTES_PER_POINT, per_point
