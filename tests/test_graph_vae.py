"""The equivariant graph VAE: equivariance, decoder commutation, ELBO parts, training, checkpoints."""


import json

import numpy as np
import pytest
import torch

from models.graph_vae import (Equivariant1to2, Equivariant2to1, Equivariant2to2, GraphVAE,
                              GraphVAEConfig, gaussian_kl)


def _real_batch(graphs, rows):
    return tuple(torch.from_numpy(a[rows].astype(np.int64)) for a in (graphs.types, graphs.bonds, graphs.tiebreak))


def _permute(types, bonds, tiebreak, perms):
    b = torch.arange(len(perms))[:, None]
    return (types[b, perms], bonds[b[:, :, None], perms[:, :, None], perms[:, None, :]], tiebreak[b, perms])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GraphVAE(GraphVAEConfig(hidden=24, enc_layers=2, dec_layers=2, latent_dim=2)).eval()


def test_layers_are_equivariant():
    torch.manual_seed(1)
    t = torch.randn(4, 7, 7, 5)
    x = torch.randn(4, 7, 5)
    p = torch.stack([torch.randperm(7) for _ in range(4)])
    b = torch.arange(4)[:, None]
    tp = t[b[:, :, None], p[:, :, None], p[:, None, :]]
    l22, l21, l12 = Equivariant2to2(5, 6), Equivariant2to1(5, 6), Equivariant1to2(5, 6)
    out = l22(t)
    err22 = (l22(tp) - out[b[:, :, None], p[:, :, None], p[:, None, :]]).abs().max()
    err21 = (l21(tp) - l21(t)[b, p]).abs().max()
    out12 = l12(x)
    err12 = (l12(x[b, p]) - out12[b[:, :, None], p[:, :, None], p[:, None, :]]).abs().max()
    print(f"layer equivariance errors: 2->2 {err22:.1e}, 2->1 {err21:.1e}, 1->2 {err12:.1e}")
    assert max(err22, err21, err12) < 1e-5


def test_encoder_equivariant_and_decoder_commutes_on_real_molecules(model, qm9_graphs):
    rows = np.random.default_rng(0).choice(len(qm9_graphs.table), 64, replace=False)
    types, bonds, tb = _real_batch(qm9_graphs, rows)
    perms = torch.stack([torch.randperm(9, generator=torch.Generator().manual_seed(i)) for i in range(64)])
    b = torch.arange(64)[:, None]
    with torch.no_grad():
        mu, logvar = model.encode(types, bonds, tb)
        mu_p, logvar_p = model.encode(*_permute(types, bonds, tb, perms))
        enc_err = (mu_p - mu[b, perms]).abs().max()
        out = model.decode_logits(mu)
        out_p = model.decode_logits(mu[b, perms])
    node_err = (out_p["atom"] - out["atom"][b, perms]).abs().max()
    pair_err = (out_p["bond"] - out["bond"][b[:, :, None], perms[:, :, None], perms[:, None, :]]).abs().max()
    print(f"encoder equivariance {enc_err:.1e}, decoder commutation nodes {node_err:.1e} pairs {pair_err:.1e}")
    assert enc_err < 1e-5 and node_err < 1e-5 and pair_err < 1e-5
    # deterministic decode commutes exactly
    t1, b1 = model.decode(mu)
    t2, b2 = model.decode(mu[b, perms])
    assert torch.equal(t2, t1[b, perms]) and torch.equal(b2, b1[b[:, :, None], perms[:, :, None], perms[:, None, :]])


def test_decoded_pairs_are_symmetric_with_empty_diagonal(model):
    types, bonds = model.decode(torch.randn(16, 9, 2))
    assert torch.equal(bonds, bonds.transpose(1, 2))
    assert (torch.diagonal(bonds, dim1=1, dim2=2) == 0).all()
    assert ((bonds > 0) <= ((types > 0)[:, :, None] & (types > 0)[:, None, :])).all()


def test_gaussian_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(1, 3, 2), torch.randn(1, 3, 2) * 0.5
    std = (0.5 * logvar).exp()
    z = mu + std * torch.randn(200_000, 3, 2)
    log_q = torch.distributions.Normal(mu, std).log_prob(z).sum((1, 2))
    log_p = torch.distributions.Normal(0, 1).log_prob(z).sum((1, 2))
    mc = (log_q - log_p).mean()
    assert gaussian_kl(mu, logvar).item() == pytest.approx(mc.item(), rel=0.02)
    assert gaussian_kl(torch.zeros(2, 9, 1), torch.zeros(2, 9, 1)).item() == 0.0


