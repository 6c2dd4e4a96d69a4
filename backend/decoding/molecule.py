"""Valence-constrained decoding of the graph VAE: the most probable *valid* molecule of a code.

The argmax decode of :meth:`models.graph_vae.GraphVAE.decode` reads every slot
and every pair on its own, so it often returns graphs that are not molecules:
bonds missing (two or more components) or too many (an over-valent atom).
Here the decoder's output distribution is kept as it is and only the *search*
changes: for one code we solve

    maximise   log p(G | z)   over labelled graphs G = (types, bonds)
    subject to G is a molecule we can write down,

where ``log p(G | z)`` has exactly the terms of the training reconstruction
NLL (:func:`models.graph_vae.reconstruction_nll`, the likelihood part of the
ELBO of Kingma & Welling 2014; the graph VAE of Hansen, Calissano & Feragen,
ICML 2024, Sec. 5.1): node existence (Bernoulli, every slot), atom type
(categorical, existing slots), edge existence (Bernoulli, pairs i < j of
existing slots) and bond order (categorical, bonded pairs). Every term is
linear in one-hot indicator variables, so the problem is a mixed-integer
linear programme, solved by HiGHS through :func:`scipy.optimize.milp`.

Constraints (``n`` slots, ``P = n (n - 1) / 2`` pairs):

* one state per slot (empty or one of the 8 :data:`~backend.data.qm9.ATOM_TYPES`)
  and one per pair (absent / none / single / double / triple), with a pair
  present exactly when both of its slots hold atoms;
* valence: the bond orders at an atom sum to at most its maximum valence
  (:data:`ATOM_VALENCES`, RDKit's default valence of the isoelectronic
  neutral element; implicit hydrogens fill the rest, so RDKit's sanitization
  accepts the molecule);
* net formal charge 0;
* at least one atom;
* one connected component: a single-commodity flow. The root is the
  lowest-index existing slot (forced by linear constraints, so it is exact,
  not a guess), it emits one unit per other atom, every other atom absorbs
  one, and flow runs only along chosen bonds. Fixing the root this way
  removes the root's symmetry without cutting off any graph. Two valid
  inequalities (every non-root atom has a bond; at least ``atoms - 1`` bonds)
  tighten the relaxation.

The programme has ``8 n + 4 P`` binary and ``2 n + 2 P`` continuous variables
(216 and 90 for ``n = 9``); its constraint matrix depends only on ``n`` and is
built once.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from backend.data.qm9 import ATOM_TYPES

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from models.graph_vae import GraphVAE

__all__ = [
    "ATOM_CHARGES",
    "ATOM_VALENCES",
    "STATUS_FALLBACK",
    "STATUS_OPTIMAL",
    "STATUS_TIME_LIMIT",
    "ConstrainedGraph",
    "constrained_decode",
    "constrained_decode_logits",
    "constraint_violations",
    "log_likelihood",
]

N_TYPES = len(ATOM_TYPES)  # 8 atom types; types index 1..8, 0 = empty slot
N_ORDERS = 3  # single, double, triple

_ELEMENT_Z = {"C": 6, "N": 7, "O": 8, "F": 9}


def _default_valence(symbol: str, charge: int) -> int:
    """RDKit's default valence of the neutral element isoelectronic with ``symbol^charge``."""
    from rdkit import Chem

    return int(Chem.GetPeriodicTable().GetDefaultValence(_ELEMENT_Z[symbol] - charge))


#: Maximum valence (sum of bond orders to heavy atoms) per atom type, aligned with
#: ``ATOM_TYPES``: C 4, N 3, O 2, F 1, N+ 4 (like C), O- 1 (like F), C- 3 (like N),
#: N- 2 (like O). From RDKit's periodic table, so RDKit's sanitization agrees.
ATOM_VALENCES: tuple[int, ...] = tuple(_default_valence(s, q) for s, q in ATOM_TYPES)
#: Formal charge per atom type, aligned with ``ATOM_TYPES``.
ATOM_CHARGES: tuple[int, ...] = tuple(q for _, q in ATOM_TYPES)

