"""The paper's claims next to our measurements, read from the results files of ``evaluate``.

:func:`claims` turns ``models/results/<model>/*.csv`` into one row per claim
(what the paper says, what we measured, whether it held); the dashboard's
Downstream page and the README's "Results" section (:func:`update_readme`,
``python -m backend report``) both show that table, so neither holds numbers
typed by hand.

Claims are from Hansen, Calissano & Feragen, "Interpreting Equivariant
Representations", ICML 2024 (Sec. 4-6).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from backend.evaluate import RESULTS_DIR, load_results

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _mean(df: pd.DataFrame, col: str, **where) -> float:
    sel = df
    for k, v in where.items():
        sel = sel[sel[k] == v]
    return float(sel[col].mean()) if len(sel) else float("nan")


def short_commit(commit) -> str:
    """First 10 hex digits of a commit, keeping a ``+dirty`` mark."""
    commit = str(commit)
    return commit[:10] + ("+dirty" if commit.endswith("+dirty") else "")


def _held(ok: bool | None) -> str:
    return "n/a" if ok is None else ("held" if ok else "did not hold")


def _qm9_claims(r: dict) -> list[dict]:
    out = []
    p = r.get("probes_summary")
    if p is not None:
        parts, ok = [], True
        for probe in p["probe"].unique():
            raw = _mean(p, "r2_mean", representation="raw (random node order)", probe=probe)
            srt = _mean(p, "r2_mean", representation="sort", probe=probe)
            stored = _mean(p, "r2_mean", representation="raw (stored node order)", probe=probe)
            ok &= srt > raw
            parts.append(f"{probe}: sorted {srt:.3f} vs raw {raw:.3f} (stored order {stored:.3f})")
        out.append({"model": "graph VAE · QM9", "claim": "Probes on the invariant projection (sorting) "
                    "predict properties better than the same probes on raw codes of randomly ordered "
                    "molecules",
                    "measured": "mean R² over 12 properties, " + "; ".join(parts), "result": _held(ok)})
    d = r.get("distortion")
    if d is not None and (d["projection"] == "sort").any():
        row = d[d["projection"] == "sort"].iloc[0]
        ok = (abs(row.ratio_min - 1) < 1e-3 and abs(row.ratio_max - 1) < 1e-3 and row.confusion_rate == 0)
        out.append({"model": "graph VAE · QM9", "claim": "Sorting is an isometric cross-section: it "
                    "keeps quotient distances and loses nothing",
                    "measured": (f"‖s(z1)−s(z2)‖ / d([z1],[z2]) on {int(row.n_pairs)} pairs: min "
                                 f"{row.ratio_min:.6f}, median {row.ratio_median:.6f}, max {row.ratio_max:.6f}; "
                                 f"confusion {row.confusion_rate:.3f}; neighbour rank correlation "
                                 f"{row.nn_spearman_mean:.4f}"),
                    "result": _held(ok)})
        pools = d[d["projection"].str.endswith("_pool")]
        if len(pools):
            worst = pools.sort_values("nn_spearman_mean").iloc[0]
            out.append({"model": "graph VAE · QM9", "claim": "Pooling over nodes is invariant but lossy",
                        "measured": "; ".join(f"{q.projection}: distortion {q.distortion:.3g}, rank corr. "
                                              f"{q.nn_spearman_mean:.3f}" for q in pools.itertuples()),
                        "result": _held(bool(worst.nn_spearman_mean < 0.999))})
    s = r.get("interpolation_summary")
    if s is not None and {"raw", "invariant"} <= set(s["path"]):
        raw, inv = s[s["path"] == "raw"].iloc[0], s[s["path"] == "invariant"].iloc[0]
        out.append({"model": "graph VAE · QM9", "claim": "Straight lines between sorted codes (quotient "
                    "geodesics) decode to better paths than straight lines between raw codes",
                    "measured": (f"validity along the path {100 * inv.validity:.1f} % vs raw "
                                 f"{100 * raw.validity:.1f} %; distinct molecules {inv.distinct_molecules:.2f} "
                                 f"vs {raw.distinct_molecules:.2f}; Tanimoto of consecutive valid steps "
                                 f"{inv.tanimoto_consecutive:.3f} vs {raw.tanimoto_consecutive:.3f}"),
                    "result": _held(bool(inv.validity > raw.validity))})
    return out


def _rot_claims(r: dict) -> list[dict]:
    out = []
    p = r.get("probes_summary")
    if p is not None:
        reps = [x for x in p["representation"].unique() if x != "raw codes"]
        lin = p[p["probe"] == "linear"].set_index("representation")["accuracy_mean"]
        raw = float(lin.get("raw codes", np.nan))
        best = max(reps, key=lambda x: float(lin.get(x, -1)))
        ok = all(float(lin.get(x, -1)) > raw for x in ("orbit_alignment", "max_filtering", "sorted_coorbits")
                 if x in lin)
        out.append({"model": "e2cnn C_8 · rotated MNIST", "claim": "Probes on invariant projections "
                    "classify digits better than the same probes on raw equivariant codes",
                    "measured": (f"linear probe accuracy: raw {100 * raw:.1f} %; " + ", ".join(
                        f"{x} {100 * float(lin.get(x)):.1f} %" for x in reps if x in lin) + f" (best: {best})"),
                    "result": _held(ok)})
    k = r.get("k_sweep_summary")
    if k is not None and p is not None:
        lin = p[p["probe"] == "linear"].set_index("representation")["accuracy_mean"]
        align = float(lin.get("orbit_alignment", np.nan))
        mf = k[k["representation"] == "max_filtering"].sort_values("k")
        top = mf.iloc[-1]
        ok = bool(top.accuracy_mean >= align - 0.02)
        out.append({"model": "e2cnn C_8 · rotated MNIST", "claim": "Random invariant projections (max "
                    "filtering) keep most of the information once k is large enough",
                    "measured": (f"linear accuracy with max filtering: " + ", ".join(
                        f"k={int(q.k)} {100 * q.accuracy_mean:.1f} %" for q in mf.itertuples())
                        + f"; lossless orbit alignment {100 * align:.1f} %"),
                    "result": _held(ok)})
    d = r.get("distortion")
    if d is not None:
        rows = d[d["projection"].isin(["max_filtering", "sorted_coorbits", "group_max_pool", "group_mean_pool",
                                       "fourier_modulus", "orbit_alignment"])]
        if len(rows):
            mf = rows[rows["projection"] == "max_filtering"]
            pool = rows[rows["projection"].isin(["group_max_pool", "group_mean_pool"])]
            ok = bool(len(mf) and len(pool) and mf.distortion.max() < pool.distortion.min())
            out.append({"model": "e2cnn C_8 · rotated MNIST", "claim": "Max filtering is bi-Lipschitz: "
                        "it keeps distance ratios in a narrower band than lossy group pooling",
                        "measured": "; ".join(f"{q.projection}: ratio {q.ratio_min:.3g}–{q.ratio_max:.3g} "
                                              f"(distortion {q.distortion:.3g}), rank corr. "
                                              f"{q.nn_spearman_mean:.3f}" for q in rows.itertuples()),
                        "result": _held(ok)})
    s = r.get("interpolation_summary")
    if s is not None and {"raw", "invariant"} <= set(s["path"]):
        raw, inv_ = s[s["path"] == "raw"].iloc[0], s[s["path"] == "invariant"].iloc[0]
        out.append({"model": "e2cnn C_8 · rotated MNIST", "claim": "Straight lines between codes aligned "
                    "to each other (quotient geodesics) decode to better paths than straight lines between "
                    "raw codes",
                    "measured": (f"classifier confidence along the path: mean {100 * inv_.confidence_mean:.1f} % "
                                 f"vs raw {100 * raw.confidence_mean:.1f} %, lowest {100 * inv_.confidence_min:.1f} % "
                                 f"vs {100 * raw.confidence_min:.1f} %; mean pixel change per step "
                                 f"{inv_.pixel_change_mean:.4f} vs {raw.pixel_change_mean:.4f}"),
                    "result": _held(bool(inv_.confidence_mean > raw.confidence_mean))})
    inv = r.get("invariance")
    if inv is not None and len(inv):
        out.append({"model": "e2cnn C_8 · rotated MNIST", "claim": "(context) How far input rotations by "
                    "2πk/8 move each representation, relative to the distance between two different digits",
                    "measured": "; ".join(f"{q.representation}: {q.orbit_spread_ratio:.3f}"
                                          for q in inv.itertuples()), "result": "n/a"})
    return out


def _aug_claims(r: dict) -> list[dict]:
    out = []
    inv = r.get("invariance")
    if inv is not None and len(inv):
        raw = inv[inv["representation"] == "raw code"].orbit_spread_ratio.iloc[0]
        out.append({"model": "plain CNN + augmentation", "claim": "A network trained with rotation "
                    "augmentation is not invariant: rotating the input moves its code on an orbit, as "
                    "for an equivariant network",
                    "measured": "orbit spread / between-digit distance: " + "; ".join(
                        f"{q.representation}: {q.orbit_spread_ratio:.3f}" for q in inv.itertuples()),
                    "result": _held(bool(raw > 0.1))})
    p = r.get("probes_summary")
    if p is not None:
        parts, ok = [], True
        for probe in p["probe"].unique():
            raw = _mean(p, "accuracy_mean", representation="raw codes", probe=probe)
            avg = _mean(p, "accuracy_mean", representation="orbit average (8 rotations)", probe=probe)
            ok &= avg > raw
            parts.append(f"{probe}: {100 * avg:.1f} % vs {100 * raw:.1f} %")
        out.append({"model": "plain CNN + augmentation", "claim": "An invariant representation (orbit "
                    "averaging) probes better than the augmentation-trained raw code",
                    "measured": "accuracy, orbit average vs raw: " + "; ".join(parts), "result": _held(ok)})
    return out


def claims(results_dir: Path | None = None) -> pd.DataFrame:
    """One row per claim: ``model, claim, measured, result`` (held / did not hold / n/a).

    Models without results files contribute no rows.
    """
    rows = (_qm9_claims(load_results("graph_vae_qm9", results_dir))
            + _rot_claims(load_results("rot_mnist_c8", results_dir))
            + _aug_claims(load_results("rot_mnist_cnn_aug", results_dir)))
    return pd.DataFrame(rows, columns=["model", "claim", "measured", "result"])


def _md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def results_markdown(results_dir: Path | None = None) -> str:
    """The README's Results section body: settings line, claims table and the key tables."""
    parts = []
    settings = []
    for mid in ("graph_vae_qm9", "rot_mnist_c8", "rot_mnist_cnn_aug"):
        r = load_results(mid, results_dir)
        if "settings" in r:
            s = r["settings"]
            cfg = s.get("config", {})
            settings.append(f"`{mid}`: `{s.get('command')}` ({cfg.get('seeds')} seeds, "
                            f"{s.get('wall_time_s', 0) / 60:.1f} min, commit `{short_commit(s.get('git_commit'))}`)")
    if not settings:
        return "No results files yet: run `python -m backend evaluate all`."
    parts.append("Generated by `python -m backend report` from `models/results/` (written by "
                 "`python -m backend evaluate all`). Runs: " + "; ".join(settings) + ".")
    parts.append(_md_table(claims(results_dir)))
    r = load_results("graph_vae_qm9", results_dir)
    if "probes_summary" in r:
        p = r["probes_summary"]
        piv = p.groupby(["representation", "probe"], sort=False)["r2_mean"].mean().unstack("probe").round(3)
        parts.append("QM9, mean R² over the 12 properties (test rows, mean over seeds):\n\n"
                     + _md_table(piv.reset_index()))
    r = load_results("rot_mnist_c8", results_dir)
    if "probes_summary" in r:
        p = r["probes_summary"].copy()
        p["accuracy"] = [f"{100 * m:.1f} ± {100 * (s if s == s else 0):.1f} %"
                         for m, s in zip(p["accuracy_mean"], p["accuracy_std"])]
        piv = p.pivot(index="representation", columns="probe", values="accuracy").reset_index()
        parts.append("Rotated MNIST (e2cnn C_8), digit accuracy on the held-out 20 %:\n\n" + _md_table(piv))
    return "\n\n".join(parts)


def write_markdown_tables(results_dir: Path | None = None) -> list[Path]:
    """Write ``<model>/<table>.md`` next to every summary CSV (``*_summary.csv``, ``distortion``,
    ``invariance``) so the results can be read without a spreadsheet; returns the paths written."""
    folder = Path(results_dir or RESULTS_DIR)
    written = []
    for csv in sorted(folder.glob("*/*.csv")):
        if csv.stem.endswith("_summary") or csv.stem in ("distortion", "invariance"):
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
