"""``python -m backend evaluate --quick`` end to end on the tiny models (slow: the whole command
over every model), the claims table and the README."""

import json

import numpy as np
import pandas as pd
import pytest

from backend import report
from backend.evaluate import AUG_ORBIT, AUG_RANDOM, AUG_SAME, load_results


@pytest.fixture(scope="module")
def quick_results(tiny_all_weights, tmp_path_factory):
    """Quick evaluation of all three tiny models, through the command line (in-process)."""
    from backend import registry
    from backend.__main__ import main

    out = tmp_path_factory.mktemp("results")
    mp = pytest.MonkeyPatch()
    mp.setenv("ELX_WEIGHTS_DIR", str(tiny_all_weights))
    mp.setenv("ELX_QM9_SUBSET", "600")
    mp.setenv("ELX_MNIST_LIMIT", "300")
    for mid in registry.available():
        registry.get(mid).reset()
    try:
        assert main(["evaluate", "all", "--quick", "--out", str(out)]) == 0
    finally:
        for mid in registry.available():
            registry.get(mid).reset()
        mp.undo()
    return out


@pytest.mark.slow
def test_evaluate_writes_every_results_file(quick_results):
    expected = {"graph_vae_qm9": {"probes", "probe_items", "probes_summary", "distortion", "interpolation",
                                  "interpolation_summary"},
                "rot_mnist_c8": {"probes", "probe_items", "probes_summary", "k_sweep", "k_sweep_summary",
                                 "distortion", "interpolation", "interpolation_summary", "invariance"},
                "rot_mnist_cnn_aug": {"probes", "probe_items", "probes_summary", "interpolation",
                                      "interpolation_summary", "invariance"}}
    for mid, names in expected.items():
        r = load_results(mid, quick_results)
        assert names <= set(r), (mid, sorted(r))
        settings = r["settings"]
        assert settings["config"]["quick"] and settings["weights_sha256"] and "evaluate all --quick" in settings["command"]
        assert settings["action"]["type"] and settings["action"]["code_shape"]
        # per-item outcomes agree with the per-seed table they were computed with
        items, probes_ = r["probe_items"], r["probes"]
        metric = "correct" if "correct" in items.columns else "sq_err"
        assert items[metric].notna().all()
        n_items = items.groupby(["representation", "probe", "seed"]).size()
        assert (n_items == probes_.groupby(["representation", "probe", "seed"])["n_test"].first()).all()
        if metric == "correct":
            acc = items.groupby(["representation", "probe", "seed"])["correct"].mean()
            assert np.allclose(acc, probes_.set_index(["representation", "probe", "seed"])["accuracy"].loc[acc.index])
    qm9 = load_results("graph_vae_qm9", quick_results)
    p = qm9["probes"]
    assert set(p["target"]) >= {"gap", "mu", "u0"} and set(p["seed"]) == {0, 1}
    assert (p.loc[p["target"] == "gap", "unit"] == "eV").all()
    assert set(p["representation"]) >= {"raw (random node order)", "raw (stored node order)", "sort", "sum_pool"}
    sort_row = qm9["distortion"].set_index("projection").loc["sort"]
    assert sort_row["ratio_min"] == pytest.approx(1, abs=1e-4) and sort_row["ratio_max"] == pytest.approx(1, abs=1e-4)
    # searched (adversarial) pairs: sorting stays an isometry, pooling merges orbits
    assert sort_row["adv_distortion"] == pytest.approx(1, abs=1e-3)
    pool_row = qm9["distortion"].set_index("projection").loc["mean_pool"]
    assert pool_row["adv_distortion"] >= pool_row["distortion"]
    rot = load_results("rot_mnist_c8", quick_results)
    assert set(rot["k_sweep"]["k"]) == {1, 4, 16}
    assert rot["probes"]["accuracy"].between(0, 1).all()
    aug = load_results("rot_mnist_cnn_aug", quick_results)
    assert set(aug["probes"]["representation"]) == {"raw codes", AUG_ORBIT, AUG_RANDOM, AUG_SAME}
    inv = aug["invariance"].set_index("representation")["orbit_spread_ratio"]
    assert inv["raw code"] > 0  # a plain CNN is not invariant to input rotations


