"""Probes and distortion metrics on synthetic codes where the answer is known."""

import numpy as np
import pytest

from backend import metrics, probes
from backend.groups import CyclicShiftAction, LatentCodes, PermutationAction
from backend.projections import make_projection


def _orbit_target_data(rng, m=1200, n=6):
    """Codes whose target depends only on the orbit (the sorted code), presented in random order."""
    action = PermutationAction(n, 1)
    base = np.sort(rng.normal(size=(m, n, 1)), axis=1)
    y = base[:, :, 0] @ np.linspace(-1, 1, n) + 0.5 * base[:, -1, 0] ** 2  # a function of the orbit only
    codes = LatentCodes(base, action).act(action.random_element(rng, m))
    return codes, y


def test_invariant_features_beat_raw_on_an_orbit_target(rng):
    codes, y = _orbit_target_data(rng)
    feats = {"raw": codes.flat(), "sort": make_projection("sort").fit(codes).transform(codes)}
    rows = np.arange(len(y))
    df = probes.run_probes(feats, y, rows[:900], rows[900:], "regression", probes=("linear", "knn"),
                           seeds=(0, 1), target_names=("t",), target_units=("a.u.",))
    s = probes.summarize(df).set_index(["representation", "probe"])
    for probe in ("linear", "knn"):
        sorted_r2, raw_r2 = s.loc[("sort", probe), "r2_mean"], s.loc[("raw", probe), "r2_mean"]
        print(probe, "sorted", sorted_r2, "raw", raw_r2)
        assert sorted_r2 > raw_r2 + 0.2
    assert s.loc[("sort", "linear"), "r2_mean"] > 0.8
    assert set(df["unit"]) == {"a.u."} and (df["n_train"] == 900).all()


def test_classification_probe_and_mae_units(rng):
    # a label set by the orbit of a C_4 code; the raw code is shifted at random
    action = CyclicShiftAction(2, 4)
    m = 800
    z = rng.normal(size=(m, 2, 4))
    y = (np.abs(np.fft.fft(z[:, 0], axis=1))[:, 1] > 1.2).astype(int)  # invariant to shifts
    codes = LatentCodes(z, action).act(rng.integers(0, 4, m))
    feats = {"raw": codes.flat(), "fourier": make_projection("fourier_modulus").fit(codes).transform(codes)}
    rows = np.arange(m)
    df = probes.run_probes(feats, y, rows[:600], rows[600:], "classification", probes=("knn",), seeds=(0,))
    acc = df.set_index("representation")["accuracy"]
    assert acc["fourier"] > acc["raw"] + 0.1
    # MAE is reported in display units: scale 2 doubles it
    yr = rng.normal(size=(m, 1))
    d1 = probes.run_probes({"x": yr}, yr, rows[:600], rows[600:], "regression", probes=("linear",), seeds=(0,))
    d2 = probes.run_probes({"x": yr}, yr, rows[:600], rows[600:], "regression", probes=("linear",), seeds=(0,),
                           target_scales=(2.0,))
    assert d2["mae"].iloc[0] == pytest.approx(2 * d1["mae"].iloc[0])


def test_probe_errors():
    with pytest.raises(ValueError, match="unknown probe"):
        probes.make_probe("forest", "regression")
    with pytest.raises(ValueError, match="task"):
        probes.make_probe("linear", "ranking")
    with pytest.raises(ValueError, match="rows"):
        probes.run_probes({"x": np.zeros((5, 2))}, np.zeros(6), np.arange(3), np.arange(3, 6), "regression",
                          probes=("linear",), seeds=(0,))


def test_distortion_is_one_for_sorting(rng):
    action = PermutationAction(7, 1)
    codes = LatentCodes(rng.normal(size=(300, 7, 1)), action)
    d = metrics.pair_distortion(make_projection("sort").fit(codes), codes, n_pairs=300)
    print(d)
    assert d["ratio_min"] == pytest.approx(1, abs=1e-5) and d["ratio_max"] == pytest.approx(1, abs=1e-5)
    assert d["confusion_rate"] == 0.0
    nn = metrics.neighbour_agreement(make_projection("sort").fit(codes), codes, n_queries=10, pool=100)
    assert nn["spearman_mean"] == pytest.approx(1, abs=1e-9) and nn["knn_overlap"] == 1.0


