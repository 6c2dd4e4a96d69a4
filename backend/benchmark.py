"""``python -m backend benchmark``: one table of the figures that decide how fast the product feels.

Sections, each timed in this process (one thread for numpy's BLAS and torch) against a
baseline run in the same process (so the ratio, not the absolute time, is the figure to
compare across machines and loads):

* **encode**: the shipped graph VAE encoding QM9 molecules through the product's batch path
  (``encode_in_batches``, batches of 128, one thread), in molecules per second and as a
  fraction of one core's peak: the encoder's floating-point operations per second
  (``torch.utils.flop_counter``) against a 512 x 512 float32 matrix product timed here.
* **featurize**: :func:`backend.data.qm9.featurize_table` against the bare RDKit parse
  (``Chem.MolFromSmiles``) of the same SMILES: the floor.
* **projections**: every invariant projection of both group actions, vectorised
  ``transform`` of the codes against a per-sample loop (one ``transform`` call per code).
* **quotient distance**: the exact quotient distance, batched, against a per-pair loop
  (S_n: linear assignment per pair, and the sorting closed form for d = 1 as a check;
  C_N: FFT cross-correlation against the brute-force minimum over all N shifts).
* **maps**: the lean WebGL scatter (``backend.plots.latent_map``) and the density raster
  (``backend.density.density_figure``): build time and JSON bytes per point, against the
  raw bytes of the arrays drawn (x, y float32 and a row id: 12 bytes per point).
* **memory**: peak RSS of a fresh process generating synthetic S_n codes (the generator of
  ``ELX_SYNTHETIC_CODES``) and computing the app's maps (``views.compute_maps``: sorting,
  invariance check, two PCA maps) at several sizes, with the chunked PCA (now) and with
  the whole-array SVD (before) as the baseline; and peak RSS of a fresh process encoding QM9
  molecules (``benchmarks/encode_memory.py``): ``encode_in_batches`` writing every batch into
  one preallocated array (now) against a per-batch list + ``np.concatenate`` (before).
* **browser**: ``benchmarks/browser_latency.py`` in a subprocess (the app on 127.0.0.1,
  headless Chromium): step slider, colour and projection changes, p50 / p95 and CPU
  seconds per process, with the Latent maps page's charts drawn by the map component (now)
  and, in the same invocation, by ``st.plotly_chart`` (``--baseline-env ELX_MAP_COMPONENT=0``,
  the baseline); and figure variants of one map on a bare Plotly page.

``--quick`` runs tiny sizes (a few hundred molecules and codes, no browser unless asked)
for CI: every row is present and every figure is a finite positive number, and nothing
about speed is asserted. Writes ``BENCHMARKS.md`` (``--out``) with the table, the machine
(cores, CPU model, load average at start and end), the git commit and the commands.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    """One line of the table.

    Attributes
    ----------
    section : str, e.g. ``"encode"``.
    item : str, what was measured.
    value : float, the figure (finite and positive when the measurement worked).
    unit : str, its unit.
    baseline : str, what it is compared with (run in the same process), or "".
    ratio : float or None, ``value`` relative to the baseline, as stated in ``ratio_note``.
    ratio_note : str, how to read the ratio.
    note : str, extra context (sizes, checks).
    """

    section: str
    item: str
    value: float
    unit: str
    baseline: str = ""
    ratio: float | None = None
    ratio_note: str = ""
    note: str = ""


@dataclass
class Sizes:
    """Problem sizes of one run (``quick`` or full)."""

    featurize: int = 20_000
    encode: int = 20_000
    codes: int = 20_000
    loop: int = 400
    pairs: int = 2_000
    pair_loop: int = 400
    scatter: int = 130_831
    raster: int = 1_000_000
    memory: list = field(default_factory=lambda: [10_000, 100_000, 1_000_000, 10_000_000])
    encode_memory: list = field(default_factory=lambda: [40_000, 130_831])
    encode_repeats: int = 2
    repeat: int = 3

    @classmethod
    def quick(cls) -> "Sizes":
        """Tiny sizes for CI (seconds)."""
        return cls(featurize=120, encode=256, codes=300, loop=40, pairs=200, pair_loop=50, scatter=3_000,
                   raster=20_000, memory=[2_000, 20_000], encode_memory=[300], encode_repeats=1, repeat=1)


def _best(fn, repeat: int) -> tuple[float, object]:
    """Best wall time (s) of ``repeat`` calls of ``fn`` and the last result."""
    best, out = math.inf, None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return max(best, 1e-9), out


# ---------------------------------------------------------------- sections
def bench_featurize_and_encode(sizes: Sizes) -> list[Row]:
    """Featurize vs the bare RDKit parse; encode throughput and fraction of one core's peak.

    Uses the first ``sizes.featurize`` / ``sizes.encode`` SMILES of QM9 (``qm9pack``) and the
    shipped graph VAE weights (``models/weights/graph_vae_qm9.pt``, through the registry).
    """
    import torch
    from rdkit import Chem

    from backend.data import qm9

    table = qm9.load_qm9_table()
    n_feat = min(sizes.featurize, len(table))
    part = table.iloc[:max(n_feat, sizes.encode)].reset_index(drop=True)
    smiles = part["smiles"].tolist()[:n_feat]
    t_parse, _ = _best(lambda: [Chem.MolFromSmiles(s) for s in smiles], sizes.repeat)
    t_feat, feats = _best(lambda: qm9.featurize_table(part.iloc[:n_feat]), sizes.repeat)
    rows = [Row("featurize", f"featurize_table, {n_feat:,} QM9 SMILES", n_feat / t_feat, "molecules/s",
                "bare RDKit parse (Chem.MolFromSmiles) of the same SMILES", t_feat / t_parse,
                "x the parse time (1.0 = the floor)", f"parse alone: {n_feat / t_parse:,.0f} molecules/s")]

    from backend import registry
    from backend.latents import encode_in_batches

    entry = registry.get("graph_vae_qm9")
    n_enc = min(sizes.encode, len(part))
    types, bonds, tiebreak = feats[0], feats[1], feats[2]
    if n_enc > n_feat:
        types, bonds, tiebreak = qm9.featurize_table(part.iloc[:n_enc])[:3]
    arrays = (types[:n_enc], bonds[:n_enc], tiebreak[:n_enc])
    entry.model()  # load the weights outside the timing
    t_enc, codes = _best(lambda: encode_in_batches(entry._encode_arrays, arrays), sizes.repeat)

    # floating-point work of one batch of 128, counted by torch, and one core's matmul peak
    flops_per_mol = float("nan")
    try:
        from torch.utils.flop_counter import FlopCounterMode

        batch = tuple(torch.from_numpy(np.asarray(a[:128], dtype=np.int64)) for a in arrays)
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            entry.model().encode(*batch)
        flops_per_mol = counter.get_total_flops() / len(batch[0])
    except Exception:  # an older torch without the counter: the row says nan
        pass
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = torch.randn(512, 512)
        b = torch.randn(512, 512)
        a @ b
        t_mm, _ = _best(lambda: [a @ b for _ in range(20)], max(sizes.repeat, 2))
    finally:
        torch.set_num_threads(threads)
    peak = 20 * 2 * 512 ** 3 / t_mm
    achieved = flops_per_mol * n_enc / t_enc
    rows.append(Row("encode", f"graph VAE encode (batches of 128, 1 thread), {n_enc:,} molecules",
                    n_enc / t_enc, "molecules/s", "one core's float32 matmul peak (512 x 512, this process)",
                    achieved / peak if np.isfinite(achieved) else None, "fraction of the peak FLOP/s",
                    f"{flops_per_mol / 1e6:.2f} MFLOP per molecule; peak {peak / 1e9:.1f} GFLOP/s; codes "
                    f"{tuple(codes.shape)}"))
    return rows


def bench_projections(sizes: Sizes, seed: int = 0) -> list[Row]:
    """Vectorised ``transform`` of every projection vs one ``transform`` call per code."""
    from backend.groups import CyclicShiftAction, LatentCodes, PermutationAction
    from backend.projections import make_projection, projections_for

    rng = np.random.default_rng(seed)
    rows = []
    for action in (CyclicShiftAction(16, 8), PermutationAction(9, 1)):
        codes = LatentCodes(rng.standard_normal((sizes.codes,) + action.code_shape).astype(np.float32), action)
        for spec in projections_for(action):
            proj = make_projection(spec.key, 0)
            if "k" in proj.get_params():
                proj.set_params(k=64)
            proj.fit(codes)
            t_vec, out = _best(lambda p=proj: p.transform(codes), sizes.repeat)
            n_loop = min(sizes.loop, sizes.codes)
            t_loop, _ = _best(lambda p=proj: [p.transform(codes[i:i + 1]) for i in range(n_loop)], 1)
            per_vec, per_loop = t_vec / sizes.codes, t_loop / n_loop
            rows.append(Row("projections", f"{spec.key} on {action.name} {action.code_shape}, "
                            f"{sizes.codes:,} codes", sizes.codes / t_vec, "codes/s",
                            "per-sample loop (one transform call per code)", per_loop / per_vec,
                            "x faster than the loop", f"output width {out.shape[1]}"
                            + ("; k = 64 templates" if "k" in proj.get_params() else "")))
    return rows


def bench_quotient_distance(sizes: Sizes, seed: int = 0) -> list[Row]:
    """Exact quotient distance, batched, against a per-pair loop / brute force; with exactness checks."""
    from backend.groups import CyclicShiftAction, PermutationAction

    rng = np.random.default_rng(seed)
    rows = []
    perm = PermutationAction(9, 1)
    z1, z2 = (rng.standard_normal((sizes.pairs, 9, 1)) for _ in range(2))
    t_batch, d = _best(lambda: perm.quotient_distance(z1, z2), sizes.repeat)
    n_loop = min(sizes.pair_loop, sizes.pairs)
    t_loop, _ = _best(lambda: [perm.quotient_distance(z1[i:i + 1], z2[i:i + 1]) for i in range(n_loop)], 1)
    closed = np.linalg.norm(np.sort(z1[..., 0], 1) - np.sort(z2[..., 0], 1), axis=1)
    t_sort, _ = _best(lambda: np.linalg.norm(np.sort(z1[..., 0], 1) - np.sort(z2[..., 0], 1), axis=1),
                      sizes.repeat)
    rows.append(Row("quotient distance", f"S_n (9, 1): linear assignment per pair, {sizes.pairs:,} pairs",
                    sizes.pairs / t_batch, "pairs/s", "per-pair loop of single calls",
                    (t_loop / n_loop) / (t_batch / sizes.pairs), "x faster than the loop",
                    f"max |LAP - sorting closed form (d = 1)| = {np.abs(d - closed).max():.1e}; the closed "
                    f"form runs at {sizes.pairs / t_sort:,.0f} pairs/s"))
    cyc = CyclicShiftAction(16, 8)
    c1, c2 = (rng.standard_normal((sizes.pairs, 16, 8)) for _ in range(2))
    t_fft, dc = _best(lambda: cyc.quotient_distance(c1, c2), sizes.repeat)

    def brute():
        return np.min([np.linalg.norm((c1 - np.roll(c2, k, axis=-1)).reshape(len(c1), -1), axis=1)
                       for k in range(8)], axis=0)

    t_brute, db = _best(brute, sizes.repeat)
    rows.append(Row("quotient distance", f"C_8 (16, 8): FFT cross-correlation, {sizes.pairs:,} pairs",
                    sizes.pairs / t_fft, "pairs/s", "brute force: minimum over all 8 shifts (numpy)",
                    t_brute / t_fft, "x faster than brute force", f"max |FFT - brute force| = "
                    f"{np.abs(dc - db).max():.1e}"))
    return rows


def bench_maps(sizes: Sizes, seed: int = 0) -> list[Row]:
    """Build time and JSON bytes of the lean scatter and of the density raster."""
    import pandas as pd
    import plotly.io as pio

    from backend import density, plots

    radius = type("ColorOption", (), dict(key="radius", label="norm of the code", unit="latent units",
                                          categorical=False, scale=1.0))()
    cluster = type("ColorOption", (), dict(key="cluster", label="cluster", unit="id", categorical=True,
                                           scale=1.0))()
    rows = []
    m = max(sizes.scatter, sizes.raster)
    codes = density.synthetic_codes(m, seed=seed)
    coords = density.streaming_pca_map(lambda a, b: np.sort(codes.random[a:b, :, 0], axis=1), m).coords
    table = pd.DataFrame({"radius": codes.radius, "cluster": codes.cluster}, copy=False)
    n = sizes.scatter
    for option in (radius, cluster):
        sub = table.iloc[:n]
        t_build, fig = _best(lambda o=option: plots.latent_map(coords[:n], sub, o), sizes.repeat)
        t_json, text = _best(lambda f=fig: pio.to_json(f, validate=False), sizes.repeat)
        kind = "categorical (one trace per category)" if option.categorical else \
            f"continuous ({plots.COLOUR_BINS} colour bins)"
        rows.append(Row("maps", f"WebGL scatter, {n:,} points, {kind}: JSON", len(text) / n, "bytes/point",
                        "raw arrays drawn (x, y float32 + int32 row id = 12 bytes/point)", len(text) / n / 12,
                        "x the raw bytes", f"{len(text) / 1e6:.2f} MB"))
        rows.append(Row("maps", f"WebGL scatter, {n:,} points, {kind}: build + to_json", (t_build + t_json) * 1e3,
                        "ms", "", None, "", f"build {t_build * 1e3:.0f} ms, to_json {t_json * 1e3:.0f} ms"))
    values = table["radius"].to_numpy()[:sizes.raster]
    density.density_figure(coords[:1000], values[:1000], radius)  # datashader compiles on the first call
    t_raster, fig = _best(lambda: density.density_figure(coords[:sizes.raster], values, radius), sizes.repeat)
    text = pio.to_json(fig, validate=False)
    scatter_bytes = rows[0].value * sizes.raster  # the continuous scatter's bytes/point, extrapolated
    rows.append(Row("maps", f"density raster ({density.RASTER_WIDTH} x {density.RASTER_HEIGHT}), "
                    f"{sizes.raster:,} points: JSON", len(text) / 1e6, "MB",
                    "a scatter of as many points (bytes/point above, extrapolated)",
                    len(text) / scatter_bytes, "x the scatter's bytes",
                    f"scatter would be {scatter_bytes / 1e6:.1f} MB"))
    rows.append(Row("maps", f"density raster, {sizes.raster:,} points: build", t_raster * 1e3, "ms"))
    return rows


# ---------------------------------------------------------------- memory (fresh processes)
def memory_child(m: int, method: str) -> dict:
    """In this (fresh) process: generate ``m`` synthetic codes and compute the app's maps.

    The codes are :func:`backend.density.synthetic_codes` wrapped like
    ``registry.SyntheticCodesEntry.encode_dataset`` (``ELX_SYNTHETIC_CODES``) without
    importing torch; the maps are :func:`backend.views.compute_maps` (sorting), with the PCA
    solver forced to ``method`` (``"auto"``: chunked for tall data, now; ``"svd"``: one SVD
    of a float64 copy, before).

    Returns
    -------
    dict: ``rss_base_mb`` (peak RSS after imports), ``rss_codes_mb`` (after generating),
    ``rss_peak_mb`` (peak after the maps), ``codes_mb`` (bytes of the generated arrays),
    ``generate_s``, ``maps_s``.
    """
    import functools

    import pandas as pd

    from backend import density, embedding, views
    from backend.groups import LatentCodes, PermutationAction
    from backend.latents import EncodedDataset

    base = _peak_rss_mb()
    t0 = time.perf_counter()
    codes = density.synthetic_codes(m, seed=0)
    action = PermutationAction(9, 1)
    table = pd.DataFrame({"code_id": np.arange(m), "cluster": codes.cluster, "radius": codes.radius})
    enc = EncodedDataset(table, LatentCodes(codes.stored, action), LatentCodes(codes.random, action),
                         codes.perms, 0, Path(os.devnull))
    t1 = time.perf_counter()
    after_codes = _peak_rss_mb()
    views.pca_map = functools.partial(embedding.pca_map, method=method)
    maps = views.compute_maps(enc, "random", "sort", 0)
    t2 = time.perf_counter()
    nbytes = sum(a.nbytes for a in (codes.stored, codes.random, codes.perms, codes.cluster, codes.radius))
    return {"m": m, "method": method, "rss_base_mb": base, "rss_codes_mb": after_codes,
            "rss_peak_mb": _peak_rss_mb(), "codes_mb": nbytes / 2 ** 20, "generate_s": t1 - t0,
            "maps_s": t2 - t1, "map_points": int(len(maps.inv.coords))}


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (``VmHWM``), MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_memory(sizes: Sizes) -> tuple[list[Row], list[dict]]:
    """Peak RSS per size and PCA solver, each in a fresh ``python -m backend.benchmark --memory-child``."""
    results = []
    for m in sizes.memory:
        for method in ("auto", "svd"):
            cmd = [sys.executable, "-m", "backend.benchmark", "--memory-child", str(m), method]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                                  env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"))
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                raise RuntimeError(f"memory child {m} {method} failed: {proc.stderr[-2000:]}")
            results.append(json.loads(line[7:]))
    rows = []
    for m in sizes.memory:
        now = next(r for r in results if r["m"] == m and r["method"] == "auto")
        before = next(r for r in results if r["m"] == m and r["method"] == "svd")
        grow_now = max(now["rss_peak_mb"] - now["rss_codes_mb"], 0.01)
        grow_before = max(before["rss_peak_mb"] - before["rss_codes_mb"], 0.01)
        rows.append(Row("memory", f"{m:,} synthetic S_n codes: generate + compute_maps, peak RSS",
                        now["rss_peak_mb"], "MB", "whole-array SVD PCA (before), fresh process",
                        now["rss_peak_mb"] / before["rss_peak_mb"], "x the baseline's peak",
                        f"codes {now['codes_mb']:.0f} MB; maps add {grow_now:.0f} MB (SVD: {grow_before:.0f} MB); "
                        f"after imports {now['rss_base_mb']:.0f} MB; maps {now['maps_s']:.1f} s "
                        f"(SVD {before['maps_s']:.1f} s)"))
    return rows, results


def bench_encode_memory(sizes: Sizes) -> tuple[list[Row], list[dict]]:
    """Peak RSS while encoding QM9 molecules: ``encode_in_batches`` (a preallocated output, now)
    against a per-batch list + ``np.concatenate`` (before), each in ``sizes.encode_repeats``
    fresh processes (``benchmarks/encode_memory.py``: the peak counter is reset just before the
    encode). The row gives the largest peak of each version."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import encode_memory
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    results, rows = [], []
    for m in sizes.encode_memory:
        res = encode_memory.measure(m, {"PYTHONPATH": str(ROOT)}, sizes.encode_repeats)
        results += res
        now = [r for r in res if r["method"] == "preallocated"]
        before = [r for r in res if r["method"] == "list"]

        def worst(rs, key="encode_peak_mb"):
            return max(rs, key=lambda r: r[key])

        def each(rs, key):
            return " / ".join(f"{r[key]:,.0f}" for r in rs)

        n, b = worst(now), worst(before)
        grow_now, grow_before = max(n["encode_peak_mb"], 0.01), max(b["encode_peak_mb"], 0.01)
        per = f"{len(now)} processes each" if len(now) > 1 else "one process each"
        rows.append(Row("memory", f"encode {n['molecules']:,} QM9 molecules (graph VAE, batches of 128, "
                        "preallocated output): peak RSS added during the encode, largest of "
                        f"{len(now)}", grow_now, "MB",
                        "per-batch list + np.concatenate (before), fresh processes", grow_now / grow_before,
                        "x the baseline's largest", f"{per}; peak added: preallocated {each(now, 'encode_peak_mb')} "
                        f"MB, list {each(before, 'encode_peak_mb')} MB; kept after the encode: preallocated "
                        f"{each(now, 'retained_mb')} MB, list {each(before, 'retained_mb')} MB; codes "
                        f"{n['codes_mb']:.1f} MB; RSS before {n['rss_before_mb']:,.0f} MB; encode "
                        f"{n['wall_s']:.1f} s (list {b['wall_s']:.1f} s)"))
    return rows, results


