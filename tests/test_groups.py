"""Group actions: laws (hypothesis), exact alignment, quotient distance, typed codes."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from backend.groups import ActionMismatchError, LatentCodes, PermutationAction


@st.composite
def codes_and_perms(draw, max_n=7, max_d=3):
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(1, max_d))
    b = draw(st.integers(1, 4))
    z = draw(arrays(np.float64, (b, n, d), elements=st.floats(-10, 10, width=32)))
    perms = [draw(st.permutations(list(range(n)))) for _ in range(3)]
    return PermutationAction(n, d), z, [np.array(p) for p in perms]


@settings(max_examples=60, deadline=None)
@given(codes_and_perms())
def test_action_laws(case):
    a, z, (g, h, _) = case
    assert np.array_equal(a.act(z, a.identity), z)
    assert np.array_equal(a.act(a.act(z, h), g), a.act(z, a.compose(g, h)))
    assert np.array_equal(a.act(a.act(z, g), a.inverse(g)), z)
    # batched elements agree with one element for everyone
    gb = np.broadcast_to(g, (len(z), a.n))
    assert np.array_equal(a.act(z, gb), a.act(z, g))


@settings(max_examples=40, deadline=None)
@given(codes_and_perms(max_n=6))
def test_align_is_exact_against_brute_force(case):
    a, z, (g, _, _) = case
    ref = a.act(z, g) + 0.01
    aligned, perm = a.align(z, ref)
    assert np.array_equal(aligned, a.act(z, perm))
    perms = np.array(list(itertools.permutations(range(a.n))))
    for b in range(len(z)):
        brute = min(np.sum((z[b][p] - ref[b]) ** 2) for p in perms)
        assert np.sum((aligned[b] - ref[b]) ** 2) == pytest.approx(brute, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(codes_and_perms(max_n=6))
def test_quotient_distance_is_a_metric_on_orbits(case):
    a, z, (g, h, k) = case
    rng = np.random.default_rng(0)
    w = z + rng.normal(size=z.shape)
    v = z - rng.normal(size=z.shape)
    assert np.allclose(a.quotient_distance(z, a.act(z, g)), 0, atol=1e-6)  # zero on an orbit
    d1 = a.quotient_distance(z, w)
    assert np.allclose(d1, a.quotient_distance(w, z), atol=1e-5)  # symmetric
    assert np.allclose(d1, a.quotient_distance(a.act(z, g), a.act(w, h)), atol=1e-5)  # well defined
    assert (d1 <= np.linalg.norm((z - w).reshape(len(z), -1), axis=1) + 1e-6).all()
    assert (d1 <= a.quotient_distance(z, v) + a.quotient_distance(v, w) + 1e-5).all()  # triangle


def test_testing_elements_are_permutations():
    a = PermutationAction(9, 1)
    els = a.testing_elements(np.random.default_rng(0))
    assert (np.sort(els, axis=1) == np.arange(9)).all()
    assert len({tuple(e) for e in els}) == len(els)


def test_latent_codes_carry_action_and_refuse_mixing():
    a, b = PermutationAction(3, 1), PermutationAction(3, 2)
    z = LatentCodes(np.arange(6, dtype=np.float32).reshape(2, 3, 1), a, mask=np.ones((2, 3), bool))
    assert z.flat().shape == (2, 3) and not z.flat().flags.writeable
    with pytest.raises(ValueError):
        z.values[0, 0, 0] = 5
    with pytest.raises(ActionMismatchError):
        LatentCodes(np.zeros((2, 3, 1)), b)
    with pytest.raises(ActionMismatchError):
        z + LatentCodes(np.zeros((2, 3, 2)), b)
    with pytest.raises(IndexError):
        z[0, 1]
    assert len(z[[1]]) == 1 and len(z[0]) == 1
    moved = z.act(np.array([2, 0, 1]))
    assert moved.values[0, :, 0].tolist() == [2, 0, 1] and moved.mask.shape == (2, 3)
    half = 0.5 * (z + z)
    assert np.allclose(half.values, z.values)


def test_actions_of_different_groups_never_mix():
    """Same code shape (3, 4), different groups: unequal, and codes refuse to combine."""
    from backend.groups import CyclicShiftAction

    perm, cyc = PermutationAction(3, 4), CyclicShiftAction(3, 4)
    assert perm.code_shape == cyc.code_shape and perm != cyc and hash(perm) != hash(cyc)
    z = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ActionMismatchError):
        LatentCodes(z, perm) + LatentCodes(z, cyc)
