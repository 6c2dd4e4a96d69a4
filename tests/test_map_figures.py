"""The map figure's structure that keeps colour changes cheap, and PCA maps from chunks.

* a continuous colour is drawn as constant-colour bins: every row in exactly one trace, the
  colour bar on a first trace that draws nothing and selects nothing;
* fixed margins (no automatic margins: those redraw the WebGL scene) and one WebGL pixel per
  CSS pixel for large maps;
* ``pca_map`` gives the same map from chunks as from one SVD;
* ``$ELX_DENSITY_THRESHOLD`` moves the scatter/raster threshold.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend import plots, views
from backend.embedding import pca_map, pca_map_chunked
from backend.registry import ColorOption

ROOT = Path(__file__).resolve().parents[1]


def _gap_map(values, bins=plots.COLOUR_BINS):
    n = len(values)
    coords = np.random.default_rng(1).normal(size=(n, 2))
    return plots.latent_map(coords, pd.DataFrame({"gap": values}), ColorOption("gap", "gap", "eV"), bins=bins)


def test_continuous_colour_bins_hold_every_row_once_with_ordered_colours():
    rng = np.random.default_rng(0)
    values = rng.normal(size=5000)
    values[[3, 7]] = np.nan
    fig = _gap_map(values, bins=16)
    bar, bins = fig.data[0], fig.data[1:]
    # the colour bar's trace: one point at NaN with row id -1 (selections drop negative ids)
    assert bar.marker.showscale and bar.marker.colorbar.title.text == "gap [eV]"
    assert np.isnan(np.asarray(bar.x, dtype=float)).all() and list(bar.customdata) == [-1]
    assert views.selected_rows([{"customdata": int(bar.customdata[0])}]) == []
    rows = np.concatenate([np.asarray(t.customdata) for t in bins])
    assert sorted(rows.tolist()) == list(range(len(values)))  # every row exactly once
    no_value = [t for t in bins if t.name == "no value"]
    assert len(no_value) == 1 and sorted(no_value[0].customdata.tolist()) == [3, 7]
    # within each bin the values lie in the bin's range (end bins take what the range clips)
    lo, hi = bar.marker.cmin, bar.marker.cmax
    edges = np.linspace(lo, hi, 17)
    coloured = [t for t in bins if t.name != "no value"]
    for t in coloured:
        v = values[np.asarray(t.customdata)]
        b = int(np.clip(np.floor((np.median(v) - lo) / (hi - lo) * 16), 0, 15))
        inside = (v >= edges[b] - 1e-9) | (b == 0)
        inside &= (v <= edges[b + 1] + 1e-9) | (b == 15)
        assert inside.all(), t.name
        assert isinstance(t.marker.color, str) and t.hovertemplate.startswith("row %{customdata}<br>gap [eV]: ")
    assert len({t.marker.color for t in coloured}) == len(coloured)  # one colour per bin


def test_a_constant_colour_still_draws_one_bin():
    fig = _gap_map(np.full(100, 2.5))
    assert sum(len(t.customdata) for t in fig.data[1:]) == 100
    assert fig.data[0].marker.cmax > fig.data[0].marker.cmin
    with pytest.raises(ValueError):
        _gap_map(np.ones(10), bins=1)


def test_maps_have_fixed_margins_and_large_maps_one_webgl_pixel_per_css_pixel():
    fig = _gap_map(np.arange(50.0))
    assert fig.layout.xaxis.automargin is False and fig.layout.yaxis.automargin is False
    assert fig.layout.margin.l >= 40 and fig.layout.margin.b >= 40 and fig.layout.margin.r >= 80
    assert plots.map_chart_config(plots.LARGE_MAP_POINTS) == {}
    assert plots.map_chart_config(130_831) == {"plotGlPixelRatio": 1}


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_pca_from_chunks_equals_the_svd(offset):
    rng = np.random.default_rng(2)
    x = (rng.normal(size=(20_000, 6)) * [5, 3, 1, 1, 0.5, 0.1] + offset).astype(np.float32)
    exact, chunked = pca_map(x, method="svd"), pca_map(x, method="chunked")
    assert np.allclose(chunked.components, exact.components, atol=1e-8)
    assert np.allclose(chunked.coords, exact.coords, atol=1e-3 * (1 + offset * 1e-4))
    assert np.allclose(chunked.explained_variance_ratio, exact.explained_variance_ratio, atol=1e-9)
    # a callable reader (e.g. a projection of each slice) gives the same map
    again = pca_map_chunked(lambda a, b: x[a:b], len(x), chunk=3_001)
    assert np.array_equal(again.coords, chunked.coords) or np.allclose(again.coords, chunked.coords, atol=1e-5)
    one = pca_map(x[:, :1], method="chunked")
    assert np.all(one.coords[:, 1] == 0)
    with pytest.raises(ValueError):
        pca_map(x, method="magic")


def test_density_threshold_follows_the_environment():
    code = "from backend import density; print(density.DENSITY_THRESHOLD)"
    for value, expected in (("100000", "100000"), ("", "200000"), ("many", "200000")):
        env = dict(os.environ, PYTHONPATH=str(ROOT), ELX_DENSITY_THRESHOLD=value)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
        assert out.stdout.strip() == expected, out.stderr[-500:]


def test_log_axes_label_plain_numbers():
    import pandas as pd

    from backend import plots

    assert plots.log_ticks(0.3, 40) == [0.5, 1.0, 2.0, 5.0, 10.0, 20.0]
    assert len(plots.log_ticks(0.999, 1.001)) >= 2  # a narrow range still gets ticks around it
    ks = pd.DataFrame({"representation": ["mf"] * 3, "k": [1, 16, 256], "accuracy_mean": [0.5, 0.8, 0.9],
                       "accuracy_std": [0.01, 0.01, 0.0]})
    fig = plots.accuracy_vs_k(ks)
    assert list(fig.layout.xaxis.tickvals) == [1, 16, 256] and list(fig.layout.xaxis.ticktext) == ["1", "16", "256"]
    dist = pd.DataFrame({"projection": ["a", "b"], "ratio_median": [1.0, 2.0], "ratio_min": [0.5, 0.2],
                         "ratio_max": [1.5, 30.0]})
    ticks = plots.distortion_plot(dist).layout.yaxis.tickvals
    assert min(ticks) <= 0.1 * 1.0001 and max(ticks) >= 10  # 0.2/2 = 0.1 ... 30/2 = 15
