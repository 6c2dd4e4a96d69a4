"""The paper's claims next to our measurements, read from the results files of ``evaluate``.

:func:`claims` turns ``models/results/<model>/*.csv`` into one row per claim:
the model, what the paper says, the measured effect, its interval or
p-value, the rule that decides, and the verdict (:func:`backend.stats.verdict`:
*held* only when the interval excludes "no effect" on the claimed side, or
the stated test gives p < 0.05; *not significant*; *did not hold* when the
effect is significant the other way; *needs rerun* where the results files
lack the per-item data a paired test needs; *context* for descriptive rows).
:func:`implementation_checks` lists identities that hold by construction
(sorting is isometric for d = 1, alignment's ratio is at least 1, every
projection is invariant), measured on the trained codes' results *and* on
random codes of the same shape: they test the code, not the paper, and are
never counted as results. Identical maps (e.g. sum and mean pooling over a
fixed number of slots) are found by comparing their features on random codes
(:func:`backend.stats.equivalent_features`) and merged into one row.

The dashboard's Downstream page and the README's "Results" section
(:func:`update_readme`, ``python -m backend report``) both show these
tables, so neither holds numbers typed by hand.

Claims are from Hansen, Calissano & Feragen, "Interpreting Equivariant
Representations", ICML 2024 (Sec. 4-6).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from backend import stats
from backend.evaluate import AUG_ORBIT, AUG_RANDOM, AUG_SAME, RESULTS_DIR, load_results

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
COLUMNS = ["model", "claim", "measured effect", "interval or p", "rule", "verdict"]
CHECK_COLUMNS = ["model", "check", "trained model's codes", "random codes", "status"]
QM9, ROT, AUG = "graph VAE · QM9", "e2cnn C_8 · rotated MNIST", "plain CNN + augmentation"
#: the label of a report model's rows, by its evaluation procedure
_LABELS = {"properties": QM9, "classes": ROT, "classes_input_average": AUG}


def report_models() -> list[tuple[str, object]]:
    """``(model id, evaluation procedure)`` of the registered models whose spec's evaluation plan
    has ``in_report``, in display order (the specs' plans replace a table of model ids)."""
    from backend import registry

    return [(s.id, s.evaluation.procedure) for s in registry.specs()
            if s.evaluation is not None and s.evaluation.in_report]
RAW_RANDOM, RAW_STORED = "raw (random node order)", "raw (stored node order)"
N_BOOT = 10000
BILIP_FACTOR = 2.0  # margin for comparing two worst cases (which have no interval)
LOSSY_REL = 0.01  # a projection "merges orbits" when a searched pair's ratio is < 1 % of the random median


def _row(model: str, claim: str, effect: str, interval: str, rule: str, verdict: str) -> dict:
    return dict(zip(COLUMNS, (model, claim, effect, interval, rule, verdict)))


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _pp(x: float) -> str:
    return f"{100 * x:+.1f} points"


def short_commit(commit) -> str:
    """First 10 hex digits of a commit, keeping a ``+dirty`` mark."""
    commit = str(commit)
    return commit[:10] + ("+dirty" if commit.endswith("+dirty") else "")


# ---------------------------------------------------------------- actions, random codes, duplicates

def _action(model_id: str, r: dict):
    """The model's latent action: from ``settings.json`` (runs after this change), else the registry."""
    from backend import groups

    s = r.get("settings", {}).get("action") if isinstance(r.get("settings"), dict) else None
    try:
        if s:
            shape = s["code_shape"]
            return {"PermutationAction": lambda: groups.PermutationAction(*shape),
                    "CyclicShiftAction": lambda: groups.CyclicShiftAction(*shape),
                    "TrivialAction": lambda: groups.TrivialAction(int(np.prod(shape)))}[s["type"]]()
        from backend import registry

        return registry.get(model_id).latent_action
    except Exception:  # noqa: BLE001 - no sidecar / unknown model: the checks on random codes are skipped
        return None


def random_codes(action, m: int = 300, seed: int = 0):
    """``m`` standard normal codes of the action's shape (the random-codes control of the checks)."""
    from backend.groups import LatentCodes

    rng = np.random.default_rng(seed)
    return LatentCodes(rng.standard_normal((m, *action.code_shape)).astype(np.float32), action)


def projection_features(action, m: int = 300, seed: int = 0) -> dict[str, np.ndarray]:
    """Every projection of ``action`` applied to the same random codes, by key."""
    from backend.projections import make_projection, projections_for

    codes = random_codes(action, m, seed)
    return {spec.key: np.asarray(make_projection(spec.key, seed).fit(codes).transform(codes))
            for spec in projections_for(action)}


def duplicate_groups(action) -> list[list[str]]:
    """Projections of ``action`` that are the same map (same standardised features on random codes)."""
    if action is None:
        return []
    return [list(g) for g in _duplicate_groups(action)]


@lru_cache(maxsize=8)
def _duplicate_groups(action) -> tuple[tuple[str, ...], ...]:  # actions hash by type and shape
    return tuple(tuple(g) for g in stats.equivalent_features(projection_features(action)))


def results_signature(results_dir: Path | None = None) -> tuple:
    """(path, size, mtime) of every results file: a cache key for :func:`claims` in the dashboard."""
    folder = Path(results_dir or RESULTS_DIR)
    return tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(folder.glob("*/*")) if f.is_file())


