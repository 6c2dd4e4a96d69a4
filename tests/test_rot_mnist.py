"""Rotated-MNIST e2cnn model: equivariance, the load recipe, training and the registry entry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.rot_mnist import RotMNISTConfig, RotMNISTNet, load_rot_mnist

SMALL = RotMNISTConfig(n_rotations=8, latent_fields=3, widths=(2, 2, 3, 3))


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return RotMNISTNet(SMALL).eval()


def _disc_images(b, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:29, :29]
    disc = ((yy - 14) ** 2 + (xx - 14) ** 2) <= 14 ** 2
    return torch.from_numpy((rng.random((b, 1, 29, 29)) * disc).astype(np.float32))


@torch.no_grad()
def test_rotating_input_by_90_degrees_shifts_code_by_quarter_fibre(small_model):
    x = _disc_images(6)
    z = small_model.encode(x)
    for k in (1, 2, 3):
        zr = small_model.encode(torch.rot90(x, k, dims=(2, 3)))
        err = float((zr - torch.roll(z, k * SMALL.n_rotations // 4, dims=2)).abs().max() / z.abs().max())
        assert err < 1e-5, (k, err)
        wrong = float((zr - z).abs().max() / z.abs().max())
        assert wrong > 1e-3  # the code really moves: the check can fail


@torch.no_grad()
def test_classifier_invariant_and_decoder_equivariant(small_model):
    x = _disc_images(4, seed=1)
    z = small_model.encode(x)
    shift = SMALL.n_rotations // 4
    assert torch.allclose(small_model.classify(torch.roll(z, 3, dims=2)), small_model.classify(z), atol=1e-6)
    dec, dec_shift = small_model.decode(z), small_model.decode(torch.roll(z, shift, dims=2))
    assert float((dec_shift - torch.rot90(dec, 1, dims=(2, 3))).abs().max()) < 1e-5


def test_other_input_sizes_are_refused(small_model):
    for size in (27, 28, 30, 31):
        with pytest.raises(ValueError, match="29"):
            small_model.encode(torch.zeros(1, 1, size, size))


def test_state_dict_mode_trap_and_the_fixed_load_recipe(small_model, tmp_path):
    path = tmp_path / "w.pt"
    torch.save(small_model.state_dict(), path)  # saved in eval mode (has filter buffers)
    fresh = RotMNISTNet(SMALL).train()
    with pytest.raises(RuntimeError):  # train mode has no expanded filters: strict load fails
        fresh.load_state_dict(torch.load(path, weights_only=True), strict=True)
    loaded = load_rot_mnist(path, SMALL)
    assert not loaded.training
    x = _disc_images(3, seed=2)
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), small_model.encode(x))


def test_training_command_lowers_loss_and_sidecar_reference_reproduces(tiny_rot_weights):
    out, sidecar = tiny_rot_weights
    hist = sidecar["history"]
    assert hist[-1]["loss"] < hist[0]["loss"], (hist[0], hist[-1])
    assert sidecar["saved_in_mode"] == "eval" and sidecar["git_commit"]
    assert sidecar["model_config"]["latent_fields"] == 4
    m = sidecar["metrics_test"]
    for key in ("test_accuracy", "reconstruction_mse_per_pixel", "equivariance_rot90_median",
                "equivariance_rot_2pi_over_N_median"):
        assert key in m and np.isfinite(m[key])
    assert m["equivariance_rot90_max"] < 1e-4
    # the loaded model reproduces the stored reference output and the sidecar's metrics
    from backend.training_mnist import RotTrainConfig, load_data, rot_mnist_metrics

    model = load_rot_mnist(out / "rot_mnist_c8.pt", RotMNISTConfig.from_dict(sidecar["model_config"]))
    cfg = RotTrainConfig(**sidecar["train_config"])
    data = load_data(cfg)
    ref = sidecar["reference_output"]
    with torch.no_grad():
        codes = model.encode(torch.from_numpy(data.images[ref["test_rows"]])).numpy()
    assert np.abs(codes - np.array(ref["codes"])).max() < 1e-4
    again = rot_mnist_metrics(model, data, data.rows("test"))
    assert again["test_accuracy"] == pytest.approx(m["test_accuracy"], abs=1e-9)
    assert again["reconstruction_mse_per_pixel"] == pytest.approx(m["reconstruction_mse_per_pixel"], rel=1e-4)


def test_registry_entry_encodes_decodes_and_orbits(tiny_rot_registry):
    from backend import views
    from backend.groups import CyclicShiftAction

    entry = tiny_rot_registry
    assert isinstance(entry.latent_action, CyclicShiftAction)
    keys = [s.key for s in entry.projections()]
    assert "orbit_alignment" in keys and "sort" not in keys
    enc = entry.encode_dataset(0)
    assert enc.stored.values.shape == (300, 4, 8) and len(enc.table) == 300
    # "rotated again" by multiples of 2 pi / N: the 90-degree ones are exact shifts of the stored codes
    k = enc.perms
    quarter = np.flatnonzero(k % 2 == 0)
    expect = np.stack([np.roll(enc.stored.values[i], k[i], axis=-1) for i in quarter])
    assert np.abs(enc.random.values[quarter] - expect).max() < 1e-4
    maps = views.compute_maps(enc, "stored", "group_max_pool", 0)
    assert maps.raw.coords.shape == (300, 2)
    decoded = entry.decode(enc.stored[[0, 1]])
    assert decoded[0].image.shape == (29, 29) and 0 <= decoded[0].prediction <= 9
    svg = entry.render(decoded[0])
    assert svg.startswith("<svg") and "data:image/png;base64," in svg
    # orbit view: 90-degree rotations keep an invariant projection fixed to float precision
    orb = views.orbit_view(entry, maps, enc, "stored", "group_max_pool", 5,
                           np.array([0.0, np.pi / 2, np.pi, 3 * np.pi / 2]))
    assert orb.invariance_error_abs < 1e-4 and orb.raw_spread > 1e-3
    with pytest.raises(ValueError):
        views.endpoint(entry, enc, "stored", text="not a number")
    with pytest.raises(ValueError):
        views.endpoint(entry, enc, "stored", text="100000")


def test_antialiased_arch_is_exactly_equivariant_to_quarter_turns_and_reloads(tmp_path):
    """The blur-pooled encoder keeps the centre pixel on the centre pixel: a 90-degree input
    rotation is a fibre shift by N/4 to float precision, and an eval-mode state_dict strict-loads."""
    from models.rot_mnist import load_rot_mnist

    cfg = RotMNISTConfig(n_rotations=8, latent_fields=3, widths=(2, 2, 3, 3), arch="antialiased")
    model = RotMNISTNet(cfg).eval()
    x = torch.rand(3, 1, 29, 29)
    with torch.no_grad():
        z, z90 = model.encode(x), model.encode(torch.rot90(x, 1, (2, 3)))
    errs = [float((z90 - torch.roll(z, s, 2)).abs().max()) for s in range(8)]
    assert min(errs) < 1e-4 * float(z.abs().max()) and max(errs) > 1e-3  # exact for one shift only
    torch.save(model.state_dict(), tmp_path / "w.pt")
    again = load_rot_mnist(tmp_path / "w.pt", cfg)
    with torch.no_grad():
        assert torch.allclose(again.encode(x), z)
    with pytest.raises(ValueError, match="arch"):
        RotMNISTNet(RotMNISTConfig(arch="pooled"))


def test_the_equivariance_penalty_adds_weight_times_the_relative_code_error_to_the_loss():
    from backend.data.mnist import rotate_batch
    from backend.train.rotmnist import _equivariance_regularised_loss
    from models.rot_mnist import rot_mnist_loss

    torch.manual_seed(0)
    model = RotMNISTNet(SMALL).eval()
    x = torch.rand(4, 1, 29, 29)
    y = torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        parts = _equivariance_regularised_loss(model, x, y, weight=3.0)
        r = torch.from_numpy(np.clip(rotate_batch(x.numpy(), np.full(4, np.pi / 4)), 0, 1).astype(np.float32))
        base = rot_mnist_loss(model, torch.cat([x, r]), torch.cat([y, y]))
        z0, z1 = model.encode(x), model.encode(r)
        equi = ((z1 - torch.roll(z0, 1, dims=2)) ** 2).sum((1, 2)) / (z0 ** 2).sum((1, 2))
    assert float(parts["equi"]) == pytest.approx(float(equi.mean()), rel=1e-4)
    assert float(parts["loss"]) == pytest.approx(float(base["loss"]) + 3.0 * float(equi.mean()), rel=1e-4)


def test_stage_chain_follows_the_init_weights_hash(tmp_path):
    """A fine-tuning stage records every earlier stage, found by the init file's SHA-256 (the
    ``--init-from`` path is often a temporary copy)."""
    import json

    from backend.train.rotmnist import STAGE_KEYS, stage_chain

    first = {k: None for k in STAGE_KEYS} | {"command": "stage 1", "weights_sha256": "aaa", "steps": 10}
    second = {"command": "stage 2", "weights_sha256": "bbb", "init_from_sha256": "aaa", "steps": 5,
              "fine_tuned_from": [first]}
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "m.json").write_text(json.dumps(second))
    (tmp_path / "a" / "broken.json").write_text("{not json")
    chain = stage_chain("bbb", [tmp_path / "missing", tmp_path / "a"])
    assert [c["command"] for c in chain] == ["stage 1", "stage 2"]
    assert set(chain[1]) == set(STAGE_KEYS) and chain[1]["init_from_sha256"] == "aaa"
    assert stage_chain("ccc", [tmp_path / "a"]) == []