# ---------------------------------------------------------------- browser (subprocess)
#: density threshold of the comparison run: QM9's 130,831-point maps drawn as rasters
RASTER_COMPARISON_THRESHOLD = 100_000
#: molecules of the small-map comparison run (``ELX_QM9_SUBSET``)
SMALL_COMPARISON_POINTS = 1_500


def _latency_subprocess(args: list[str], shown: list[str] | None = None) -> tuple[dict, str]:
    """Run ``benchmarks/browser_latency.py`` with ``args``; its JSON results and the command line
    (with ``shown`` in place of ``args`` when given, e.g. without temporary paths)."""
    with tempfile.TemporaryDirectory(prefix="elx_bench_") as tmp:
        out = Path(tmp) / "latency.json"
        cmd = [sys.executable, "benchmarks/browser_latency.py", *args, "--json", str(out)]
        log = out.with_name("latency.log")
        with open(log, "w") as fh:  # Playwright and Streamlit logs go to a file, not the console
            proc = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"browser benchmark failed (exit {proc.returncode}): {log.read_text()[-2000:]}")
        res = json.loads(out.read_text())
    return res, " ".join(shlex.quote(c) for c in ["python", cmd[1], *(args if shown is None else shown)])


def _checkout(rev: str, dest: Path) -> None:
    """The files of git revision ``rev`` of this repository, unpacked into ``dest`` (``git archive``)."""
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)


