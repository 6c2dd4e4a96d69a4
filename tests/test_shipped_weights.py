"""The shipped QM9 weights: file matches its sidecar, strict-loads, and the model is equivariant."""

import json

import numpy as np
import pytest
import torch

from backend.registry import DEFAULT_WEIGHTS_DIR
from backend.training import file_sha256

WEIGHTS = DEFAULT_WEIGHTS_DIR / "graph_vae_qm9.pt"
SIDECAR = DEFAULT_WEIGHTS_DIR / "graph_vae_qm9.json"


def test_weights_are_shipped_with_sidecar():
    assert WEIGHTS.exists() and SIDECAR.exists()
    card = json.loads(SIDECAR.read_text())
    assert file_sha256(WEIGHTS) == card["weights_sha256"]
    assert card["command"].startswith("python -m backend train qm9")
    assert card["data"]["limit"] == 0  # trained on the full training split
    assert card["data"]["n_molecules"] == 130_831
    assert len(card["git_commit"]) >= 40
    # a run from a working tree with uncommitted changes must say what was uncommitted
    assert not card["git_commit"].endswith("+dirty") or len(card.get("git_commit_note", "")) > 80
    for key in ("exact_reconstruction", "validity_test_codes", "validity_prior"):
        assert 0.0 <= card["metrics_test"][key] <= 1.0


def test_shipped_model_strict_loads_and_is_equivariant(qm9_sample):
    from models.graph_vae import GraphVAE, GraphVAEConfig

    card = json.loads(SIDECAR.read_text())
    model = GraphVAE(GraphVAEConfig(**card["model_config"]))
    model.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True), strict=True)
    model.eval()
    rows = np.linspace(0, len(qm9_sample.table) - 1, 33).astype(int)  # 33 molecules across the sample
    t, b, tb = (torch.from_numpy(a[rows].astype(np.int64))
                for a in (qm9_sample.types, qm9_sample.bonds, qm9_sample.tiebreak))
    perm = torch.stack([torch.randperm(9, generator=torch.Generator().manual_seed(i)) for i in range(len(rows))])
    i = torch.arange(len(rows))[:, None]
    with torch.no_grad():
        mu = model.encode(t, b, tb)[0]
        mu_p = model.encode(t[i, perm], b[i[:, :, None], perm[:, :, None], perm[:, None, :]], tb[i, perm])[0]
    err = (mu_p - mu[i, perm]).abs().max().item()
    print(f"shipped encoder equivariance error: {err:.1e}")
    assert err < 1e-4


ROT_WEIGHTS = DEFAULT_WEIGHTS_DIR / "rot_mnist_c8.pt"
ROT_SIDECAR = DEFAULT_WEIGHTS_DIR / "rot_mnist_c8.json"


def test_shipped_rot_mnist_weights_reproduce_reference_output_and_metrics():
    """The fixed load recipe (build, eval, strict load) reproduces the sidecar's stored codes
    and its test accuracy; 90-degree input rotations shift the code by N/4 to float level."""
    from backend.training_mnist import RotTrainConfig, equivariance_errors, load_data, rot_mnist_metrics
    from models.rot_mnist import RotMNISTConfig, load_rot_mnist

    card = json.loads(ROT_SIDECAR.read_text())
    assert file_sha256(ROT_WEIGHTS) == card["weights_sha256"]
    assert card["command"].startswith("python -m backend train rotmnist")
    assert card["data"]["limit"] == 0 and card["data"]["n_images"] == 5000
    assert card["saved_in_mode"] == "eval"
    model = load_rot_mnist(ROT_WEIGHTS, RotMNISTConfig.from_dict(card["model_config"]))
    data = load_data(RotTrainConfig(**card["train_config"]))
    ref = card["reference_output"]
    with torch.no_grad():
        codes = model.encode(torch.from_numpy(np.array(data.images[ref["test_rows"]]))).numpy()
    err = float(np.abs(codes - np.array(ref["codes"])).max())
    print(f"reference output error: {err:.1e}")
    assert err < 1e-4
    metrics = rot_mnist_metrics(model, data, data.rows("test"), n_equivariance=50)
    assert metrics["test_accuracy"] == pytest.approx(card["metrics_test"]["test_accuracy"], abs=1e-9)
    eq = equivariance_errors(model, data.images[data.rows("test")[:50]])
    print(f"shipped e2cnn equivariance: 90° {eq['equivariance_rot90_max']:.1e}, "
          f"2π/N median {eq['equivariance_rot_2pi_over_N_median']:.2e}")
    assert eq["equivariance_rot90_max"] < 1e-5
