"""e2cnn 0.2.3 under NumPy 2 with models.e2cnn_compat: D_8 convolutions build and are equivariant."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from models import e2cnn_compat
from backend.data.mnist import disc_mask, rotate_batch

e2cnn_compat.install()
from e2cnn import gspaces  # noqa: E402
from e2cnn import nn as enn  # noqa: E402


@pytest.fixture(autouse=True)
def _compat():
    # pytest restores warnings.filters around each test; install() is idempotent and re-adds its filter
    e2cnn_compat.install()


def _uint8_warnings(records):
    return [w for w in records if "indexing with dtype torch.uint8" in str(w.message)]


@pytest.fixture(scope="module")
def d8_net():
    e2cnn_compat.install()  # module fixtures run before the autouse one
    torch.manual_seed(0)
    gs = gspaces.FlipRot2dOnR2(8)
    in_type = enn.FieldType(gs, [gs.trivial_repr])
    hid_type = enn.FieldType(gs, [gs.regular_repr] * 2)
    out_type = enn.FieldType(gs, [gs.regular_repr] * 2)
    net = enn.SequentialModule(
        enn.R2Conv(in_type, hid_type, kernel_size=5),  # trivial -> regular: needs the __hash__ patch
        enn.ReLU(hid_type),
        enn.R2Conv(hid_type, out_type, kernel_size=3),  # regular -> regular: needs the np.array patch
    ).eval()
    return gs, net


def _element(gs, flip, rotation):
    (g,) = [e for e in gs.fibergroup.elements if e == (flip, rotation)]
    return g


def _input(net):
    x = np.random.default_rng(0).random((2, 1, 29, 29)).astype(np.float32) * disc_mask(29)
    return enn.GeometricTensor(torch.from_numpy(x), net.in_type)


def test_install_is_idempotent_and_scoped():
    import e2cnn.group.groups.o2group as o2group
    import e2cnn.kernels.irreps_basis as irreps_basis
    import e2cnn.kernels.utils as kernel_utils

    hash_before = irreps_basis.R2FlipsDiscreteRotationsSolution.__hash__
    e2cnn_compat.install()
    e2cnn_compat.install()
    assert e2cnn_compat.is_installed()
    assert irreps_basis.R2FlipsDiscreteRotationsSolution.__hash__ is hash_before
    n_filters = sum(1 for f in warnings.filters if getattr(f[1], "pattern", None) == e2cnn_compat.UINT8_WARNING_MESSAGE)
    assert n_filters == 1
    # inside e2cnn: NumPy-1 meanings
    assert kernel_utils.np.float is float and o2group.np.float is float
    np.testing.assert_array_equal(kernel_utils.np.array(0.5, copy=False), np.asarray(0.5))
    a = np.arange(3.0)
    assert kernel_utils.np.array(a, copy=False) is a and kernel_utils.np.array(a) is not a
    assert kernel_utils.np.pi == np.pi and kernel_utils.np.cos is np.cos
    # outside e2cnn: NumPy untouched
    assert not hasattr(np, "float")
    with pytest.raises(ValueError):
        np.array(0.5, copy=False)


def test_d8_conv_builds(d8_net):
    gs, net = d8_net
    y = net(_input(net))
    assert y.tensor.shape == (2, 32, 23, 23)  # 2 regular D_8 fields = 2 x 16 channels; 29 - 4 - 2
    assert torch.isfinite(y.tensor).all()


@pytest.mark.parametrize("name, flip, rotation, spatial", [
    ("rot90", 0, 2, lambda t: torch.rot90(t, 1, dims=(-2, -1))),
    ("rot270", 0, 6, lambda t: torch.rot90(t, 3, dims=(-2, -1))),
    ("flip", 1, 0, lambda t: torch.flip(t, dims=[-1])),  # D_8's reflection (1, 0) mirrors left-right
])
def test_d8_equivariance(d8_net, name, flip, rotation, spatial):
    gs, net = d8_net
    g = _element(gs, flip, rotation)
    x = _input(net)
    x_g = spatial(x.tensor)
    # tie our spatial convention to e2cnn's: the input is a scalar field
    assert torch.equal(x.transform(g).tensor, x_g)
    with torch.no_grad():
        y = net(x)
        y_of_gx = net(enn.GeometricTensor(x_g, net.in_type)).tensor
        g_of_y = y.transform(g).tensor
    scale = y.tensor.abs().max()
    err = (y_of_gx - g_of_y).abs().max() / scale
    assert err < 1e-4, f"{name}: relative equivariance error {err:.2e}"
    # control: the fibre really moves, so comparing with the spatial transform alone fails
    assert (y_of_gx - spatial(y.tensor)).abs().max() / scale > 1e-2


def test_d8_equivariance_with_rotate_batch(d8_net):
    """The orbit view's exact 90 degree rotation is the group element (0, 2) of D_8."""
    gs, net = d8_net
    x = _input(net)
    x_rot = torch.from_numpy(rotate_batch(x.tensor.numpy(), np.full(2, np.pi / 2)))
    with torch.no_grad():
        y_rot = net(enn.GeometricTensor(x_rot, net.in_type)).tensor
        expected = net(x).transform(_element(gs, 0, 2)).tensor
    assert ((y_rot - expected).abs().max() / expected.abs().max()) < 1e-4


def test_o2_induced_representation_builds():
    """O(2) representation induced from SO(2) (uses np.float in e2cnn's o2group)."""
    gs = gspaces.FlipRot2dOnR2(-1, maximum_frequency=3)
    so2 = gs.fibergroup.subgroup((None, -1))[0]
    rep = gs.induced_repr((None, -1), so2.irrep(1))
    assert rep.size == 4
    conv = enn.R2Conv(enn.FieldType(gs, [gs.trivial_repr]), enn.FieldType(gs, [rep]), kernel_size=3)
    assert conv(enn.GeometricTensor(torch.zeros(1, 1, 9, 9), conv.in_type)).tensor.shape == (1, 4, 7, 7)


def test_uint8_warning_silenced_only_for_e2cnn():
    gs = gspaces.Rot2dOnR2(5)  # group sizes used nowhere else, so the filter cache is cold
    field_in = enn.FieldType(gs, [gs.trivial_repr])
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        enn.R2Conv(field_in, enn.FieldType(gs, [gs.regular_repr]), kernel_size=7)
        assert _uint8_warnings(records), "control: e2cnn does emit the uint8 warning"
        records.clear()
        e2cnn_compat.install()
        enn.R2Conv(field_in, enn.FieldType(gs, [gs.regular_repr] * 2), kernel_size=9)
        warnings.warn("indexing with dtype torch.uint8 is now deprecated (from elsewhere)", UserWarning)
    assert len(_uint8_warnings(records)) == 1  # only the one from this module
    assert records[0].filename == __file__
