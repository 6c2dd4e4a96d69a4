"""Uncertainty for the claims table: intervals, paired tests and the verdict rule.

Pure functions on numpy arrays, used by :mod:`backend.report` so that every
verdict in the README comes with its interval or p-value and the rule that
decided it.

* :func:`wilson_interval`: score interval of a binomial proportion (an
  accuracy on ``n`` test digits). Source: E. B. Wilson, "Probable inference,
  the law of succession, and statistical inference", JASA 22 (1927).
* :func:`newcombe_interval`: interval of the difference of two *independent*
  proportions from their Wilson intervals (Newcombe, Stat. Med. 17, 1998,
  method 10). For two accuracies on the *same* digits it is conservative
  (wider than the paired interval) when the two probes' errors are positively
  correlated, which is the usual case; the report uses it only where the
  per-digit outcomes needed for :func:`mcnemar_test` were not stored.
* :func:`mcnemar_test`: exact paired test of two classifiers on the same
  items (binomial test on the discordant pairs, ``scipy.stats.binomtest``).
* :func:`wilcoxon_test`: Wilcoxon signed-rank test of paired samples
  (``scipy.stats.wilcoxon``; exact distribution for small samples).
* :func:`paired_bootstrap`: percentile interval of the mean paired
  difference by resampling pairs (Efron, "Bootstrap methods: another look at
  the jackknife", Ann. Statist. 7, 1979; Efron & Tibshirani, "An Introduction
  to the Bootstrap", 1993, ch. 13), with a seed.
* :func:`verdict`: the rule. A claim *holds* only when its interval excludes
  "no effect" on the claimed side (or its test gives ``p < alpha`` with the
  effect in the claimed direction); *did not hold* when the effect is
  significant in the opposite direction; otherwise *not significant*.
* :func:`equivalent_features`: groups of representations that are the same
  map up to a per-column affine rescaling (identical after standardisation,
  hence identical for every standardised probe).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import stats as _st

ALPHA = 0.05
HELD, NOT_SIGNIFICANT, DID_NOT_HOLD = "held", "not significant", "did not hold"
NEEDS_RERUN, CONTEXT = "needs rerun", "context"


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion.

    Parameters
    ----------
    successes : int
        Number of successes ``k`` (e.g. correctly classified digits), ``0 <= k <= n``.
    n : int
        Number of trials, ``n >= 1``.
    level : float, default=0.95
        Coverage of the interval.

    Returns
    -------
    (lo, hi) : tuple of float
        Bounds in [0, 1]:
        ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)``, ``p = k/n``,
        ``z`` the ``(1 + level)/2`` normal quantile.

    Raises
    ------
    ValueError
        If ``n < 1`` or ``k`` is outside ``[0, n]``.

    Examples
    --------
    >>> [round(x, 4) for x in wilson_interval(93, 100)]
    [0.8625, 0.9657]
    """
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n >= 1, got {successes}/{n}")
    z = float(_st.norm.ppf(0.5 + level / 2))
    p = successes / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(max(0.0, mid - half)), float(min(1.0, mid + half))


def newcombe_interval(k1: int, n1: int, k2: int, n2: int, level: float = 0.95) -> tuple[float, float]:
    """Interval of ``p1 - p2`` for two independent proportions (Newcombe's hybrid score).

    Parameters
    ----------
    k1, n1 : successes and trials of the first proportion.
    k2, n2 : successes and trials of the second.
    level : coverage.

    Returns
    -------
    (lo, hi) : bounds of ``k1/n1 - k2/n2``:
    ``d - sqrt((p1-l1)² + (u2-p2)²)``, ``d + sqrt((u1-p1)² + (p2-l2)²)`` with
    ``(l_i, u_i)`` the Wilson intervals.
    """
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, level)
    l2, u2 = wilson_interval(k2, n2, level)
    d = p1 - p2
    return float(d - np.hypot(p1 - l1, u2 - p2)), float(d + np.hypot(u1 - p1, p2 - l2))