def test_short_training_lowers_loss_and_writes_sidecar(tiny_weights):
    out, sidecar = tiny_weights
    hist = sidecar["history"]
    assert hist[-1]["recon"] < hist[0]["recon"] - 1.0, (hist[0], hist[-1])
    for key in ("command", "seed", "git_commit", "data", "wall_time_s", "epochs_completed",
                "metrics_test", "weights_sha256", "model_config"):
        assert key in sidecar
    assert sidecar["command"].startswith("python -m backend train qm9")
    assert sidecar["data"]["split_sizes"]["train"] == 256
    assert set(sidecar["metrics_test"]) >= {"node_existence_acc", "atom_type_acc", "bond_acc",
                                            "exact_reconstruction", "validity_test_codes", "validity_prior"}


def test_checkpoint_round_trips_exactly(tiny_weights, qm9_graphs):
    out, sidecar = tiny_weights
    model = GraphVAE(GraphVAEConfig(**sidecar["model_config"]))
    state = torch.load(out / "graph_vae_qm9.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()
    again = GraphVAE(GraphVAEConfig(**sidecar["model_config"]))
    torch.save(model.state_dict(), out / "copy.pt")
    again.load_state_dict(torch.load(out / "copy.pt", weights_only=True), strict=True)
    again.eval()
    batch = _real_batch(qm9_graphs, np.arange(50))
    with torch.no_grad():
        assert torch.equal(model.encode(*batch)[0], again.encode(*batch)[0])
    # and reproduces the sidecar's metrics
    from backend.training import graph_vae_metrics

    rows = np.flatnonzero(qm9_graphs.table["split"].to_numpy() == "test")[:256]
    m = graph_vae_metrics(model, qm9_graphs, rows, n_prior=64, seed=sidecar["seed"])
    for key in ("node_existence_acc", "atom_type_acc", "bond_acc", "exact_reconstruction", "validity_prior"):
        assert m[key] == pytest.approx(sidecar["metrics_test"][key], abs=1e-9), key


RESUME_ARGS = ["train", "qm9", "--limit", "128", "--batch-size", "32", "--hidden", "8", "--enc-layers", "1",
               "--dec-layers", "1", "--n-prior", "8", "--lr-schedule", "constant", "--log-every", "1",
               "--checkpoint-minutes", "1000", "--eval-size", "32", "--name", "resume_me"]


def test_training_resumes_and_continues_the_loss_curve(tmp_path, qm9_graphs):
    """Stop after one epoch, resume for a second: same history, step counter, optimizer and weights
    as one uninterrupted two-epoch run (4 steps per epoch)."""
    from backend.__main__ import main
    from backend.training import load_checkpoint

    a, b = tmp_path / "a", tmp_path / "b"
    assert main(RESUME_ARGS + ["--epochs", "1", "--out", str(a), "--checkpoint-dir", str(a)]) == 0
    first = load_checkpoint(a / "resume_me.ckpt")
    assert first["step"] == 4 and [h["step"] for h in first["history"]] == [0, 1, 2, 3]
    assert torch.load(a / "resume_me.ckpt", weights_only=True)["step"] == 4  # plain weights-only file
    assert main(["train", "qm9", "--resume", str(a / "resume_me.ckpt"), "--epochs", "2",  # name from the checkpoint
                 "--out", str(a), "--checkpoint-dir", str(a)]) == 0
    resumed = load_checkpoint(a / "resume_me.ckpt")
    assert main(RESUME_ARGS + ["--epochs", "2", "--out", str(b), "--checkpoint-dir", str(b)]) == 0
    straight = load_checkpoint(b / "resume_me.ckpt")

    assert resumed["step"] == straight["step"] == 8
    assert resumed["history"][:4] == first["history"]  # the curve before the resume is kept ...
    assert [h["step"] for h in resumed["history"]] == list(range(8))  # ... and extended
    for h_r, h_s in zip(resumed["history"], straight["history"]):
        assert h_r["loss"] == pytest.approx(h_s["loss"], abs=1e-3), (h_r, h_s)
    opt_r, opt_s = resumed["optimizer"]["state"], straight["optimizer"]["state"]
    assert float(opt_r[0]["step"]) == float(opt_s[0]["step"]) == 8.0  # Adam moments continued, not reset
    for k in opt_s:
        assert torch.allclose(opt_r[k]["exp_avg_sq"], opt_s[k]["exp_avg_sq"], atol=1e-6)
    for k, v in straight["model"].items():
        assert torch.allclose(resumed["model"][k], v, atol=1e-5), k
    sidecar = json.loads((a / "resume_me.json").read_text())
    assert sidecar["steps"] == 8 and len(sidecar["runs"]) == 2 and sidecar["resumed_from"]
    assert {"metrics_valid", "metrics_test", "throughput_mol_per_s"} <= set(sidecar)
    assert torch.load(a / "resume_me.pt", weights_only=True).keys() == straight["model"].keys()


@pytest.mark.parametrize("symmetric, z_fourier, pair_fourier, decoder",
                         [(True, 0, 0, "maron"), (True, 4, 3, "maron"), (False, 4, 3, "maron"),
                          (False, 4, 0, "sorted_mlp")])
def test_v2_options_keep_pairs_symmetric_and_equivariant(symmetric, z_fourier, pair_fourier, decoder):
    torch.manual_seed(0)
    m = GraphVAE(GraphVAEConfig(hidden=12, enc_layers=2, dec_layers=2, symmetric=symmetric, z_fourier=z_fourier,
                                pair_fourier=pair_fourier, decoder=decoder, mlp_hidden=32)).eval()
    types = torch.tensor([[1, 1, 2, 1, 0, 0, 0, 0, 0]] * 2)
    bonds = torch.zeros(2, 9, 9, dtype=torch.long)
    for i, j in ((0, 1), (1, 2), (2, 3)):
        bonds[:, i, j] = bonds[:, j, i] = 1
    tb = torch.zeros(2, 9, dtype=torch.long)
    perm = torch.randperm(9)
    with torch.no_grad():
        mu, _ = m.encode(types, bonds, tb)
        mu_p, _ = m.encode(types[:, perm], bonds[:, perm][:, :, perm], tb[:, perm])
        z = torch.randn(2, 9, 1)  # no ties (the empty slots of `mu` tie, and sorted_mlp is exact only without)
        out = m.decode_logits(z)
        out_p = m.decode_logits(z[:, perm])
    assert (mu_p - mu[:, perm]).abs().max() < 1e-5
    assert (out_p["edge"] - out["edge"][:, perm][:, :, perm]).abs().max() < 1e-5
    assert torch.allclose(out["edge"], out["edge"].transpose(1, 2), atol=1e-6)


def test_old_config_loads_old_state_dict():
    """New options default to the old behaviour: the first shipped weights (v1) load with their sidecar config."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "models" / "weights"
    card = json.loads((root / "graph_vae_qm9_v1.json").read_text())
    assert "symmetric" not in card["model_config"]
    model = GraphVAE(GraphVAEConfig(**card["model_config"]))
    model.load_state_dict(torch.load(root / "graph_vae_qm9_v1.pt", weights_only=True), strict=True)


def test_max_minutes_stops_cleanly_and_time_schedule_anneals(tmp_path):
    from backend.__main__ import main
    from backend.training import TrainConfig, learning_rate

    args = RESUME_ARGS[:-1] + ["stopped", "--epochs", "50", "--max-minutes", "0.003", "--lr-schedule",
                               "cosine_time", "--out", str(tmp_path), "--checkpoint-dir", str(tmp_path)]
    assert main(args) == 0
    sidecar = json.loads((tmp_path / "stopped.json").read_text())
    assert sidecar["stopped_early_by_max_minutes"] and 0 < sidecar["steps"] < 200
    state = torch.load(tmp_path / "stopped.pt", weights_only=True)
    GraphVAE(GraphVAEConfig(**sidecar["model_config"])).load_state_dict(state, strict=True)
    assert {"exact_reconstruction", "validity_test_codes"} <= set(sidecar["metrics_valid"])
    cfg = TrainConfig(lr=1.0, lr_schedule="cosine_time", max_minutes=10.0)
    assert learning_rate(0, 10**6, cfg, 0.0) == pytest.approx(1.0)
    assert learning_rate(0, 10**6, cfg, 300.0) == pytest.approx(0.51)  # half way: 0.02 + 0.98 / 2
    assert learning_rate(0, 10**6, cfg, 900.0) == pytest.approx(0.02)
    with pytest.raises(ValueError):
        learning_rate(0, 10, TrainConfig(lr_schedule="cosine_time"))
    with pytest.raises(ValueError):
        learning_rate(0, 10, TrainConfig(lr_schedule="bogus"))