def _merged_names(groups: list[list[str]]) -> tuple[dict[str, str], set[str]]:
    """Display name of each group's first member (``"sort (= channel_sort)"``) and the members to drop."""
    show, drop = {}, set()
    for g in groups:
        show[g[0]] = f"{g[0]} (= {', '.join(g[1:])})"
        drop.update(g[1:])
    return show, drop


# ---------------------------------------------------------------- paired comparisons

def _items_pair(items: pd.DataFrame | None, rep_a: str, rep_b: str, probe: str, metric: str):
    """Per-item outcomes of two representations under one probe, averaged over seeds, aligned by row."""
    if items is None or metric not in items.columns:
        return None
    sub = items[items["probe"] == probe]
    a = sub[sub["representation"] == rep_a].groupby("row")[metric].mean()
    b = sub[sub["representation"] == rep_b].groupby("row")[metric].mean()
    both = a.index.intersection(b.index)
    if len(both) < 2:
        return None
    return a.loc[both].to_numpy(), b.loc[both].to_numpy()


def compare_accuracy(r: dict, rep_a: str, rep_b: str, probe: str = "linear", margin: float = 0.0) -> dict:
    """Accuracy of ``rep_a`` minus ``rep_b`` (same digits) with its 95 % interval and verdict.

    With ``probe_items`` (per-digit outcomes): paired bootstrap over digits of
    the per-digit correctness (averaged over seeds). Without: Newcombe's
    interval of two independent proportions on the ``n_test`` digits, which is
    conservative for two probes on the same digits; the verdict then says a
    paired test needs a rerun when it is not significant. ``margin`` shifts
    the null: the claim is ``acc_a - acc_b > -margin`` (non-inferiority).
    """
    p = r["probes_summary"]
    lin = p[p["probe"] == probe].set_index("representation")
    acc_a, acc_b = float(lin.loc[rep_a, "accuracy_mean"]), float(lin.loc[rep_b, "accuracy_mean"])
    pair = _items_pair(r.get("probe_items"), rep_a, rep_b, probe, "correct")
    if pair is not None:
        bs = stats.paired_bootstrap(pair[0], pair[1], n_boot=N_BOOT, seed=0)
        lo, hi = bs["lo"], bs["hi"]
        how = f"paired bootstrap over {bs['n']} digits"
        paired = True
    else:
        n = int(r["probes"]["n_test"].iloc[0])
        lo, hi = stats.newcombe_interval(round(acc_a * n), n, round(acc_b * n), n)
        how = f"Newcombe, unpaired, {n} digits each"
        paired = False
    v = stats.verdict(interval=(lo + margin, hi + margin))
    if v == stats.NOT_SIGNIFICANT and not paired:
        v += " (paired test needs rerun)"
    return {"effect": acc_a - acc_b, "acc_a": acc_a, "acc_b": acc_b, "lo": lo, "hi": hi,
            "interval": f"95 % CI [{_pp(lo)}, {_pp(hi)}] ({how})", "verdict": v, "paired": paired}


def compare_r2(r: dict, rep_a: str, rep_b: str, probe: str) -> dict:
    """Mean R² over the properties, ``rep_a`` minus ``rep_b``, with its test and verdict.

    With ``probe_items``: 95 % paired bootstrap interval over molecules of the
    reduction in squared error (in training standard deviations, mean over
    properties), which decides. Without: one-sided Wilcoxon signed-rank tests
    over the seeds (each seed draws its own test molecules, the same for both
    representations); ``held`` if ``p < 0.05`` that ``rep_a`` is better,
    ``did not hold`` if ``p < 0.05`` that it is worse (with 5 seeds the
    smallest possible p is 1/32 = 0.031, reached only when every seed agrees).
    """
    pr = r["probes"]
    per_seed = pr[pr["probe"] == probe].groupby(["representation", "seed"])["r2"].mean()
    a, b = per_seed.loc[rep_a], per_seed.loc[rep_b]
    seeds = a.index.intersection(b.index)
    a, b = a.loc[seeds].to_numpy(), b.loc[seeds].to_numpy()
    effect = float(a.mean() - b.mean())
    wins = int((a > b).sum())
    pair = _items_pair(r.get("probe_items"), rep_a, rep_b, probe, "sq_err")
    if pair is not None:
        bs = stats.paired_bootstrap(-pair[0], -pair[1], n_boot=N_BOOT, seed=0)
        return {"effect": effect, "a": float(a.mean()), "b": float(b.mean()), "wins": wins, "n": len(seeds),
                "interval": (f"95 % CI [{bs['lo']:+.3f}, {bs['hi']:+.3f}] of the per-molecule error "
                             f"reduction (paired bootstrap, {bs['n']} molecules)"),
                "verdict": stats.verdict(interval=(bs["lo"], bs["hi"]))}
    gt = stats.wilcoxon_test(a, b, "greater")
    lt = stats.wilcoxon_test(a, b, "less")
    if gt["p"] < stats.ALPHA:
        v = stats.HELD
    elif lt["p"] < stats.ALPHA:
        v = stats.DID_NOT_HOLD
    else:
        v = stats.NOT_SIGNIFICANT
    return {"effect": effect, "a": float(a.mean()), "b": float(b.mean()), "wins": wins, "n": len(seeds),
            "interval": (f"better in {wins}/{len(seeds)} seeds; Wilcoxon one-sided {stats.fmt_p(gt['p'])} "
                         f"(worse: {stats.fmt_p(lt['p'])}); per-molecule test needs rerun"),
            "verdict": v}