#: ``ConstrainedGraph.status`` values.
STATUS_OPTIMAL = "optimal"  # HiGHS proved the returned graph optimal (within mip_rel_gap)
STATUS_TIME_LIMIT = "time_limit"  # time limit hit; the best feasible graph found so far
STATUS_FALLBACK = "fallback"  # no feasible graph found in time; a simple valid stand-in


@dataclass(frozen=True)
class ConstrainedGraph:
    """Result of a constrained decode of one code.

    Attributes
    ----------
    types : ndarray of shape (n,), int64
        0 = empty slot, ``i + 1`` = ``ATOM_TYPES[i]`` (the convention of
        :class:`backend.data.qm9.MolGraph`).
    bonds : ndarray of shape (n, n), int64
        Symmetric, zero diagonal; 0 = no bond, 1/2/3 = single/double/triple.
    log_likelihood : float
        ``log p(types, bonds | z)`` in nats (see :func:`log_likelihood`).
    optimal : bool
        True only when HiGHS proved this graph the most probable valid one
        (up to the relative gap ``mip_rel_gap``).
    status : str
        :data:`STATUS_OPTIMAL`; :data:`STATUS_TIME_LIMIT` (time limit hit: the
        best of HiGHS's incumbent and the stand-ins of :data:`STATUS_FALLBACK`,
        valid but not proven optimal); or :data:`STATUS_FALLBACK` (no feasible
        graph found in time: the argmax decode if it satisfies the
        constraints, else the most probable single neutral atom, whichever is
        more probable).
    seconds : float
        Wall time of the solve (building the objective, HiGHS, read-out), in s.
    objective : float
        The MILP's objective value at the returned graph, in nats: equal to
        ``log_likelihood`` up to solver tolerance (a check of the formulation);
        NaN when the graph did not come from HiGHS (fallback).
    message : str
        HiGHS's own status message and, where it applies, which stand-in was
        used; for display and debugging.
    """

    types: np.ndarray
    bonds: np.ndarray
    log_likelihood: float
    optimal: bool
    status: str
    seconds: float
    objective: float = float("nan")
    message: str = ""


# --------------------------------------------------------------------------- likelihood
def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable log(sigmoid(x))."""
    return -np.logaddexp(0.0, -x)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    """Numerically stable log-softmax over the last axis."""
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _as_logits(logits_one: Mapping) -> dict[str, np.ndarray]:
    """Float64 numpy copies of one code's logits, with their shapes checked."""
    try:
        out = {k: np.asarray(_to_numpy(logits_one[k]), dtype=np.float64)
               for k in ("exists", "atom", "edge", "bond")}
    except KeyError as exc:
        raise ValueError(f"logits need the keys exists, atom, edge, bond; missing {exc}") from None
    n = out["exists"].shape[0] if out["exists"].ndim == 1 else -1
    expected = {"exists": (n,), "atom": (n, N_TYPES), "edge": (n, n), "bond": (n, n, N_ORDERS)}
    for key, shape in expected.items():
        if n < 1 or out[key].shape != shape:
            raise ValueError(
                f"logits[{key!r}] has shape {out[key].shape}; expected {shape} for one code "
                f"(exists (n,), atom (n, {N_TYPES}), edge (n, n), bond (n, n, {N_ORDERS}))")
        if not np.all(np.isfinite(out[key])):
            raise ValueError(f"logits[{key!r}] has non-finite entries")
    return out


def _to_numpy(x):
    """A torch tensor (any device, with or without grad) or array-like as numpy."""
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return x


