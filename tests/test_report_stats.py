"""The statistics behind the claims table (``backend.stats``), the verdict rule on constructed
results files, duplicate detection and the implementation checks (``backend.report``)."""

import json

import numpy as np
import pandas as pd
import pytest

from backend import metrics, report, stats
from backend.groups import CyclicShiftAction, LatentCodes, PermutationAction
from backend.projections import make_projection


# ---------------------------------------------------------------- stats against known values

def test_wilson_interval_known_values():
    lo, hi = stats.wilson_interval(93, 100)
    assert lo == pytest.approx(0.8625, abs=1e-4) and hi == pytest.approx(0.9657, abs=1e-4)
    assert stats.wilson_interval(0, 10)[0] == 0.0 and stats.wilson_interval(10, 10)[1] == pytest.approx(1.0)
    lo, hi = stats.wilson_interval(926, 1000)  # the reviewer's ± 1.6 points at 1,000 digits
    assert 0.015 < (hi - lo) / 2 < 0.018
    with pytest.raises(ValueError):
        stats.wilson_interval(11, 10)


def test_newcombe_interval_matches_newcombe_1998():
    # Newcombe (1998), Table II, example (a): 56/70 vs 48/80, method 10: 0.0524 to 0.3339
    lo, hi = stats.newcombe_interval(56, 70, 48, 80)
    assert lo == pytest.approx(0.0524, abs=5e-4) and hi == pytest.approx(0.3339, abs=5e-4)


def test_wilcoxon_exact_on_constructed_pairs():
    y = np.zeros(10)
    x = np.arange(1, 11, dtype=float)  # every difference positive: exact one-sided p = 2^-10
    res = stats.wilcoxon_test(x, y, "greater")
    assert res["p"] == pytest.approx(1 / 1024) and res["n"] == 10 and res["effect"] == 5.5
    assert stats.wilcoxon_test(x, y)["p"] == pytest.approx(2 / 1024)
    assert stats.wilcoxon_test(x, y, "less")["p"] > 0.99
    same = stats.wilcoxon_test(y, y)
    assert same["p"] == 1.0
    # NaN pairs are dropped, not counted
    assert stats.wilcoxon_test(np.r_[x, np.nan], np.r_[y, 0.0])["n"] == 10


def test_mcnemar_exact():
    a = np.r_[np.ones(10, bool), np.ones(20, bool)]
    b = np.r_[np.zeros(10, bool), np.ones(20, bool)]
    res = stats.mcnemar_test(a, b)
    assert (res["b"], res["c"]) == (10, 0) and res["p"] == pytest.approx(2 * 0.5 ** 10)
    assert stats.mcnemar_test(a, a)["p"] == 1.0


def test_paired_bootstrap_is_seeded_and_covers_the_effect():
    rng = np.random.default_rng(1)
    y = rng.normal(size=200)
    x = y + 0.5 + rng.normal(scale=0.1, size=200)
    a = stats.paired_bootstrap(x, y, seed=3)
    assert a == stats.paired_bootstrap(x, y, seed=3)
    assert a["lo"] < 0.5 < a["hi"] and a["lo"] > 0.4 and a["p"] == pytest.approx(1e-4)
    med = stats.paired_bootstrap(x, y, statistic=np.median, n_boot=500)
    assert med["lo"] < med["effect"] < med["hi"]
    with pytest.raises(ValueError):
        stats.paired_bootstrap([1.0], [0.0])


def test_verdict_comes_out_every_way():
    assert stats.verdict(interval=(0.01, 0.2)) == stats.HELD
    assert stats.verdict(interval=(-0.01, 0.2)) == stats.NOT_SIGNIFICANT
    assert stats.verdict(interval=(-0.3, -0.1)) == stats.DID_NOT_HOLD
    assert stats.verdict(interval=(-0.3, -0.1), direction=-1) == stats.HELD  # "smaller is better"
    assert stats.verdict(p=0.01, effect=0.2) == stats.HELD
    assert stats.verdict(p=0.06, effect=0.2) == stats.NOT_SIGNIFICANT
    assert stats.verdict(p=0.01, effect=-0.2) == stats.DID_NOT_HOLD
    with pytest.raises(ValueError):
        stats.verdict(p=0.01)


# ---------------------------------------------------------------- duplicate maps

