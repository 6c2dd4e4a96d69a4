"""Shared fixtures: independent chains per model family, small data by default.

* QM9: ``qm9_sample`` (the seeded :data:`TINY_QM9_SUBSET`-molecule subset; only
  those molecules are featurized, about a second), ``qm9_full`` (all 130,831
  molecules, about a minute the first time; only for tests marked ``slow``),
  ``qm9_graphs`` (``qm9_full`` in tests marked ``slow``, else ``qm9_sample``),
  ``tiny_weights`` (a tiny graph VAE trained by ``python -m backend train qm9``
  on the sample) and ``tiny_registry``.
* Rotated MNIST: ``tiny_rot_weights`` / ``tiny_rot_registry`` (e2cnn model) and
  ``tiny_aug_weights`` / ``tiny_aug_registry`` (augmentation CNN), each on 300
  images. Neither needs QM9 or the graph VAE.
* ``tiny_all_weights``: one folder with all three tiny models (``evaluate all``,
  the Docker build step).

Outside ``slow`` tests ``$ELX_QM9_SUBSET`` is set to the sample size, so any code
that loads QM9 without saying how much featurizes only the sample. Tests that
need all of QM9 are marked ``slow`` (``python -m pytest -m slow``; the default
run leaves them out, see ``pyproject.toml``).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# the suite checks the shipped models: a plugin installed in the same venv (e.g. the README's
# example package) is not discovered at import; tests/test_plugins.py discovers it explicitly
os.environ.setdefault("ELX_PLUGINS", "0")

torch.set_num_threads(1)

# One intra-op thread: on the 2-core CI machines two torch threads made the small models of the
# tests several times slower (thread hand-off dominates); the suite is developed with one.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Featurized graphs and latent codes of the tests go to a temporary folder, not the checkout's
# .cache/ (a user's warm cache stays as it was); set ELX_CACHE_DIR to reuse one across runs.
if not os.environ.get("ELX_CACHE_DIR"):
    import tempfile

    os.environ["ELX_CACHE_DIR"] = tempfile.mkdtemp(prefix="elx_test_cache_")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.make_tiny_weights import TINY_ARGS, TINY_QM9_SUBSET, make  # noqa: E402

TINY_ROT_ARGS, TINY_AUG_ARGS = TINY_ARGS["rotmnist"], TINY_ARGS["augcnn"]

# Tests of files this conftest does not own that use ``qm9_graphs`` for checks over all of
# QM9 (its size, index gaps, every charged molecule, the full cache file): marked slow here.
FULL_QM9_MODULES = ("tests/test_qm9_data.py",)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        path = str(getattr(item, "path", item.fspath)).replace(os.sep, "/")
        if "qm9_graphs" in getattr(item, "fixturenames", ()) and path.endswith(FULL_QM9_MODULES):
            item.add_marker(pytest.mark.slow)


def _is_slow(request) -> bool:
    return request.node.get_closest_marker("slow") is not None


@pytest.fixture(autouse=True)
def _qm9_sample_unless_slow(request, monkeypatch):
    """Outside slow tests, loading QM9 without a size featurizes only the sample."""
    if not _is_slow(request):
        if "qm9_full" in request.fixturenames:
            pytest.fail("a test that needs all of QM9 (qm9_full) must be marked slow")
        monkeypatch.setenv("ELX_QM9_SUBSET", str(TINY_QM9_SUBSET))


# --------------------------------------------------------------------------- QM9
@pytest.fixture(scope="session")
def qm9_sample():
    """The seeded ``TINY_QM9_SUBSET``-molecule subset of QM9 (``$ELX_QM9_SUBSET`` rows)."""
    from backend.data.qm9 import load_qm9_graphs

    return load_qm9_graphs(progress=False, subset=TINY_QM9_SUBSET)


@pytest.fixture(scope="session")
def qm9_full():
    """All of QM9, featurized (first run about a minute, then read from the cache)."""
    from backend.data.qm9 import load_qm9_graphs

    return load_qm9_graphs(progress=False, subset=0)


@pytest.fixture()
def qm9_graphs(request):
    """Featurized QM9: all of it in tests marked ``slow``, else the sample the tiny graph VAE
    is trained on (function-scoped: module or session fixtures use ``qm9_sample``/``qm9_full``)."""
    return request.getfixturevalue("qm9_full" if _is_slow(request) else "qm9_sample")


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    """Weights dir with a tiny graph VAE trained by ``python -m backend train qm9`` (in-process)
    on the QM9 sample; returns ``(dir, sidecar)``."""
    out = tmp_path_factory.mktemp("weights_qm9")
    return out, make("qm9", out)


@pytest.fixture()
def tiny_registry(tiny_weights, monkeypatch):
    """Registry pointed at the tiny graph VAE and a 600-molecule QM9 subset."""
    from backend import registry

    monkeypatch.setenv("ELX_WEIGHTS_DIR", str(tiny_weights[0]))
    monkeypatch.setenv("ELX_QM9_SUBSET", "600")
    entry = registry.get("graph_vae_qm9")
    entry.reset()
    yield entry
    entry.reset()


@pytest.fixture()
def rng():
    return np.random.default_rng(12345)


# --------------------------------------------------------------------------- rotated MNIST
@pytest.fixture(scope="session")
def tiny_rot_weights(tmp_path_factory):
    """A tiny rotated-MNIST e2cnn model trained by ``python -m backend train rotmnist`` (in-process)."""
    out = tmp_path_factory.mktemp("weights_rot")
    return out, make("rotmnist", out)


@pytest.fixture()
def tiny_rot_registry(tiny_rot_weights, monkeypatch):
    """Registry entry of the tiny rotated-MNIST model on its 300 images."""
    from backend import registry

    monkeypatch.setenv("ELX_WEIGHTS_DIR", str(tiny_rot_weights[0]))
    monkeypatch.setenv("ELX_MNIST_LIMIT", "300")
    entry = registry.get("rot_mnist_c8")
    entry.reset()
    yield entry
    entry.reset()


@pytest.fixture(scope="session")
def tiny_aug_weights(tmp_path_factory):
    """A tiny plain CNN trained with augmentation by ``python -m backend train augcnn`` (in-process)."""
    out = tmp_path_factory.mktemp("weights_aug")
    return out, make("augcnn", out)


@pytest.fixture()
def tiny_aug_registry(tiny_aug_weights, monkeypatch):
    """Registry entry of the tiny augmentation CNN on its 300 images."""
    from backend import registry

    monkeypatch.setenv("ELX_WEIGHTS_DIR", str(tiny_aug_weights[0]))
    monkeypatch.setenv("ELX_MNIST_LIMIT", "300")
    entry = registry.get("rot_mnist_cnn_aug")
    entry.reset()
    yield entry
    entry.reset()


# --------------------------------------------------------------------------- all families
@pytest.fixture(scope="session")
def tiny_all_weights(tmp_path_factory, tiny_weights, tiny_rot_weights, tiny_aug_weights):
    """One weights dir with the three tiny models (copies), for commands over every model."""
    out = tmp_path_factory.mktemp("weights_all")
    for folder, _ in (tiny_weights, tiny_rot_weights, tiny_aug_weights):
        for f in folder.iterdir():
            if f.suffix in (".pt", ".json"):
                shutil.copy2(f, out / f.name)
    return out
