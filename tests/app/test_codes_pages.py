"""AppTest of codes-only mode: codes named at start-up (``ELX_CODES`` or ``-- --codes``) give both
maps, the export buttons, the distortion and probe tables; pages that need a model say so; bad files
are reported in the sidebar; another session's upload is not listed. The browser upload itself is
tested in tests/e2e/test_codes_upload.py (AppTest cannot drive a file uploader)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.app.apptest import map_charts, run_app


@pytest.fixture(autouse=True)
def _clean_registry():
    from backend import codes_upload, registry

    before = set(registry.MODELS)
    yield
    for key in set(registry.MODELS) - before:
        registry.MODELS.pop(key)
    codes_upload._STARTUP.clear()
    codes_upload._UPLOADED.clear()


@pytest.fixture()
def c8_file(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 4, 8)).astype(np.float32)
    path = tmp_path / "my_c8.npz"
    np.savez(path, codes=z, action="C_8", digit=rng.integers(0, 4, 300))
    labels = tmp_path / "labels.csv"
    labels.write_text("energy\n" + "\n".join(f"{v:.5f}" for v in z.max(axis=-1).sum(axis=1)))
    return path, labels


def _errors(at):
    return [e.value for e in at.exception] + [e.value for e in at.error]


def test_codes_from_the_environment_show_both_maps_and_the_distortion_table(c8_file, monkeypatch):
    path, labels = c8_file
    monkeypatch.setenv("ELX_CODES", str(path))
    monkeypatch.setenv("ELX_CODES_LABELS", str(labels))
    at = run_app()
    model = at.session_state["model"]
    assert model.startswith("codes_")  # selected when the app opens
    assert any("Your codes · my_c8.npz · 300 × 4 × 8 · C_8" in str(o) for o in at.sidebar.radio[0].options)
    assert any("latent action **C_8**" in m.value for m in at.markdown)

    at.switch_page("app_pages/latent_maps.py").run()
    assert not _errors(at)
    heads = [m.value for m in at.markdown if "<b>" in m.value]
    assert any("Equivariant view: PCA of the raw codes" in h for h in heads)
    assert any("Invariant view: PCA of orbit alignment" in h for h in heads)
    assert len(map_charts(at)) == 2
    labels_shown = [b.label for b in at.get("download_button")]
    assert {"Maps · CSV", "Maps · Parquet", "Features · npz", "Features · CSV", "Equivariant map · HTML",
            "Projected map · HTML"} <= set(labels_shown)
    assert at.sidebar.selectbox(key="color").options[:2] == ["digit [category]", "energy [as given]"]

    at.switch_page("app_pages/downstream.py").run()
    assert not _errors(at)
    assert at.title[0].value == "Downstream: your codes, measured"
    dist = at.dataframe[0].value
    assert list(dist["projection"]) == ["raw", "orbit_alignment", "max_filtering", "sorted_coorbits",
                                        "fourier_modulus", "group_mean_pool", "group_max_pool"]
    assert dist.set_index("projection").loc["orbit_alignment", "lossless"]
    probes = at.dataframe[1].value
    assert set(probes["target"]) == {"digit", "energy"} and "raw codes" in probes.columns
    assert len(map_charts(at)) == 1  # the distortion figure

    for page, word in (("interpolation", "Interpolation needs"), ("orbits", "orbit view transforms an input")):
        at.switch_page(f"app_pages/{page}.py").run()
        assert not _errors(at)
        assert any(word in i.value and ("has neither" in i.value or "has only codes" in i.value) for i in at.info), page


def test_codes_from_the_command_line_with_sn_action(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    path = tmp_path / "nodes.npy"
    np.save(path, rng.normal(size=(200, 6, 1)))
    monkeypatch.setattr(sys, "argv", ["app.py", "--codes", str(path), "--action", "S_6"])
    at = run_app("app_pages/latent_maps.py")
    assert not _errors(at)
    assert at.session_state["model"].startswith("codes_")
    assert any("Invariant view: PCA of sorting" in m.value for m in at.markdown)
    assert any("isometric: :green" in m.value for m in at.markdown)  # sorting d = 1: declared isometric
    at.switch_page("app_pages/downstream.py").run()
    assert not _errors(at)
    dist = at.dataframe[0].value.set_index("projection")
    assert dist.loc["sort", "ratio_max"] == pytest.approx(1.0, rel=1e-4)
    assert any("No label to probe" in i.value for i in at.info)


def test_a_bad_codes_file_is_reported_and_the_app_keeps_running(tmp_path, monkeypatch):
    path = tmp_path / "bad.npz"
    np.savez(path, codes=np.full((10, 3, 8), np.nan), action="C_8")
    monkeypatch.setenv("ELX_CODES", str(path))
    at = run_app()
    assert not at.exception
    errs = [e.value for e in at.sidebar.error]
    assert any("could not be loaded" in e and "10 of 10 codes hold NaN" in e for e in errs), errs
    assert not at.session_state["model"].startswith("codes_")


def test_another_sessions_upload_is_not_listed(c8_file):
    from backend import codes_upload

    path, _ = c8_file
    theirs = codes_upload.register(codes_upload.load_codes_file(path), uploaded=True)
    at = run_app()
    options = at.sidebar.radio[0].options  # the radio shows labels
    assert len(options) >= 1 and theirs.label not in options
    assert not any("my_c8.npz" in m.value for m in at.markdown)


def test_codes_work_without_any_model_weights(c8_file, tmp_path, monkeypatch):
    path, _ = c8_file
    empty = tmp_path / "no_weights"
    empty.mkdir()
    monkeypatch.setenv("ELX_WEIGHTS_DIR", str(empty))
    monkeypatch.setenv("ELX_CODES", str(path))
    at = run_app("app_pages/latent_maps.py")
    assert not _errors(at)
    assert at.sidebar.radio[0].options == ["Your codes · my_c8.npz · 300 × 4 × 8 · C_8"]  # labels
    assert at.session_state["model"].startswith("codes_")
    assert any("is unavailable" in w.value for w in at.sidebar.warning)
    assert len(map_charts(at)) == 2