def compare_paths(df: pd.DataFrame, col: str, direction: int = 1, points: bool = False) -> dict:
    """Invariant minus raw path of one statistic, paired over the same endpoint pairs.

    Pairs where either path's value is NaN (e.g. Tanimoto with fewer than two
    valid steps) are dropped. Two paired analyses of the same differences:
    the 95 % paired bootstrap interval of the mean difference and the
    two-sided Wilcoxon signed-rank test. The claim *held* only when both
    say so (interval on the claimed side of 0 and p < 0.05); *did not hold*
    when both say the opposite; otherwise *not significant*. ``points``
    prints the interval in percentage points.
    """
    piv = df.pivot_table(index="pair", columns="path", values=col, aggfunc="first", dropna=False)
    x, y = piv["invariant"].to_numpy(np.float64), piv["raw"].to_numpy(np.float64)
    ok = ~(np.isnan(x) | np.isnan(y))
    out = {"inv": float(np.nanmean(x[ok])) if ok.any() else float("nan"),
           "raw": float(np.nanmean(y[ok])) if ok.any() else float("nan"), "n": int(ok.sum()),
           "n_total": int(len(x))}
    if ok.sum() < 6:
        return {**out, "effect": out["inv"] - out["raw"], "interval": f"only {int(ok.sum())} complete pairs",
                "verdict": stats.NOT_SIGNIFICANT}
    bs = stats.paired_bootstrap(x, y, n_boot=N_BOOT, seed=0)
    w = stats.wilcoxon_test(x, y)
    by_ci = stats.verdict(interval=(bs["lo"], bs["hi"]), direction=direction)
    by_w = stats.verdict(p=w["p"], effect=w["effect"], direction=direction)
    v = by_ci if by_ci == by_w else stats.NOT_SIGNIFICANT + " (tests disagree)"
    ci = f"[{_pp(bs['lo'])}, {_pp(bs['hi'])}]" if points else f"[{bs['lo']:+.3g}, {bs['hi']:+.3g}]"
    return {**out, "effect": bs["effect"],
            "interval": f"95 % CI {ci} (paired bootstrap, {bs['n']} pairs); Wilcoxon {stats.fmt_p(w['p'])}",
            "verdict": v}


PATH_RULE = ("paired over the same endpoint pairs: 95 % bootstrap CI of the mean difference excludes 0 and "
             "Wilcoxon signed-rank p < 0.05")


def _adversarial(r: dict) -> pd.DataFrame | None:
    """Adversarial-pair columns by projection: in ``distortion.csv`` (new runs) or ``adversarial.csv``."""
    for name in ("distortion", "adversarial"):
        d = r.get(name)
        if d is not None and "adv_distortion" in d.columns:
            return d.set_index("projection")
    return None


