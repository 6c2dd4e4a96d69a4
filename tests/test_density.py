"""backend/density.py: selections mapped to rows (exact against brute force), the raster's
axes in PC units, the threshold switch, synthetic codes and the streaming PCA map."""

from __future__ import annotations

import numpy as np
import pytest

from backend import density
from backend.registry import ColorOption

RADIUS = ColorOption("radius", "norm", "latent units")
CLUSTER = ColorOption("cluster", "cluster", "id", categorical=True)


@pytest.fixture(scope="module")
def coords():
    rng = np.random.default_rng(3)
    return rng.normal(0, 1, (20_000, 2)).astype(np.float32)


def _brute_box(coords, xr, yr):
    x0, x1 = sorted(xr)
    y0, y1 = sorted(yr)
    return [i for i, (x, y) in enumerate(coords.tolist()) if x0 <= x <= x1 and y0 <= y <= y1]


def _brute_in_polygon(x, y, xs, ys) -> bool:
    """Even-odd ray casting, one point at a time."""
    inside, n = False, len(xs)
    for i in range(n):
        x1, y1, x2, y2 = xs[i], ys[i], xs[(i + 1) % n], ys[(i + 1) % n]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


@pytest.mark.parametrize("xr, yr", [((-0.5, 0.7), (-1.0, 0.2)), ((0.9, -0.3), (1.5, -2.0)),
                                    ((5.0, 6.0), (0.0, 1.0)), ((-10, 10), (-10, 10))])
def test_rows_in_box_matches_brute_force(coords, xr, yr):
    got = density.rows_in_box(coords, xr, yr)
    assert got.dtype == np.int64
    assert got.tolist() == _brute_box(coords, xr, yr)


