"""Downstream probes: the same analysis on raw equivariant codes and on invariant projections.

Hansen, Calissano & Feragen, "Interpreting Equivariant Representations"
(ICML 2024, Sec. 5) claim that a downstream model fitted on raw equivariant
codes does worse than the same model fitted on an invariant projection,
because the raw codes mix *what* an input is with *how it was presented*.
This module measures that claim with scikit-learn probes:

* regression (QM9 properties): ridge (linear), k-nearest neighbours and a
  small MLP; R² and mean absolute error in the property's own unit;
* classification (digits): logistic regression (linear), k-nearest
  neighbours and a small MLP; accuracy.

Every feature matrix is standardised on the probe's training rows
(``StandardScaler`` inside the pipeline); regression targets are
standardised for fitting and the MAE is reported back in physical units.
Each seed draws its own training and test subsample (and, where the caller
makes features per seed, its own projection templates).

Sources: scikit-learn (``Ridge``, ``LogisticRegression``,
``KNeighbors*``, ``MLP*``, ``r2_score``).
"""

from __future__ import annotations

import time
from typing import Callable, Mapping

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

PROBES = ("linear", "knn", "mlp")
PROBE_LABELS = {"linear": "linear (ridge / logistic)", "knn": "k-NN (k = 10)", "mlp": "MLP (1 × 64)"}


def make_probe(kind: str, task: str, seed: int = 0):
    """A scikit-learn pipeline ``StandardScaler -> probe``.

    Parameters
    ----------
    kind : ``"linear"``, ``"knn"`` or ``"mlp"``.
    task : ``"regression"`` or ``"classification"``.
    seed : random state of the MLP (the other probes are deterministic).

    Raises
    ------
    ValueError
        For an unknown kind or task.
    """
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    reg = task == "regression"
    if kind == "linear":
        est = Ridge(alpha=1.0) if reg else LogisticRegression(max_iter=2000, C=1.0)
    elif kind == "knn":
        est = (KNeighborsRegressor if reg else KNeighborsClassifier)(n_neighbors=10)
    elif kind == "mlp":
        # at most 80 epochs with early stopping: 300 took over 5 min per fit on 20k molecules (2-core VM)
        est = (MLPRegressor if reg else MLPClassifier)(hidden_layer_sizes=(64,), max_iter=80,
                                                       early_stopping=True, random_state=seed)
    else:
        raise ValueError(f"unknown probe {kind!r}; known: {', '.join(PROBES)}")
    return make_pipeline(StandardScaler(), est)