def _qm9_claims(r: dict, drop: set[str], show: dict[str, str]) -> list[dict]:
    out = []
    p = r.get("probes")
    if p is not None and {RAW_RANDOM, "sort"} <= set(p["representation"]):
        for probe in p["probe"].unique():
            c = compare_r2(r, "sort", RAW_RANDOM, probe)
            out.append(_row(QM9, f"Probes ({probe}) on sorted codes predict properties better than on raw "
                            "codes of randomly ordered molecules",
                            f"mean R² over 12 properties: sorted {c['a']:.3f} vs raw {c['b']:.3f} "
                            f"({c['effect']:+.3f})", c["interval"],
                            "paired over seeds / molecules, p < 0.05 one-sided (see interval column)",
                            c["verdict"]))
        if RAW_STORED in set(p["representation"]):
            for probe in p["probe"].unique():
                c = compare_r2(r, "sort", RAW_STORED, probe)
                note = " (the stored order wins)" if c["verdict"] == stats.DID_NOT_HOLD else ""
                out.append(_row(QM9, f"Baseline: probes ({probe}) on sorted codes also beat raw codes in "
                                "QM9's stored (near-canonical) node order",
                                f"mean R²: sorted {c['a']:.3f} vs stored order {c['b']:.3f} "
                                f"({c['effect']:+.3f}){note}", c["interval"],
                                "paired over seeds / molecules, p < 0.05 one-sided", c["verdict"]))
    d = r.get("distortion")
    if d is not None:
        pools = d[d["projection"].str.endswith("_pool") & ~d["projection"].isin(drop)]
        adv = _adversarial(r)
        if len(pools):
            effect = "; ".join(f"{show.get(q.projection, q.projection)}: neighbour rank corr. "
                               f"{q.nn_spearman_mean:.3f}" for q in pools.itertuples())
            srt = d[d["projection"] == "sort"]
            if len(srt):
                effect += f" (sorting {srt.nn_spearman_mean.iloc[0]:.3f})"
            if adv is not None:
                worst = {q: float(adv.loc[q, "adv_ratio_min"] / d.set_index("projection").loc[q, "ratio_median"])
                         for q in pools["projection"] if q in adv.index}
                effect += "; worst searched ratio / random median: " + ", ".join(
                    f"{show.get(k, k)} {v:.2g}" for k, v in worst.items())
                ok = bool(worst) and all(v < LOSSY_REL for v in worst.values())
                out.append(_row(QM9, "Pooling over nodes is invariant but lossy (merges distinct orbits)",
                                effect, "worst pair found by nearest-neighbour search in pooled space",
                                f"a searched pair of distinct orbits has ratio < {LOSSY_REL:g} × the random-pair "
                                "median (9 scalars → 1 number is lossy by construction)",
                                stats.HELD if ok else stats.DID_NOT_HOLD))
            else:
                out.append(_row(QM9, "Pooling over nodes is invariant but lossy (merges distinct orbits)",
                                effect, "no interval: adversarial pairs not in the results files",
                                "lossy by construction (9 node scalars → 1 number); the rank correlation "
                                "< 1 alone would pass for any 9 → 1 map, so it decides nothing",
                                stats.NEEDS_RERUN))
    s = r.get("interpolation")
    if s is not None and {"raw", "invariant"} <= set(s["path"]):
        for col, label, fmt in (("validity", "validity of the decoded steps", _pct),
                                ("distinct_molecules", "distinct valid molecules per path", lambda v: f"{v:.2f}"),
                                ("tanimoto_consecutive", "Tanimoto of consecutive valid steps",
                                 lambda v: f"{v:.3f}")):
            if col not in s.columns:
                continue
            c = compare_paths(s, col, points=col == "validity")
            sub = "" if c["n"] == c["n_total"] else f" ({c['n']} of {c['n_total']} pairs with both paths defined)"
            out.append(_row(QM9, f"Straight lines between sorted codes (quotient geodesics) decode to better "
                            f"paths than between raw codes: {label}",
                            f"sorted {fmt(c['inv'])} vs raw {fmt(c['raw'])}{sub}", c["interval"], PATH_RULE,
                            c["verdict"]))
        # the constrained decode gives a valid molecule at every step, so these are defined for every path
        for col, label, direction, fmt in (
                ("c_tanimoto_consecutive", "Tanimoto of consecutive steps (higher = smoother)", 1,
                 lambda v: f"{v:.3f}"),
                ("c_molwt_jump_max", "largest molecular-weight jump between steps, g/mol (smaller = smoother)",
                 -1, lambda v: f"{v:.1f}"),
                ("c_changes", "molecule changes along the 9 steps (fewer = fewer jumps)", -1,
                 lambda v: f"{v:.2f}")):
            if col not in s.columns:
                continue
            c = compare_paths(s, col, direction)
            out.append(_row(QM9, f"Sorted-code paths are smoother than raw-code paths, every step decoded to "
                            f"the most probable valid molecule (constrained decode): {label}",
                            f"sorted {fmt(c['inv'])} vs raw {fmt(c['raw'])}", c["interval"], PATH_RULE,
                            c["verdict"]))
    return out


_ROT_INVARIANT = ("orbit_alignment", "max_filtering", "sorted_coorbits", "fourier_modulus", "group_mean_pool",
                  "group_max_pool")
_LOSSY = ("fourier_modulus", "group_mean_pool", "group_max_pool")


