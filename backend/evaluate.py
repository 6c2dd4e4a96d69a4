"""``python -m backend evaluate``: the paper's claims as numbers, written to results files.

For one registered model this runs, on its encoded data set:

* probes (:mod:`backend.probes`) on raw codes and on every invariant
  projection: QM9 properties (ridge, k-NN, MLP; R², MAE in physical units)
  or digits (logistic, k-NN, MLP; accuracy), several seeds; for the C_N
  model also the accuracy of max filtering / sorted coorbits against the
  number ``k`` of random templates;
* how much each projection keeps (:mod:`backend.metrics`): distance ratio to
  the exact quotient distance on random pairs and on adversarial pairs
  (nearest neighbours in projected and in raw space), confusion rate,
  neighbour rank agreement;
* interpolation quality along raw and invariant paths;
* for the augmentation-trained CNN: probes on its raw code vs the
  orbit-averaged code ``mean_k f(r_k x)``, two same-compute controls (8
  random off-grid angles; 8 jittered copies at one angle, an ensemble without
  the orbit), and how far input rotations move its code
  (:func:`backend.train.rotmnist.orbit_spread`), next to the e2cnn model's raw
  and group-pooled codes.

Files (``models/results/<model id>/``): ``probes.csv`` (one row per
representation, probe, seed, target), ``probe_items.csv`` (one row per
representation, probe, seed and test item: ``correct`` for digits, ``sq_err``
= squared error in training-standard-deviation units averaged over the
targets for molecules; what the paired tests of :mod:`backend.stats` need),
``probes_summary.csv`` (mean ± std over seeds), ``k_sweep.csv``,
``distortion.csv``, ``interpolation.csv`` (one row per pair and path),
``invariance.csv`` and ``settings.json`` (command, settings, latent action,
git commit, weights SHA-256, wall time). :func:`backend.report.claims` reads
them.

``--quick`` uses small subsamples and few seeds; it exercises every step
(the tests and the dashboard's rerun button use it) but its numbers are
not the reported ones.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from backend import metrics, probes
from backend.interpolation import linear_path, section_path
from backend.projections import make_projection

RESULTS_DIR = Path(__file__).resolve().parents[1] / "models" / "results"


@dataclass
class EvalConfig:
    """Sizes of every evaluation step (the full defaults produce the shipped results)."""

    seeds: int = 5
    probes: tuple[str, ...] = probes.PROBES
    n_train: int = 10000  # probe training rows per seed (at most the whole training split)
    n_test: int = 2000  # probe test rows per seed (at most the whole test split)
    ks: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # template counts of the k sweep
    n_pairs: int = 2000  # random pairs for the distortion ratio
    n_queries: int = 100  # neighbour agreement: queries ...
    pool: int = 2000  # ... against this many codes
    n_paths: int = 200  # interpolation: random pairs of test samples
    steps: int = 9  # interpolation steps per path
    n_orbit: int = 200  # test images whose rotated copies measure invariance
    adv_codes: int = 5000  # adversarial pair search: codes searched ...
    adv_neighbours: int = 5  # ... and neighbours per code (projected and raw space)
    quick: bool = False

    @classmethod
    def quick_config(cls) -> "EvalConfig":
        """A run that takes seconds to a few minutes: every step, small sizes."""
        return cls(seeds=2, n_train=1000, n_test=300, ks=(1, 4, 16), n_pairs=200, n_queries=10,
                   pool=200, n_paths=5, steps=5, n_orbit=40, adv_codes=300, adv_neighbours=3, quick=True)


Progress = Callable[[float, str], None]


def _noop(frac: float, msg: str) -> None:
    pass


def _rows(table: pd.DataFrame, split: str) -> np.ndarray:
    return np.flatnonzero(table["split"].to_numpy() == split)


def _distortion_table(codes, specs: dict[str, object], cfg: EvalConfig, progress: Progress) -> pd.DataFrame:
    out = []
    for i, (name, proj) in enumerate(specs.items()):
        d = metrics.pair_distortion(proj, codes, n_pairs=cfg.n_pairs, seed=0)
        nn = metrics.neighbour_agreement(proj, codes, n_queries=cfg.n_queries, pool=cfg.pool, seed=0)
        adv = metrics.adversarial_distortion(proj, codes, n_neighbours=cfg.adv_neighbours,
                                             max_codes=cfg.adv_codes, n_random=cfg.n_pairs, seed=0)
        out.append({"projection": name, **d, **{f"nn_{k}": v for k, v in nn.items()}, **adv})
        progress((i + 1) / len(specs), f"distortion: {name}")
    return pd.DataFrame(out)


def adversarial_table(codes, seed: int = 0, adv_codes: int = 5000, adv_neighbours: int = 5,
                      n_random: int = 2000, progress: Progress = _noop) -> pd.DataFrame:
    """Worst distance ratios on searched pairs for every projection of the codes' action.

    The projections are made and fitted as in the evaluation (seed 0,
    default sizes); one row per projection with the columns of
    :func:`backend.metrics.adversarial_distortion`. The full evaluation
    writes these columns into ``distortion.csv``; this function also lets
    them be computed from cached codes alone (``adversarial.csv``).
    """
    from backend.projections import projections_for

    specs = {"raw (no projection)": _Raw()}
    specs.update({s.key: make_projection(s.key, seed).fit(codes) for s in projections_for(codes.action)})
    out = []
    for i, (name, proj) in enumerate(specs.items()):
        out.append({"projection": name, **metrics.adversarial_distortion(
            proj, codes, n_neighbours=adv_neighbours, max_codes=adv_codes, n_random=n_random, seed=seed)})
        progress((i + 1) / len(specs), f"adversarial pairs: {name}")
    return pd.DataFrame(out)


class _Raw:
    """The raw flattened codes as a 'projection' (baseline row of the distortion table)."""

    def transform(self, codes):
        return codes.flat()


def _projections(entry, codes, seed: int = 0, k: int | None = None) -> dict[str, object]:
    out = {}
    for spec in entry.projections():
        proj = make_projection(spec.key, seed)
        if k is not None and "k" in proj.get_params():
            proj.set_params(k=k)
        out[spec.key] = proj.fit(codes)
    return out


def _paths(entry, codes, proj, rows: np.ndarray, cfg: EvalConfig, stats: Callable,
           progress: Progress, constrained_stats: Callable | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    out = []
    for i in range(cfg.n_paths):
        a, b = rng.choice(rows, 2, replace=False)
        za, zb = codes[int(a)], codes[int(b)]
        for path_name, path in (("raw", linear_path(za, zb, cfg.steps)),
                                ("invariant", section_path(za, zb, proj, cfg.steps))):
            row = {"pair": i, "row_a": int(a), "row_b": int(b), "path": path_name, **stats(entry.decode(path))}
            if constrained_stats is not None:  # the most probable valid molecule at every step
                row.update(constrained_stats(entry.decode_constrained(path)))
            out.append(row)
        progress((i + 1) / cfg.n_paths, f"interpolation {i + 1}/{cfg.n_paths}")
    return pd.DataFrame(out)


def evaluate_qm9(entry, cfg: EvalConfig, progress: Progress = _noop) -> dict[str, pd.DataFrame]:
    """Probes, distortion and interpolation quality for the graph VAE (see module docstring)."""
    from backend.data.qm9 import HARTREE_TO_EV, PROPERTIES

    enc = entry.encode_dataset(node_order_seed=0)
    table = enc.table
    codes = enc.codes("random")
    projs = _projections(entry, codes)
    feats = {"raw (random node order)": codes.flat(), "raw (stored node order)": enc.codes("stored").flat()}
    feats.update({k: p.transform(codes) for k, p in projs.items()})
    names = tuple(p.name for p in PROPERTIES)
    units = tuple("eV" if p.is_energy else p.unit for p in PROPERTIES)
    scales = tuple(HARTREE_TO_EV if p.is_energy else 1.0 for p in PROPERTIES)
    y = table[list(names)].to_numpy(np.float64)
    progress(0.0, "probes")
    df, items = probes.run_probes(feats, y, _rows(table, "train"), _rows(table, "test"), "regression",
                                      probes=cfg.probes, seeds=tuple(range(cfg.seeds)), n_train=cfg.n_train,
                                      n_test=cfg.n_test, target_names=names, target_units=units,
                                      target_scales=scales,
                                      progress=lambda f, m: progress(0.7 * f, "probes: " + m),
                                      return_items=True)
    dist = _distortion_table(codes, {"raw (no projection)": _Raw(), **projs}, cfg,
                             lambda f, m: progress(0.7 + 0.1 * f, m))
    interp = _paths(entry, codes, projs["sort"], _rows(table, "test"), cfg, metrics.molecule_path_stats,
                    lambda f, m: progress(0.8 + 0.2 * f, m), constrained_stats=metrics.constrained_path_stats)
    return {"probes": df, "probe_items": items, "distortion": dist, "interpolation": interp}


def _mnist_features(entry, codes, seed: int, k: int | None = None) -> dict[str, np.ndarray]:
    feats = {"raw codes": codes.flat()}
    feats.update({key: p.transform(codes) for key, p in _projections(entry, codes, seed, k).items()})
    return feats


#: fraction of a small training split that each probe seed draws (without replacement)
RESAMPLE_FRACTION = 0.8


def _resampled(cfg: EvalConfig, train_rows: np.ndarray) -> int:
    """Probe training rows per seed: ``cfg.n_train``, but at most ``RESAMPLE_FRACTION`` of the
    training split, so that every seed trains its probes on its own subsample and the spread
    over seeds includes which inputs trained the probe (the 4,000 MNIST training digits would
    otherwise be the same for every seed, and only templates and MLP initialisations would vary)."""
    return int(min(cfg.n_train, round(RESAMPLE_FRACTION * len(train_rows))))


def evaluate_rotmnist(entry, cfg: EvalConfig, progress: Progress = _noop) -> dict[str, pd.DataFrame]:
    """Digit probes on raw codes and every C_N projection, the k sweep, distortion, paths, invariance."""
    from backend.train.rotmnist import orbit_spread, sample_rows

    enc = entry.encode_dataset(node_order_seed=0)
    table = enc.table
    codes = enc.codes("stored")
    y = table["label"].to_numpy()
    tr, te = _rows(table, "train"), _rows(table, "test")
    seeds = tuple(range(cfg.seeds))
    progress(0.0, "probes")
    df, items = probes.run_probes(lambda s: _mnist_features(entry, codes, s), y, tr, te, "classification",
                                      probes=cfg.probes, seeds=seeds, n_train=_resampled(cfg, tr), n_test=cfg.n_test,
                                      progress=lambda f, m: progress(0.35 * f, "probes: " + m),
                                      return_items=True)
    sweep = []
    for i, k in enumerate(cfg.ks):
        def feats(seed, k=k):
            out = {}
            for key in ("max_filtering", "sorted_coorbits"):
                out[key] = make_projection(key, seed, k=k).fit(codes).transform(codes)
            return out

        part = probes.run_probes(feats, y, tr, te, "classification", probes=("linear",), seeds=seeds,
                                 n_train=_resampled(cfg, tr), n_test=cfg.n_test)
        part["k"] = k
        sweep.append(part)
        progress(0.35 + 0.3 * (i + 1) / len(cfg.ks), f"k sweep: k = {k}")
    projs = _projections(entry, codes)
    dist = _distortion_table(codes, {"raw (no projection)": _Raw(), **projs}, cfg,
                             lambda f, m: progress(0.65 + 0.1 * f, m))
    interp = _paths(entry, codes, projs["orbit_alignment"], te, cfg, metrics.image_path_stats,
                    lambda f, m: progress(0.75 + 0.15 * f, m))
    sub = sample_rows(te, cfg.n_orbit)  # all classes (the digits are stored sorted by class)
    inv = orbit_spread(entry.model(), entry.dataset().images[sub], y[sub])
    inv_rows = [{"model": entry.id, "representation": "raw code", "orbit_spread_ratio": inv["orbit_spread_ratio"]},
                {"model": entry.id, "representation": "orbit average (8 rotations)",
                 "orbit_spread_ratio": inv["orbit_average_spread_ratio_half_step"]},
                {"model": entry.id, "representation": "group max pooling",
                 "orbit_spread_ratio": inv["pooled_orbit_spread_ratio"]}]
    progress(1.0, "done")
    return {"probes": df, "probe_items": items, "k_sweep": pd.concat(sweep, ignore_index=True),
            "distortion": dist,
            "interpolation": interp, "invariance": pd.DataFrame(inv_rows)}


def orbit_average_codes(entry, images: np.ndarray, n_angles: int = 8, progress: Progress = _noop,
                        angles: np.ndarray | None = None, shifts: np.ndarray | None = None) -> np.ndarray:
    """Averaged codes ``mean_k f(r_k x)``: over the C_N orbit by default, or over given views.

    Parameters
    ----------
    entry : an image model entry (``encode_inputs``; rotations by its input action,
        :class:`backend.families.images.ImageRotation`).
    images : (M, 1, 29, 29) float32 in [0, 1].
    n_angles : number of views K (default: rotations by ``2 pi k / K``).
    angles : (M, K) radians, optional: view ``k`` of image ``m`` is rotated by
        ``angles[m, k]`` instead (the same-compute controls: random off-grid
        angles, or one angle repeated).
    shifts : (M, K, 2) int, optional: after rotating, roll view ``k`` by
        ``shifts[m, k]`` pixels (rows, columns) so that repeated views differ.

    Returns
    -------
    (M, D) float32. With the default angles, the input-side invariant
    projection for a network without a latent group action (exactly
    invariant to rotations by multiples of ``2 pi / n_angles`` up to the
    grid's interpolation error).
    """
    from backend.families.base import Angles

    x = np.ascontiguousarray(images, dtype=np.float32)
    if angles is not None:
        angles = np.asarray(angles, dtype=np.float64)
        n_angles = angles.shape[1]
    acc = None
    for k in range(n_angles):
        ang = angles[:, k] if angles is not None else np.full(len(x), 2 * np.pi * k / n_angles)
        rot = x if angles is None and k == 0 else entry.input_action.act(x, Angles(ang))
        if shifts is not None:
            rot = np.stack([np.roll(im, tuple(int(v) for v in shifts[m, k]), axis=(1, 2))
                            for m, im in enumerate(rot)])
        z = np.concatenate([entry.encode_inputs(rot[s:s + 256]).values for s in range(0, len(rot), 256)])
        z = z.reshape(len(z), -1).astype(np.float64)
        acc = z if acc is None else acc + z
        progress((k + 1) / n_angles, f"averaged views: {k + 1}/{n_angles}")
    return (acc / n_angles).astype(np.float32)


AUG_ORBIT, AUG_RANDOM, AUG_SAME = ("orbit average (8 rotations)", "average over 8 random angles (control)",
                                   "8 jittered copies at one angle (control)")


def augcnn_controls(entry, images: np.ndarray, seed: int = 0, n_views: int = 8,
                    progress: Progress = _noop) -> dict[str, np.ndarray]:
    """The orbit average and its two same-compute controls (``n_views`` forward passes each).

    * ``AUG_ORBIT``: rotations by ``2 pi k / n_views`` (the C_N orbit average);
    * ``AUG_RANDOM``: ``n_views`` independent uniform angles per image (off the
      grid; averages over SO(2) by Monte Carlo rather than over the C_N orbit);
    * ``AUG_SAME``: one uniform angle per image, repeated ``n_views`` times,
      each copy rolled by an independent shift in {-1, 0, 1}² pixels: an
      ensemble of the same size with no orbit in it.

    If ensembling explains the orbit average's probe gain, ``AUG_SAME`` gains as
    much; if invariance does, only the rotation averages gain.

    Returns
    -------
    dict name -> (M, D) float32.
    """
    rng = np.random.default_rng(seed)
    m = len(images)
    rand = rng.uniform(0, 2 * np.pi, (m, n_views))
    same = np.repeat(rng.uniform(0, 2 * np.pi, (m, 1)), n_views, axis=1)
    shifts = rng.integers(-1, 2, (m, n_views, 2))
    return {AUG_ORBIT: orbit_average_codes(entry, images, n_views, lambda f, s: progress(f / 3, s)),
            AUG_RANDOM: orbit_average_codes(entry, images, progress=lambda f, s: progress((1 + f) / 3, s),
                                            angles=rand),
            AUG_SAME: orbit_average_codes(entry, images, progress=lambda f, s: progress((2 + f) / 3, s),
                                          angles=same, shifts=shifts)}


def evaluate_augcnn(entry, cfg: EvalConfig, progress: Progress = _noop) -> dict[str, pd.DataFrame]:
    """Probes on the augmentation CNN's raw vs orbit-averaged codes; invariance; interpolation."""
    from backend.train.rotmnist import orbit_spread, sample_rows

    enc = entry.encode_dataset(node_order_seed=0)
    table = enc.table
    codes = enc.codes("stored")
    y = table["label"].to_numpy()
    tr, te = _rows(table, "train"), _rows(table, "test")
    images = entry.dataset().images
    feats = {"raw codes": codes.flat(),
             **augcnn_controls(entry, images, progress=lambda f, m: progress(0.3 * f, m))}
    df, items = probes.run_probes(feats, y, tr, te, "classification", probes=cfg.probes,
                                      seeds=tuple(range(cfg.seeds)), n_train=_resampled(cfg, tr), n_test=cfg.n_test,
                                      progress=lambda f, m: progress(0.3 + 0.4 * f, "probes: " + m),
                                      return_items=True)
    projs = _projections(entry, codes)
    interp = _paths(entry, codes, projs["identity"], te, cfg, metrics.image_path_stats,
                    lambda f, m: progress(0.7 + 0.2 * f, m))
    sub = sample_rows(te, cfg.n_orbit)  # all classes (the digits are stored sorted by class)
    inv = orbit_spread(entry.model(), images[sub], y[sub])
    inv_rows = [{"model": entry.id, "representation": "raw code", "orbit_spread_ratio": inv["orbit_spread_ratio"]},
                {"model": entry.id, "representation": "orbit average (8 rotations)",
                 "orbit_spread_ratio": inv["orbit_average_spread_ratio_half_step"]}]
    progress(1.0, "done")
    return {"probes": df, "probe_items": items, "interpolation": interp,
            "invariance": pd.DataFrame(inv_rows)}


#: evaluation procedures by the name a spec's ``EvaluationPlan.procedure`` gives (no table of model ids)
PROCEDURES = {"properties": evaluate_qm9, "classes": evaluate_rotmnist, "classes_input_average": evaluate_augcnn}


def evaluator(entry) -> Callable | None:
    """The evaluation procedure of a registry entry: its spec's plan names one of :data:`PROCEDURES`
    or is a callable ``(entry, cfg, progress) -> tables``; None when the model has no plan."""
    plan = getattr(entry, "evaluation", None)
    if plan is None:
        return None
    return plan.procedure if callable(plan.procedure) else PROCEDURES.get(plan.procedure)


def evaluate(entry, cfg: EvalConfig, out_dir: Path | None = None, command: str = "",
             progress: Progress = _noop) -> dict[str, pd.DataFrame]:
    """Run the evaluation of ``entry`` and write its results files.

    Parameters
    ----------
    entry : a registry entry whose spec has an evaluation plan (:func:`evaluator`).
    cfg : EvalConfig
    out_dir : folder for the files (default ``models/results/<entry.id>``).
    command : the command line recorded in ``settings.json``.

    Returns
    -------
    The tables by name (``probes``, ``probes_summary``, ...).

    Raises
    ------
    KeyError
        If there is no evaluator for the entry.
    """
    from backend.provenance import git_commit

    fn = evaluator(entry)
    if fn is None:
        raise KeyError(f"no evaluation defined for model {entry.id!r}: its spec has no evaluation plan "
                       f"(procedures: {', '.join(PROCEDURES)})")
    t0 = time.time()
    commit = git_commit()  # the code that runs, before anyone edits the tree during a long run
    tables = fn(entry, cfg, progress)
    tables["probes_summary"] = probes.summarize(tables["probes"])
    if "k_sweep" in tables:
        tables["k_sweep_summary"] = probes.summarize(tables["k_sweep"], ("representation", "k", "probe"))
    if "interpolation" in tables:
        cols = [c for c in tables["interpolation"].columns if c not in ("pair", "row_a", "row_b", "path")]
        tables["interpolation_summary"] = (tables["interpolation"].groupby("path", sort=False)[cols]
                                           .mean().reset_index())
    out = Path(out_dir) if out_dir is not None else RESULTS_DIR / entry.id
    out.mkdir(parents=True, exist_ok=True)
    for name, df in tables.items():
        df.to_csv(out / f"{name}.csv", index=False, float_format="%.6g")
    action = entry.latent_action
    settings = {"model": entry.id, "command": command, "config": asdict(cfg),
                "action": {"type": type(action).__name__, "code_shape": list(action.code_shape)},
                "git_commit": commit,
                "weights_sha256": entry.weights_sha256, "n_samples": int(len(entry.dataset().table)),
                "wall_time_s": round(time.time() - t0, 1)}
    (out / "settings.json").write_text(json.dumps(settings, indent=2))
    return tables


def load_results(model_id: str, results_dir: Path | None = None) -> dict[str, pd.DataFrame | dict]:
    """The results files of one model as tables (and ``settings`` as a dict); empty if none.

    Raises
    ------
    ValueError
        If ``settings.json`` exists but is not valid JSON.
    """
    folder = Path(results_dir or RESULTS_DIR) / model_id
    if not folder.exists():
        return {}
    out: dict[str, pd.DataFrame | dict] = {p.stem: pd.read_csv(p) for p in sorted(folder.glob("*.csv"))}
    settings = folder / "settings.json"
    if settings.exists():
        try:
            out["settings"] = json.loads(settings.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{settings} is not valid JSON: {exc}") from exc
    return out