def log_likelihood(logits_one: Mapping, types: np.ndarray, bonds: np.ndarray) -> float:
    """Decoder log-likelihood ``log p(types, bonds | z)`` of one graph, in nats.

    The negative of :func:`models.graph_vae.reconstruction_nll` for a batch of
    one: the likelihood term of the VAE's ELBO (Kingma & Welling, "Auto-Encoding
    Variational Bayes", ICLR 2014) with the factorization of the graph VAE in
    Hansen, Calissano & Feragen (ICML 2024, Sec. 5.1). Sum of

    * ``log sigmoid(±exists[i])`` for every slot (+ if it holds an atom);
    * ``log_softmax(atom[i])[types[i] - 1]`` for every atom;
    * ``log sigmoid(±edge[i, j])`` for every pair ``i < j`` of atoms (+ if bonded);
    * ``log_softmax(bond[i, j])[bonds[i, j] - 1]`` for every bonded pair ``i < j``.

    Parameters
    ----------
    logits_one : mapping
        One code's logits (numpy arrays or torch tensors): ``exists`` (n,),
        ``atom`` (n, 8), ``edge`` (n, n), ``bond`` (n, n, 3), as returned by
        :meth:`models.graph_vae.GraphVAE.decode_logits` for one batch row.
    types : array of shape (n,), ints in 0..8
    bonds : array of shape (n, n), ints in 0..3; only the upper triangle is read,
        and only on pairs of atoms.

    Returns
    -------
    float
        Log-likelihood in nats (<= 0).

    Raises
    ------
    ValueError
        For logits of the wrong keys/shapes, or ``types``/``bonds`` of the
        wrong shape or out of range.
    """
    lg = _as_logits(logits_one)
    n = lg["exists"].shape[0]
    types = np.asarray(types).astype(np.int64)
    bonds = np.asarray(bonds).astype(np.int64)
    if types.shape != (n,) or bonds.shape != (n, n):
        raise ValueError(f"types {types.shape} / bonds {bonds.shape} do not match n = {n} slots")
    if types.min() < 0 or types.max() > N_TYPES or bonds.min() < 0 or bonds.max() > N_ORDERS:
        raise ValueError("types must lie in 0..8 and bonds in 0..3")
    exists = types > 0
    ll = float(np.where(exists, _log_sigmoid(lg["exists"]), _log_sigmoid(-lg["exists"])).sum())
    atoms = np.flatnonzero(exists)
    ll += float(_log_softmax(lg["atom"])[atoms, types[atoms] - 1].sum())
    iu, ju = np.triu_indices(n, 1)
    pair = exists[iu] & exists[ju]
    iu, ju = iu[pair], ju[pair]
    order = bonds[iu, ju]
    bonded = order > 0
    edge = lg["edge"][iu, ju]
    ll += float(np.where(bonded, _log_sigmoid(edge), _log_sigmoid(-edge)).sum())
    lsm_bond = _log_softmax(lg["bond"])[iu[bonded], ju[bonded]]
    ll += float(lsm_bond[np.arange(bonded.sum()), order[bonded] - 1].sum())
    return ll