def mcnemar_test(correct_a: np.ndarray, correct_b: np.ndarray, alternative: str = "two-sided") -> dict:
    """Exact McNemar test of two classifiers evaluated on the same items.

    Parameters
    ----------
    correct_a, correct_b : (n,) bool
        Whether each item was classified correctly by A and by B.
    alternative : ``"two-sided"``, ``"greater"`` (A more accurate than B) or ``"less"``.

    Returns
    -------
    dict with ``effect`` (accuracy of A minus accuracy of B), ``b`` (items only
    A got right), ``c`` (only B got right), ``p`` (exact binomial test of
    ``b`` out of ``b + c`` against 1/2; 1.0 when there are no discordant
    items) and ``n``.

    Raises
    ------
    ValueError
        If the two arrays differ in length.
    """
    a, b_ = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b_.shape:
        raise ValueError(f"paired samples differ in shape: {a.shape} vs {b_.shape}")
    only_a, only_b = int((a & ~b_).sum()), int((~a & b_).sum())
    p = 1.0 if only_a + only_b == 0 else float(
        _st.binomtest(only_a, only_a + only_b, 0.5, alternative=alternative).pvalue)
    return {"effect": float(a.mean() - b_.mean()), "b": only_a, "c": only_b, "p": p, "n": int(len(a))}


