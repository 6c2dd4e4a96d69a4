"""The plain CNN trained with rotation augmentation: checkpoint, registry entry, trivial latent action."""

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
