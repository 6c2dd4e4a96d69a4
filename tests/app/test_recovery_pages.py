"""AppTest checks of recovery and read-only mode (issue #14); each failed before its fix.

* an empty or corrupt sidecar of the default model: every page raised ``JSONDecodeError``;
  now that model is listed as unavailable with the reason and the others work;
* a corrupt cache file of latent codes: the page said "Could not load the codes" for good;
  now the file is moved aside, encoded again and named in a warning;
* ``ELX_READ_ONLY=1``: fixed seeds, a lower cap on k, no live evaluation;
* the quick evaluation's temporary folder is removed after use.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import streamlit as st
from tests.app.apptest import map_charts
from tests.app.apptest import run_app as _run


def _fresh_caches():
    """Forget codes and maps of earlier tests (other weights with the same model id)."""
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture()
def weights_with_corrupt_default(tiny_rot_weights, tmp_path, monkeypatch):
    """A weights folder: the tiny rotated-MNIST model plus an empty sidecar for the default
    model (graph_vae_qm9), as the lab admin measured."""
    from backend import registry

    folder = tmp_path / "weights"
    shutil.copytree(tiny_rot_weights[0], folder)
    (folder / "graph_vae_qm9.pt").write_bytes(b"\0" * 64)
    (folder / "graph_vae_qm9.json").write_text("")
    monkeypatch.setenv("ELX_WEIGHTS_DIR", str(folder))
    monkeypatch.setenv("ELX_MNIST_LIMIT", "300")
    monkeypatch.setenv("ELX_CACHE_DIR", str(tmp_path / "cache"))
    for entry in registry.MODELS.values():
        entry.reset()
    _fresh_caches()
    yield folder
    for entry in registry.MODELS.values():
        entry.reset()
    _fresh_caches()


@pytest.mark.parametrize("page", ["app_pages/home.py", "app_pages/latent_maps.py", "app_pages/downstream.py"])
def test_an_empty_default_sidecar_lists_that_model_as_unavailable_and_the_others_work(
        weights_with_corrupt_default, page):
    at = _run(page)
    radio = next(r for r in at.sidebar.radio if r.key == "model")
    assert len(radio.options) == 1, radio.options  # only the usable model can be chosen
    assert at.query_params["model"] in ("rot_mnist_c8", ["rot_mnist_c8"])
    warned = " ".join(w.value for w in at.sidebar.warning)
    assert "unavailable" in warned and str(weights_with_corrupt_default / "graph_vae_qm9.json") in warned
    assert "is empty" in warned and "retrain" in warned
    assert not at.error, [e.value for e in at.error]
    if page.endswith("latent_maps.py"):
        assert len(map_charts(at)) >= 2


def test_no_usable_model_at_all_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    from backend import registry

    (tmp_path / "graph_vae_qm9.pt").write_bytes(b"")
    (tmp_path / "graph_vae_qm9.json").write_text("{not json")
    monkeypatch.setenv("ELX_WEIGHTS_DIR", str(tmp_path))
    for entry in registry.MODELS.values():
        entry.reset()
    try:
        at = _run()
        text = " ".join(e.value for e in at.error)
        assert "No model can be loaded" in text and "graph_vae_qm9.json is not valid JSON" in text
        assert "rot_mnist_c8" in text  # the missing ones are named too
    finally:
        for entry in registry.MODELS.values():
            entry.reset()


def test_a_corrupt_latent_cache_is_rebuilt_and_named_on_the_page(tiny_rot_registry, tmp_path, monkeypatch):
    monkeypatch.setenv("ELX_CACHE_DIR", str(tmp_path))
    _fresh_caches()
    path = tiny_rot_registry.encoded_cache_path(0)
    path.write_bytes(b"PK\x03\x04 truncated")  # a zip that ends after its first header
    try:
        at = _run("app_pages/latent_maps.py", {"model": "rot_mnist_c8"})
        assert not at.error, [e.value for e in at.error]
        warned = " ".join(w.value for w in at.warning)
        assert str(path) in warned and "moved aside" in warned
        assert len(list(tmp_path.glob(path.name + ".corrupt-*"))) == 1
        assert len(map_charts(at)) >= 2
    finally:
        _fresh_caches()


def test_read_only_mode_fixes_seeds_caps_k_and_disables_the_live_evaluation(tiny_rot_registry, monkeypatch):
    monkeypatch.setenv("ELX_READ_ONLY", "1")
    at = _run("app_pages/latent_maps.py", {"model": "rot_mnist_c8", "projection": "max_filtering",
                                           "proj_k": "4096", "proj_seed": "7", "order_seed": "3"})
    boxes = {n.key: n for n in at.sidebar.number_input}
    assert boxes["order_seed"].value == 0 and boxes["order_seed"].disabled
    assert boxes["proj_seed"].value == 0 and boxes["proj_seed"].disabled
    assert boxes["proj_k"].max == 256 and boxes["proj_k"].value <= 256
    at.switch_page("app_pages/downstream.py").run()
    assert not at.exception
    assert not [b for b in at.button if b.label == "Rerun quick evaluation"]
    assert any("read-only" in c.value for c in at.caption)


def test_the_quick_evaluation_removes_its_temporary_folder(tiny_rot_registry, monkeypatch):
    import backend.evaluate as ev

    used = []

    def fake_evaluate(entry, cfg, out, command, progress):
        out = Path(out)
        out.mkdir(parents=True)
        (out / "notes.csv").write_text("a,b\n1,2\n")  # read back, not drawn
        used.append(out)
        progress(1.0, "done")
        return {}

    monkeypatch.setattr(ev, "evaluate", fake_evaluate)
    at = _run("app_pages/downstream.py", {"model": "rot_mnist_c8"})
    next(b for b in at.button if b.label == "Rerun quick evaluation").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(used) == 1 and not used[0].parent.exists()  # the whole temporary folder is gone
    assert at.session_state["quick"][1]["notes"].shape == (1, 2)