def _rot_claims(r: dict, drop: set[str], show: dict[str, str]) -> list[dict]:
    out = []
    p = r.get("probes_summary")
    if p is not None and "raw codes" in set(p["representation"]):
        reps = [x for x in p["representation"].unique() if x != "raw codes" and x not in drop]
        verdicts = {}
        for rep in reps:
            c = compare_accuracy(r, rep, "raw codes")
            verdicts[rep] = c["verdict"]
            out.append(_row(ROT, f"Linear probes on {show.get(rep, rep)} classify digits better than on raw "
                            "equivariant codes", f"{_pct(c['acc_a'])} vs raw {_pct(c['acc_b'])} "
                            f"({_pp(c['effect'])})", c["interval"],
                            "95 % CI of the accuracy difference excludes 0", c["verdict"]))
        bad = [k for k, v in verdicts.items() if v != stats.HELD]
        out.append(_row(ROT, "Every invariant projection probes better than raw codes (linear probe)",
                        f"{len(verdicts) - len(bad)} of {len(verdicts)} held"
                        + (f"; not: {', '.join(bad)}" if bad else ""), "see the rows above",
                        "held only if held for every projection",
                        stats.HELD if not bad else (stats.DID_NOT_HOLD
                                                    if any(v == stats.DID_NOT_HOLD for v in verdicts.values())
                                                    else stats.NOT_SIGNIFICANT)))
    k = r.get("k_sweep_summary")
    if k is not None and p is not None and "orbit_alignment" in set(p["representation"]):
        mf = k[k["representation"] == "max_filtering"].sort_values("k")
        if len(mf):
            top = mf.iloc[-1]
            align = float(p[(p["probe"] == "linear") & (p["representation"] == "orbit_alignment")]
                          ["accuracy_mean"].iloc[0])
            n = int(r["probes"]["n_test"].iloc[0])
            lo, hi = stats.newcombe_interval(round(top.accuracy_mean * n), n, round(align * n), n)
            out.append(_row(ROT, "Random invariant projections (max filtering) keep most of the information "
                            "once k is large enough",
                            "linear accuracy: " + ", ".join(f"k={int(q.k)} {_pct(q.accuracy_mean)}"
                                                           for q in mf.itertuples())
                            + f"; lossless orbit alignment {_pct(align)}",
                            f"k={int(top.k)} minus alignment: 95 % CI [{_pp(lo)}, {_pp(hi)}] (Newcombe, unpaired)",
                            "non-inferiority: the CI's lower end is above −2 points",
                            stats.verdict(interval=(lo + 0.02, hi + 0.02))))
    d = r.get("distortion")
    if d is not None:
        rows = d[d["projection"].isin(_ROT_INVARIANT) & ~d["projection"].isin(drop)]
        adv = _adversarial(r)
        rand = "random pairs, distortion (max/min ratio): " + ", ".join(
            f"{q.projection} {q.distortion:.3g}" for q in rows.itertuples())
        if adv is not None and "max_filtering" in adv.index:
            a = adv.loc[[x for x in rows["projection"] if x in adv.index]]
            mfd = float(a.loc["max_filtering", "adv_distortion"])
            rdist = rows.set_index("projection")["distortion"].to_dict()
            for lossy in [x for x in _LOSSY if x in a.index]:
                ld = float(a.loc[lossy, "adv_distortion"])
                v = (stats.HELD if ld >= BILIP_FACTOR * mfd else
                     stats.DID_NOT_HOLD if mfd >= BILIP_FACTOR * ld else stats.NOT_SIGNIFICANT)
                out.append(_row(ROT, f"Max filtering is bi-Lipschitz, {lossy} is not: on the worst pairs found "
                                f"its distance ratios stay in a narrower band",
                                f"distortion on searched + random pairs: max_filtering {mfd:.3g} vs {lossy} "
                                f"{ld:.3g} (random pairs only: {rdist.get('max_filtering', np.nan):.3g} vs "
                                f"{rdist.get(lossy, np.nan):.3g})",
                                "worst case of a nearest-neighbour search over 5,000 codes: an extreme, no "
                                "interval; a lossy map's collisions may simply not be among the data",
                                f"the lossy map's searched distortion is at least {BILIP_FACTOR:g}× max "
                                "filtering's (held), or the reverse (did not hold); otherwise not supported",
                                v if v != stats.NOT_SIGNIFICANT else "not supported (no collision found)"))
        elif len(rows):
            out.append(_row(ROT, "Max filtering is bi-Lipschitz: it keeps distance ratios in a narrower band "
                            "than the lossy projections", rand,
                            "random pairs almost never contain near-collisions (the lossy Fourier modulus "
                            "scores like max filtering here)",
                            "needs the worst ratio on searched (adversarial) pairs", stats.NEEDS_RERUN))
    s = r.get("interpolation")
    if s is not None and {"raw", "invariant"} <= set(s["path"]):
        for col, label, direction, fmt, note in (
                ("confidence_mean", "mean classifier confidence along the path (the pre-stated measure)", 1,
                 _pct, ""),
                ("confidence_min", "lowest classifier confidence along the path", 1, _pct, ""),
                ("pixel_change_mean", "mean pixel change per step (smaller = smoother)", -1,
                 lambda v: f"{v:.4f}",
                 "; aligned endpoints are closer (quotient distance ≤ raw distance), so smaller steps are "
                 "partly by construction"),
                ("prediction_changes", "changes of the predicted digit along the path (fewer = better)", -1,
                 lambda v: f"{v:.2f}", "")):
            if col not in s.columns:
                continue
            c = compare_paths(s, col, direction, points=col.startswith("confidence"))
            out.append(_row(ROT, f"Straight lines between aligned codes (quotient geodesics) decode to better "
                            f"paths than between raw codes: {label}",
                            f"aligned {fmt(c['inv'])} vs raw {fmt(c['raw'])}", c["interval"], PATH_RULE + note,
                            c["verdict"]))
    inv = r.get("invariance")
    if inv is not None and len(inv):
        out.append(_row(ROT, "How far input rotations by 2πk/8 move each representation, relative to the "
                        "distance between two different digits",
                        "; ".join(f"{q.representation}: {q.orbit_spread_ratio:.3f}" for q in inv.itertuples()),
                        "medians over test digits (per-digit spreads not stored)", "descriptive", stats.CONTEXT))
    return out


