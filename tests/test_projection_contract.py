"""Every registered projection x every action it supports x every check its tags call for."""

import numpy as np
import pytest

from backend.groups import CyclicShiftAction, PermutationAction, TrivialAction
from backend.projections import (PROJECTIONS, ChannelSortProjection, FourierModulusProjection,
                                 GroupPoolingProjection, MaxFilteringProjection,
                                 OrbitAlignmentProjection, PoolingProjection, SortedCoorbitProjection,
                                 SortProjection, make_projection, projections_for)
from tests import projection_checks as pc

ACTIONS = [TrivialAction(5), PermutationAction(5, 1), PermutationAction(6, 1), PermutationAction(4, 3),
           PermutationAction(9, 1), CyclicShiftAction(3, 8), CyclicShiftAction(2, 4)]


def _cases():
    for action in ACTIONS:
        for spec in projections_for(action):
            proj = spec.make(0)
            tags = proj.tags(action)
            for check in pc.checks_for(tags, hasattr(proj, "section"),
                                       random_templates=getattr(proj, "_random_templates", False)):
                if check is pc.check_isometry_brute_force and not (
                        isinstance(action, PermutationAction) and action.n <= 7):
                    continue  # brute force over all n! permutations
                yield pytest.param(spec.key, action, check,
                                   id=f"{type(proj).__name__}-{spec.key}-{action!r}-{check.__name__}")


@pytest.mark.parametrize("key, action, check", list(_cases()))
def test_projection_contract(key, action, check, rng):
    err = check(make_projection(key, 0), action, rng)
    print(f"{key} {action!r} {check.__name__}: {err:.3e}")


def test_every_projection_is_covered():
    covered = {p.values[0] for p in _cases()}
    assert covered == set(PROJECTIONS)


def test_tags_as_documented():
    one, three = PermutationAction(9, 1), PermutationAction(9, 3)
    s = SortProjection()
    assert s.tags(one).isometric and s.tags(one).cross_section and s.tags(one).lossless
    assert not s.tags(three).isometric and s.tags(three).cross_section
    assert not ChannelSortProjection().tags(three).lossless
    pool = PoolingProjection(reduce="sum").tags(one)
    assert not (pool.lossless or pool.isometric or pool.cross_section) and pool.invariant


def test_cyclic_tags_as_documented():
    a = CyclicShiftAction(3, 8)
    oa = OrbitAlignmentProjection().tags(a)
    assert oa.invariant and oa.lossless and oa.cross_section and not oa.isometric
    for proj in (MaxFilteringProjection(), SortedCoorbitProjection(), FourierModulusProjection(),
                 GroupPoolingProjection(reduce="max"), GroupPoolingProjection(reduce="mean")):
        t = proj.tags(a)
        assert t.invariant and not (t.lossless or t.isometric or t.cross_section), proj


def test_projections_for_keeps_the_groups_apart():
    s_n = {s.key for s in projections_for(PermutationAction(9, 1))}
    c_n = {s.key for s in projections_for(CyclicShiftAction(16, 8))}
    assert s_n == {"sort", "channel_sort", "sum_pool", "mean_pool", "max_pool"}
    assert c_n == {"orbit_alignment", "max_filtering", "sorted_coorbits", "fourier_modulus",
                   "group_mean_pool", "group_max_pool"}
    assert [s.key for s in projections_for(CyclicShiftAction(2, 4))][0] == "orbit_alignment"  # UI default
    for spec in PROJECTIONS.values():
        assert spec.label and spec.description


def test_make_projection_seed_and_overrides():
    assert make_projection("max_filtering", 7).seed == 7
    p = make_projection("sorted_coorbits", 3, k=5, m=2)
    assert (p.k, p.m, p.seed) == (5, 2, 3)
    assert repr(make_projection("sort")) == "SortProjection()"  # old call, unchanged
    with pytest.raises(ValueError, match="no parameter"):
        make_projection("sort", 0, k=3)
    with pytest.raises(KeyError, match="orbit_alignment"):
        make_projection("nope")


def test_cyclic_projections_refuse_permutation_codes_and_vice_versa():
    from backend.groups import LatentCodes
    from backend.projections import UnsupportedActionError

    perm = LatentCodes(np.zeros((2, 3, 4), np.float32), PermutationAction(3, 4))
    cyc = LatentCodes(np.zeros((2, 3, 4), np.float32), CyclicShiftAction(3, 4))
    with pytest.raises(UnsupportedActionError):
        MaxFilteringProjection().fit(perm)
    with pytest.raises(UnsupportedActionError):
        SortProjection().fit(cyc)


def test_pooling_and_channel_sort_confuse_orbits_that_sorting_separates():
    a = PermutationAction(3, 2)
    from backend.groups import LatentCodes

    # same multiset per channel, different pairing of channels on nodes
    z1 = LatentCodes(np.array([[[0, 0], [1, 1], [2, 2]]], np.float32), a)
    z2 = LatentCodes(np.array([[[0, 1], [1, 0], [2, 2]]], np.float32), a)
    qd = a.quotient_distance(z1.values, z2.values)[0]
    assert qd > 0.5
    for proj in (ChannelSortProjection(), PoolingProjection(reduce="sum"), PoolingProjection(reduce="mean")):
        p = proj.fit(z1)
        assert np.allclose(p.transform(z1), p.transform(z2))  # confused
    s = SortProjection().fit(z1)
    assert np.linalg.norm(s.transform(z1) - s.transform(z2)) > 0.5


def test_pooling_rejects_unknown_reduce():
    from backend.groups import LatentCodes

    codes = LatentCodes(np.zeros((2, 3, 1), np.float32), PermutationAction(3, 1))
    with pytest.raises(ValueError, match="reduce"):
        PoolingProjection(reduce="median").fit(codes)


def test_plain_arrays_are_refused():
    with pytest.raises(TypeError, match="LatentCodes"):
        SortProjection().fit(np.zeros((2, 3, 1)))


def test_repr_and_feature_names():
    assert repr(PoolingProjection(reduce="max")) == "PoolingProjection(reduce='max')"
    from backend.groups import LatentCodes

    codes = LatentCodes(np.zeros((2, 3, 1), np.float32), PermutationAction(3, 1))
    assert list(SortProjection().fit(codes).get_feature_names_out()) == [
        "sortprojection0", "sortprojection1", "sortprojection2"]
