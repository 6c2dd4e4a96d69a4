"""How much an invariant projection keeps: distortion, confusion and neighbour agreement.

Each function compares the distances between projected codes
``||s(z1) - s(z2)||`` with the exact quotient distance
``d([z1], [z2]) = min_g ||z1 - g.z2||`` of the codes' group action
(:meth:`backend.groups.GroupAction.quotient_distance`: linear assignment for
S_n, FFT cross-correlation for C_N). An isometric projection (sorting for
d = 1) gives ratio 1 everywhere; a bi-Lipschitz one (max filtering with
enough generic templates, Cahill, Iverson & Mixon, "Bilipschitz group
invariants", 2024) keeps the ratio between two positive bounds; a lossy
one (pooling) lets it approach 0 on distinct orbits.

Also here: interpolation-path statistics (validity, distinct molecules,
Tanimoto similarity of consecutive steps; classifier confidence and pixel
change for images) used by ``python -m backend evaluate``.

Source of the questions: Hansen, Calissano & Feragen, "Interpreting
Equivariant Representations", ICML 2024, Sec. 4 (isometric cross-sections,
random invariant projections).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from backend.groups import LatentCodes

CONFUSION_TOL = 1e-3  # relative tolerance of :func:`pair_distortion`'s confusion rate


def _random_pairs(m: int, n_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    a = rng.integers(0, m, n_pairs)
    b = (a + rng.integers(1, m, n_pairs)) % m  # never a == b
    return a, b


def pair_distortion(projection, codes: LatentCodes, n_pairs: int = 2000, seed: int = 0,
                    tol: float = CONFUSION_TOL) -> dict[str, float]:
    """Ratio of projected to quotient distance on random pairs of codes.

    Parameters
    ----------
    projection : a fitted invariant projection (``transform(codes) -> (B, k)``).
    codes : LatentCodes (M, ...), M >= 2.
    n_pairs : number of random pairs ``(i, j)``, ``i != j``.
    tol : relative tolerance of the confusion rate.

    Returns
    -------
    dict with ``ratio_min``, ``ratio_median``, ``ratio_max`` of
    ``||s(z_i) - s(z_j)|| / d([z_i], [z_j])`` over pairs on distinct orbits
    (quotient distance above ``tol`` times its median); ``distortion`` =
    ratio_max / ratio_min (1 for an isometry up to scale, finite for a
    bi-Lipschitz map, large for lossy ones); ``confusion_rate``: the
    fraction of those pairs whose projected distance is at most ``tol``
    times their median projected distance (distinct orbits sent to nearly
    the same point); ``n_pairs``: how many pairs were on distinct orbits.

    Raises
    ------
    ValueError
        If there are fewer than 2 codes.
    """
    if len(codes) < 2:
        raise ValueError("need at least 2 codes")
    rng = np.random.default_rng(seed)
    a, b = _random_pairs(len(codes), n_pairs, rng)
    z = codes.values.astype(np.float64)
    q = codes.action.quotient_distance(z[a], z[b])
    s_all = np.asarray(projection.transform(codes), dtype=np.float64)
    s = np.linalg.norm(s_all[a] - s_all[b], axis=1)
    distinct = q > tol * np.median(q)
    ratio = s[distinct] / q[distinct]
    confused = s[distinct] <= tol * np.median(s[distinct]) if distinct.any() else np.zeros(0, bool)
    if not len(ratio):
        return {"ratio_min": float("nan"), "ratio_median": float("nan"), "ratio_max": float("nan"),
                "distortion": float("nan"), "confusion_rate": float("nan"), "n_pairs": 0}
    lo = float(ratio.min())
    return {"ratio_min": lo, "ratio_median": float(np.median(ratio)), "ratio_max": float(ratio.max()),
            "distortion": float(ratio.max() / lo) if lo > 0 else float("inf"),
            "confusion_rate": float(confused.mean()), "n_pairs": int(distinct.sum())}


def quotient_distance_matrix(codes_q: LatentCodes, codes_p: LatentCodes) -> np.ndarray:
    """Exact quotient distances between every query and every pool code, shape (Q, P)."""
    zq, zp = codes_q.values.astype(np.float64), codes_p.values.astype(np.float64)
    out = np.empty((len(zq), len(zp)))
    for i in range(len(zq)):
        out[i] = codes_q.action.quotient_distance(np.broadcast_to(zq[i], zp.shape), zp)
    return out


def neighbour_agreement(projection, codes: LatentCodes, n_queries: int = 100, pool: int = 2000,
                        k: int = 10, seed: int = 0) -> dict[str, float]:
    """How well distances after projection rank neighbours like the quotient distance does.

    ``n_queries`` random codes are compared with ``pool`` other random codes.
    For each query, the Spearman rank correlation between its projected
    distances and its quotient distances to the pool, and the overlap of
    the two lists of ``k`` nearest neighbours.

    Returns
    -------
    dict with ``spearman_mean``, ``spearman_min``, ``knn_overlap`` (mean
    fraction of the k quotient-nearest neighbours that are also among the
    k projected-nearest), ``n_queries``, ``pool``, ``k``.
    """
    rng = np.random.default_rng(seed)
    m = len(codes)
    pick = rng.choice(m, min(m, n_queries + pool), replace=False)
    qi, pi = pick[:min(n_queries, len(pick) // 2)], pick[min(n_queries, len(pick) // 2):]
    dq = quotient_distance_matrix(codes[qi], codes[pi])
    s = np.asarray(projection.transform(codes[np.concatenate([qi, pi])]), dtype=np.float64)
    sq, sp = s[:len(qi)], s[len(qi):]
    ds = np.sqrt(np.maximum((sq ** 2).sum(1)[:, None] + (sp ** 2).sum(1)[None] - 2 * sq @ sp.T, 0.0))
    rho = np.array([spearmanr(dq[i], ds[i]).statistic for i in range(len(qi))])
    kk = min(k, len(pi))
    nn_q = np.argsort(dq, axis=1)[:, :kk]
    nn_s = np.argsort(ds, axis=1)[:, :kk]
    overlap = np.mean([len(set(nn_q[i]) & set(nn_s[i])) / kk for i in range(len(qi))])
    return {"spearman_mean": float(np.nanmean(rho)), "spearman_min": float(np.nanmin(rho)),
            "knn_overlap": float(overlap), "n_queries": int(len(qi)), "pool": int(len(pi)), "k": int(kk)}


# ---------------------------------------------------------------- interpolation paths

def tanimoto_consecutive(smiles: list[str | None]) -> float:
    """Mean Tanimoto similarity of Morgan fingerprints (radius 2, 2048 bits) of consecutive steps.

    Steps whose SMILES is ``None`` (invalid decodes) are skipped, so the
    similarity is between consecutive *valid* molecules; NaN if fewer than two
    are valid. Source: RDKit (``rdFingerprintGenerator``, ``DataStructs``).
    """
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fps = []
    for smi in smiles:
        mol = Chem.MolFromSmiles(smi) if smi else None
        if mol is not None:
            fps.append(gen.GetFingerprint(mol))
    if len(fps) < 2:
        return float("nan")
    return float(np.mean([DataStructs.TanimotoSimilarity(fps[i], fps[i + 1]) for i in range(len(fps) - 1)]))


def molecule_path_stats(decoded: list) -> dict[str, float]:
    """Validity rate, distinct valid molecules and consecutive Tanimoto along one decoded path.

    ``decoded`` is a list of :class:`backend.data.qm9.DecodedMolecule`
    (``valid``, ``smiles``); validity as in
    :data:`backend.data.qm9.VALIDITY_DEFINITION`.
    """
    valid = [d.smiles if d.valid else None for d in decoded]
    return {"validity": float(np.mean([v is not None for v in valid])),
            "distinct_molecules": float(len({v for v in valid if v})),
            "tanimoto_consecutive": tanimoto_consecutive(valid)}


def constrained_path_stats(decoded: list) -> dict[str, float]:
    """Path statistics defined at every step, for a path decoded by the constrained (MILP) decoder.

    ``decoded`` is a list of constrained decodes (``smiles``, ``valid``,
    ``optimal``; see :func:`backend.decoding.molecule.constrained_decode`),
    which are valid molecules at every step, so each statistic is defined for
    every path (unlike :func:`molecule_path_stats` on argmax decodes):

    * ``c_validity``: fraction of valid steps (1 unless a solve fell back);
    * ``c_tanimoto_consecutive``: mean Tanimoto similarity (Morgan radius 2,
      2048 bits) of consecutive steps (higher = smoother);
    * ``c_changes``: number of steps whose molecule differs from the previous one;
    * ``c_distinct``: distinct molecules along the path;
    * ``c_molwt_jump_mean`` / ``c_molwt_jump_max``: mean and largest absolute
      change of the molecular weight between consecutive steps, in g/mol
      (RDKit ``Descriptors.MolWt``; smaller = smoother property path);
    * ``c_optimal``: fraction of solves proven optimal.

    Source: RDKit for fingerprints and molecular weight.
    """
    from rdkit import Chem
    from rdkit.Chem import Descriptors

    smiles = [d.smiles if d.valid else None for d in decoded]
    weights = []
    for smi in smiles:
        mol = Chem.MolFromSmiles(smi) if smi else None
        weights.append(Descriptors.MolWt(mol) if mol is not None else np.nan)
    jumps = np.abs(np.diff(np.asarray(weights, np.float64)))
    changes = sum(1 for a, b in zip(smiles, smiles[1:]) if a != b)
    return {"c_validity": float(np.mean([s is not None for s in smiles])),
            "c_tanimoto_consecutive": tanimoto_consecutive(smiles),
            "c_changes": float(changes),
            "c_distinct": float(len({s for s in smiles if s})),
            "c_molwt_jump_mean": float(np.nanmean(jumps)) if np.isfinite(jumps).any() else float("nan"),
            "c_molwt_jump_max": float(np.nanmax(jumps)) if np.isfinite(jumps).any() else float("nan"),
            "c_optimal": float(np.mean([bool(getattr(d, "optimal", True)) for d in decoded]))}


def image_path_stats(decoded: list) -> dict[str, float]:
    """Classifier confidence and pixel change between steps along one decoded image path.

    ``decoded`` is a list of objects with ``image`` (H, W) in [0, 1],
    ``prediction`` and ``confidence``. ``pixel_change_mean`` / ``_max``: the
    mean absolute pixel difference between consecutive steps (mean and
    largest jump along the path); ``prediction_changes``: how often the
    predicted digit changes.
    """
    imgs = np.stack([d.image for d in decoded]).astype(np.float64)
    conf = np.array([d.confidence for d in decoded])
    preds = np.array([d.prediction for d in decoded])
    change = np.abs(np.diff(imgs, axis=0)).reshape(len(imgs) - 1, -1).mean(1) if len(imgs) > 1 else np.zeros(1)
    return {"confidence_mean": float(conf.mean()), "confidence_min": float(conf.min()),
            "pixel_change_mean": float(change.mean()), "pixel_change_max": float(change.max()),
            "prediction_changes": float((np.diff(preds) != 0).sum())}


# ---------------------------------------------------------------- adversarial pairs

def _nearest_pairs(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` nearest other rows (Euclidean) as index pairs ``(i, j)``, ``i != j``."""
    from sklearn.neighbors import NearestNeighbors

    kk = min(k + 1, len(x))
    _, idx = NearestNeighbors(n_neighbors=kk).fit(x).kneighbors(x)
    a = np.repeat(np.arange(len(x)), kk)
    b = idx.reshape(-1)
    keep = a != b
    return a[keep], b[keep]