def _aug_claims(r: dict) -> list[dict]:
    out = []
    inv = r.get("invariance")
    if inv is not None and len(inv):
        out.append(_row(AUG, "A network trained with rotation augmentation is not invariant: rotating the "
                        "input moves its code",
                        "orbit spread / between-digit distance: " + "; ".join(
                            f"{q.representation}: {q.orbit_spread_ratio:.3f}" for q in inv.itertuples()),
                        "medians over test digits (per-digit spreads not stored)",
                        "descriptive: the size of the movement, no threshold (0 = invariant, 1 = as far as "
                        "another digit)", stats.CONTEXT))
    p = r.get("probes_summary")
    if p is not None and {"raw codes", AUG_ORBIT} <= set(p["representation"]):
        for probe in p["probe"].unique():
            c = compare_accuracy(r, AUG_ORBIT, "raw codes", probe)
            out.append(_row(AUG, f"An invariant representation (orbit averaging) probes ({probe}) better than "
                            "the augmentation-trained raw code",
                            f"{_pct(c['acc_a'])} vs {_pct(c['acc_b'])} ({_pp(c['effect'])})", c["interval"],
                            "95 % CI of the accuracy difference excludes 0", c["verdict"]))
        reps = set(p["representation"])
        if {AUG_RANDOM, AUG_SAME} <= reps:
            for ctrl, what in ((AUG_SAME, "an ensemble of the same size without the orbit"),
                               (AUG_RANDOM, "an average over 8 random off-grid angles")):
                c = compare_accuracy(r, AUG_ORBIT, ctrl, "linear")
                out.append(_row(AUG, f"Control: the orbit average's gain is not just ensembling — it beats "
                                f"{what} (linear probe, same compute)",
                                f"{_pct(c['acc_a'])} vs {_pct(c['acc_b'])} ({_pp(c['effect'])})", c["interval"],
                                "95 % CI of the accuracy difference excludes 0", c["verdict"]))
        else:
            out.append(_row(AUG, "Control: the orbit average's gain is not just ensembling (8-view averages "
                            "at random angles and at one angle, same compute)", "not in the results files",
                            "–", "same-compute control added to evaluate", stats.NEEDS_RERUN))
    return out


def claims(results_dir: Path | None = None) -> pd.DataFrame:
    """One row per claim: ``model, claim, measured effect, interval or p, rule, verdict``.

    Verdicts: ``held``, ``not significant``, ``did not hold``, ``needs rerun``
    (the results files lack what the test needs), ``context`` (descriptive).
    Models without results files contribute no rows. Identical projections
    (:func:`duplicate_groups`) appear once.
    """
    rows = []
    claim_sets = {"properties": _qm9_claims, "classes": _rot_claims}
    for mid, procedure in report_models():
        r = load_results(mid, results_dir)
        if r and procedure == "classes_input_average":
            rows += _aug_claims(r)
        elif r and procedure in claim_sets:
            show, drop = _merged_names(duplicate_groups(_action(mid, r)))
            rows += claim_sets[procedure](r, drop, show)
    return pd.DataFrame(rows, columns=COLUMNS)


# ---------------------------------------------------------------- implementation checks

def _ratio_band(projection, codes, n_pairs: int = 500) -> tuple[float, float]:
    from backend import metrics

    d = metrics.pair_distortion(projection.fit(codes), codes, n_pairs=n_pairs, seed=0)
    return d["ratio_min"], d["ratio_max"]