def test_duplicates_found_by_features_not_names():
    groups = report.duplicate_groups(PermutationAction(9, 1))
    assert sorted(map(sorted, groups)) == [["channel_sort", "sort"], ["mean_pool", "sum_pool"]]
    # with two channels per node, sorting rows and sorting channels are different maps
    groups2 = report.duplicate_groups(PermutationAction(9, 2))
    assert ["sort", "channel_sort"] not in groups2 and ["sum_pool", "mean_pool"] in groups2
    assert report.duplicate_groups(CyclicShiftAction(4, 8)) == []
    # the detection looks at values only: renamed copies are found, different maps are not
    x = np.random.default_rng(0).normal(size=(50, 3))
    assert stats.equivalent_features({"a": x, "b": 3 * x + 1, "c": x ** 2}) == [["a", "b"]]


# ---------------------------------------------------------------- adversarial pairs

def test_adversarial_pairs_find_pooling_collisions_but_not_for_sorting():
    rng = np.random.default_rng(0)
    codes = LatentCodes(rng.normal(size=(300, 9, 1)).astype(np.float32), PermutationAction(9, 1))
    srt = metrics.adversarial_distortion(make_projection("sort").fit(codes), codes, n_neighbours=3, n_random=200)
    pool = metrics.adversarial_distortion(make_projection("mean_pool").fit(codes), codes, n_neighbours=3,
                                          n_random=200)
    assert srt["adv_distortion"] == pytest.approx(1, abs=1e-4)
    # the search finds far worse ratios for the lossy map than random pairs show
    assert pool["adv_distortion"] > 10 * pool["rand_distortion"]
    i, j = pool["adv_worst_i"], pool["adv_worst_j"]
    assert i != j and 0 <= i < 300 and 0 <= j < 300


# ---------------------------------------------------------------- claims on constructed results

def _settings(folder, action):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(
        {"command": "constructed", "config": {"seeds": 2}, "git_commit": "0" * 40, "wall_time_s": 1,
         "action": action}))


def _paths(n, effect, seed):
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0.5, 0.9, n)
    inv = raw + effect + rng.normal(scale=0.05, size=n)
    rows = []
    for i in range(n):
        for path, v in (("raw", raw[i]), ("invariant", inv[i])):
            rows.append({"pair": i, "row_a": 0, "row_b": 1, "path": path, "confidence_mean": v})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("effect, expected", [(0.05, "held"), (0.0, "not significant"), (-0.05, "did not hold")])
def test_path_claim_verdict_both_ways(tmp_path, effect, expected):
    folder = tmp_path / "rot_mnist_c8"
    _settings(folder, {"type": "CyclicShiftAction", "code_shape": [2, 4]})
    _paths(100, effect, seed=0).to_csv(folder / "interpolation.csv", index=False)
    table = report.claims(tmp_path)
    row = table[table["claim"].str.contains("mean classifier confidence")].iloc[0]
    assert row["verdict"].startswith(expected)
    assert "paired bootstrap, 100 pairs" in row["interval or p"] and "Wilcoxon" in row["interval or p"]
    assert list(table.columns) == report.COLUMNS


def _accuracy_files(folder, acc_inv, acc_raw, n=1000, items=True, seed=0):
    rng = np.random.default_rng(seed)
    probes, item_rows = [], []
    for rep, acc in (("raw codes", acc_raw), ("max_filtering", acc_inv)):
        correct = np.zeros(n, np.int8)
        correct[rng.choice(n, int(round(acc * n)), replace=False)] = 1
        probes.append({"representation": rep, "probe": "linear", "seed": 0, "n_train": 4000, "n_test": n,
                       "target": "label", "accuracy": correct.mean(), "fit_seconds": 0.1})
        item_rows.append(pd.DataFrame({"representation": rep, "probe": "linear", "seed": 0,
                                       "row": np.arange(n), "correct": correct}))
    p = pd.DataFrame(probes)
    p.to_csv(folder / "probes.csv", index=False)
    s = p.rename(columns={"accuracy": "accuracy_mean"}).assign(accuracy_std=0.0, n_seeds=1)
    s.to_csv(folder / "probes_summary.csv", index=False)
    if items:
        pd.concat(item_rows).to_csv(folder / "probe_items.csv", index=False)


def test_accuracy_claims_paired_with_items_and_unpaired_without(tmp_path):
    folder = tmp_path / "rot_mnist_c8"
    _settings(folder, {"type": "CyclicShiftAction", "code_shape": [2, 4]})
    _accuracy_files(folder, 0.93, 0.86)
    t = report.claims(tmp_path).set_index("claim")
    row = t.loc["Linear probes on max_filtering classify digits better than on raw equivariant codes"]
    assert row["verdict"] == "held" and "paired bootstrap over 1000 digits" in row["interval or p"]
    # 92.6 vs 93.2 on 1,000 digits: indistinguishable, and the report says so
    _accuracy_files(folder, 0.932, 0.926, items=False)
    (folder / "probe_items.csv").unlink()
    t = report.claims(tmp_path).set_index("claim")
    row = t.loc["Linear probes on max_filtering classify digits better than on raw equivariant codes"]
    assert row["verdict"] == "not significant (paired test needs rerun)" and "Newcombe" in row["interval or p"]