# --------------------------------------------------------------------------- constraints
def constraint_violations(types: np.ndarray, bonds: np.ndarray) -> list[str]:
    """The decode constraints a graph breaks; empty when it satisfies all of them.

    Checks, in the model's own terms (no RDKit): at least one atom; bonds only
    between atoms, symmetric, orders 0..3; valence (:data:`ATOM_VALENCES`); net
    formal charge 0 (:data:`ATOM_CHARGES`); one connected component. A graph
    that passes is sanitizable by RDKit and valid in the sense of
    :data:`backend.data.qm9.VALIDITY_DEFINITION`.

    Parameters
    ----------
    types : array of shape (n,), ints in 0..8
    bonds : array of shape (n, n), ints in 0..3

    Returns
    -------
    list of str
        Human-readable descriptions of the violated constraints.
    """
    types = np.asarray(types).astype(np.int64)
    bonds = np.asarray(bonds).astype(np.int64)
    problems: list[str] = []
    atoms = np.flatnonzero(types > 0)
    if len(atoms) == 0:
        return ["no atoms"]
    if not np.array_equal(bonds, bonds.T) or np.any(np.diag(bonds)) or bonds.min() < 0 \
            or bonds.max() > N_ORDERS:
        problems.append("bond matrix not symmetric with zero diagonal and orders 0..3")
    empty = types == 0
    if np.any(bonds[empty]) or np.any(bonds[:, empty]):
        problems.append("bond at an empty slot")
    valence = np.array((0,) + ATOM_VALENCES)[types]
    used = bonds.sum(1)
    for i in np.flatnonzero(used > valence):
        problems.append(f"slot {i} ({ATOM_TYPES[types[i] - 1]}) has valence {used[i]} > {valence[i]}")
    charge = int(np.array((0,) + ATOM_CHARGES)[types].sum())
    if charge:
        problems.append(f"net formal charge {charge:+d}")
    seen = {int(atoms[0])}
    stack = [int(atoms[0])]
    while stack:
        i = stack.pop()
        for j in np.flatnonzero(bonds[i] > 0):
            if int(j) not in seen:
                seen.add(int(j))
                stack.append(int(j))
    if len(seen) < len(atoms):
        problems.append("more than one connected component")
    return problems


# --------------------------------------------------------------------------- the MILP
@dataclass(frozen=True)
class _Layout:
    """Column layout and constant constraint matrix of the MILP for ``n`` slots."""

    n: int
    iu: np.ndarray  # (P,) first slot of each pair
    ju: np.ndarray  # (P,) second slot
    n_vars: int
    n_binary: int
    constraints: LinearConstraint
    bounds: Bounds
    integrality: np.ndarray

    # columns: a[i, t] (atom type t + 1 at slot i), y[p, s] (pair p in state s: 0 none,
    # 1..3 bond order), r[i] (root), R[i] (supply at slot i), f[p, dir] (flow i->j, j->i)
    def a(self, i, t):
        return i * N_TYPES + t

    def y(self, p, s):
        return self.n * N_TYPES + p * (N_ORDERS + 1) + s

    def r(self, i):
        return self.n_binary + i

    def supply(self, i):
        return self.n_binary + self.n + i

    def f(self, p, direction):
        return self.n_binary + 2 * self.n + 2 * p + direction