def implementation_checks(results_dir: Path | None = None) -> pd.DataFrame:
    """Identities that hold by construction, on the trained codes' results and on random codes.

    * sorting is an isometry for one scalar per node (rearrangement
      inequality: true for any codes, so it tests the implementation);
    * the orbit alignment's ratio to the quotient distance is at least 1
      (the quotient distance is the minimum over the group);
    * every projection is invariant: ``max |s(g·z) − s(z)|`` over the
      action's testing elements, relative to ``max |s(z)|``, on random codes;
    * identical maps: projections whose standardised features coincide.

    Columns ``model, check, trained model's codes, random codes, status``
    (``pass`` / ``FAIL``). These are never counted as results.
    """
    from backend.projections import make_projection, projections_for

    out = []
    for mid, label in ((m, _LABELS.get(p, m)) for m, p in report_models()):
        r = load_results(mid, results_dir)
        if not r:
            continue
        action = _action(mid, r)
        d = r.get("distortion")
        d = d.set_index("projection") if d is not None else None
        codes = random_codes(action) if action is not None else None
        if action is not None and type(action).__name__ == "PermutationAction" and action.d == 1:
            lo, hi = _ratio_band(make_projection("sort"), codes)
            trained = (f"ratio {d.loc['sort', 'ratio_min']:.6f}–{d.loc['sort', 'ratio_max']:.6f}"
                       if d is not None and "sort" in d.index else "–")
            ok = abs(lo - 1) < 1e-5 and abs(hi - 1) < 1e-5 and (
                d is None or "sort" not in d.index
                or (abs(d.loc["sort", "ratio_min"] - 1) < 1e-3 and abs(d.loc["sort", "ratio_max"] - 1) < 1e-3))
            out.append(dict(zip(CHECK_COLUMNS, (label, "sorting one scalar per node is an isometry onto the "
                                                "quotient (rearrangement inequality; holds for any weights)",
                                                trained, f"ratio {lo:.6f}–{hi:.6f}", "pass" if ok else "FAIL"))))
        if action is not None and type(action).__name__ == "CyclicShiftAction":
            lo, hi = _ratio_band(make_projection("orbit_alignment"), codes)
            trained = (f"min ratio {d.loc['orbit_alignment', 'ratio_min']:.6f}"
                       if d is not None and "orbit_alignment" in d.index else "–")
            ok = lo >= 1 - 1e-5 and (d is None or "orbit_alignment" not in d.index
                                     or d.loc["orbit_alignment", "ratio_min"] >= 1 - 1e-4)
            out.append(dict(zip(CHECK_COLUMNS, (label, "orbit alignment's distance is at least the quotient "
                                                "distance (ratio ≥ 1: the quotient distance is a minimum)",
                                                trained, f"min ratio {lo:.6f}", "pass" if ok else "FAIL"))))
        if action is not None and type(action).__name__ != "TrivialAction":
            rng = np.random.default_rng(0)
            worst = 0.0
            for spec in projections_for(action):
                proj = make_projection(spec.key, 0).fit(codes)
                base = np.asarray(proj.transform(codes), dtype=np.float64)
                scale = max(float(np.abs(base).max()), 1e-12)
                for g in action.testing_elements(rng)[:8]:
                    moved = type(codes)(action.act(codes.values, g), action)
                    worst = max(worst, float(np.abs(np.asarray(proj.transform(moved)) - base).max()) / scale)
            out.append(dict(zip(CHECK_COLUMNS, (label, f"every projection ({len(projections_for(action))}) is "
                                                "invariant: max relative |s(g·z) − s(z)|", "(tested in the "
                                                "test suite)", f"{worst:.1e}", "pass" if worst < 1e-5 else "FAIL"))))
        for g in duplicate_groups(action):
            out.append(dict(zip(CHECK_COLUMNS, (label, f"identical maps, merged into one row: {' = '.join(g)} "
                                                "(same standardised features)", "same results in every table",
                                                "features equal", "merged"))))
    return pd.DataFrame(out, columns=CHECK_COLUMNS)


# ---------------------------------------------------------------- markdown

def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (``|`` in cells escaped): the README's tables,
    and the Downstream page's claims, whose long cells wrap there instead of being cut off."""
    return _md_table(df)


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def _merge_rows(df: pd.DataFrame, col: str, mid: str, r: dict) -> pd.DataFrame:
    show, drop = _merged_names(duplicate_groups(_action(mid, r)))
    df = df[~df[col].isin(drop)].copy()
    df[col] = [show.get(v, v) for v in df[col]]
    return df


def accuracy_table(r: dict, mid: str = "rot_mnist_c8") -> pd.DataFrame:
    """Digit accuracy per representation and probe with its 95 % Wilson interval on the test digits."""
    p = r["probes_summary"].copy()
    n = int(r["probes"]["n_test"].iloc[0])
    cells = []
    for m in p["accuracy_mean"]:
        lo, hi = stats.wilson_interval(round(m * n), n)
        cells.append(f"{100 * m:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]")
    p["accuracy"] = cells
    piv = p.pivot(index="representation", columns="probe", values="accuracy").reset_index()
    return _merge_rows(piv, "representation", mid, r)