#: the app setting of the same-invocation baseline: the Latent maps page's charts drawn by st.plotly_chart
BASELINE_ENV = "ELX_MAP_COMPONENT=0"
#: bytes per point of the map component's arguments: x, y float32, row id int32, colour group uint16
COMPONENT_POINT_BYTES = 14
#: of which the colour group (the only part a colour change alters)
COMPONENT_GROUP_BYTES = 2
#: the targets of issue 11 (p95, ms)
SLIDER_TARGET_MS, COLOUR_TARGET_MS = 300, 1000

NAMES = {"slider": "step slider moved (key press -> new step drawn)",
         "colour": "colour changed (both maps redrawn)",
         "projection": "projection changed (invariant map redrawn)"}


def _times(before: float, now: float, faster: str = "faster", slower: str = "slower") -> str:
    """``before / now`` in words: "2.3 x faster", or "1.4 x slower" when ``now`` is larger."""
    r = before / max(now, 1e-9)
    return f"{r:.1f} x {faster}" if r >= 1 else f"{1 / max(r, 1e-9):.1f} x {slower}"


def _cpu_note(s: dict) -> str:
    return (f"CPU {s.get('cpu_total_s_median', 0):.2f} s (server {s.get('cpu_server_s_median', 0):.2f}, renderer "
            f"{s.get('cpu_renderer_s_median', 0):.2f}, GPU process {s.get('cpu_gpu_s_median', 0):.2f})")


