"""The valence-constrained decode (backend/decoding/molecule.py): valid, optimal, honest about limits."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.data.qm9 import graph_to_molecule
from backend.decoding import (
    ATOM_CHARGES,
    ATOM_VALENCES,
    STATUS_FALLBACK,
    STATUS_OPTIMAL,
    STATUS_TIME_LIMIT,
    constrained_decode,
    constrained_decode_logits,
    constraint_violations,
    log_likelihood,
)
from models.graph_vae import reconstruction_nll

torch.set_num_threads(1)

C, N, O, F, NP, OM, CM, NM = range(1, 9)  # type codes: C N O F N+ O- C- N-
STRONG = 12.0


def random_logits(seed: int, n: int = 9, scale: float = 3.0, exists_shift: float = 0.0) -> dict:
    """Random symmetric decoder logits for one code (numpy)."""
    rng = np.random.default_rng(seed)
    edge = rng.normal(size=(n, n)) * scale
    bond = rng.normal(size=(n, n, 3)) * scale
    return {"exists": rng.normal(size=n) * scale + exists_shift,
            "atom": rng.normal(size=(n, 8)) * scale,
            "edge": (edge + edge.T) / 2,
            "bond": (bond + bond.transpose(1, 0, 2)) / 2}


def logits_for(types, bonds, strength: float = STRONG) -> dict:
    """Logits that put probability ~1 on the graph (types, bonds): the argmax decodes it."""
    types, bonds = np.asarray(types), np.asarray(bonds)
    n = len(types)
    exists = np.where(types > 0, strength, -strength).astype(float)
    atom = np.zeros((n, 8))
    atom[types > 0, types[types > 0] - 1] = strength
    edge = np.where(bonds > 0, strength, -strength).astype(float)
    bond = np.zeros((n, n, 3))
    i, j = np.nonzero(bonds)
    bond[i, j, bonds[i, j] - 1] = strength
    return {"exists": exists, "atom": atom, "edge": edge, "bond": bond}


def graph(n: int, atoms: dict, edges: dict):
    """Dense ``(types, bonds)`` from {slot: type} and {(i, j): order}."""
    types = np.zeros(n, np.int64)
    bonds = np.zeros((n, n), np.int64)
    for slot, t in atoms.items():
        types[slot] = t
    for (i, j), order in edges.items():
        bonds[i, j] = bonds[j, i] = order
    return types, bonds


def net_charge(types) -> int:
    return int(np.array((0,) + ATOM_CHARGES)[np.asarray(types)].sum())


def assert_valid(res):
    mol = graph_to_molecule(res.types, res.bonds)
    assert mol.valid, (mol.reason, res.types, res.bonds)
    assert constraint_violations(res.types, res.bonds) == []
    assert net_charge(res.types) == 0
    return mol


def test_valences_follow_rdkit_isoelectronic_rule():
    assert ATOM_VALENCES == (4, 3, 2, 1, 4, 1, 3, 2)
    assert ATOM_CHARGES == (0, 0, 0, 0, 1, -1, -1, -1)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 9), scale=st.floats(0.3, 8.0),
       shift=st.floats(-4.0, 4.0))
def test_random_logits_decode_to_valid_optimal_molecules(seed, n, scale, shift):
    lg = random_logits(seed, n, scale, shift)
    res = constrained_decode_logits(lg, time_limit=10.0)
    assert_valid(res)
    assert res.status == STATUS_OPTIMAL and res.optimal
    assert res.types.shape == (n,) and res.bonds.shape == (n, n)
    # the MILP objective is the log-likelihood of the graph it returns
    assert res.objective == pytest.approx(res.log_likelihood, abs=1e-6)
    assert res.log_likelihood == pytest.approx(log_likelihood(lg, res.types, res.bonds), abs=1e-9)
    # and no simple valid alternative is more probable: single neutral atoms, a carbon chain
    tol = 1e-5 * (1 + abs(res.log_likelihood))
    for slot, t in itertools.product(range(n), (C, N, O, F)):
        alt = graph(n, {slot: t}, {})
        assert res.log_likelihood >= log_likelihood(lg, *alt) - tol
    chain = graph(n, {i: C for i in range(n)}, {(i, i + 1): 1 for i in range(n - 1)})
    assert res.log_likelihood >= log_likelihood(lg, *chain) - tol


def test_matches_brute_force_optimum_on_three_slots():
    """Enumerate all 9^3 * 4^3 labelled graphs on 3 slots; the MILP finds the best valid one."""
    n = 3
    types = np.array(list(itertools.product(range(9), repeat=n)))  # (729, 3)
    orders = np.array(list(itertools.product(range(4), repeat=3)))  # (64, 3) for pairs 01 02 12
    pairs = [(0, 1), (0, 2), (1, 2)]
    val = np.array((0,) + ATOM_VALENCES)[types]  # (729, 3)
    chg = np.array((0,) + ATOM_CHARGES)[types].sum(1)
    ex = types > 0
    present = np.stack([ex[:, i] & ex[:, j] for i, j in pairs], 1)  # (729, 3)
    used = np.stack([orders[:, 0] + orders[:, 1], orders[:, 0] + orders[:, 2],
                     orders[:, 1] + orders[:, 2]], 1)  # (64, 3) bond orders at each slot
    ok = (chg == 0)[:, None] & ex.any(1)[:, None]
    ok = ok & ~((orders[None] > 0) & ~present[:, None]).any(2)  # bonds only between atoms
    ok = ok & (used[None] <= val[:, None]).all(2)
    n_atoms = ex.sum(1)[:, None]
    n_bonds = (orders > 0).sum(1)[None]
    ok = ok & ((n_atoms == 1) | ((n_atoms == 2) & (n_bonds == 1)) | ((n_atoms == 3) & (n_bonds >= 2)))
    sizes = []
    for seed in range(6):
        lg = random_logits(100 + seed, n, scale=2.5, exists_shift=4.0)
        lg["edge"] += 1.5  # bonds likely: non-trivial optima
        if seed % 3 == 0:
            lg["exists"][0] = -6.0  # slot 0 empty: the flow's root is not slot 0
        lsg = lambda x: -np.logaddexp(0, -x)  # noqa: E731
        lsm_a = lg["atom"] - np.logaddexp.reduce(lg["atom"], -1, keepdims=True)
        lsm_b = lg["bond"] - np.logaddexp.reduce(lg["bond"], -1, keepdims=True)
        ll_t = np.where(ex, lsg(lg["exists"]), lsg(-lg["exists"])).sum(1)
        ll_t += np.where(ex, lsm_a[np.arange(n), np.maximum(types, 1) - 1], 0).sum(1)
        ll = np.repeat(ll_t[:, None], len(orders), 1)
        for p, (i, j) in enumerate(pairs):
            e = lg["edge"][i, j]
            term = np.where(orders[:, p] > 0, lsg(e) + lsm_b[i, j, np.maximum(orders[:, p], 1) - 1],
                            lsg(-e))
            ll += np.where(present[:, p][:, None], term[None], 0.0)
        best = ll[ok].max()
        res = constrained_decode_logits(lg)
        assert res.optimal
        assert res.log_likelihood == pytest.approx(best, abs=1e-6)
        sizes.append(int((res.types > 0).sum()))
    assert max(sizes) == 3 and min(sizes) < 3, sizes


def test_returns_the_argmax_molecule_when_it_is_valid():
    # ethanol CCO in scattered slots (slot 0 empty: the root is not slot 0)
    types, bonds = graph(9, {2: C, 5: C, 7: O}, {(2, 5): 1, (5, 7): 1})
    lg = logits_for(types, bonds)
    res = constrained_decode_logits(lg)
    assert res.optimal and res.status == STATUS_OPTIMAL
    np.testing.assert_array_equal(res.types, types)
    np.testing.assert_array_equal(res.bonds, bonds)
    assert assert_valid(res).smiles == "CCO"
    # a charged but neutral-overall molecule: nitromethane C[N+](=O)[O-]
    types, bonds = graph(9, {0: C, 1: NP, 2: O, 3: OM}, {(0, 1): 1, (1, 2): 2, (1, 3): 1})
    res = constrained_decode_logits(logits_for(types, bonds))
    np.testing.assert_array_equal(res.types, types)
    np.testing.assert_array_equal(res.bonds, bonds)


def test_repairs_a_disconnected_argmax():
    # two ethane fragments with a weak (but present in no argmax) link between slots 1 and 2
    types, bonds = graph(9, {0: C, 1: C, 2: C, 3: C}, {(0, 1): 1, (2, 3): 1})
    lg = logits_for(types, bonds)
    lg["edge"][1, 2] = lg["edge"][2, 1] = -1.0
    assert not graph_to_molecule(types, bonds).valid
    res = constrained_decode_logits(lg)
    assert assert_valid(res).smiles == "CCCC"
    assert res.bonds[1, 2] == 1


def test_charged_atom_valence_is_respected():
    # logits strongly want N+ at slot 0 bonded by single bonds to five carbons (valence 5 > 4)
    types, bonds = graph(9, {0: NP, 1: C, 2: C, 3: C, 4: C, 5: C},
                         {(0, j): 1 for j in range(1, 6)})
    lg = logits_for(types, bonds)
    lg["atom"][0, NP - 1] = 3 * STRONG  # N+ is far more likely than anything else at slot 0
    res = constrained_decode_logits(lg)
    assert_valid(res)
    assert res.types[0] == NP
    assert res.bonds[0].sum() <= ATOM_VALENCES[NP - 1] == 4
    # O- (valence 1, like F) with two bonds wanted
    types, bonds = graph(9, {0: OM, 1: C, 2: NP}, {(0, 1): 1, (0, 2): 1})
    res = constrained_decode_logits(logits_for(types, bonds))
    mol = assert_valid(res)
    assert all(res.bonds[i].sum() <= ATOM_VALENCES[t - 1] for i, t in enumerate(res.types) if t)
    assert mol.valid


def test_net_charge_is_zero():
    # the argmax is [CH3][NH3+]: charge +1
    types, bonds = graph(9, {0: C, 1: NP}, {(0, 1): 1})
    assert net_charge(types) == 1
    res = constrained_decode_logits(logits_for(types, bonds))
    assert_valid(res)
    assert net_charge(res.types) == 0
    for seed in range(5):  # random logits biased towards charged types
        lg = random_logits(seed, 9, 3.0, 2.0)
        lg["atom"][:, 4:] += 4.0
        assert net_charge(constrained_decode_logits(lg).types) == 0


def test_time_limit_is_honoured_and_flagged():
    lg = random_logits(1, 9, scale=3.0, exists_shift=3.0)  # about 50 ms to prove optimal
    t0 = time.perf_counter()
    res = constrained_decode_logits(lg, time_limit=1e-3)
    assert time.perf_counter() - t0 < 1.0
    assert not res.optimal
    assert res.status in (STATUS_TIME_LIMIT, STATUS_FALLBACK)
    assert_valid(res)
    assert res.log_likelihood == pytest.approx(log_likelihood(lg, res.types, res.bonds))
    full = constrained_decode_logits(lg)
    assert full.optimal and full.log_likelihood >= res.log_likelihood - 1e-9
    with pytest.raises(ValueError):
        constrained_decode_logits(lg, time_limit=0)


def test_log_likelihood_is_minus_the_training_nll():
    rng = np.random.default_rng(7)
    for seed in range(5):
        lg = random_logits(seed)
        types = rng.integers(0, 9, 9) * (rng.random(9) < 0.8)
        bonds = np.triu(rng.integers(0, 4, (9, 9)), 1)
        bonds = bonds + bonds.T
        nll = reconstruction_nll({k: torch.as_tensor(v)[None] for k, v in lg.items()},
                                 torch.as_tensor(types)[None], torch.as_tensor(bonds)[None])
        # reconstruction_nll's Bernoulli parts come back in float32 (its targets are .float())
        assert log_likelihood(lg, types, bonds) == pytest.approx(-float(sum(nll.values())), rel=1e-6)


def test_bad_logits_raise_value_error():
    lg = random_logits(0)
    with pytest.raises(ValueError):
        constrained_decode_logits({k: v for k, v in lg.items() if k != "bond"})
    with pytest.raises(ValueError):
        constrained_decode_logits({**lg, "atom": lg["atom"][:, :5]})
    with pytest.raises(ValueError):
        constrained_decode_logits({**lg, "exists": np.full(9, np.nan)})


def test_shipped_model_decodes_valid_molecules():
    from backend import registry
    from backend.registry import DEFAULT_WEIGHTS_DIR

    if not (DEFAULT_WEIGHTS_DIR / "graph_vae_qm9.json").exists():
        pytest.skip("shipped weights not present")
    entry = registry.get("graph_vae_qm9")
    entry.reset()
    model = entry.model()  # the registry's loader: strict, weights_only=True
    z = torch.randn(6, model.config.n_nodes, model.config.latent_dim,
                    generator=torch.Generator().manual_seed(0))
    results = constrained_decode(model, z)
    assert len(results) == 6
    arg_types, arg_bonds = model.decode(z)
    with torch.no_grad():
        logits = model.decode_logits(z)
    for k, res in enumerate(results):
        assert_valid(res)
        one = {key: v[k] for key, v in logits.items()}
        assert res.log_likelihood == pytest.approx(log_likelihood(one, res.types, res.bonds), abs=1e-5)
        if res.optimal and not constraint_violations(arg_types[k].numpy(), arg_bonds[k].numpy()):
            assert res.log_likelihood >= log_likelihood(one, arg_types[k], arg_bonds[k]) - 1e-5
    with pytest.raises(ValueError):
        constrained_decode(model, z[0])


def test_compare_decodes_reports_both_decodes_on_real_molecules(tiny_registry):
    from backend.decoding.molecule import compare_decodes
    from backend.training import graph_tensors

    entry = tiny_registry
    graphs = entry.dataset()
    rows = np.flatnonzero(graphs.table["split"].to_numpy() == "test")[:6]
    out = compare_decodes(entry.model(), *graph_tensors(graphs, rows),
                          graphs.table["canonical_smiles"].to_numpy()[rows])
    assert out["n"] == 6 and out["validity_constrained"] == 1.0
    assert 0.0 <= out["validity_argmax"] <= 1.0 and out["exact_constrained"] <= out["validity_constrained"]
    assert out["solve_seconds_median"] > 0