@functools.lru_cache(maxsize=8)
def _layout(n: int) -> _Layout:
    """Build (once per ``n``) the MILP's variables, bounds and constraint matrix."""
    iu, ju = np.triu_indices(n, 1)
    n_pairs = len(iu)
    n_binary = n * N_TYPES + n_pairs * (N_ORDERS + 1)
    n_vars = n_binary + 2 * n + 2 * n_pairs
    lay = _Layout(n, iu, ju, n_vars, n_binary, None, None, None)  # type: ignore[arg-type]
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lo: list[float] = []
    hi: list[float] = []

    def add(entries, lower, upper):
        r = len(lo)
        for c, v in entries:
            rows.append(r)
            cols.append(c)
            vals.append(v)
        lo.append(lower)
        hi.append(upper)

    def e(i, coef=1.0):  # existence of slot i = sum of its atom-type indicators
        return [(lay.a(i, t), coef) for t in range(N_TYPES)]

    def pair_states(p, coef=1.0, states=range(N_ORDERS + 1)):
        return [(lay.y(p, s), coef) for s in states]

    inf = np.inf
    for i in range(n):  # one state per slot: at most one atom type (none = empty)
        add(e(i), 0, 1)
    for p, (i, j) in enumerate(zip(iu, ju)):  # pair present iff both slots hold atoms
        add(pair_states(p) + e(i, -1.0), -inf, 0)
        add(pair_states(p) + e(j, -1.0), -inf, 0)
        add(pair_states(p) + e(i, -1.0) + e(j, -1.0), -1, inf)
    pairs_of = [[p for p in range(n_pairs) if iu[p] == i or ju[p] == i] for i in range(n)]
    for i in range(n):  # valence: bond orders at an atom <= its maximum valence
        entries = [(lay.y(p, s), float(s)) for p in pairs_of[i] for s in range(1, N_ORDERS + 1)]
        entries += [(lay.a(i, t), -float(ATOM_VALENCES[t])) for t in range(N_TYPES)]
        add(entries, -inf, 0)
    add([(lay.a(i, t), float(ATOM_CHARGES[t])) for i in range(n) for t in range(N_TYPES)
         if ATOM_CHARGES[t]], 0, 0)  # net formal charge 0
    add([c for i in range(n) for c in e(i)], 1, inf)  # at least one atom
    # root = lowest-index atom: r_i <= e_i, r_i <= 1 - e_k (k < i), sum r = 1
    for i in range(n):
        add([(lay.r(i), 1.0)] + e(i, -1.0), -inf, 0)
        for k in range(i):
            add([(lay.r(i), 1.0)] + e(k), -inf, 1)
    add([(lay.r(i), 1.0) for i in range(n)], 1, 1)
    # supply only at the root, total supply = number of atoms
    for i in range(n):
        add([(lay.supply(i), 1.0), (lay.r(i), -float(n))], -inf, 0)
    add([(lay.supply(i), 1.0) for i in range(n)] + [c for i in range(n) for c in e(i, -1.0)], 0, 0)
    # flow only along bonds, capacity n - 1
    for p in range(n_pairs):
        for direction in (0, 1):
            add([(lay.f(p, direction), 1.0)] + pair_states(p, -float(n - 1), range(1, N_ORDERS + 1)),
                -inf, 0)
    # conservation: inflow - outflow = e_i - supply_i (every non-root atom absorbs one unit)
    for i in range(n):
        entries = []
        for p in pairs_of[i]:
            into = 0 if ju[p] == i else 1  # direction 0 is iu -> ju
            entries += [(lay.f(p, into), 1.0), (lay.f(p, 1 - into), -1.0)]
        add(entries + e(i, -1.0) + [(lay.supply(i), 1.0)], 0, 0)
    # valid inequalities: a non-root atom has a bond; bonds >= atoms - 1
    for i in range(n):
        entries = [(lay.y(p, s), 1.0) for p in pairs_of[i] for s in range(1, N_ORDERS + 1)]
        add(entries + e(i, -1.0) + [(lay.r(i), 1.0)], 0, inf)
    add([(lay.y(p, s), 1.0) for p in range(n_pairs) for s in range(1, N_ORDERS + 1)]
        + [c for i in range(n) for c in e(i, -1.0)], -1, inf)
    matrix = sparse.csr_array((vals, (rows, cols)), shape=(len(lo), n_vars))
    upper = np.concatenate([np.ones(n_binary + n), np.full(n, float(n)),
                            np.full(2 * n_pairs, float(n - 1))])
    integrality = np.concatenate([np.ones(n_binary), np.zeros(n_vars - n_binary)])
    return _Layout(n, iu, ju, n_vars, n_binary, LinearConstraint(matrix, lo, hi),
                   Bounds(np.zeros(n_vars), upper), integrality)


def _objective(lg: dict[str, np.ndarray], lay: _Layout) -> tuple[np.ndarray, float]:
    """Linear objective ``(c, const)`` with ``log p = const + c @ x`` on the MILP's columns.

    Node existence contributes ``log sigmoid(-l)`` for every slot (the constant)
    plus ``l`` per existing slot (``log sigmoid(l) - log sigmoid(-l) = l``).
    """
    n = lay.n
    c = np.zeros(lay.n_vars)
    node = lg["exists"][:, None] + _log_softmax(lg["atom"])  # (n, 8)
    c[: n * N_TYPES] = node.ravel()
    edge = lg["edge"][lay.iu, lay.ju]  # (P,)
    pair = np.empty((len(edge), N_ORDERS + 1))
    pair[:, 0] = _log_sigmoid(-edge)
    pair[:, 1:] = _log_sigmoid(edge)[:, None] + _log_softmax(lg["bond"][lay.iu, lay.ju])
    c[n * N_TYPES: lay.n_binary] = pair.ravel()
    return c, float(_log_sigmoid(-lg["exists"]).sum())