def test_pooling_distorts_and_confuses_constructed_orbits():
    # [1, 2, 0, 0] and [1, 0, 2, 0] (C_4) are different orbits with the same max and mean pool;
    # for S_n, [0, 2] and [1, 1] have the same sum.
    cyc = CyclicShiftAction(1, 4)
    z = np.array([[[1.0, 2.0, 0.0, 0.0]], [[1.0, 0.0, 2.0, 0.0]], [[0.0, 0.0, 0.0, 3.0]]] * 4)
    codes = LatentCodes(z, cyc)
    for key in ("group_max_pool", "group_mean_pool"):
        d = metrics.pair_distortion(make_projection(key).fit(codes), codes, n_pairs=200)
        print(key, d)
        assert d["confusion_rate"] > 0 and d["ratio_min"] < 1e-6
    d = metrics.pair_distortion(make_projection("max_filtering", k=16).fit(codes), codes, n_pairs=200)
    assert d["confusion_rate"] == 0 and d["ratio_min"] > 1e-3
    perm = PermutationAction(2, 1)
    codes = LatentCodes(np.array([[[0.0], [2.0]], [[1.0], [1.0]], [[5.0], [0.0]]] * 4), perm)
    d = metrics.pair_distortion(make_projection("sum_pool").fit(codes), codes, n_pairs=200)
    assert d["confusion_rate"] > 0 and d["distortion"] > 1
    d = metrics.pair_distortion(make_projection("sort").fit(codes), codes, n_pairs=200)
    assert d["distortion"] == pytest.approx(1.0, abs=1e-9)


def test_path_statistics():
    from backend.data.qm9 import DecodedMolecule
    from backend.registry import DecodedImage

    mols = [DecodedMolecule(None, "CCO", True), DecodedMolecule(None, "CC", False),
            DecodedMolecule(None, "CCO", True), DecodedMolecule(None, "CCN", True)]
    s = metrics.molecule_path_stats(mols)
    assert s["validity"] == 0.75 and s["distinct_molecules"] == 2
    assert 0 < s["tanimoto_consecutive"] < 1  # CCO -> CCO is 1, CCO -> CCN below 1
    imgs = [DecodedImage(np.zeros((3, 3)), 1, 0.9), DecodedImage(np.ones((3, 3)), 7, 0.5)]
    s = metrics.image_path_stats(imgs)
    assert s["pixel_change_max"] == 1.0 and s["prediction_changes"] == 1 and s["confidence_min"] == 0.5


def test_constrained_path_stats_counts_changes_and_molecular_weight_jumps():
    """Every statistic is defined when every step is a valid molecule; changes and jumps by hand."""
    from types import SimpleNamespace

    from backend.metrics import constrained_path_stats

    steps = [SimpleNamespace(smiles=s, valid=True, optimal=o)
             for s, o in (("CCO", True), ("CCO", True), ("CCN", True), ("CCCC", False))]
    out = constrained_path_stats(steps)
    assert out["c_validity"] == 1.0 and out["c_changes"] == 2.0 and out["c_distinct"] == 3.0
    # MolWt: ethanol 46.07, ethylamine 45.08, butane 58.12 g/mol
    assert out["c_molwt_jump_max"] == pytest.approx(58.12 - 45.08, abs=0.02)
    assert out["c_molwt_jump_mean"] == pytest.approx((0 + 0.99 + 13.04) / 3, abs=0.02)
    assert out["c_optimal"] == 0.75
    assert 0.0 < out["c_tanimoto_consecutive"] < 1.0
    same = constrained_path_stats(steps[:2])
    assert same["c_changes"] == 0.0 and same["c_tanimoto_consecutive"] == 1.0