def test_qm9_claims_include_the_stored_order_and_say_when_it_wins(tmp_path):
    folder = tmp_path / "graph_vae_qm9"
    _settings(folder, {"type": "PermutationAction", "code_shape": [9, 1]})
    rows = []
    for seed in range(5):
        for rep, r2 in (("raw (random node order)", 0.20), ("raw (stored node order)", 0.24), ("sort", 0.23),
                        ("channel_sort", 0.23)):
            for target in ("mu", "gap"):
                rows.append({"representation": rep, "probe": "linear", "seed": seed, "n_train": 100,
                             "n_test": 50, "target": target, "r2": r2 + 0.001 * seed, "mae": 1.0, "unit": "eV",
                             "fit_seconds": 0.1})
    pd.DataFrame(rows).to_csv(folder / "probes.csv", index=False)
    t = report.claims(tmp_path)
    rnd = t[t["claim"].str.contains("randomly ordered")].iloc[0]
    stored = t[t["claim"].str.contains("stored")].iloc[0]
    assert rnd["verdict"] == "held" and "5/5 seeds" in rnd["interval or p"]
    assert stored["verdict"] == "did not hold" and "stored order wins" in stored["measured effect"]
    assert "needs rerun" in stored["interval or p"]  # no per-molecule data in these files


def test_implementation_checks_are_apart_from_claims(tmp_path):
    folder = tmp_path / "graph_vae_qm9"
    _settings(folder, {"type": "PermutationAction", "code_shape": [9, 1]})
    dist = pd.DataFrame([{"projection": p, "ratio_min": 1.0, "ratio_median": 1.0, "ratio_max": 1.0,
                          "distortion": 1.0, "confusion_rate": 0.0, "n_pairs": 100, "nn_spearman_mean": s}
                         for p, s in (("sort", 1.0), ("channel_sort", 1.0), ("sum_pool", 0.86),
                                      ("mean_pool", 0.86))])
    dist.to_csv(folder / "distortion.csv", index=False)
    claims = report.claims(tmp_path)
    assert not claims["claim"].str.contains("isometr").any()  # an identity is not a result
    pool = claims[claims["claim"].str.contains("Pooling")].iloc[0]
    assert pool["verdict"] == "needs rerun" and "mean_pool" not in pool["measured effect"].replace(
        "(= mean_pool)", "")
    checks = report.implementation_checks(tmp_path)
    assert list(checks.columns) == report.CHECK_COLUMNS
    iso = checks[checks["check"].str.contains("isometry")].iloc[0]
    assert iso["status"] == "pass" and "1.000000" in iso["random codes"]
    assert set(checks.loc[checks["status"] == "merged", "check"].str.extract(r"row: (.*) \(")[0]) == {
        "sort = channel_sort", "sum_pool = mean_pool"}
    # a broken implementation is flagged, not hidden
    dist.loc[dist["projection"] == "sort", "ratio_max"] = 1.2
    dist.to_csv(folder / "distortion.csv", index=False)
    checks = report.implementation_checks(tmp_path)
    assert checks[checks["check"].str.contains("isometry")].iloc[0]["status"] == "FAIL"
    md = report.results_markdown(tmp_path)
    assert "Implementation checks" in md
    assert "| model | claim | measured effect | interval or p | rule | verdict |" in md


def test_alignment_check_on_random_codes(tmp_path):
    folder = tmp_path / "rot_mnist_c8"
    _settings(folder, {"type": "CyclicShiftAction", "code_shape": [3, 8]})
    pd.DataFrame([{"projection": "orbit_alignment", "ratio_min": 1.0, "ratio_median": 1.1, "ratio_max": 2.0,
                   "distortion": 2.0, "confusion_rate": 0.0, "n_pairs": 10, "nn_spearman_mean": 0.9}]
                 ).to_csv(folder / "distortion.csv", index=False)
    checks = report.implementation_checks(tmp_path)
    row = checks[checks["check"].str.contains("alignment")].iloc[0]
    assert row["status"] == "pass"
    inv = checks[checks["check"].str.contains("invariant")].iloc[0]
    assert inv["status"] == "pass"