def _read_solution(x: np.ndarray, lay: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """``(types (n,), bonds (n, n))`` from a MILP solution vector."""
    n = lay.n
    a = x[: n * N_TYPES].reshape(n, N_TYPES) > 0.5
    types = np.where(a.any(1), a.argmax(1) + 1, 0).astype(np.int64)
    y = x[n * N_TYPES: lay.n_binary].reshape(-1, N_ORDERS + 1) > 0.5
    order = np.where(y[:, 1:].any(1), y[:, 1:].argmax(1) + 1, 0)
    bonds = np.zeros((n, n), np.int64)
    bonds[lay.iu, lay.ju] = order
    bonds[lay.ju, lay.iu] = order
    return types, bonds


def _fallback(lg: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, float, str]:
    """A valid stand-in when no feasible graph is found in time.

    The more probable of: the argmax decode (as in ``GraphVAE.decode``) if it
    satisfies the constraints, and the most probable single neutral atom (C, N,
    O or F with implicit hydrogens: methane, ammonia, water, hydrogen
    fluoride) over all slots. Returns ``(types, bonds, log-likelihood, which)``.
    """
    n = lg["exists"].shape[0]
    exists = lg["exists"] > 0
    types = np.where(exists, lg["atom"].argmax(1) + 1, 0).astype(np.int64)
    both = exists[:, None] & exists[None, :] & ~np.eye(n, dtype=bool)
    bonds = np.where(both & (lg["edge"] > 0), lg["bond"].argmax(-1) + 1, 0).astype(np.int64)
    best = None
    if not constraint_violations(types, bonds):
        best = (types, bonds, log_likelihood(lg, types, bonds), "argmax decode")
    neutral = [t for t in range(N_TYPES) if ATOM_CHARGES[t] == 0]
    for i in range(n):
        for t in neutral:
            single = np.zeros(n, np.int64)
            single[i] = t + 1
            zero = np.zeros((n, n), np.int64)
            ll = log_likelihood(lg, single, zero)
            if best is None or ll > best[2]:
                best = (single, zero, ll, "single atom")
    return best


def constrained_decode_logits(logits_one: Mapping, time_limit: float = 2.0,
                              mip_rel_gap: float = 1e-6) -> ConstrainedGraph:
    """The most probable valid molecule under one code's decoder distribution.

    Solves the mixed-integer linear programme of the module docstring with
    HiGHS (:func:`scipy.optimize.milp`): maximise :func:`log_likelihood` over
    graphs that satisfy the valence, net-charge, non-empty and connectivity
    constraints. Such graphs are valid molecules in the sense of
    :data:`backend.data.qm9.VALIDITY_DEFINITION`.

    Parameters
    ----------
    logits_one : mapping
        One code's logits (numpy arrays or torch tensors): ``exists`` (n,),
        ``atom`` (n, 8), ``edge`` (n, n), ``bond`` (n, n, 3); pair logits are
        read on the upper triangle ``i < j`` (the decoder's are symmetric).
    time_limit : float, default=2.0
        Wall-clock limit for HiGHS, in seconds. When it is hit the best graph
        found so far is returned (``status="time_limit"``, ``optimal=False``);
        when none was found, a fallback (``status="fallback"``); see
        :class:`ConstrainedGraph`. Both are valid molecules, flagged
        ``optimal=False``.
    mip_rel_gap : float, default=1e-6
        HiGHS's relative optimality gap: "optimal" means no valid graph is
        more probable by more than this fraction of the objective.

    Returns
    -------
    ConstrainedGraph
        ``types`` (n,), ``bonds`` (n, n), its log-likelihood (nats), whether
        optimality was proven, the status and the solve time (s).

    Raises
    ------
    ValueError
        For logits with missing keys, wrong shapes or non-finite values, or a
        non-positive ``time_limit``.

    Notes
    -----
    The result maximises the joint likelihood, so it can differ from the
    argmax decode even when that is valid: the argmax reads each slot and pair
    on its own, while adding an atom here also pays for its pair terms.
    HiGHS: Huangfu & Hall, "Parallelizing the dual revised simplex method",
    Math. Prog. Comp. 10 (2018); https://highs.dev/.
    """
    if not time_limit > 0:
        raise ValueError(f"time_limit must be positive seconds, got {time_limit!r}")
    t0 = time.perf_counter()
    lg = _as_logits(logits_one)
    lay = _layout(lg["exists"].shape[0])
    c, const = _objective(lg, lay)
    res = milp(-c, integrality=lay.integrality, bounds=lay.bounds, constraints=lay.constraints,
               options={"time_limit": float(time_limit), "mip_rel_gap": float(mip_rel_gap),
                        "disp": False})
    message = str(getattr(res, "message", ""))
    if res.x is not None and res.status in (0, 1):
        types, bonds = _read_solution(res.x, lay)
        problems = constraint_violations(types, bonds)
        if not problems:
            ll = log_likelihood(lg, types, bonds)
            objective = const - float(res.fun)
            if res.status == 0:
                return ConstrainedGraph(types, bonds, ll, True, STATUS_OPTIMAL,
                                        time.perf_counter() - t0, objective, message)
            f_types, f_bonds, f_ll, which = _fallback(lg)  # a poor early incumbent can lose
            if f_ll > ll:
                types, bonds, ll, objective = f_types, f_bonds, f_ll, float("nan")
                message += f"; the {which} beat HiGHS's incumbent"
            return ConstrainedGraph(types, bonds, ll, False, STATUS_TIME_LIMIT,
                                    time.perf_counter() - t0, objective, message)
        message += "; solution read-out broke: " + "; ".join(problems)  # should not happen
    types, bonds, ll, which = _fallback(lg)
    message += f"; no feasible graph found: fell back to the {which}"
    return ConstrainedGraph(types, bonds, ll, False, STATUS_FALLBACK, time.perf_counter() - t0,
                            float("nan"), message)


def constrained_decode(model: "GraphVAE", z: "torch.Tensor", time_limit: float = 2.0,
                       mip_rel_gap: float = 1e-6, progress: bool = False) -> list[ConstrainedGraph]:
    """Constrained decode of a batch of codes (one MILP per code).

    Parameters
    ----------
    model : models.graph_vae.GraphVAE
        The decoder; :meth:`~models.graph_vae.GraphVAE.decode_logits` is run
        once for the batch, without gradients.
    z : torch.Tensor of shape (B, n, d)
        Latent codes.
    time_limit : float, default=2.0
        Per-code HiGHS time limit in seconds (the batch may take up to about
        ``B * time_limit``).
    mip_rel_gap : float, default=1e-6
        See :func:`constrained_decode_logits`.
    progress : bool, default=False
        Show a tqdm bar over the codes.

    Returns
    -------
    list of ConstrainedGraph
        One per code, in batch order.

    Raises
    ------
    ValueError
        If ``z`` is not 3-D, or as :func:`constrained_decode_logits`.
    """
    import torch

    if z.ndim != 3:
        raise ValueError(f"z must have shape (B, n, d); got {tuple(z.shape)}")
    with torch.no_grad():
        logits = {k: v.detach().cpu().double().numpy() for k, v in model.decode_logits(z).items()}
    rows = range(z.shape[0])
    if progress:
        from tqdm import tqdm

        rows = tqdm(rows, desc="constrained decode", unit="mol")
    return [constrained_decode_logits({k: v[b] for k, v in logits.items()}, time_limit, mip_rel_gap)
            for b in rows]


# --------------------------------------------------------------------------- evaluation
def compare_decodes(model: "GraphVAE", types, bonds, tiebreak, target_smiles, time_limit: float = 2.0,
                    progress: bool = False) -> dict:
    """The model's own (argmax) decode against the constrained decode on real molecules.

    Each molecule is encoded (posterior mean), then decoded both ways; a decode is *exact*
    when it is valid and its canonical SMILES equals the input's.

    Parameters
    ----------
    model : models.graph_vae.GraphVAE in eval mode.
    types, bonds, tiebreak : torch long tensors (B, n), (B, n, n), (B, n) of the inputs
        (:func:`backend.train.qm9.graph_tensors`).
    target_smiles : sequence of B canonical SMILES of the inputs (RDKit, as stored in the
        featurized table's ``canonical_smiles``).
    time_limit : HiGHS limit per code, seconds.
    progress : tqdm bar over the molecules.

    Returns
    -------
    dict with ``n``; ``validity_argmax``, ``exact_argmax``, ``validity_constrained``,
    ``exact_constrained`` (fractions); ``proven_optimal`` (fraction of solves HiGHS proved
    optimal); ``solve_seconds_median`` / ``solve_seconds_p95``; ``constrained_equals_valid_argmax``
    (fraction of molecules with a valid argmax decode whose constrained decode is the same
    molecule); ``decoder_prefers_other_valid_graph`` (fraction where the constrained decode is
    strictly more probable than the input graph, i.e. exact reconstruction is impossible for
    this decoder whatever the search); ``time_limit_s``.
    """
    import torch

    from backend.data.qm9 import graph_to_molecule

    with torch.no_grad():
        mu, _ = model.encode(types, bonds, tiebreak)
        arg_types, arg_bonds = model.decode(mu)
        logits = {k: v.double().numpy() for k, v in model.decode_logits(mu).items()}
    rows = range(len(target_smiles))
    if progress:
        from tqdm import tqdm

        rows = tqdm(rows, desc="constrained decode", unit="mol", mininterval=10)
    out = {k: [] for k in ("arg_valid", "arg_exact", "con_valid", "con_exact", "optimal", "seconds",
                           "same", "prefers_other")}
    for k in rows:
        one = {key: v[k] for key, v in logits.items()}
        arg = graph_to_molecule(arg_types[k].numpy(), arg_bonds[k].numpy())
        res = constrained_decode_logits(one, time_limit=time_limit)
        con = graph_to_molecule(res.types, res.bonds)
        out["arg_valid"].append(arg.valid)
        out["arg_exact"].append(arg.valid and arg.smiles == target_smiles[k])
        out["con_valid"].append(con.valid)
        out["con_exact"].append(con.valid and con.smiles == target_smiles[k])
        out["optimal"].append(res.optimal)
        out["seconds"].append(res.seconds)
        if arg.valid:
            out["same"].append(con.smiles == arg.smiles)
        true_ll = log_likelihood(one, types[k].numpy(), bonds[k].numpy())
        out["prefers_other"].append(res.log_likelihood > true_ll + 1e-6)
    mean = lambda xs: float(np.mean(xs)) if len(xs) else float("nan")  # noqa: E731
    return {"n": len(target_smiles), "time_limit_s": time_limit,
            "validity_argmax": mean(out["arg_valid"]), "exact_argmax": mean(out["arg_exact"]),
            "validity_constrained": mean(out["con_valid"]), "exact_constrained": mean(out["con_exact"]),
            "proven_optimal": mean(out["optimal"]),
            "solve_seconds_median": float(np.median(out["seconds"])),
            "solve_seconds_p95": float(np.percentile(out["seconds"], 95)),
            "constrained_equals_valid_argmax": mean(out["same"]),
            "decoder_prefers_other_valid_graph": mean(out["prefers_other"])}
