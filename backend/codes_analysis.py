"""Measurements of any codes with a group action, live: distortion per projection and probes per label.

What the Downstream page shows for your own codes (:mod:`backend.codes_upload`), and what
:func:`backend.api.distortion` / :func:`backend.api.probes` return. The shipped models'
numbers come from ``python -m backend evaluate`` instead (more pairs, seeds and probes);
these functions use small, bounded samples so a page answers in seconds:

* :func:`distortion_table`: the ratio of projected to exact quotient distance on random
  pairs (:func:`backend.metrics.pair_distortion`) and the neighbour agreement
  (:func:`backend.metrics.neighbour_agreement`) for every projection of the codes' action,
  with its declared tags;
* :func:`probe_table` / :func:`wide_probe_table`: ridge / logistic regression and k-NN
  probes (:func:`backend.probes.run_probes`) for each label column, on the raw codes and
  on every projection.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from backend.codes_upload import column_kind
from backend.groups import LatentCodes, TrivialAction

class _Raw:
    """The raw flattened codes as a 'projection' (baseline row)."""

    def transform(self, codes: LatentCodes) -> np.ndarray:
        return codes.flat()


def _subsample(codes: LatentCodes, max_codes: int, seed: int) -> LatentCodes:
    if len(codes) <= max_codes:
        return codes
    rows = np.sort(np.random.default_rng(seed).choice(len(codes), max_codes, replace=False))
    return codes[rows]


def fitted_projections(codes: LatentCodes, seed: int = 0, k: int = 0) -> dict[str, object]:
    """Every projection defined for the codes' action, fitted on ``codes``.

    Parameters
    ----------
    codes : LatentCodes (M, ...)
    seed : int
        Seed of random templates / references.
    k : int
        Number of random templates (0: the projection's default ``2·c·N``).

    Returns
    -------
    dict of str to fitted projection
        Keyed by projection key, in display order.
    """
    from backend import views
    from backend.projections import projections_for

    return {s.key: views.projection(s.key, seed, k).fit(codes) for s in projections_for(codes.action)}


def distortion_table(codes: LatentCodes, seed: int = 0, k: int = 0, max_codes: int = 3000, n_pairs: int = 1000,
                     n_queries: int = 50, pool: int = 500) -> pd.DataFrame:
    """How much each invariant projection of the codes' action keeps, against the exact quotient distance.

    One row per projection plus the raw codes: declared tags, the distance ratios of
    :func:`backend.metrics.pair_distortion` on random pairs and the neighbour agreement of
    :func:`backend.metrics.neighbour_agreement`, on at most ``max_codes`` seeded codes.

    Parameters
    ----------
    codes : LatentCodes (M, ...), M >= 2.
    seed : int
        Seed of the subsample, the pairs and the projections' random choices.
    k : int
        Random templates of max filtering / sorted coorbits (0: ``2·c·N``).
    max_codes, n_pairs, n_queries, pool : int
        Sizes (codes used; random pairs; neighbour queries and pool).

    Returns
    -------
    DataFrame
        Columns ``projection, label, invariant, lossless, isometric, decodable, ratio_min,
        ratio_median, ratio_max, distortion, confusion_rate, n_pairs, nn_spearman_mean,
        nn_knn_overlap`` (ratios: projected distance / quotient distance, unitless).

    Raises
    ------
    ValueError
        If there are fewer than 2 codes.
    """
    from backend import metrics
    from backend.projections import PROJECTIONS

    sub = _subsample(codes, max_codes, seed)
    rows = []
    specs = {"raw": _Raw(), **fitted_projections(sub, seed, k)}
    for key, proj in specs.items():
        d = metrics.pair_distortion(proj, sub, n_pairs=n_pairs, seed=seed)
        nn = metrics.neighbour_agreement(proj, sub, n_queries=n_queries, pool=pool, seed=seed)
        if key == "raw":
            tags = dict(label="raw codes (no projection)", invariant=isinstance(sub.action, TrivialAction),
                        lossless=True, isometric=isinstance(sub.action, TrivialAction), decodable=True)
        else:
            t = proj.tags()
            tags = dict(label=PROJECTIONS[key].label, invariant=t.invariant, lossless=t.lossless,
                        isometric=t.isometric, decodable=t.cross_section)
        rows.append({"projection": key, **tags, **{c: d[c] for c in ("ratio_min", "ratio_median", "ratio_max",
                                                                    "distortion", "confusion_rate", "n_pairs")},
                     "nn_spearman_mean": nn["spearman_mean"], "nn_knn_overlap": nn["knn_overlap"]})
    return pd.DataFrame(rows)


def label_tasks(table: pd.DataFrame, columns=None) -> dict[str, str]:
    """Which label columns can be probed, and how.

    Parameters
    ----------
    table : DataFrame
        One row per code.
    columns : sequence of str, optional
        Candidate columns (default: every column except ``code_id``, ``code_norm`` and ``split``).

    Returns
    -------
    dict of str to str
        Column -> ``"classification"`` (a ``"category"`` of :func:`column_kind`) or
        ``"regression"`` (a ``"number"``); columns with fewer than 2 distinct values,
        or that :func:`column_kind` does not offer, are left out.
    """
    cols = [c for c in (columns if columns is not None else table.columns)
            if c not in ("code_id", "code_norm", "split")]
    out = {}
    for c in cols:
        kind = column_kind(table[c])
        if kind is not None and table[c].nunique(dropna=True) >= 2:
            out[c] = "regression" if kind == "number" else "classification"
    return out


def probe_table(codes: LatentCodes, table: pd.DataFrame, targets=None, seed: int = 0, k: int = 0,
                probes: tuple[str, ...] = ("linear", "knn"), seeds: tuple[int, ...] = (0,),
                n_train: int = 3000, n_test: int = 1000, test_fraction: float = 0.2,
                max_codes: int = 5000) -> pd.DataFrame:
    """Probes for each label on the raw codes and on every invariant projection of their action.

    At most ``max_codes`` seeded codes are used (so the features of a large set never
    all exist at once). Their rows are split once, seeded (``test_fraction`` for testing),
    or by a ``split`` column holding ``train`` / ``test``; each probe seed draws up to
    ``n_train`` / ``n_test`` of them (:func:`backend.probes.run_probes`). Rows whose label
    is missing are left out for that label.

    Parameters
    ----------
    codes : LatentCodes (M, ...)
    table : DataFrame, M rows.
    targets : sequence of str, optional
        Label columns (default: every column :func:`label_tasks` accepts).
    seed : int
        Seed of the split and of the projections' random choices.
    k : int
        Random templates (0: default).
    probes, seeds, n_train, n_test
        As in :func:`backend.probes.run_probes`. One seed by default: the linear and
        k-NN probes are deterministic, so more seeds only matter when they subsample
        (more than ``n_train`` / ``n_test`` rows).
    test_fraction : float
        Share of rows held out when there is no ``split`` column.
    max_codes : int
        Most codes used (a seeded subsample above it); projections are fitted on them.

    Returns
    -------
    DataFrame
        One row per (target, representation, probe): ``target, task, representation,
        probe, metric`` (``r2`` or ``accuracy``), ``mean, std`` over seeds, ``n_train,
        n_test``; empty when no label can be probed.

    Raises
    ------
    ValueError
        If ``table`` has another number of rows than there are codes.
    """
    from backend.probes import run_probes

    if len(table) != len(codes):
        raise ValueError(f"the table has {len(table)} rows, the codes {len(codes)}")
    tasks = label_tasks(table, targets)
    if not tasks:
        return pd.DataFrame(columns=["target", "task", "representation", "probe", "metric", "mean", "std",
                                     "n_train", "n_test"])
    if len(codes) > max_codes:
        keep = np.sort(np.random.default_rng(seed).choice(len(codes), max_codes, replace=False))
        codes, table = codes[keep], table.iloc[keep].reset_index(drop=True)
    feats = {"raw codes": codes.flat()}
    feats.update({key: p.transform(codes) for key, p in fitted_projections(codes, seed, k).items()})
    m = len(codes)
    if "split" in table and set(table["split"].astype(str)) >= {"train", "test"}:
        split = table["split"].astype(str).to_numpy()
        train_all, test_all = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    else:
        perm = np.random.default_rng(seed).permutation(m)
        n_te = max(1, int(round(test_fraction * m)))
        test_all, train_all = np.sort(perm[:n_te]), np.sort(perm[n_te:])
    out = []
    for target, task in tasks.items():
        col = table[target]
        ok = col.notna().to_numpy()
        tr, te = train_all[ok[train_all]], test_all[ok[test_all]]
        if len(tr) < 2 or len(te) < 1:
            continue
        if task == "classification":
            y = col.astype(str).to_numpy()
            if len(np.unique(y[tr])) < 2:
                continue
        else:
            y = np.nan_to_num(col.to_numpy(dtype=np.float64))  # missing rows are not in tr / te
        kinds = tuple(p for p in probes if p != "knn" or len(tr) >= 10)  # k-NN needs 10 neighbours
        if not kinds:
            continue
        df = run_probes(feats, y, tr, te, task, probes=kinds, seeds=seeds, n_train=n_train, n_test=n_test,
                        target_names=(target,))
        metric = "r2" if task == "regression" else "accuracy"
        g = df.groupby(["representation", "probe"], sort=False)
        summary = g[metric].agg(["mean", "std"]).reset_index()
        summary["n_train"] = g["n_train"].first().to_numpy()
        summary["n_test"] = g["n_test"].first().to_numpy()
        summary.insert(0, "metric", metric)
        summary.insert(0, "task", task)
        summary.insert(0, "target", target)
        out.append(summary[["target", "task", "representation", "probe", "metric", "mean", "std",
                            "n_train", "n_test"]])
    if not out:
        return pd.DataFrame(columns=["target", "task", "representation", "probe", "metric", "mean", "std",
                                     "n_train", "n_test"])
    return pd.concat(out, ignore_index=True)


def wide_probe_table(probes: pd.DataFrame) -> pd.DataFrame:
    """:func:`probe_table` with one column per representation, for reading across.

    Parameters
    ----------
    probes : DataFrame from :func:`probe_table`.

    Returns
    -------
    DataFrame
        One row per (target, metric, probe), in first-seen order; one column per
        representation (``raw codes`` first) holding the mean over seeds.
    """
    if probes.empty:
        return pd.DataFrame(columns=["target", "metric", "probe"])
    reps = list(dict.fromkeys(probes["representation"]))
    wide = probes.pivot_table(index=["target", "metric", "probe"], columns="representation", values="mean",
                              sort=False)
    return wide[[r for r in reps if r in wide.columns]].reset_index().rename_axis(columns=None)