def test_rows_in_box_includes_edges():
    c = np.array([[0.0, 0.0], [1.0, 1.0], [1.0000001, 0.5]], np.float64)
    assert density.rows_in_box(c, (0, 1), (0, 1)).tolist() == [0, 1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rows_in_lasso_matches_brute_force(coords, seed):
    rng = np.random.default_rng(seed)
    k = 12  # a star-shaped, non-convex polygon around a random centre
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    rad = rng.uniform(0.3, 1.8, k)
    cx, cy = rng.normal(0, 0.5, 2)
    xs, ys = cx + rad * np.cos(ang), cy + rad * np.sin(ang)
    got = density.rows_in_lasso(coords, xs, ys)
    brute = [i for i, (x, y) in enumerate(coords.tolist()) if _brute_in_polygon(x, y, xs, ys)]
    assert len(brute) > 100
    assert got.tolist() == brute


def test_rows_in_lasso_degenerate_polygon_selects_nothing(coords):
    assert density.rows_in_lasso(coords, [0, 1], [0, 1]).size == 0
    assert density.rows_in_lasso(coords, [50, 51, 50], [50, 50, 51]).size == 0


def test_rows_in_selection_unites_boxes_and_lassos(coords):
    sel = {"points": [], "box": [{"xref": "x", "yref": "y", "x": [-0.5, 0.0], "y": [-0.5, 0.0]},
                                 {"x": [-0.2, 0.3], "y": [-0.2, 0.3]}],
           "lasso": [{"x": [1, 2, 2, 1], "y": [1, 1, 2, 2]}]}
    got = density.rows_in_selection(coords, sel)
    want = sorted(set(_brute_box(coords, (-0.5, 0.0), (-0.5, 0.0))) | set(_brute_box(coords, (-0.2, 0.3), (-0.2, 0.3)))
                  | set(density.rows_in_lasso(coords, [1, 2, 2, 1], [1, 1, 2, 2]).tolist()))
    assert got.tolist() == want
    assert density.rows_in_selection(coords, {"points": [{"customdata": 3}]}).size == 0
    assert density.rows_in_selection(coords, None).size == 0


def test_threshold_switch():
    t = density.DENSITY_THRESHOLD
    assert not density.use_density(t) and density.use_density(t + 1)
    assert not density.use_density(130_831)  # all of QM9 stays a WebGL scatter
    assert density.use_density(11, threshold=10)


def _heatmap(fig):
    return next(t for t in fig.data if t.type == "heatmap")


@pytest.mark.parametrize("option", [None, RADIUS, CLUSTER])
def test_raster_axes_are_in_pc_units(option):
    rng = np.random.default_rng(0)
    coords = np.column_stack([rng.uniform(-3, 5, 50_000), rng.uniform(10, 12, 50_000)]).astype(np.float32)
    coords[:2000] = [4.0, 11.5]  # a bright spot at a known place
    values = None if option is None else (np.hypot(*coords.T) if option is RADIUS else rng.integers(0, 3, 50_000))
    fig = density.density_figure(coords, values, option, width=80, height=40)
    hm = _heatmap(fig)
    z, x, y = np.asarray(hm.z), np.asarray(hm.x), np.asarray(hm.y)
    assert z.shape == (40, 80) and x.shape == (80,) and y.shape == (40,)
    dx, dy = x[1] - x[0], y[1] - y[0]  # the first and last pixels hold the data's extremes
    assert x[0] - dx / 2 < coords[:, 0].min() < x[0] + dx / 2 and x[-1] - dx / 2 < coords[:, 0].max() < x[-1] + dx / 2
    assert y[0] - dy / 2 < coords[:, 1].min() < y[0] + dy / 2 and y[-1] - dy / 2 < coords[:, 1].max() < y[-1] + dy / 2
    assert np.all(np.diff(x) > 0) and np.all(np.diff(y) > 0)  # row 0 is the bottom (PC 2 ascending)
    assert fig.layout.xaxis.title.text == "PC 1" and fig.layout.yaxis.title.text == "PC 2"
    assert fig.layout.dragmode == "select" and fig.layout.meta["points"] == 50_000
    title = hm.colorbar.title.text
    assert {None: "codes per pixel [count]", "radius": "radius [latent units], mean per pixel",
            "cluster": "cluster [id], most frequent per pixel"}[None if option is None else option.key] == title
    if option is None:  # the spot's pixel holds the most codes
        row, col = np.unravel_index(np.nanargmax(z), z.shape)
        assert abs(x[col] - 4.0) <= (x[1] - x[0]) and abs(y[row] - 11.5) <= (y[1] - y[0])


def test_raster_mean_and_mode_are_per_pixel():
    coords = np.array([[0.0, 0.0]] * 3 + [[1.0, 1.0]] * 2, np.float32)
    fig = density.density_figure(coords, np.array([1.0, 2.0, 6.0, 10.0, 20.0]), RADIUS, width=4, height=4)
    z = np.asarray(_heatmap(fig).z)
    assert np.isclose(z[0, 0], 3.0) and np.isclose(z[-1, -1], 15.0) and np.isnan(z[1, 1])
    fig = density.density_figure(coords, np.array(["b", "a", "b", "a", "a"]), CLUSTER, width=4, height=4)
    hm = _heatmap(fig)
    z = np.asarray(hm.z)
    assert list(hm.colorbar.ticktext) == ["a", "b"] and z[0, 0] == 1 and z[-1, -1] == 0


def test_raster_json_does_not_grow_with_points():
    import plotly.io as pio

    rng = np.random.default_rng(1)
    sizes = [len(pio.to_json(density.density_figure(rng.normal(0, 1, (m, 2)), None, None), validate=False))
             for m in (10_000, 300_000)]
    assert sizes[1] < 1.1 * sizes[0] and sizes[1] < 2_000_000


def test_raster_rejects_bad_shapes():
    with pytest.raises(ValueError):
        density.density_figure(np.zeros((5, 3)))
    with pytest.raises(ValueError):
        density.density_figure(np.zeros((5, 2)), np.zeros(4), RADIUS)


def test_synthetic_codes_are_seeded_chunk_independent_and_carry_the_action():
    from backend.groups import PermutationAction

    m = density.SYNTH_CHUNK + 123  # two chunks
    a, b = density.synthetic_codes(m, seed=4), density.synthetic_codes(m, seed=4)
    assert np.array_equal(a.stored, b.stored) and np.array_equal(a.perms, b.perms)
    assert not np.array_equal(a.stored, density.synthetic_codes(m, seed=5).stored)
    small = density.synthetic_codes(100, seed=4)  # the first rows do not depend on m
    assert np.array_equal(small.stored, a.stored[:100])
    assert a.stored.shape == (m, 9, 1) and a.stored.dtype == np.float32 and a.perms.dtype == np.int8
    act = PermutationAction(9, 1)
    assert np.allclose(act.act(a.stored[:500], a.perms[:500].astype(np.int64)), a.random[:500])
    assert np.allclose(a.radius, np.linalg.norm(a.stored[:, :, 0], axis=1), rtol=1e-6)
    assert set(np.unique(a.cluster)) == set(range(6))
    with pytest.raises(ValueError):
        density.synthetic_codes(-1)


def test_streaming_pca_map_equals_pca_map():
    from backend.embedding import pca_map

    codes = density.synthetic_codes(30_000, seed=2)
    feats = np.sort(codes.random[:, :, 0], axis=1)
    ref = pca_map(feats)
    got = density.streaming_pca_map(lambda a, b: feats[a:b], len(feats), chunk=7_001)
    assert np.allclose(got.components, ref.components, atol=1e-9)
    assert np.allclose(got.coords, ref.coords, atol=1e-4)
    assert np.allclose(got.explained_variance_ratio, ref.explained_variance_ratio, atol=1e-9)
    with pytest.raises(ValueError):
        density.streaming_pca_map(lambda a, b: feats[a:b], 1)


def test_synthetic_entry_encodes_and_maps(tmp_path, monkeypatch):
    from backend import views
    from backend.registry import SyntheticCodesEntry

    monkeypatch.setenv("ELX_CACHE_DIR", str(tmp_path))
    entry = SyntheticCodesEntry(5_000)
    entry._check_files()
    enc = entry.encode_dataset(0)
    assert len(enc.table) == 5_000 and {"code_id", "cluster", "radius"} <= set(enc.table)
    assert enc.stored.values.shape == (5_000, 9, 1) and not entry.has_decoder
    assert [c.key for c in entry.color_options()] == ["cluster", "radius"]
    maps = views.compute_maps(enc, "random", "sort", 0)
    assert maps.measured_invariant  # sorting undoes the slot permutations exactly
    assert np.shares_memory(entry.encode_dataset(0).stored.values, enc.stored.values)  # generated once
    assert entry.encoded_cache_path(0).exists()  # the marker the app's first-start check reads
