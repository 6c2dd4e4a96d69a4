"""Encoding the data set (both node orders, cache), PCA maps, interpolation, selections."""

import numpy as np
import pytest

from backend import plots, views
from backend.embedding import pca_map
from backend.groups import LatentCodes, PermutationAction
from backend.interpolation import linear_path, nearest_rows, section_path
from backend.projections import SortProjection


def test_encoded_dataset_orders_lie_on_one_orbit_and_cache(tiny_registry):
    entry = tiny_registry
    # seed 0 is encoded for real (other seeds reuse its codes, relabelled: see
    # tests/test_dashboard_faults.py::test_a_new_presentation_seed_reuses_the_cached_codes)
    entry.encoded_cache_path(0).unlink(missing_ok=True)  # same tiny weights as a previous run
    seen = []
    enc = entry.encode_dataset(0, progress=lambda f, msg: seen.append(f))
    assert len(enc.table) == 600 and enc.stored.values.shape == (600, 9, 1)
    assert seen and seen[-1] == pytest.approx(1.0)
    # random-order code = stored code relabelled by the same permutation (encoder equivariance)
    moved = enc.stored.act(enc.perms)
    err = np.abs(moved.values - enc.random.values).max()
    assert err < 1e-4, err
    assert np.array_equal(moved.mask, enc.random.mask)
    # sorting gives the same invariant code for both presentations
    s = SortProjection().fit(enc.stored)
    assert np.abs(s.transform(enc.stored) - s.transform(enc.random)).max() < 1e-4
    # the raw codes differ (that is the point of the tool)
    assert np.abs(enc.stored.values - enc.random.values).max() > 1e-3
    # second call reads the cache file, byte-identical codes
    assert enc.cache_path.exists()
    again = entry.encode_dataset(0, progress=lambda f, msg: pytest.fail("re-encoded"))
    assert np.array_equal(again.random.values, enc.random.values)
    with pytest.raises(ValueError):
        enc.codes("sideways")


def test_pca_map_sign_rule_and_transform(rng):
    x = rng.normal(size=(500, 5)) * np.array([5, 3, 1, 0.5, 0.1])
    m1, m2 = pca_map(x), pca_map(-x)
    for m in (m1, m2):
        for comp in m.components:
            assert comp[np.argmax(np.abs(comp))] > 0
    assert np.allclose(m1.coords, -m2.coords, atol=1e-5)  # mirrored data, same axes: mirrored map
    assert np.allclose(m1.transform(x[:10]), m1.coords[:10], atol=1e-5)
    assert m1.explained_variance_ratio.sum() > 0.9
    one = pca_map(rng.normal(size=(10, 1)))
    assert one.coords.shape == (10, 2) and np.allclose(one.coords[:, 1], 0)


def test_sorted_path_stays_sorted_and_is_a_quotient_geodesic(rng):
    a = PermutationAction(9, 1)
    z1 = LatentCodes(rng.normal(size=(1, 9, 1)), a)
    z2 = LatentCodes(rng.normal(size=(1, 9, 1)), a)
    s = SortProjection().fit(z1)
    path = section_path(z1, z2, s, 11)
    v = path.values[:, :, 0]
    assert (np.diff(v, axis=1) >= -1e-7).all()  # every step is sorted: stays in the cone
    # geodesic: quotient distances along the path add up to the end-to-end distance
    steps = a.quotient_distance(path.values[:-1], path.values[1:]).sum()
    total = a.quotient_distance(z1.values, z2.values)[0]
    assert steps == pytest.approx(total, rel=1e-5)
    # the raw straight line is longer in the quotient whenever the orders disagree
    raw = linear_path(z1, z2, 11)
    assert np.linalg.norm(z1.values - z2.values) >= total - 1e-6
    assert raw.values.shape == (11, 9, 1)
    with pytest.raises(ValueError):
        linear_path(z1, z2, 1)


def test_nearest_rows_matches_brute_force(rng):
    data, pts = rng.normal(size=(5000, 4)), rng.normal(size=(7, 4))
    rows, dist = nearest_rows(pts, data, chunk=999)
    brute = np.linalg.norm(pts[:, None] - data[None], axis=2)
    assert np.array_equal(rows, brute.argmin(1))
    assert np.allclose(dist, brute.min(1))


