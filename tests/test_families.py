"""The family contract (:mod:`backend.families`): typed input-group elements and input actions.

Input actions are pure and batched, their elements say what they are (slot orders, radians), and
rotating a batch of images happens in one place (``ImageRotation.act``).
"""

import numpy as np
import pytest

from backend.data import qm9
from backend.data.mnist import disc_mask
from backend.families.base import Angles, Permutations
from backend.families.images import ImageRotation
from backend.families.molecules import GraphBatch, NodeRelabelling


def _graphs():
    return GraphBatch.from_graphs([qm9.smiles_to_graph(s) for s in ("CC(=O)O", "c1ccoc1", "CCN")])


def _images(b=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((b, 1, 29, 29)) * disc_mask(29)).astype(np.float32)


def test_elements_are_typed_read_only_and_round_trip_through_their_key():
    p = Permutations([[1, 0, 2], [2, 1, 0]])
    assert repr(p) == "Permutations([[1, 0, 2], [2, 1, 0]])"
    assert p.values.dtype == np.int64 and len(p) == 2 and p[1].values.tolist() == [[2, 1, 0]]
    assert Permutations(p.key()).values.tolist() == p.values.tolist()
    with pytest.raises(ValueError):
        p.values[0, 0] = 5
    a = Angles.from_degrees([90, 45])
    assert np.allclose(a.radians, [np.pi / 2, np.pi / 4]) and np.allclose(a.degrees, [90, 45])
    assert Angles(0.5).values.shape == (1,) and Angles(a.key()).values.tolist() == a.values.tolist()
    assert a.concat(Angles([1.0])).values.shape == (3,)
    with pytest.raises(TypeError):
        a.concat(p)


@pytest.mark.parametrize("bad", [[[0, 0, 1]], [[0, 1, 3]], [[[0, 1]]]])
def test_permutations_refuse_non_permutations(bad):
    with pytest.raises(ValueError):
        Permutations(bad)


@pytest.mark.parametrize("bad", [[np.nan], [np.inf]])
def test_angles_refuse_non_finite_values(bad):
    with pytest.raises(ValueError, match="finite"):
        Angles(bad)


def test_relabelling_is_p_a_pt_batched_broadcast_and_pure():
    action = NodeRelabelling(9)
    graphs = _graphs()
    before = graphs.bonds.copy()
    perms = action.random_elements(3, seed=4)
    moved = action.act(graphs, perms)
    assert np.array_equal(graphs.bonds, before)  # pure
    for b in range(3):
        ref = qm9.MolGraph(graphs.types[b], graphs.bonds[b], graphs.tiebreak[b]).permuted(perms.values[b])
        assert np.array_equal(moved.types[b], ref.types) and np.array_equal(moved.bonds[b], ref.bonds)
        p = perms.values[b]
        assert np.array_equal(moved.bonds[b], graphs.bonds[b][np.ix_(p, p)])  # P A P^T
    one = action.act(graphs[0], action.orbit_elements(5))  # one graph, five elements
    assert len(one) == 5 and np.array_equal(one.types[0], graphs.types[0])  # identity first
    assert len(action.act(graphs, perms[0])) == 3  # one element, every graph
    with pytest.raises(ValueError):
        action.act(graphs, action.random_elements(2, 0))
    assert np.array_equal(action.from_stored(action.to_stored(perms)).values, perms.values)
    assert action.label(action.parse("1 0 2 3 4 5 6 7 8")) == "relabel 1 0 2 3 4 5 6 7 8"
    assert action.parse(action.example_text()).values.shape == (1, 9)


def test_rotation_is_exact_at_quarter_turns_batched_and_round_trips_its_steps():
    action = ImageRotation(8)
    x = _images()
    before = x.copy()
    quarter = action.act(x, Angles.from_degrees([90, 180, 270]))
    assert np.array_equal(x, before)  # pure
    for b, k in enumerate((1, 2, 3)):
        assert np.array_equal(quarter[b, 0], np.rot90(x[b, 0], k))
    copies = action.act(x[:1], action.orbit_elements(8))  # one image, eight angles
    assert copies.shape == (8, 1, 29, 29) and np.array_equal(copies[0], x[0])
    assert action.act(x, Angles([np.pi])).shape == x.shape  # one angle, every image
    steps = action.to_stored(action.random_elements(50, seed=2))
    assert steps.dtype == np.int64 and set(steps) <= set(range(8))
    assert np.array_equal(steps, np.random.default_rng(2).integers(0, 8, 50))  # the cached "perms"
    assert np.array_equal(action.to_stored(action.from_stored(steps)), steps)
    assert action.label(action.parse("45°")) == "rotate 45°"
    with pytest.raises(ValueError, match="number of degrees"):
        action.parse("forty-five")


def test_group_elements_count_distinct_elements():
    import numpy as np

    from backend.families.base import Angles, Permutations

    orbit = Angles(2 * np.pi * np.arange(72) / 72)
    assert orbit.concat(Angles.from_degrees([45.0])).n_distinct() == 72  # 45° is one of the 72
    assert orbit.concat(Angles.from_degrees([44.0])).n_distinct() == 73
    assert Angles([0.0, 2 * np.pi, -2 * np.pi]).n_distinct() == 1  # equal modulo 2π
    assert Permutations([[0, 1, 2], [1, 0, 2], [0, 1, 2]]).n_distinct() == 2
