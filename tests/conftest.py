"""Shared fixtures: real QM9 (featurized once, cached on disk) and a tiny model trained by
the project's own training command on a few hundred molecules."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

# One intra-op thread: on the 2-core CI machines two torch threads made the small models of the
# tests several times slower (thread hand-off dominates); the suite is developed with one.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TINY_ARGS = ["train", "qm9", "--limit", "256", "--epochs", "3", "--batch-size", "32",
             "--hidden", "16", "--enc-layers", "2", "--dec-layers", "2", "--n-prior", "64",
             "--name", "graph_vae_qm9"]


@pytest.fixture(scope="session")
def qm9_graphs():
    """All of QM9, featurized (first run about 1.5 min, then read from the cache)."""
    from backend.data.qm9 import load_qm9_graphs

    return load_qm9_graphs(progress=False)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory, qm9_graphs):
    """Weights dir with a tiny graph VAE trained by ``python -m backend train`` (in-process)."""
    from backend.__main__ import main

    out = tmp_path_factory.mktemp("weights")
    assert main(TINY_ARGS + ["--out", str(out)]) == 0
    sidecar = json.loads((out / "graph_vae_qm9.json").read_text())
    return out, sidecar


@pytest.fixture()
def tiny_registry(tiny_weights, tmp_path_factory, monkeypatch):
    """Registry pointed at the tiny weights and a 600-molecule QM9 subset."""
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


TINY_ROT_ARGS = ["train", "rotmnist", "--limit", "300", "--epochs", "2", "--batch-size", "32",
                 "--widths", "2", "2", "3", "3", "--latent-fields", "4", "--lr", "0.003",
                 "--name", "rot_mnist_c8"]


@pytest.fixture(scope="session")
def tiny_rot_weights(tiny_weights):
    """A tiny rotated-MNIST e2cnn model trained by ``python -m backend train rotmnist``
    (in-process) into the same folder as the tiny graph VAE, so one weights dir serves both."""
    from backend.__main__ import main

    out = tiny_weights[0]
    assert main(TINY_ROT_ARGS + ["--out", str(out)]) == 0
    return out, json.loads((out / "rot_mnist_c8.json").read_text())


@pytest.fixture()
def tiny_rot_registry(tiny_rot_weights, monkeypatch):
    """Registry entry of the tiny rotated-MNIST model on its 300 images."""
    from backend import registry

    monkeypatch.setenv("ELX_WEIGHTS_DIR", str(tiny_rot_weights[0]))
    monkeypatch.setenv("ELX_MNIST_LIMIT", "300")
    monkeypatch.setenv("ELX_QM9_SUBSET", "600")
    entry = registry.get("rot_mnist_c8")
    entry.reset()
    yield entry
    entry.reset()


TINY_AUG_ARGS = ["train", "augcnn", "--limit", "300", "--epochs", "2", "--batch-size", "32",
                 "--widths", "4", "4", "8", "8", "--latent-dim", "8", "--lr", "0.003", "--augment", "1",
                 "--name", "rot_mnist_cnn_aug"]


@pytest.fixture(scope="session")
def tiny_aug_weights(tiny_rot_weights):
    """A tiny plain CNN trained with augmentation by ``python -m backend train augcnn`` (in-process),
    in the same folder as the other tiny weights."""
    from backend.__main__ import main

    out = tiny_rot_weights[0]
    assert main(TINY_AUG_ARGS + ["--out", str(out)]) == 0
    return out, json.loads((out / "rot_mnist_cnn_aug.json").read_text())


@pytest.fixture()
def tiny_aug_registry(tiny_aug_weights, monkeypatch):
    """Registry entry of the tiny augmentation CNN on its 300 images."""
    from backend import registry

    monkeypatch.setenv("ELX_WEIGHTS_DIR", str(tiny_aug_weights[0]))
    monkeypatch.setenv("ELX_MNIST_LIMIT", "300")
    monkeypatch.setenv("ELX_QM9_SUBSET", "600")
    entry = registry.get("rot_mnist_cnn_aug")
    entry.reset()
    yield entry
    entry.reset()