def test_selection_maps_through_customdata_in_categorical_maps(tiny_registry):
    entry = tiny_registry
    table = entry.dataset().table
    opt = next(c for c in entry.color_options() if c.key == "n_atoms")
    coords = np.random.default_rng(0).normal(size=(len(table), 2)).astype(np.float32)
    fig = plots.latent_map(coords, table, opt, "t")
    assert len(fig.data) == table["n_atoms"].nunique()  # one trace per category
    trace = fig.data[-1]
    # Plotly's point index counts within the trace; customdata holds the global row
    # lean maps: one row id per point; the browser may send it bare, as a list or keyed by position
    for form in (int(trace.customdata[0]), [int(trace.customdata[0])], {"0": int(trace.customdata[0])}):
        pts = [{"curve_number": len(fig.data) - 1, "point_index": 0, "customdata": form},
               {"point_index": 3, "customdata": [-2]}]  # a path marker, ignored
        rows = views.selected_rows(pts)
        assert rows == [int(trace.customdata[0])]
    assert table["n_atoms"].iat[rows[0]] == int(trace.name)
    assert fig.layout.legend.title.text.startswith("n_atoms")  # the title names the colour


def test_colour_bar_names_unit_and_energies_are_converted_once(tiny_registry):
    entry = tiny_registry
    table = entry.dataset().table
    gap = next(c for c in entry.color_options() if c.key == "gap")
    values, title = plots.color_column(table, gap)
    assert title == "gap [eV]"
    assert np.allclose(values, table["gap"].to_numpy() * 27.211386)
    assert table["gap"].max() < 1.0  # the table itself stays in Hartree
    fig = plots.latent_map(np.zeros((len(table), 2)), table, gap, "t")
    assert fig.data[0].marker.colorbar.title.text == "gap [eV]"


def test_maps_and_interpolation_views(tiny_registry):
    entry = tiny_registry
    enc = entry.encode_dataset(0)
    for key in ("sort", "channel_sort", "mean_pool"):
        maps = views.compute_maps(enc, "random", key, 0)
        assert maps.raw.coords.shape == (600, 2) and maps.inv.coords.shape == (600, 2)
        assert maps.invariance_error < 1e-4
        z_a, _, _ = views.endpoint(entry, enc, "random", row=3)
        z_b, cap, row = views.endpoint(entry, enc, "random", text="CC(=O)O")
        res = views.interpolate(entry, enc, maps, "random", key, z_a, z_b, 5)
        assert len(res.raw_decoded) == 5 and res.raw_on_raw_map.shape == (5, 2)
        if key == "mean_pool":
            assert res.inv_decoded is None and len(res.inv_nearest_rows) == 5
        else:
            assert len(res.inv_decoded) == 5 and res.inv_on_inv_map.shape == (5, 2)
            # endpoints of the invariant path are the sorted endpoint codes
            assert np.allclose(np.sort(z_a.values, axis=1), res.inv_codes.values[:1], atol=1e-6)


@pytest.mark.parametrize("text", ["C1CC", "CCCl", "CCCCCCCCCC"])
def test_endpoint_bad_smiles_raise_molecule_errors(tiny_registry, text):
    from backend.data.qm9 import MoleculeError

    enc = tiny_registry.encode_dataset(0)
    with pytest.raises(MoleculeError):
        views.endpoint(tiny_registry, enc, "random", text=text)


def test_invalid_molecules_are_drawn_with_a_mark():
    from backend.data.qm9 import graph_to_molecule, smiles_to_graph

    g = smiles_to_graph("CC.O")
    svg = plots.molecule_svg(graph_to_molecule(g.types, g.bonds).mol, valid=False, reason="two parts")
    assert "INVALID" in svg and "#d00000" in svg
    good = smiles_to_graph("CCO")
    ok = plots.molecule_svg(graph_to_molecule(good.types, good.bonds).mol)
    assert "INVALID" not in ok and "<path" in ok


def test_a_long_invalid_reason_is_wrapped_inside_the_frame_and_kept_whole_on_hover():
    import re

    from backend.data.qm9 import graph_to_molecule, smiles_to_graph

    reason = "atom 3 (C) has 5 bonds, more than its valence 4 allows; the decode put a bond where none fits"
    g = smiles_to_graph("CC.O")
    svg = plots.molecule_svg(graph_to_molecule(g.types, g.bonds).mol, (260, 200), valid=False, reason=reason)
    lines = re.findall(r'font-size="10" fill="#d00000">([^<]*)</text>', svg)
    assert 1 < len(lines) <= 2 and all(len(line) * 5.6 <= 260 - 12 for line in lines), lines
    assert f"<title>INVALID: {reason}</title>" in svg
    # the drawing sits between the INVALID band and the reason band
    assert '<g transform="translate(0,30)">' in svg