def adversarial_distortion(projection, codes: LatentCodes, n_neighbours: int = 5, max_codes: int = 5000,
                           n_random: int = 2000, seed: int = 0, tol: float = CONFUSION_TOL) -> dict[str, float]:
    """Distance ratios on pairs *searched* to break the projection, next to random pairs.

    Random pairs almost never contain near-collisions (two distinct orbits
    sent to nearly the same point), so :func:`pair_distortion` cannot tell a
    lossy projection from a bi-Lipschitz one. Here the candidate pairs are

    * each code's ``n_neighbours`` nearest neighbours *in projected space*
      (small ``||s(z_i) - s(z_j)||``: the lower Lipschitz bound is attacked
      where collisions would be), and
    * each code's nearest neighbours in the raw flattened space (small raw,
      hence small quotient distance: the upper bound is attacked),

    plus ``n_random`` random pairs. Pairs on the same orbit (quotient distance
    at most ``tol`` times the median random quotient distance) are dropped.

    Parameters
    ----------
    projection : a fitted invariant projection.
    codes : LatentCodes (M, ...); at most ``max_codes`` of them (a seeded
        random subset) are searched.
    n_neighbours : neighbours per code in each search.
    n_random : random pairs added for the reference band.
    seed : seed of the subset and of the random pairs.
    tol : same-orbit tolerance, relative.

    Returns
    -------
    dict with ``adv_ratio_min`` / ``adv_ratio_max`` (worst ratios
    ``||s(z_i) - s(z_j)|| / d([z_i], [z_j])`` found over all candidate
    pairs), ``adv_distortion`` = their quotient (scale-free: an isometry up to
    scale gives 1, a bi-Lipschitz map a moderate number, a map that merges
    distinct orbits a huge or infinite one), ``rand_distortion`` (the same on
    the random pairs alone), ``adv_worst_i`` / ``adv_worst_j`` (row indices in
    ``codes`` of the pair with the smallest ratio) and ``adv_n_pairs``.

    Raises
    ------
    ValueError
        If there are fewer than 3 codes.
    """
    m = len(codes)
    if m < 3:
        raise ValueError("need at least 3 codes")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(m, min(m, max_codes), replace=False))
    sub = codes[rows]
    z = sub.values.astype(np.float64)
    s_all = np.asarray(projection.transform(sub), dtype=np.float64)
    nb = min(n_neighbours, len(rows) - 1)
    a1, b1 = _nearest_pairs(s_all, nb)
    a2, b2 = _nearest_pairs(z.reshape(len(z), -1), nb)
    ar, br = _random_pairs(len(rows), n_random, rng)
    a = np.concatenate([a1, a2, ar])
    b = np.concatenate([b1, b2, br])
    kind = np.concatenate([np.zeros(len(a1) + len(a2), bool), np.ones(len(ar), bool)])
    q = codes.action.quotient_distance(z[a], z[b])
    s = np.linalg.norm(s_all[a] - s_all[b], axis=1)
    ref = np.median(q[kind]) if kind.any() else np.median(q)
    distinct = q > tol * ref
    ratio = np.where(distinct, s / np.where(distinct, q, 1.0), np.nan)
    if not np.isfinite(ratio).any():
        nan = float("nan")
        return {"adv_ratio_min": nan, "adv_ratio_max": nan, "adv_distortion": nan, "rand_distortion": nan,
                "adv_worst_i": -1, "adv_worst_j": -1, "adv_n_pairs": 0}
    lo_i = int(np.nanargmin(ratio))
    lo, hi = float(ratio[lo_i]), float(np.nanmax(ratio))
    rr = ratio[kind & distinct]
    rand = float(rr.max() / rr.min()) if len(rr) and rr.min() > 0 else float("inf")
    return {"adv_ratio_min": lo, "adv_ratio_max": hi, "adv_distortion": hi / lo if lo > 0 else float("inf"),
            "rand_distortion": rand, "adv_worst_i": int(rows[a[lo_i]]), "adv_worst_j": int(rows[b[lo_i]]),
            "adv_n_pairs": int(distinct.sum())}