def wilcoxon_test(x: np.ndarray, y: np.ndarray, alternative: str = "two-sided") -> dict:
    """Wilcoxon signed-rank test of paired samples ``x`` and ``y`` (``scipy.stats.wilcoxon``).

    Parameters
    ----------
    x, y : (n,) float
        Paired measurements (same pair, molecule, digit or seed in each
        position). Pairs with a NaN in either are dropped.
    alternative : ``"two-sided"``, ``"greater"`` (x tends to exceed y) or ``"less"``.

    Returns
    -------
    dict with ``effect`` (mean of ``x - y``), ``median`` (median of
    ``x - y``), ``statistic``, ``p`` and ``n`` (pairs used). With no
    non-zero difference ``p`` is 1. Zero differences are dropped (Wilcoxon's
    original treatment); scipy picks the exact null distribution for small
    samples without ties.

    Raises
    ------
    ValueError
        If ``x`` and ``y`` differ in shape.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in shape: {x.shape} vs {y.shape}")
    ok = ~(np.isnan(x) | np.isnan(y))
    d = x[ok] - y[ok]
    out = {"effect": float(d.mean()) if len(d) else float("nan"),
           "median": float(np.median(d)) if len(d) else float("nan"), "n": int(len(d))}
    if not np.any(d != 0):
        return {**out, "statistic": float("nan"), "p": 1.0}
    res = _st.wilcoxon(d, alternative=alternative, zero_method="wilcox")
    return {**out, "statistic": float(res.statistic), "p": float(res.pvalue)}


def paired_bootstrap(x: np.ndarray, y: np.ndarray, statistic: Callable[[np.ndarray], float] = np.mean,
                     n_boot: int = 10000, level: float = 0.95, seed: int = 0) -> dict:
    """Percentile bootstrap interval of a statistic of the paired differences ``x - y``.

    Parameters
    ----------
    x, y : (n,) float
        Paired measurements; pairs with a NaN in either are dropped.
    statistic : callable
        Applied to a resampled difference vector (default: the mean).
    n_boot : number of resamples (pairs drawn with replacement).
    level : coverage of the interval.
    seed : seed of the resampling.

    Returns
    -------
    dict with ``effect`` (statistic of the observed differences), ``lo``,
    ``hi`` (percentile interval), ``p`` (two-sided bootstrap p-value:
    twice the smaller fraction of resampled statistics on either side of 0,
    at least ``1 / n_boot``) and ``n``.

    Raises
    ------
    ValueError
        If the samples differ in shape or fewer than 2 pairs remain.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in shape: {x.shape} vs {y.shape}")
    ok = ~(np.isnan(x) | np.isnan(y))
    d = x[ok] - y[ok]
    if len(d) < 2:
        raise ValueError(f"need at least 2 complete pairs, got {len(d)}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), (n_boot, len(d)))
    if statistic is np.mean:
        boot = d[idx].mean(axis=1)
    else:
        boot = np.array([statistic(d[i]) for i in idx])
    a = (1 - level) / 2
    lo, hi = np.quantile(boot, [a, 1 - a])
    p = 2 * min((boot <= 0).mean(), (boot >= 0).mean())
    return {"effect": float(statistic(d)), "lo": float(lo), "hi": float(hi),
            "p": float(min(1.0, max(p, 1.0 / n_boot))), "n": int(len(d))}


def verdict(*, interval: tuple[float, float] | None = None, p: float | None = None,
            effect: float | None = None, direction: int = 1, alpha: float = ALPHA) -> str:
    """The verdict rule shared by every claim.

    Parameters
    ----------
    interval : (lo, hi), optional
        Interval of the effect (claimed direction: positive for
        ``direction=1``, negative for ``direction=-1``).
    p : float, optional
        p-value of a test of "no effect" (used when no interval is given),
        together with ``effect`` (its sign gives the direction).
    effect : float, optional
        The measured effect (sign only).
    direction : +1 or -1
        Which sign of the effect the claim predicts.
    alpha : significance level of the test (the interval's level is the caller's).

    Returns
    -------
    str
        ``"held"`` when the interval lies strictly on the claimed side of 0
        (or ``p < alpha`` with the effect on the claimed side);
        ``"did not hold"`` when it lies strictly on the other side (or
        ``p < alpha`` with the effect on the other side); otherwise
        ``"not significant"``.

    Raises
    ------
    ValueError
        If neither an interval nor a ``p`` with an ``effect`` is given, or
        ``direction`` is not +1/-1.
    """
    if direction not in (1, -1):
        raise ValueError(f"direction must be +1 or -1, got {direction}")
    if interval is not None:
        lo, hi = (direction * v for v in interval)
        lo, hi = min(lo, hi), max(lo, hi)
        if lo > 0:
            return HELD
        if hi < 0:
            return DID_NOT_HOLD
        return NOT_SIGNIFICANT
    if p is None or effect is None:
        raise ValueError("verdict needs an interval, or a p-value and an effect")
    if p < alpha and effect * direction > 0:
        return HELD
    if p < alpha and effect * direction < 0:
        return DID_NOT_HOLD
    return NOT_SIGNIFICANT


def _standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    sd = x.std(axis=0)
    keep = sd > 1e-12 * max(1.0, float(np.abs(x).max(initial=0.0)))
    return (x[:, keep] - x[:, keep].mean(axis=0)) / sd[keep]


def equivalent_features(features: dict[str, np.ndarray], rtol: float = 1e-6) -> list[list[str]]:
    """Group representations that are the same map up to per-column affine rescaling.

    Two feature matrices (same rows) are equivalent when, after dropping
    constant columns and standardising each column (zero mean, unit
    variance, as every probe's ``StandardScaler`` does), they are equal up to
    ``rtol``. Equivalent representations give identical probe results and
    identical rank statistics, so they are one row, not two. Example:
    sum and mean pooling over a fixed number of node slots; sorting each
    channel and sorting rows when there is one channel.

    Parameters
    ----------
    features : dict name -> (M, F) array, the same M rows for every entry.
    rtol : tolerance relative to the largest standardised value.

    Returns
    -------
    list of groups (lists of names, in input order); only groups with at
    least two members.
    """
    names = list(features)
    std = {k: _standardise(v) for k, v in features.items()}
    groups, seen = [], set()
    for i, a in enumerate(names):
        if a in seen:
            continue
        group = [a]
        for b in names[i + 1:]:
            if b in seen or std[a].shape != std[b].shape:
                continue
            scale = max(1.0, float(np.abs(std[a]).max(initial=0.0)))
            if np.allclose(std[a], std[b], rtol=0, atol=rtol * scale):
                group.append(b)
                seen.add(b)
        if len(group) > 1:
            groups.append(group)
    return groups


def fmt_p(p: float) -> str:
    """A p-value for a table: ``p = 0.031``, ``p < 0.001``."""
    if p != p:
        return "p = n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