@pytest.mark.slow
def test_claims_and_readme_section(quick_results, tmp_path):
    table = report.claims(quick_results)
    assert len(table) >= 7
    assert list(table.columns) == report.COLUMNS
    assert {v.split(" (")[0] for v in table["verdict"]} <= {"held", "did not hold", "not significant",
                                                            "not supported", "needs rerun", "context"}
    assert table["measured effect"].str.len().min() > 10
    # the quick run writes the per-item data, so no claim is left waiting for a rerun
    assert not table["verdict"].str.contains("needs rerun").any()
    assert table["claim"].str.contains("Control: the orbit average").any()
    assert not table["claim"].str.contains("isometric cross-section").any()
    assert len(report.implementation_checks(quick_results)) >= 2
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{report.START}\nPLACEHOLDER\n{report.END}\ntail\n")
    assert report.update_readme(readme, quick_results) is True
    text = readme.read_text()
    assert "PLACEHOLDER" not in text and text.endswith("tail\n") and "| model | claim | measured effect | interval or p | rule | verdict |" in text
    assert "Implementation checks" in text
    assert report.update_readme(readme, quick_results, check=True) is False
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="results:start"):
        report.update_readme(readme, quick_results)


def test_shipped_results_match_the_readme():
    """The README's Results section is exactly what the shipped results files generate."""
    assert not report.update_readme(check=True), "run `python -m backend report` after `evaluate`"


def test_shipped_results_come_from_the_shipped_weights():
    from backend.training import file_sha256
    from backend.evaluate import RESULTS_DIR
    from backend.registry import DEFAULT_WEIGHTS_DIR

    for mid in ("graph_vae_qm9", "rot_mnist_c8", "rot_mnist_cnn_aug"):
        settings = json.loads((RESULTS_DIR / mid / "settings.json").read_text())
        assert settings["weights_sha256"] == file_sha256(DEFAULT_WEIGHTS_DIR / f"{mid}.pt"), mid
        assert not settings["config"]["quick"] and settings["config"]["seeds"] >= 5
        assert len(pd.read_csv(RESULTS_DIR / mid / "probes.csv"))


def test_augcnn_same_compute_controls(tiny_aug_registry):
    """The orbit average and its two same-compute controls on the tiny augmentation CNN."""
    from backend.evaluate import augcnn_controls, orbit_average_codes

    entry = tiny_aug_registry
    images = entry.dataset().images[:6]
    feats = augcnn_controls(entry, images, seed=0)
    assert set(feats) == {AUG_ORBIT, AUG_RANDOM, AUG_SAME}
    raw = entry._encode_images(images).reshape(len(images), -1)
    for name, z in feats.items():
        assert z.shape == raw.shape and np.isfinite(z).all(), name
    # the default orbit average is the same as explicit grid angles; the controls differ from it
    grid = np.tile(2 * np.pi * np.arange(8) / 8, (len(images), 1))
    assert np.allclose(orbit_average_codes(entry, images, angles=grid), feats[AUG_ORBIT], atol=1e-5)
    assert not np.allclose(feats[AUG_RANDOM], feats[AUG_ORBIT], atol=1e-4)
    assert not np.allclose(feats[AUG_SAME], feats[AUG_ORBIT], atol=1e-4)
    # one repeated angle without shifts is one forward pass: the ensemble control needs the shifts
    same = np.repeat(np.full((len(images), 1), 0.3), 8, axis=1)
    one = orbit_average_codes(entry, images, angles=same)
    assert np.allclose(one, orbit_average_codes(entry, images, angles=same[:, :1]), atol=1e-5)


def test_each_probe_seed_draws_its_own_subsample_of_a_small_training_split():
    from backend import probes
    from backend.evaluate import EvalConfig, _resampled

    assert _resampled(EvalConfig(), np.arange(4000)) == 3200  # MNIST: 80 % of the 4,000 digits
    assert _resampled(EvalConfig(), np.arange(100_000)) == 10_000  # QM9: n_train
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 3)), rng.integers(0, 2, 50)
    df = probes.run_probes({"x": x}, y, np.arange(40), np.arange(40, 50), "classification", probes=("linear",),
                           seeds=(0, 1), n_train=32)
    assert (df["n_train"] == 32).all() and df.groupby("seed")["accuracy"].size().tolist() == [1, 1]
    drawn = [probes._subsample(np.arange(40), 32, np.random.default_rng(s)) for s in (0, 1)]
    assert not np.array_equal(drawn[0], drawn[1])