def bench_browser(quick: bool, cache_dir: Path | None, variants: int, raster_comparison: bool,
                  baseline: str | None = None, actions: tuple[int, int, int] | None = None
                  ) -> tuple[list[Row], dict, dict | None, list[str]]:
    """Run ``benchmarks/browser_latency.py`` in a subprocess; rows from its JSON output.

    One invocation times ``actions`` (slider moves, colour changes, projection changes;
    default 50, 20, 20, quick 3, 2, 2) on the app as it is (the Latent maps page's charts
    drawn by the map component) and, first, the colour and projection changes with
    ``ELX_MAP_COMPONENT=0`` (``st.plotly_chart``: the same-run baseline; the step slider's
    page does not use the component, so the baseline skips it). With ``raster_comparison``
    also: colour changes with QM9's maps drawn as density rasters, and on 1,500-molecule
    maps. With ``baseline`` (a git revision) also: colour and projection changes of that
    revision's app (``git archive``), served with the same data cache."""
    n_slider, n_colour, n_projection = actions or ((3, 2, 2) if quick else (50, 20, 20))
    subset = ["--qm9-subset", "600"] if quick else []
    args = ["--slider", str(n_slider), "--colour", str(n_colour), "--projection", str(n_projection), *subset]
    if n_colour or n_projection:
        args += ["--baseline-env", BASELINE_ENV, "--baseline-slider", "0"]
    if cache_dir is not None:
        args += ["--cache-dir", str(cache_dir)]
    if variants:
        args += ["--variants", str(variants)]
    res, command = _latency_subprocess(args)
    commands = [command]
    raster = None
    n_cmp = min(n_colour, 2 if quick else 10)
    if raster_comparison and n_cmp:
        r_args = ["--slider", "0", "--colour", str(n_cmp), "--projection", "0",
                  "--app-env", f"ELX_DENSITY_THRESHOLD={RASTER_COMPARISON_THRESHOLD}", *subset]
        if cache_dir is not None:
            r_args += ["--cache-dir", str(cache_dir)]
        raster, command = _latency_subprocess(r_args)
        commands.append(command)
        # the same change on small maps: what a change costs whatever the number of points
        with tempfile.TemporaryDirectory(prefix="elx_bench_small_") as small_cache:
            s_args = ["--slider", "0", "--colour", str(n_cmp), "--projection", "0", "--qm9-subset",
                      str(SMALL_COMPARISON_POINTS)]
            small, command = _latency_subprocess(s_args + ["--cache-dir", small_cache],
                                                 s_args + ["--cache-dir", "<new empty folder>"])
        commands.append(command)
        raster["small"] = small
    if baseline and (n_colour or n_projection):  # the same changes on the app of another revision
        with tempfile.TemporaryDirectory(prefix="elx_bench_rev_") as tree:
            _checkout(baseline, Path(tree))
            b_args = ["--slider", "0", "--colour", str(min(n_colour, 10)), "--projection",
                      str(min(n_projection, 5)), *subset]
            before, command = _latency_subprocess(b_args + ["--app-root", tree] + (
                ["--cache-dir", str(cache_dir)] if cache_dir is not None else []),
                b_args + ["--app-root", f"<git archive {baseline}>"])
        commands.append(command)
        res["revision_baseline"] = {"revision": baseline, **before}
    rows = []
    pts = res.get("points")
    plotly_chart = (res.get("baseline") or {}).get("actions", {})
    for key, s in res["actions"].items():
        b = plotly_chart.get(key)
        note = f"p50 {s['p50_ms']:.0f} ms; {s['ws_mb_median']:.2f} MB sent; {_cpu_note(s)}"
        if key == "slider":
            met = s["p95_ms"] < SLIDER_TARGET_MS
            note += f"; target p95 < {SLIDER_TARGET_MS} ms: {'meets' if met else 'misses'} it"
        elif key == "colour":
            met = s["p95_ms"] < COLOUR_TARGET_MS
            note += f"; target p95 < {COLOUR_TARGET_MS / 1000:.0f} s: {'meets' if met else 'misses'} it"
        if s.get("canvas_draws_median"):
            note += (f"; map component: {_fmt(s.get('reacts_median'))} Plotly.react calls, "
                     f"{_fmt(s['canvas_draws_median'])} canvas draws ({_fmt(s.get('canvas_ms_median'))} ms)")
        if pts:
            note += f"; {pts:,} points per map"
        item = f"{NAMES.get(key, key)}{', map component' if b else ''}, p95 over {s['n']}"
        if b:
            rows.append(Row("browser", item, s["p95_ms"], "ms", f"st.plotly_chart ({BASELINE_ENV}), same invocation",
                            b["p95_ms"] / s["p95_ms"], "x faster (p95)",
                            note + f"; st.plotly_chart: p50 {b['p50_ms']:.0f} ms ({b['p50_ms'] / s['p50_ms']:.2f} x), "
                            f"{b['ws_mb_median']:.2f} MB sent, CPU {b.get('cpu_total_s_median', 0):.2f} s"))
            rows.append(Row("browser", f"{NAMES.get(key, key)}, st.plotly_chart ({BASELINE_ENV}: the baseline), "
                            f"p95 over {b['n']}", b["p95_ms"], "ms", "", None, "",
                            f"p50 {b['p50_ms']:.0f} ms; {b['ws_mb_median']:.2f} MB sent; {_cpu_note(b)}; "
                            f"{_fmt(b.get('reacts_median'))} Plotly.react calls, {_fmt(b.get('draws_median'))} WebGL "
                            f"draw calls, {_fmt(b.get('stringify_mb_median'))} MB JSON.stringify"))
        else:
            rows.append(Row("browser", item, s["p95_ms"], "ms", "", None, "", note))
    for v in res.get("variants", []):
        rows.append(Row("browser", f"one 130,831-point map, bare Plotly page: {v['variant']}",
                        v["first_ms"] + v["second_ms"], "ms", "", None, "",
                        f"first draw {v['first_ms']:.0f} ms + Streamlit-style second hand-off "
                        f"{v['second_ms']:.0f} ms; {v['draws']} WebGL draw calls; CPU GPU process "
                        f"{v['gpu_s']:.2f} s, renderer {v['renderer_s']:.2f} s; {v['json_mb']:.2f} MB JSON"))
    base = rows and [r for r in rows if "before:" in r.item]
    for r in rows:
        if base and "bare Plotly page" in r.item and r is not base[0]:
            r.baseline, r.ratio, r.ratio_note = "the figure before (first variant)", base[0].value / r.value, \
                "x faster"
    before = res.get("revision_baseline")
    if before:
        for key in ("colour", "projection"):
            b, now = before["actions"].get(key), res["actions"].get(key)
            if b and now:
                rows.append(Row("browser", f"{NAMES[key]} on revision {before['revision']} (before), p95 over "
                                f"{b['n']}", b["p95_ms"], "ms", "this run's app (the map component row above)",
                                b["p95_ms"] / now["p95_ms"], "x this run's p95",
                                f"p50 {b['p50_ms']:.0f} ms ({b['p50_ms'] / now['p50_ms']:.2f} x); "
                                f"{b['ws_mb_median']:.2f} MB sent; CPU {b.get('cpu_total_s_median', 0):.2f} s "
                                f"({b.get('cpu_total_s_median', 0) / max(now.get('cpu_total_s_median', 0), 1e-9):.2f}"
                                " x)"))
    colour_now = res["actions"].get("colour")
    if raster and raster.get("small") and colour_now:
        s = raster["small"]["actions"]["colour"]
        rows.append(Row("browser", f"colour changed, {SMALL_COMPARISON_POINTS:,}-molecule maps, map component (the "
                        f"cost of any change), p95 over {s['n']}", s["p95_ms"], "ms", "the full maps (the map "
                        "component's colour row)", s["p95_ms"] / colour_now["p95_ms"], "x the full maps' p95",
                        f"p50 {s['p50_ms']:.0f} ms; {s['ws_mb_median']:.2f} MB sent; {_cpu_note(s)}"))
    if raster and colour_now:
        s = raster["actions"]["colour"]
        rows.append(Row("browser", f"colour changed, maps as density rasters (ELX_DENSITY_THRESHOLD="
                        f"{RASTER_COMPARISON_THRESHOLD:,}, st.plotly_chart), p95 over {s['n']}", s["p95_ms"], "ms",
                        "the map component's scatter (its colour row)", s["p95_ms"] / colour_now["p95_ms"],
                        "x the component's p95", f"p50 {s['p50_ms']:.0f} ms; {s['ws_mb_median']:.2f} MB sent; CPU "
                        f"{s.get('cpu_total_s_median', 0):.2f} s; no click selection of single points on rasters"))
    return rows, res, raster, commands


