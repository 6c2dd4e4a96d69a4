"""C_N on regular fields (B, c, N): the action's laws, FFT alignment against brute force, and the
C_N invariant projections against slow Python references and constructed counterexamples."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from backend.groups import ActionMismatchError, CyclicShiftAction, LatentCodes
from backend.projections import (FourierModulusProjection, GroupPoolingProjection,
                                 InvariantProjectionMixin, MaxFilteringProjection,
                                 OrbitAlignmentProjection, ProjectionTags, SortedCoorbitProjection)
from backend.projections.cyclic import _max_rows_per_chunk, _sorting_network
from tests import projection_checks as pc

SHAPES = [(1, 1), (1, 2), (1, 4), (2, 3), (3, 8), (2, 5), (4, 6), (16, 8)]


@st.composite
def cyclic_codes(draw, max_c=4, max_n=9, n_codes=2):
    c = draw(st.integers(1, max_c))
    n = draw(st.integers(1, max_n))
    b = draw(st.integers(1, 4))
    zs = [draw(arrays(np.float64, (b, c, n), elements=st.floats(-10, 10, width=32)))
          for _ in range(n_codes)]
    shifts = draw(st.lists(st.integers(-20, 20), min_size=3, max_size=3))
    return CyclicShiftAction(c, n), zs, shifts


def brute_shift_distances(z1, z2):
    """||z1[b] - roll(z2[b], k)|| for every k, by Python loops: (B, N)."""
    n = z1.shape[-1]
    return np.array([[np.linalg.norm(z1[b] - np.roll(z2[b], k, axis=-1)) for k in range(n)]
                     for b in range(len(z1))])


# ---------------------------------------------------------------- the action

def test_convention_is_np_roll_and_documented_example():
    a = CyclicShiftAction(2, 5)
    z = np.arange(20, dtype=float).reshape(2, 2, 5)
    for k in (-7, -1, 0, 1, 3, 5, 12):
        assert np.array_equal(a.act(z, k), np.roll(z, k, axis=-1))
        assert np.array_equal(a.act(z, np.array(k)), np.roll(z, k, axis=-1))
    out = a.act(z, 1)
    assert out[0, 0].tolist() == [4, 0, 1, 2, 3]  # out[..., j] = z[..., j - 1]
    per = a.act(z, np.array([1, 3]))
    assert np.array_equal(per[0], np.roll(z[0], 1, -1)) and np.array_equal(per[1], np.roll(z[1], 3, -1))


@settings(max_examples=60, deadline=None)
@given(cyclic_codes(n_codes=1))
def test_action_laws(case):
    a, (z,), (g, h, _) = case
    assert np.array_equal(a.act(z, a.identity), z)
    assert np.array_equal(a.act(a.act(z, h), g), a.act(z, a.compose(g, h)))
    assert np.array_equal(a.act(a.act(z, g), a.inverse(g)), z)
    assert a.compose(g, a.inverse(g)) == 0
    gb = np.full(len(z), g)
    assert np.array_equal(a.act(z, gb), a.act(z, g))  # one per code == one for all
    hb = np.arange(len(z)) + h
    assert np.array_equal(a.act(a.act(z, hb), gb), a.act(z, a.compose(gb, hb)))


def test_elements_and_errors():
    a = CyclicShiftAction(3, 8)
    assert np.array_equal(a.testing_elements(), np.arange(8))
    rng = np.random.default_rng(0)
    els = a.random_element(rng, 500)
    assert els.shape == (500,) and set(els.tolist()) == set(range(8))
    assert 0 <= a.random_element(rng) < 8
    z = np.zeros((4, 3, 8))
    with pytest.raises(TypeError):
        a.act(z, 1.5)
    with pytest.raises(ValueError, match="shifts for"):
        a.act(z, np.arange(3))
    with pytest.raises(ActionMismatchError):
        a.act(np.zeros((4, 8, 3)), 1)
    with pytest.raises(ValueError):
        CyclicShiftAction(0, 4)
    assert repr(a) == "CyclicShiftAction(c=3, N=8)" and a.name == "C_N"
    assert a == CyclicShiftAction(3, 8) and hash(a) == hash(CyclicShiftAction(3, 8))
    assert a != CyclicShiftAction(3, 4) and len({a, CyclicShiftAction(3, 8)}) == 1


@settings(max_examples=80, deadline=None)
@given(cyclic_codes())
def test_fft_distances_equal_brute_force(case):
    a, (z1, z2), _ = case
    brute = brute_shift_distances(z1, z2)
    scale = 1 + (z1 ** 2).sum() + (z2 ** 2).sum()
    fft = a.all_shift_distances(z1, z2)
    assert fft.shape == (len(z1), a.N)
    assert np.allclose(fft ** 2, brute ** 2, atol=1e-9 * scale)
    qd = a.quotient_distance(z1, z2)
    assert np.allclose(qd ** 2, brute.min(axis=1) ** 2, atol=1e-9 * scale)


@pytest.mark.parametrize("c, n", SHAPES)
def test_quotient_distance_and_cross_correlation_seeded(c, n):
    rng = np.random.default_rng(c * 100 + n)
    a = CyclicShiftAction(c, n)
    z1, z2 = rng.normal(size=(6, c, n)), rng.normal(size=(6, c, n))
    brute = brute_shift_distances(z1, z2)
    assert np.abs(a.all_shift_distances(z1, z2) - brute).max() < 1e-9
    assert np.abs(a.quotient_distance(z1, z2) - brute.min(1)).max() < 1e-12
    corr = np.array([[np.sum(np.roll(z2[b], k, -1) * z1[b]) for k in range(n)] for b in range(6)])
    assert np.abs(a.cross_correlation(z2, z1) - corr).max() < 1e-9
    # one shared reference (c, N) broadcasts
    shared = np.array([[np.sum(np.roll(z2[b], k, -1) * z1[0]) for k in range(n)] for b in range(6)])
    assert np.abs(a.cross_correlation(z2, z1[0]) - shared).max() < 1e-9


@settings(max_examples=60, deadline=None)
@given(cyclic_codes())
def test_align_lands_on_the_orbit_and_is_optimal(case):
    a, (z, ref), (g, _, _) = case
    aligned, k = a.align(z, ref)
    assert k.shape == (len(z),) and ((0 <= k) & (k < a.N)).all()
    assert np.array_equal(aligned, a.act(z, k))  # on the orbit of z, exactly
    brute = brute_shift_distances(ref, z).min(1)
    scale = 1 + (z ** 2).sum() + (ref ** 2).sum()
    assert np.allclose(((aligned - ref) ** 2).sum((1, 2)), brute ** 2, atol=1e-9 * scale)
    # aligning a shifted copy of the reference recovers the reference exactly
    back, _ = a.align(a.act(ref, g), ref)
    assert (((back - ref) ** 2).sum((1, 2)) <= 1e-8 * (1 + (ref ** 2).sum((1, 2)))).all()


def test_latent_codes_with_cyclic_action():
    a = CyclicShiftAction(2, 4)
    z = LatentCodes(np.arange(16, dtype=np.float32).reshape(2, 2, 4), a)
    assert z.mask is None and z.flat().shape == (2, 8)
    assert np.array_equal(z.act(1).values, np.roll(z.values, 1, -1))
    assert np.array_equal(z.act(np.array([0, 2])).values[1], np.roll(z.values[1], 2, -1))
    with pytest.raises(ActionMismatchError):
        LatentCodes(np.zeros((2, 4, 2)), a)


# ---------------------------------------------------------- slow references

def _codes(rng, b, c, n):
    return LatentCodes(rng.normal(size=(b, c, n)).astype(np.float32), CyclicShiftAction(c, n))


@pytest.mark.parametrize("c, n", [(1, 4), (3, 8), (2, 5), (4, 6)])
def test_projections_match_slow_python_references(c, n):
    rng = np.random.default_rng(7)
    codes = _codes(rng, 5, c, n)
    v = codes.values.astype(np.float64)
    mf = MaxFilteringProjection(k=6, seed=2).fit(codes)
    w = mf.templates_.astype(np.float64)
    coorbit = np.array([[[np.sum(w[i] * np.roll(v[b], j, -1)) for j in range(n)] for i in range(6)]
                        for b in range(5)])  # (B, k, N), <w_i, g_j . z_b>
    assert np.abs(mf.coorbits(codes) - coorbit).max() < 1e-5
    assert np.abs(mf.transform(codes) - coorbit.max(-1)).max() < 1e-5
    sc = SortedCoorbitProjection(k=6, seed=2).fit(codes)
    want = np.array([[sorted(coorbit[b, i], reverse=True) for i in range(6)] for b in range(5)])
    # rank-major: column r * k + i is the r-th largest value for template i
    assert np.abs(sc.transform(codes) - want.transpose(0, 2, 1).reshape(5, -1)).max() < 1e-5
    # Fourier modulus from the DFT's definition, with the documented weights
    fm = FourierModulusProjection().fit(codes)
    dft = np.array([[[abs(sum(v[b, ch, t] * np.exp(-2j * np.pi * m * t / n) for t in range(n))) / np.sqrt(n)
                      * (1.0 if m == 0 or 2 * m == n else np.sqrt(2.0)) for m in range(n // 2 + 1)]
                     for ch in range(c)] for b in range(5)])
    assert np.abs(fm.transform(codes) - dft.reshape(5, -1)).max() < 1e-5
    for reduce, fn in (("max", max), ("mean", lambda x: sum(x) / len(x))):
        pool = GroupPoolingProjection(reduce=reduce).fit(codes).transform(codes)
        assert np.abs(pool - [[fn(list(v[b, ch])) for ch in range(c)] for b in range(5)]).max() < 1e-5
    # orbit alignment: the shift that maximises the inner product with the reference
    oa = OrbitAlignmentProjection().fit(codes)
    for b in range(5):
        scores = [np.sum(np.roll(v[b], j, -1) * oa.reference_) for j in range(n)]
        assert np.array_equal(oa.transform(codes[b])[0],
                              np.roll(codes.values[b], int(np.argmax(scores)), -1).ravel())


def test_chunked_coorbits_agree_with_one_code_at_a_time():
    rng = np.random.default_rng(3)
    codes = _codes(rng, 300, 2, 8)
    mf = MaxFilteringProjection(k=2000).fit(codes)
    assert _max_rows_per_chunk(2000 * (8 + 2)) < 150  # so 300 codes take several chunks
    full = mf.transform(codes)
    singles = np.concatenate([mf.transform(codes[i]) for i in (0, 150, 299)])
    assert full.shape == (300, 2000)
    assert np.abs(full[[0, 150, 299]] - singles).max() < 1e-5


# ----------------------------------------------- invariance and separation

@settings(max_examples=30, deadline=None)
@given(cyclic_codes(n_codes=1))
def test_fourier_modulus_invariant_norm_preserving_and_1_lipschitz(case):
    a, (z,), (g, _, _) = case
    codes = LatentCodes(z, a)
    fm = FourierModulusProjection().fit(codes)
    s = fm.transform(codes)
    scale = 1e-5 * (1 + np.abs(z).max())
    assert np.abs(fm.transform(codes.act(g)) - s).max() <= scale
    assert np.allclose(np.linalg.norm(s, axis=1), np.linalg.norm(z.reshape(len(z), -1), axis=1),
                       atol=scale * 10, rtol=1e-5)  # Parseval
    other = LatentCodes(z[::-1] + 1.0, a)
    lhs = np.linalg.norm(s - fm.transform(other), axis=1)
    assert (lhs <= a.quotient_distance(codes.values, other.values) + scale * 10).all()


@settings(max_examples=30, deadline=None)
@given(cyclic_codes(n_codes=1, max_c=3, max_n=8))
def test_template_projections_invariant(case):
    a, (z,), (g, h, _) = case
    codes = LatentCodes(z, a)
    per_code = np.mod(np.arange(len(z)) * h + g, a.N)
    for proj in (MaxFilteringProjection(k=5, seed=1), SortedCoorbitProjection(k=5, seed=1),
                 SortedCoorbitProjection(k=3, m=min(2, a.N))):
        p = proj.fit(codes)
        base = p.transform(codes)
        tol = 1e-5 * (1 + np.abs(z).max())
        assert np.abs(p.transform(codes.act(g)) - base).max() <= tol
        assert np.abs(p.transform(codes.act(per_code)) - base).max() <= tol


def test_sorted_coorbits_top_one_is_max_filtering_and_descending():
    codes = _codes(np.random.default_rng(1), 20, 3, 8)
    mf = MaxFilteringProjection(k=10, seed=4).fit(codes).transform(codes)
    top1 = SortedCoorbitProjection(k=10, m=1, seed=4).fit(codes).transform(codes)
    assert np.allclose(mf, top1, atol=1e-5)
    full = SortedCoorbitProjection(k=10, seed=4).fit(codes).transform(codes).reshape(20, 8, 10)
    assert (np.diff(full, axis=1) <= 0).all() and np.allclose(full[:, 0], mf, atol=1e-5)
    assert (full[:, 0] - full[:, -1] > 1e-3).all()  # a real spread, not N copies of one value
    # the sorted values are exactly the coorbit's values (the network only moves numbers)
    coorbit = MaxFilteringProjection(k=10, seed=4).fit(codes).coorbits(codes)  # (B, k, N)
    assert np.array_equal(np.sort(full.transpose(0, 2, 1), axis=2), np.sort(coorbit, axis=2))


@pytest.mark.parametrize("n", range(0, 11))
def test_sorting_network_sorts_everything(n):
    """0-1 principle: a comparator network that sorts all 2^n 0/1 inputs sorts every input."""
    bits = ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1).astype(np.int8)  # (2^n, n)
    v = bits.T.copy()
    for i, j in _sorting_network(n):
        lo, hi = np.minimum(v[i], v[j]), np.maximum(v[i], v[j])
        v[i], v[j] = lo, hi
    assert np.array_equal(v.T, np.sort(bits, axis=1))
    assert all(0 <= i < j < n for i, j in _sorting_network(n))


def test_max_filtering_separates_orbits_that_pooling_confuses():
    a = CyclicShiftAction(1, 4)
    z1 = LatentCodes(np.array([[[1, 2, 0, 0]]], np.float32), a)
    z2 = LatentCodes(np.array([[[1, 0, 2, 0]]], np.float32), a)
    qd = a.quotient_distance(z1.values, z2.values)[0]
    assert qd == pytest.approx(np.sqrt(2))  # different orbits
    for reduce in ("max", "mean"):
        p = GroupPoolingProjection(reduce=reduce).fit(z1)
        assert np.array_equal(p.transform(z1), p.transform(z2))  # confused
    for seed in range(5):
        mf = MaxFilteringProjection(seed=seed).fit(z1)  # k = 2 c N = 8
        assert mf.templates_.shape == (8, 1, 4)
        assert np.linalg.norm(mf.transform(z1) - mf.transform(z2)) > 0.05 * qd, seed
        sc = SortedCoorbitProjection(seed=seed).fit(z1)
        assert np.linalg.norm(sc.transform(z1) - sc.transform(z2)) > 0.05 * qd, seed
    oa = OrbitAlignmentProjection().fit(LatentCodes(np.concatenate([z1.values, z2.values]), a))
    assert np.linalg.norm(oa.transform(z1) - oa.transform(z2)) >= qd - 1e-6


def test_fourier_modulus_confuses_reflections_and_relative_phases():
    a1 = CyclicShiftAction(1, 4)
    z = LatentCodes(np.array([[[1, 2, 0, 0]]], np.float32), a1)
    rev = LatentCodes(z.values[:, :, ::-1], a1)  # [0, 0, 2, 1]: not a shift of z
    assert a1.quotient_distance(z.values, rev.values)[0] > 1
    a2 = CyclicShiftAction(2, 4)
    p1 = LatentCodes(np.array([[[1, 0, 0, 0], [1, 0, 0, 0]]], np.float32), a2)
    p2 = LatentCodes(np.array([[[1, 0, 0, 0], [0, 1, 0, 0]]], np.float32), a2)  # relative phase
    assert a2.quotient_distance(p1.values, p2.values)[0] > 1
    for x, y in ((z, rev), (p1, p2)):
        fm = FourierModulusProjection().fit(x)
        assert np.allclose(fm.transform(x), fm.transform(y), atol=1e-6)  # confused
        mf = MaxFilteringProjection().fit(x)
        assert np.linalg.norm(mf.transform(x) - mf.transform(y)) > 0.05  # separated


# ------------------------------------------------------------ orbit alignment

def test_orbit_alignment_mean_reference_is_a_fixed_point():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1, 3, 8))
    a = CyclicShiftAction(3, 8)
    x = base + 0.1 * rng.normal(size=(200, 3, 8))
    x = a.act(x, rng.integers(0, 8, 200))  # a rotated data set around one code
    codes = LatentCodes(x, a)
    oa = OrbitAlignmentProjection(reference="mean").fit(codes)
    assert 1 <= oa.n_iter_ <= oa.max_iter
    sec = oa.section(codes).values.astype(np.float64)
    assert np.abs(sec.mean(0) - oa.reference_).max() < 1e-5  # the mean of the aligned codes
    assert a.quotient_distance(oa.reference_[None], base)[0] < 0.1  # recovers the common code
    # every aligned code sits at the same phase as the reference: rotations undone
    assert np.allclose(a.align(sec, oa.reference_)[1], 0)


def test_orbit_alignment_subsample_is_seeded_and_bounds_the_fit():
    rng = np.random.default_rng(4)
    codes = _codes(rng, 400, 2, 6)
    small = OrbitAlignmentProjection(subsample=50, seed=1).fit(codes)
    again = OrbitAlignmentProjection(subsample=50, seed=1).fit(codes)
    full = OrbitAlignmentProjection(subsample=None, seed=1).fit(codes)
    assert np.array_equal(small.reference_, again.reference_)
    assert not np.allclose(small.reference_, full.reference_)  # made of other codes
    picked = np.random.default_rng(1).permutation(400)[:50]
    sec = small.section(codes[picked]).values.astype(np.float64)
    assert small.n_iter_ < small.max_iter  # converged: the mean of exactly those 50 aligned codes
    assert np.abs(sec.mean(0) - small.reference_).max() < 1e-5


def test_orbit_alignment_first_reference_skips_symmetric_codes():
    a = CyclicShiftAction(2, 4)
    sym = np.array([[[1, 0, 1, 0], [2, 3, 2, 3]]], np.float32)  # period 2
    rng = np.random.default_rng(0)
    x = np.concatenate([sym, np.zeros((1, 2, 4), np.float32),
                        rng.normal(size=(3, 2, 4)).astype(np.float32)])
    oa = OrbitAlignmentProjection(reference="first").fit(LatentCodes(x, a))
    assert np.array_equal(oa.reference_, x[2]) and oa.n_iter_ == 0


def test_orbit_alignment_section_on_symmetric_codes_and_ties():
    """A shift-symmetric code ties several shifts that give one point: the section is still invariant."""
    a = CyclicShiftAction(2, 6)
    rng = np.random.default_rng(5)
    oa = OrbitAlignmentProjection().fit(LatentCodes(rng.normal(size=(50, 2, 6)), a))
    period3 = np.tile(rng.normal(size=(1, 2, 3)), (1, 1, 2))
    zeros = np.zeros((1, 2, 6))
    codes = LatentCodes(np.concatenate([period3, zeros]), a)
    sec = oa.section(codes).values
    for g in range(6):
        assert np.array_equal(oa.section(codes.act(g)).values, sec)
        # deterministic shift: the smallest of the tied ones (period 3 -> in [0, 3); zeros -> 0)
        k = oa.alignment_shifts(codes.act(g))
        assert k[0] < 3 and k[1] == 0, (g, k)


def test_best_shifts_breaks_near_ties_towards_the_smallest_shift():
    a = CyclicShiftAction(1, 4)
    corr = np.array([[1.0, 3.0, 3.0 + 1e-14, 0.5],
                     [3.0 - 1e-14, 1.0, 0.0, 3.0],
                     [0.0, 1.0, 2.0, 3.0],
                     [0.0, 0.0, 0.0, 0.0]])
    assert a.best_shifts(corr).tolist() == [1, 0, 3, 0]
    assert a.best_shifts(corr, rtol=0.0).tolist() == [2, 3, 3, 0]


def test_orbit_alignment_falls_back_when_all_codes_are_symmetric():
    a = CyclicShiftAction(2, 4)
    const = LatentCodes(np.ones((5, 2, 4)), a)
    oa = OrbitAlignmentProjection(seed=3).fit(const)
    want = np.random.default_rng(3).standard_normal((2, 4))
    assert np.array_equal(oa.reference_, want)
    codes = _codes(np.random.default_rng(0), 10, 2, 4)
    for g in range(4):
        assert np.array_equal(oa.transform(codes.act(g)), oa.transform(codes))


def test_orbit_alignment_section_is_decodable_codes():
    codes = _codes(np.random.default_rng(2), 30, 3, 8)
    oa = OrbitAlignmentProjection().fit(codes)
    sec = oa.section(codes)
    assert isinstance(sec, LatentCodes) and sec.action == codes.action
    shifts = oa.alignment_shifts(codes)
    assert np.array_equal(sec.values, codes.act(shifts).values)
    assert np.allclose(codes.action.quotient_distance(codes.values, sec.values), 0)


# ------------------------------------------------------------------- errors

@pytest.mark.parametrize("proj, match", [
    (GroupPoolingProjection(reduce="median"), "reduce"),
    (OrbitAlignmentProjection(reference="median"), "reference"),
    (OrbitAlignmentProjection(max_iter=0), "max_iter"),
    (OrbitAlignmentProjection(subsample=0), "subsample"),
    (MaxFilteringProjection(k=0), "k must"),
    (SortedCoorbitProjection(m=9), "m must"),
    (SortedCoorbitProjection(m=0), "m must"),
])
def test_bad_parameters_raise_at_fit(proj, match):
    codes = _codes(np.random.default_rng(0), 3, 2, 8)
    with pytest.raises(ValueError, match=match):
        proj.fit(codes)


@pytest.mark.parametrize("proj", [GroupPoolingProjection(), FourierModulusProjection(),
                                  OrbitAlignmentProjection(), MaxFilteringProjection(),
                                  SortedCoorbitProjection()])
def test_not_fitted_and_wrong_action(proj):
    codes = _codes(np.random.default_rng(0), 3, 2, 8)
    with pytest.raises(NotFittedError):
        proj.transform(codes)
    proj.fit(codes)
    with pytest.raises(Exception, match="fitted on"):
        proj.transform(_codes(np.random.default_rng(0), 3, 2, 4))


def test_default_k_is_twice_the_code_dimension():
    codes = _codes(np.random.default_rng(0), 4, 3, 8)
    assert MaxFilteringProjection().fit(codes).transform(codes).shape == (4, 48)
    assert SortedCoorbitProjection().fit(codes).transform(codes).shape == (4, 48 * 8)
    assert SortedCoorbitProjection(k=4, m=3).fit(codes).transform(codes).shape == (4, 12)
    t = MaxFilteringProjection(k=5, seed=9).fit(codes).templates_
    assert t.shape == (5, 3, 8) and np.allclose(np.linalg.norm(t.reshape(5, -1), axis=1), 1)


# -------------------------------------------- the contract checks can fail

class _Flatten(InvariantProjectionMixin, BaseEstimator):
    """A deliberately wrong projection: raw codes, claimed to be an invariant cross-section."""

    supported_actions = (CyclicShiftAction,)

    def _tags(self, action):
        return ProjectionTags(invariant=True, cross_section=True, lossless=True)

    def _n_out(self, action):
        return action.c * action.N

    def section(self, codes):
        return self._check_fitted(codes)

    def transform(self, codes):
        return self.section(codes).flat().copy()


class _BadAlignment(OrbitAlignmentProjection):
    """Section off the orbit: aligned codes reversed along the fibre."""

    def section(self, codes):
        sec = super().section(codes)
        return LatentCodes(sec.values[:, :, ::-1], sec.action)


class _SeededPooling(GroupPoolingProjection):
    """Has a seed parameter that changes nothing: check_seed_matters must notice."""

    def __init__(self, *, reduce: str = "max", seed: int = 0):
        self.reduce = reduce
        self.seed = seed


NONZERO = r"(?!0\.00e\+00)"


def test_contract_checks_catch_broken_projections(rng):
    a = CyclicShiftAction(3, 8)
    with pytest.raises(AssertionError, match="invariance error"):
        pc.check_invariance(_Flatten(), a, rng)
    with pytest.raises(AssertionError, match="drift " + NONZERO):
        pc.check_cross_section(_Flatten(), a, rng)
    with pytest.raises(AssertionError, match="orbit " + NONZERO):
        pc.check_cross_section(_BadAlignment(), a, rng)
    with pytest.raises(AssertionError, match="seed 0 vs 1"):
        pc.check_seed_matters(_SeededPooling(), a, rng)
    pc.check_cross_section(OrbitAlignmentProjection(), a, rng)  # the real one passes