def _subsample(rows: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    rows = np.asarray(rows)
    if n is None or n >= len(rows):
        return rows
    return np.sort(rng.choice(rows, n, replace=False))


FeatureSource = Mapping[str, np.ndarray] | Callable[[int], Mapping[str, np.ndarray]]


def run_probes(features: FeatureSource, y: np.ndarray, train_rows: np.ndarray, test_rows: np.ndarray,
               task: str, *, probes: tuple[str, ...] = PROBES, seeds: tuple[int, ...] = (0, 1, 2, 3, 4),
               n_train: int | None = None, n_test: int | None = None,
               target_names: tuple[str, ...] | None = None, target_units: tuple[str, ...] | None = None,
               target_scales: tuple[float, ...] | None = None,
               progress: Callable[[float, str], None] | None = None,
               return_items: bool = False) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Fit every probe on every representation for every seed; one row per (rep, probe, seed, target).

    Parameters
    ----------
    features : dict ``name -> (M, F)`` array (one row per sample), or a
        callable ``seed -> dict`` for representations that depend on the seed
        (random templates).
    y : (M,) int labels (classification) or (M, T) float targets (regression,
        in stored units).
    train_rows, test_rows : row indices of the two splits; each seed draws
        ``n_train`` / ``n_test`` of them without replacement (all if None).
    task : ``"regression"`` or ``"classification"``.
    target_names, target_units : names and display units of the T targets.
    target_scales : display value = stored value * scale (e.g. Hartree -> eV).
    progress : ``(fraction, message)`` callback after each fit.

    Returns
    -------
    DataFrame with columns ``representation, probe, seed, target, n_train,
    n_test, fit_seconds`` and ``r2, mae, unit`` (regression) or ``accuracy``
    (classification). With ``return_items``, also a second DataFrame with one row per
    representation, probe, seed and test row: ``correct`` (0/1, classification) or ``sq_err``
    (regression: squared error in units of the training standard deviation, averaged over
    targets), for paired tests between representations (:mod:`backend.stats`).

    Raises
    ------
    ValueError
        For an unknown probe or task, or if a feature matrix has the wrong
        number of rows.
    """
    y = np.asarray(y)
    reg = task == "regression"
    if reg and y.ndim == 1:
        y = y[:, None]
    n_targets = y.shape[1] if reg else 1
    names = tuple(target_names or [f"y{i}" for i in range(n_targets)]) if reg else ("label",)
    units = tuple(target_units or [""] * n_targets) if reg else ("",)
    scales = np.asarray(target_scales if target_scales is not None else np.ones(n_targets), dtype=np.float64)
    rows_out, items = [], []
    total = None
    done = 0
    for seed in seeds:
        feats = features(seed) if callable(features) else features
        if total is None:
            total = len(seeds) * len(feats) * len(probes)
        rng = np.random.default_rng(seed)
        tr, te = _subsample(train_rows, n_train, rng), _subsample(test_rows, n_test, rng)
        for rep, x in feats.items():
            x = np.asarray(x, dtype=np.float64)
            if len(x) != len(y):
                raise ValueError(f"representation {rep!r} has {len(x)} rows, targets {len(y)}")
            x = x.reshape(len(x), -1)
            for kind in probes:
                t0 = time.perf_counter()
                model = make_probe(kind, task, seed)
                base = dict(representation=rep, probe=kind, seed=int(seed), n_train=int(len(tr)),
                            n_test=int(len(te)))
                item = pd.DataFrame({"representation": rep, "probe": kind, "seed": int(seed), "row": te})
                if reg:
                    mu, sd = y[tr].mean(0), y[tr].std(0)
                    sd = np.where(sd > 0, sd, 1.0)
                    model.fit(x[tr], (y[tr] - mu) / sd)
                    pred = model.predict(x[te]).reshape(len(te), -1) * sd + mu
                    secs = time.perf_counter() - t0
                    r2 = r2_score(y[te], pred, multioutput="raw_values")
                    mae = np.abs(pred - y[te]).mean(0) * scales
                    for j in range(n_targets):
                        rows_out.append({**base, "target": names[j], "r2": float(r2[j]),
                                         "mae": float(mae[j]), "unit": units[j], "fit_seconds": secs})
                    item["sq_err"] = (((pred - y[te]) / sd) ** 2).mean(1)
                else:
                    model.fit(x[tr], y[tr])
                    ok = model.predict(x[te]) == y[te]
                    rows_out.append({**base, "target": "label", "accuracy": float(ok.mean()),
                                     "fit_seconds": time.perf_counter() - t0})
                    item["correct"] = ok.astype(np.int8)
                if return_items:
                    items.append(item)
                done += 1
                if progress is not None:
                    progress(done / total, f"seed {seed}: {rep} / {kind}")
    if return_items:
        return pd.DataFrame(rows_out), (pd.concat(items, ignore_index=True) if items else pd.DataFrame())
    return pd.DataFrame(rows_out)


def summarize(df: pd.DataFrame, keys: tuple[str, ...] = ("representation", "probe", "target")) -> pd.DataFrame:
    """Mean and standard deviation over seeds of every metric column, grouped by ``keys``.

    Columns ``<metric>_mean``, ``<metric>_std`` for each of ``r2, mae,
    accuracy`` present, plus ``n_seeds``; order of first appearance is kept.
    """
    metrics = [c for c in ("r2", "mae", "accuracy") if c in df.columns]
    keys = [k for k in keys if k in df.columns]
    g = df.groupby(keys, sort=False)
    out = g[metrics].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out["n_seeds"] = g.size()
    if "unit" in df.columns:
        out["unit"] = g["unit"].first()
    return out.reset_index()