def _adversarial_note(results_dir: Path | None) -> str:
    notes = []
    for mid, _ in report_models():
        a = load_results(mid, results_dir).get("adversarial")
        if a is not None and len(a):
            src = a["source"].iloc[0] if "source" in a.columns else "cached codes"
            sha = a["weights_sha256"].iloc[0] if "weights_sha256" in a.columns else "?"
            notes.append(f"`{mid}/adversarial.csv` (searched pairs) was computed afterwards from the encode "
                         f"cache of the same weights (`{src}`, weights `{sha}`) by "
                         "`backend.evaluate.adversarial_table`")
    return (" " + "; ".join(notes) + ".") if notes else ""


def results_markdown(results_dir: Path | None = None) -> str:
    """The README's Results section body: settings, claims table, implementation checks, key tables."""
    parts = []
    settings = []
    for mid, _ in report_models():
        r = load_results(mid, results_dir)
        if "settings" in r:
            s = r["settings"]
            cfg = s.get("config", {})
            settings.append(f"`{mid}`: `{s.get('command')}` ({cfg.get('seeds')} seeds, "
                            f"{s.get('wall_time_s', 0) / 60:.1f} min, commit `{short_commit(s.get('git_commit'))}`)")
    if not settings:
        return "No results files yet: run `python -m backend evaluate all`."
    parts.append("Generated by `python -m backend report` from `models/results/` (written by "
                 "`python -m backend evaluate all`). Runs: " + "; ".join(settings) + "."
                 + _adversarial_note(results_dir))
    table = claims(results_dir)
    counts = table["verdict"].str.split(" \\(").str[0].value_counts()
    parts.append("Verdicts: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + ". A claim *held* only "
                 "when its 95 % interval excludes no effect on the claimed side (or its stated test gives "
                 "p < 0.05); *not significant* otherwise; *did not hold* when the effect is significant the "
                 "other way; *needs rerun* where the results files lack the per-item data a paired test needs "
                 "(`python -m backend evaluate all` now writes it).")
    parts.append(_md_table(table))
    checks = implementation_checks(results_dir)
    if len(checks):
        parts.append("Implementation checks (identities that hold by construction, for any weights: they test "
                     "the code, not the paper's claims, and are not counted above):\n\n" + _md_table(checks))
    r = load_results("graph_vae_qm9", results_dir)
    if "probes_summary" in r:
        p = r["probes_summary"]
        piv = p.groupby(["representation", "probe"], sort=False)["r2_mean"].mean().unstack("probe").round(3)
        piv = _merge_rows(piv.reset_index(), "representation", "graph_vae_qm9", r)
        parts.append("QM9, mean R² over the 12 properties (test rows, mean over seeds; seeds draw different "
                     "test molecules):\n\n" + _md_table(piv))
    r = load_results("rot_mnist_c8", results_dir)
    if "probes_summary" in r:
        parts.append("Rotated MNIST (e2cnn C_8), digit accuracy on the held-out 20 % with its 95 % Wilson "
                     f"interval (mean over seeds; each seed trains the probes on its own "
                     f"{int(r['probes']['n_train'].iloc[0]):,} of the training digits and draws its own random "
                     f"templates and MLP initialisation; the {int(r['probes']['n_test'].iloc[0]):,} test digits are "
                     "the same for every seed, so the interval, not the spread over seeds, is the test-set "
                     "uncertainty):\n\n" + _md_table(accuracy_table(r)))
    return "\n\n".join(parts)


def write_markdown_tables(results_dir: Path | None = None) -> list[Path]:
    """Write ``<model>/<table>.md`` next to every summary CSV (``*_summary.csv``, ``distortion``,
    ``invariance``, ``adversarial``) so the results can be read without a spreadsheet; returns the paths
    written."""
    folder = Path(results_dir or RESULTS_DIR)
    written = []
    for csv in sorted(folder.glob("*/*.csv")):
        if csv.stem.endswith("_summary") or csv.stem in ("distortion", "invariance", "adversarial"):
            md = csv.with_suffix(".md")
            md.write_text(_md_table(pd.read_csv(csv).round(4)) + "\n")
            written.append(md)
    return written


def update_readme(readme: Path = README, results_dir: Path | None = None, check: bool = False) -> bool:
    """Replace the text between the results markers of the README; True if it changed.

    With ``check=True`` nothing is written (the return value says whether the
    README is out of date).

    Raises
    ------
    ValueError
        If the README lacks the ``<!-- results:start -->`` / ``<!-- results:end -->`` markers.
    """
    text = Path(readme).read_text()
    if START not in text or END not in text:
        raise ValueError(f"{readme} has no {START} ... {END} block")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = head + START + "\n" + results_markdown(results_dir) + "\n" + END + tail
    if new == text:
        return False
    if not check:
        Path(readme).write_text(new)
    return True