# ---------------------------------------------------------------- report
def machine() -> dict:
    """Cores, CPU model, memory, Python / platform, load average now."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(ln for ln in Path("/proc/meminfo").read_text().splitlines()
                      if ln.startswith("MemTotal")).split()[1])
        mem = f"{kb / 2 ** 20:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return {"nproc": os.cpu_count(), "cpu": model or platform.processor(), "memory": mem,
            "python": platform.python_version(), "platform": platform.platform(), "load": os.getloadavg()}


def git_commit() -> str:
    """``git rev-parse HEAD`` (+ ``+dirty`` with uncommitted changes), or ``unknown``."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=20).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=20).stdout.strip()
        return (head or "unknown") + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _fmt_int(v) -> str:
    return f"{int(v):,}" if v else "?"


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    v = float(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def table_markdown(rows: list[Row]) -> str:
    """The rows as one Markdown table."""
    out = ["| section | measurement | value | unit | baseline (same process) | ratio | notes |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{_fmt(r.ratio)} {r.ratio_note}".strip() if r.ratio is not None else "–"
        out.append(f"| {r.section} | {r.item} | {_fmt(r.value)} | {r.unit} | {r.baseline or '–'} | {ratio} | "
                   f"{r.note} |")
    return "\n".join(out)


def write_report(path: Path, rows: list[Row], info: dict) -> None:
    """Write ``BENCHMARKS.md``: how it was run, the machine, the table and the notes."""
    m0, m1 = info["machine_start"], info["machine_end"]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{info['command']}` (`backend/benchmark.py`); rerun it to replace this file. "
        f"{'Quick run (tiny sizes, for CI): the figures say nothing about speed.' if info['quick'] else ''}",
        "",
        f"* commit: `{info['commit']}`; run {info['started']} to {info['finished']} ({info['seconds']:.0f} s)",
        f"* machine: {m0['nproc']} cores, {m0['cpu']}, {m0['memory']} memory; Python {m0['python']}; "
        f"{m0['platform']}",
        f"* load average (1, 5, 15 min) at start: {', '.join(f'{x:.2f}' for x in m0['load'])}; at end: "
        f"{', '.join(f'{x:.2f}' for x in m1['load'])}. "
        + ("Other work was running on these cores: absolute times are upper bounds; the ratios "
           "(both sides timed in the same process, moments apart) and CPU seconds are the figures to "
           "compare." if m0["load"][0] > 0.5 * (m0["nproc"] or 1) else
           "The machine was close to idle at the start"
           + ("; the load at the end counts this command's own processes (the app's server, Chromium, "
              "the memory children)." if m1["load"][0] > 0.5 * (m0["nproc"] or 1) else ".")),
        "* commands:",
        "",
        "```bash",
        *info["commands"],
        "```",
        "",
        table_markdown(rows),
        "",
    ]
    lines += info.get("sections", [])
    path.write_text("\n".join(lines) + "\n")


def _memory_section(results: list[dict]) -> list[str]:
    if not results:
        return []
    out = ["## Memory while generating and mapping codes", "",
           "Fresh process per line (`python -m backend.benchmark --memory-child M METHOD`): generate M seeded "
           "synthetic S_n codes (9, 1) in chunks into preallocated arrays (both presentations, permutations, "
           "metadata), then `views.compute_maps` (sorting, invariance check over both presentations, PCA of "
           "the raw and the sorted codes). `auto` is the app now (the projection written chunk by chunk into a "
           "preallocated array, the invariance check in chunks, PCA from chunks above 4 M values); `svd` "
           "forces the whole-array SVD that `compute_maps` used before (the chunked projection and check "
           "stay, so the difference is the PCA alone; before them the 10 M map peaked at 4.6 GB).", "",
           "| codes | PCA | codes in memory [MB] | peak RSS after generating [MB] | peak RSS after the maps [MB] "
           "| added by the maps [MB] | generate [s] | maps [s] |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        out.append(f"| {r['m']:,} | {r['method']} | {r['codes_mb']:.0f} | {r['rss_codes_mb']:.0f} | "
                   f"{r['rss_peak_mb']:.0f} | {r['rss_peak_mb'] - r['rss_codes_mb']:.0f} | {r['generate_s']:.2f} | "
                   f"{r['maps_s']:.2f} |")
    return out + [""]


def _encode_memory_section(results: list[dict]) -> list[str]:
    if not results:
        return []
    out = ["## Memory while encoding", "",
           "Fresh process per line (`benchmarks/encode_memory.py`, run by this command; the versions alternate): "
           "load the first M QM9 molecules (`ELX_QM9_SUBSET=M`, featurized or from the cache), then encode them "
           "with the shipped graph VAE (batches of 128, one thread). `preallocated` is "
           "`backend.latents.encode_in_batches` now (every batch written into one output array allocated after "
           "the first batch); `list` keeps each batch's codes in a list and concatenates them at the end "
           "(before). The process's peak counter (`VmHWM`) is reset just before the encode, so *peak added* is "
           "the encode's own peak above the resident set it started from.", "",
           "| molecules | encode | process | codes [MB] | RSS before [MB] | peak added during the encode [MB] "
           "| kept after it [MB] | encode [s] |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        out.append(f"| {r['molecules']:,} | {r['method']} | {r.get('repeat', 0) + 1} | {r['codes_mb']:.1f} | "
                   f"{r['rss_before_mb']:.0f} | {r['encode_peak_mb']:.1f} | {r['retained_mb']:.1f} | "
                   f"{r['wall_s']:.1f} |")
    out.append("")

    def each(rs, key):
        return " / ".join(f"{r[key]:,.0f}" for r in rs)

    for m in sorted({r["molecules"] for r in results}):
        lst = [r for r in results if r["molecules"] == m and r["method"] == "list"]
        pre = [r for r in results if r["molecules"] == m and r["method"] == "preallocated"]
        if not (lst and pre):
            continue
        wl, wp = max(r["encode_peak_mb"] for r in lst), max(r["encode_peak_mb"] for r in pre)
        out.append(f"* {m:,} molecules ({lst[0]['codes_mb']:.1f} MB of codes): the list version added "
                   f"{each(lst, 'encode_peak_mb')} MB at its peak (largest {wl * 1024 / m:,.1f} KB per molecule) "
                   f"and still held {each(lst, 'retained_mb')} MB after the encode, when only the codes were "
                   f"alive; the preallocated one added {each(pre, 'encode_peak_mb')} MB (largest "
                   f"{wp * 1024 / m:,.1f} KB per molecule) and held {each(pre, 'retained_mb')} MB after it.")
    lst = [r["encode_peak_mb"] for r in results if r["method"] == "list"]
    pre = [r["encode_peak_mb"] for r in results if r["method"] == "preallocated"]
    out += ["", f"Over this run's processes the list version added {min(lst):,.0f} to {max(lst):,.0f} MB, the "
            f"preallocated one {min(pre):,.0f} to {max(pre):,.0f} MB. Memory held after the encode beyond the "
            "codes is the allocator's (freed, not returned to the system), not data, so the list version's "
            "figure is not proportional to the molecules and changes from process to process (from about 8 MB "
            "to 1.8 GB at these two sizes in eight processes of each version run while writing this section, not "
            "by this command; the preallocated version added 10 to 34 MB in those)."]
    return out + [""]


def _sent_note(s: dict, pts: int, maps: int) -> str:
    """What a change sent against the map component's point bytes of ``maps`` maps."""
    per_map = COMPONENT_POINT_BYTES * pts / 1e6
    return (f"{s['ws_mb_median']:.2f} MB sent per change (median); the component's point bytes of "
            f"{'both maps' if maps == 2 else 'one map'} are {maps * per_map:.2f} MB ({COMPONENT_POINT_BYTES} bytes "
            f"per point: x, y float32, row id int32, colour group uint16)")


def _browser_section(res: dict | None) -> list[str]:
    if not res:
        return []
    base = res.get("baseline")
    out = ["## In the browser", "",
           f"`benchmarks/browser_latency.py` (app on 127.0.0.1, {_fmt_int(res.get('points'))} points per map, "
           f"headless Chromium with software WebGL (SwiftShader)). The Latent maps page draws its two maps with "
           f"the map component (`app_pages/components/map_chart`: the chart stays mounted, the points are drawn "
           f"into a 2-D canvas, Plotly draws axes, legend, colour bar and overlays)"
           + (f"; the same invocation first timed the colour and projection changes with `{BASELINE_ENV}` "
              f"(`st.plotly_chart`, the baseline: load average {base['load_before']:.2f} before and "
              f"{base['load_after']:.2f} after) and then the app as it is (load average {res['load_before']:.2f} "
              f"before and {res['load_after']:.2f} after)." if base else
              f" (load average {res['load_before']:.2f} before and {res['load_after']:.2f} after)."), "",
           "| action | maps drawn by | n | p50 [ms] | p95 [ms] | max [ms] | sent [MB] | CPU s: server / renderer "
           "/ GPU process | Plotly.react calls (ms) | canvas draws (ms) | WebGL draw calls | JSON.stringify [MB] |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    runs = [("map component", res)] + ([(f"st.plotly_chart ({BASELINE_ENV})", base)] if base else [])
    for key in ("slider", "colour", "projection"):
        for who, r in runs:
            s = r["actions"].get(key)
            if not s:
                continue
            who = "–" if key == "slider" else who  # the Interpolation page's maps: st.plotly_chart either way
            react = f"{_fmt(s.get('reacts_median'))} ({_fmt(s.get('react_ms_median'))})" \
                if s.get("reacts_median") is not None else "–"
            canvas = f"{_fmt(s.get('canvas_draws_median'))} ({_fmt(s.get('canvas_ms_median'))})" \
                if s.get("canvas_draws_median") else "–"
            out.append(f"| {key} | {who} | {s['n']} | {s['p50_ms']:.0f} | {s['p95_ms']:.0f} | {s['max_ms']:.0f} | "
                       f"{s['ws_mb_median']:.2f} | {s.get('cpu_server_s_median', 0):.2f} / "
                       f"{s.get('cpu_renderer_s_median', 0):.2f} / {s.get('cpu_gpu_s_median', 0):.2f} | {react} | "
                       f"{canvas} | {_fmt(s.get('draws_median'))} | {_fmt(s.get('stringify_mb_median'))} |")
    out.append("")
    sl = res["actions"].get("slider")
    if sl:
        met = sl["p95_ms"] < SLIDER_TARGET_MS
        out += [f"**Step slider** (Interpolation page; its maps are drawn by `st.plotly_chart` whatever "
                f"`ELX_MAP_COMPONENT` says, so the baseline run skips it): p50 {sl['p50_ms']:.0f} ms, p95 "
                f"{sl['p95_ms']:.0f} ms over {sl['n']} moves: {'meets' if met else 'misses'} the target of p95 < "
                f"{SLIDER_TARGET_MS} ms (load average {res['load_before']:.2f} before the run); "
                f"{sl['ws_mb_median'] * 1000:.0f} KB sent per move, {_cpu_note(sl)}.", ""]
    pr, pts = res["actions"].get("projection"), res.get("points") or 0
    if pr:
        b = (base or {}).get("actions", {}).get("projection")
        out += [f"**Projection change** (the invariant map gets new coordinates; two projections that give the "
                f"same map, e.g. sorting and sorting each channel for d = 1, send almost nothing): p50 "
                f"{pr['p50_ms']:.0f} ms, p95 {pr['p95_ms']:.0f} ms; {_sent_note(pr, pts, 1)}; {_cpu_note(pr)}; "
                f"{_fmt(pr.get('reacts_median'))} `Plotly.react` calls, {_fmt(pr.get('canvas_draws_median'))} canvas "
                f"draws ({_fmt(pr.get('canvas_ms_median'))} ms)."
                + (f" With `st.plotly_chart`: p50 {b['p50_ms']:.0f} ms, p95 {b['p95_ms']:.0f} ms, {_cpu_note(b)}: the "
                   f"component is {_times(b['p50_ms'], pr['p50_ms'])} at the median, "
                   f"{_times(b['p95_ms'], pr['p95_ms'])} at p95." if b else ""), ""]
    return out


def _colour_section(res: dict | None, raster: dict | None) -> list[str]:
    """Where a colour change's time goes, from the browser run's own measurements."""
    if not res or "colour" not in res["actions"]:
        return []
    from backend import plots
    s = res["actions"]["colour"]
    met = s["p95_ms"] < COLOUR_TARGET_MS
    pts = res.get("points") or 0
    busy = res["load_before"] > 0.5 * (res.get("cores") or 1)
    # the 1-minute load average before the run still counts the baseline run just before it
    own = " (the 1-minute average still counts the baseline run just before)" if res.get("baseline") else ""
    out = ["## Colour change: the 1 s target", "",
           f"Measured with the map component: p50 {s['p50_ms']:.0f} ms, p95 {s['p95_ms']:.0f} ms over {s['n']} "
           f"changes at {pts:,} points per map ({'meets' if met else 'misses'} the target of p95 < 1 s; load "
           f"average {res['load_before']:.2f} before the run). CPU seconds per change (median): server "
           f"{s.get('cpu_server_s_median', 0):.2f}, Chromium renderer {s.get('cpu_renderer_s_median', 0):.2f}, "
           f"GPU process {s.get('cpu_gpu_s_median', 0):.2f}, Chromium's other processes "
           f"{s.get('cpu_browser_s_median', 0):.2f}; {s['ws_mb_median']:.2f} MB sent.", ""]
    b = ((res.get("baseline") or {}).get("actions") or {}).get("colour")
    if b:
        out += [f"The same invocation with `{BASELINE_ENV}` (the maps drawn by `st.plotly_chart`, timed just "
                f"before): p50 {b['p50_ms']:.0f} ms, p95 {b['p95_ms']:.0f} ms, CPU server "
                f"{b.get('cpu_server_s_median', 0):.2f} / renderer {b.get('cpu_renderer_s_median', 0):.2f} / GPU "
                f"process {b.get('cpu_gpu_s_median', 0):.2f} s, {b['ws_mb_median']:.2f} MB sent, "
                f"{_fmt(b.get('reacts_median'))} `Plotly.react` calls ({_fmt(b.get('react_ms_median'))} ms), "
                f"{_fmt(b.get('draws_median'))} WebGL draw calls and {_fmt(b.get('stringify_mb_median'))} MB of "
                f"`JSON.stringify` per change. The component is {_times(b['p50_ms'], s['p50_ms'])} at the median, "
                f"{_times(b['p95_ms'], s['p95_ms'])} at p95, and takes "
                f"{_times(b.get('cpu_total_s_median', 0), s.get('cpu_total_s_median', 0), 'less', 'more')} CPU.",
                ""]
    rev = res.get("revision_baseline")
    r_colour = (rev or {}).get("actions", {}).get("colour")
    if r_colour:
        out += [f"Revision `{rev['revision']}` (timed in the same run, `--browser-baseline`): p50 "
                f"{r_colour['p50_ms']:.0f} ms, p95 {r_colour['p95_ms']:.0f} ms, CPU "
                f"{r_colour.get('cpu_total_s_median', 0):.2f} s, {r_colour['ws_mb_median']:.2f} MB sent: this run's "
                f"app is {_times(r_colour['p50_ms'], s['p50_ms'])} at the median.", ""]
    react_ms, canvas_ms = s.get("react_ms_median") or 0.0, s.get("canvas_ms_median") or 0.0
    n_canvas = s.get("canvas_draws_median") or 0
    per_map = COMPONENT_POINT_BYTES * pts / 1e6
    groups = COMPONENT_GROUP_BYTES * pts / 1e6
    share = 2 * per_map / s["ws_mb_median"] if s["ws_mb_median"] > 0 else float("nan")
    out += ["Where the time goes with the component, per colour change (medians; the in-page figures are "
            "counted by the component in its frames):", "",
            f"* **Server**: {s.get('cpu_server_s_median', 0):.2f} CPU s: the script reruns; each map's component "
            "arguments (the figure without its points as JSON, and the points as bytes) are built once per "
            "(projection, colour) and kept (`st.cache_resource`), then serialized into the message.",
            f"* **Bytes**: {_sent_note(s, pts, 2)}, {_fmt(share * 100)} % of what was sent. A colour change alters "
            f"only the colour groups ({COMPONENT_GROUP_BYTES} bytes per point, {groups:.2f} MB per map), but "
            "Streamlit sends all of a component's arguments whenever any of them changes, so each colour change "
            "resends the coordinates and row ids too. The component keeps unchanged coordinates (it compares "
            "their hash) and decodes only the groups; the cost is the transfer and the front end handing "
            "the message to the frames.",
            f"* **Plotly**: {_fmt(s.get('reacts_median'))} `Plotly.react` calls per change (the component calls "
            "Plotly only when the figure's other parts changed: here the colour bar and legend) taking "
            f"{_fmt(react_ms)} ms of script time in all, with {_fmt(s.get('draws_median'))} WebGL draw calls (Plotly "
            f"draws axes, colour bar, legend and overlays as SVG); the GPU process spent "
            f"{s.get('cpu_gpu_s_median', 0):.2f} CPU s.",
            f"* **Canvas**: {_fmt(n_canvas)} draws of the points per change taking {_fmt(canvas_ms)} ms in all"
            + (f" ({_fmt(canvas_ms / n_canvas)} ms per draw of {pts:,} points into a 2-D canvas, with the grid "
               "index for hover and click)" if n_canvas else "") + ".",
            f"* **The rest** of the median {s['p50_ms']:.0f} ms: {max(s['p50_ms'] - react_ms - canvas_ms, 0):.0f} ms "
            f"outside Plotly and the canvas: the server's rerun, the websocket transfer, Streamlit's front end "
            f"(React, the widget round trip) and passing the arguments into the frames; the renderer's "
            f"{s.get('cpu_renderer_s_median', 0):.2f} CPU s include the frames' script time.", ""]
    if b:
        gpu_draw = b.get("cpu_gpu_s_median", 0) / max(b.get("reacts_median") or 1, 1)
        out += [f"With `st.plotly_chart` the page mounts a new chart for every new figure and hands it to "
                f"`Plotly.react` twice (once when it mounts, again after its theme effect round-tripped the figure "
                f"through JSON): {_fmt(b.get('reacts_median'))} calls per change for two maps, each a full "
                f"software-WebGL draw (about {gpu_draw:.2f} CPU s of the GPU process per call here). The component "
                f"replaces those draws by {_fmt(n_canvas)} canvas draws of {_fmt(canvas_ms)} ms in all. The "
                f"{plots.COLOUR_BINS} colour bins, fixed margins and WebGL pixel ratio 1 above 50,000 points"
                + (" (the bare-page variants above, step by step)" if res.get("variants") else "")
                + " still shape the `st.plotly_chart` path; the component draws the same figure's colour "
                "groups.", ""]
    small = (raster or {}).get("small", {}).get("actions", {}).get("colour")
    if small:
        out += [f"**A fixed part that does not depend on the number of points**: the same change on "
                f"{SMALL_COMPARISON_POINTS:,}-molecule maps (map component) measures p50 {small['p50_ms']:.0f} ms, "
                f"p95 {small['p95_ms']:.0f} ms, {small['ws_mb_median']:.2f} MB sent, CPU server "
                f"{small.get('cpu_server_s_median', 0):.2f} / renderer {small.get('cpu_renderer_s_median', 0):.2f} / "
                f"GPU process {small.get('cpu_gpu_s_median', 0):.2f} s: "
                f"{small['p50_ms'] / s['p50_ms'] * 100:.0f} % of the full maps' median.", ""]
    if met:
        out += [f"The target is met: p95 {s['p95_ms']:.0f} ms < 1 s at {pts:,} points per map"
                + (f", with the load average at {res['load_before']:.2f} on {res.get('cores')} cores before the "
                   f"run{own}" if busy else "") + ".", ""]
    else:
        parts = {"the server": s.get("cpu_server_s_median", 0), "Chromium's renderer, which runs the page and "
                 "the component frames,": s.get("cpu_renderer_s_median", 0),
                 "the GPU process": s.get("cpu_gpu_s_median", 0)}
        top = max(parts, key=parts.get)
        out += [f"Why the target is missed: p95 {s['p95_ms']:.0f} ms against 1 s; the largest CPU share per change "
                f"is {top} {parts[top]:.2f} s of {s.get('cpu_total_s_median', 0):.2f} s"
                + (f", and the load average was {res['load_before']:.2f} on {res.get('cores')} cores before the "
                   f"run{own}, which adds waiting to every step" if busy else "")
                + f". Of the {s['ws_mb_median']:.2f} MB sent per change, {2 * (per_map - groups):.2f} MB are "
                "coordinates the browser already holds: keeping them out of the message (e.g. fetched once by the "
                "component from a URL named by their hash) would leave the colour groups "
                f"({2 * groups:.2f} MB for both maps).", ""]
    if raster and "colour" in raster["actions"]:
        r = raster["actions"]["colour"]
        out += [f"Maps drawn as density rasters instead (`ELX_DENSITY_THRESHOLD={RASTER_COMPARISON_THRESHOLD}`: "
                f"QM9's maps as server-side rasters through `st.plotly_chart`): colour change p50 {r['p50_ms']:.0f} "
                f"ms, p95 {r['p95_ms']:.0f} ms, {r['ws_mb_median']:.2f} MB sent, CPU "
                f"{r.get('cpu_total_s_median', 0):.2f} s ({r['p50_ms'] / s['p50_ms']:.2f} x the component's median); "
                "box and lasso select every row inside, but a click no longer selects one molecule, so the default "
                "threshold stays at 200,000 points.", ""]
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m backend benchmark`` (used by ``backend/__main__.py``)."""
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes for CI (seconds; figures say nothing about speed)")
    parser.add_argument("--skip-browser", action="store_true", help="leave out the real-browser rows")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"), help="report file (default: BENCHMARKS.md)")
    parser.add_argument("--memory-sizes", type=int, nargs="*", default=None,
                        help="codes per memory measurement (default 10k 100k 1M 10M; quick 2k 20k)")
    parser.add_argument("--browser-cache-dir", default=None,
                        help="ELX_CACHE_DIR of the browser run (default: the repo's .cache; quick: a new one)")
    parser.add_argument("--variants", type=int, default=None,
                        help="repeats of the bare-page figure variants (default 3; quick 0)")
    parser.add_argument("--json", default=None, help="also write rows and raw results to this JSON file")
    parser.add_argument("--browser-baseline", default=None, metavar="REV",
                        help="also time colour and projection changes of the app at this git revision "
                             "(e.g. the commit before a change), served with the same cache (the same-run "
                             "baseline of the map component, ELX_MAP_COMPONENT=0, is always timed)")
    parser.add_argument("--browser-actions", type=int, nargs=3, default=None,
                        metavar=("SLIDER", "COLOUR", "PROJECTION"),
                        help="actions of the browser run (default 50 20 20; quick 3 2 2); the comparison runs "
                             "take at most 10 colour changes")
    parser.add_argument("--encode-memory", type=int, nargs="*", default=None, metavar="MOLECULES",
                        help="QM9 molecules per encode-memory measurement (default 40000 130831; quick 300; "
                             "none: skip it)")


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    """Run the benchmark described by ``args`` (see :func:`add_arguments`); print the table and
    write the report. Returns the exit status (0)."""
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.memory_sizes is not None:
        sizes.memory = list(args.memory_sizes)
    if args.encode_memory is not None:
        sizes.encode_memory = list(args.encode_memory)
    started, t0, m0 = time.strftime("%Y-%m-%d %H:%M:%S %Z"), time.perf_counter(), machine()
    command = " ".join(["python -m backend benchmark", *(shlex.quote(a) for a in (argv or []))])
    rows: list[Row] = []
    # one thread for numpy's BLAS and torch, as the app's encoder and the tests run: on a shared
    # 2-core machine a second BLAS thread makes small matrix products several times slower
    from threadpoolctl import threadpool_limits

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            rows += bench_featurize_and_encode(sizes)
            rows += bench_projections(sizes)
            rows += bench_quotient_distance(sizes)
            rows += bench_maps(sizes)
    finally:
        torch.set_num_threads(threads)
    mem_rows, mem_results = bench_memory(sizes) if sizes.memory else ([], [])
    rows += mem_rows
    enc_rows, enc_results = bench_encode_memory(sizes) if sizes.encode_memory else ([], [])
    rows += enc_rows
    commands = [command]
    browser_res = raster_res = None
    if not args.skip_browser:
        cache = Path(args.browser_cache_dir) if args.browser_cache_dir else \
            (Path(tempfile.mkdtemp(prefix="elx_bench_cache_")) if args.quick else None)
        variants = args.variants if args.variants is not None else (0 if args.quick else 3)
        b_rows, browser_res, raster_res, b_cmds = bench_browser(args.quick, cache, variants, not args.quick,
                                                                args.browser_baseline, args.browser_actions)
        rows += b_rows
        commands += [f"# run by the line above: {c}" for c in b_cmds]
    info = {"command": command, "quick": args.quick, "commit": git_commit(), "started": started,
            "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "seconds": time.perf_counter() - t0,
            "machine_start": m0, "machine_end": machine(), "commands": commands,
            "sections": _memory_section(mem_results) + _encode_memory_section(enc_results)
            + _browser_section(browser_res)
            + _colour_section(browser_res, raster_res if not args.skip_browser else None)}
    print(table_markdown(rows))
    out = Path(args.out)
    write_report(out, rows, info)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": [asdict(r) for r in rows], "info": info,
                                               "memory": mem_results, "encode_memory": enc_results,
                                               "browser": browser_res, "browser_comparisons": raster_res}, indent=2,
                                              default=str))
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m backend.benchmark`` (also the memory child processes)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--memory-child"]:
        print("RESULT " + json.dumps(memory_child(int(argv[1]), argv[2])))
        return 0
    parser = argparse.ArgumentParser(prog="python -m backend benchmark", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv), argv)


if __name__ == "__main__":
    raise SystemExit(main())
