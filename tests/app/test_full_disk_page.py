"""AppTest: a full cache disk is a warning that names the folder, not a failed page (issue 14).

ENOSPC is simulated (every ``.npz`` write raises ``OSError(ENOSPC)`` after a few bytes); the
real-tmpfs version in a browser is ``tests/e2e/test_load_faults.py`` (slow). Before the fix the
page said "Could not load the codes" and drew nothing.
"""

from __future__ import annotations

import errno
import shutil

import numpy as np
import pytest
import streamlit as st

from backend import cache
from tests.app.apptest import map_charts, run_app


@pytest.fixture()
def full_disk_app(tiny_rot_weights, tmp_path, monkeypatch):
    from backend import registry

    folder = tmp_path / "weights"
    shutil.copytree(tiny_rot_weights[0], folder)
    monkeypatch.setenv("ELX_WEIGHTS_DIR", str(folder))
    monkeypatch.setenv("ELX_MNIST_LIMIT", "300")
    monkeypatch.setenv("ELX_CACHE_DIR", str(tmp_path / "cache"))

    def full(fh, **arrays):
        fh.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    monkeypatch.setattr(np, "savez_compressed", full)

    def reset():
        for entry in registry.MODELS.values():
            entry.reset()
        st.cache_resource.clear()
        st.cache_data.clear()
        cache.take_notices()
        cache.forget_memory()

    reset()
    yield tmp_path / "cache"
    reset()


def test_a_full_cache_disk_shows_a_warning_naming_the_folder_and_the_maps(full_disk_app):
    at = run_app("app_pages/latent_maps.py", {"model": "rot_mnist_c8"})
    warned = [w.value for w in at.warning if "Could not save" in w.value]
    assert len(warned) == 1, [w.value for w in at.warning]
    assert f"cache folder {full_disk_app}" in warned[0] and "ELX_CACHE_DIR" in warned[0]
    assert "disk is full" in warned[0]
    assert not at.error, [e.value for e in at.error]
    assert len(map_charts(at)) >= 2
    assert not list(full_disk_app.glob("*.npz")) and not list(full_disk_app.glob(".*.tmp"))
    at.switch_page("app_pages/orbits.py").run()  # later pages use the codes kept in memory
    assert not at.exception and not at.error, [e.value for e in at.error]
