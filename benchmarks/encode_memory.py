"""Resident memory of encoding QM9: the per-batch list + concatenate (before) vs writing every
batch into one preallocated array (``backend.latents.encode_in_batches`` now).

Usage: python benchmarks/encode_memory.py [--molecules 40000] [--repeats 1] [--json FILE]

Each variant runs in its own fresh process (so one's allocator state cannot help the other):
load (or featurize) the first ``--molecules`` QM9 molecules (``ELX_QM9_SUBSET``), then encode
them with the shipped graph VAE (batches of 128, one thread). Per variant it prints the peak
resident set *during* the encode above the resident set before it (the kernel's peak counter,
``VmHWM``, is reset just before the encode through ``/proc/self/clear_refs``), the resident-set
growth that stays after it, the process peak before the encode (loading and featurizing), the
bytes of the codes and the wall time of the encode. ``--repeats`` runs each variant in that many
fresh processes, alternating (the list version's figure varies a lot from process to process:
it is the allocator's, not data). :func:`measure` returns the same as dicts
(``python -m backend benchmark`` uses it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("list", "preallocated")


def _status_mb(field: str) -> float:
    """A ``/proc/self/status`` field (``VmRSS``, ``VmHWM``) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    """Reset this process's peak resident set (``VmHWM``) to the current one (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child(method: str) -> dict:
    """Encode in this process with ``method`` ("list" or "preallocated"); the figures as a dict."""
    import gc

    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    from backend import latents, registry

    torch.set_num_threads(1)
    entry = registry.get("graph_vae_qm9")
    g = entry.dataset()
    arrays = (g.types, g.bonds, g.tiebreak)
    entry.model()  # the weights, outside the measurement
    entry._encode_arrays(*(a[:2] for a in arrays))  # first-call allocations of torch, outside it too

    def as_list(encode, arrays, batch_size=128):
        out = []
        for s in range(0, len(arrays[0]), batch_size):
            out.append(encode(*(a[s:s + batch_size] for a in arrays)))
        return np.concatenate(out)

    fn = as_list if method == "list" else latents.encode_in_batches
    gc.collect()
    load_peak = _status_mb("VmHWM")
    reset = _reset_peak()
    before, t0 = _status_mb("VmRSS"), time.perf_counter()
    codes = fn(entry._encode_arrays, arrays)
    wall = time.perf_counter() - t0
    peak, after = _status_mb("VmHWM"), _status_mb("VmRSS")
    return {"method": method, "molecules": int(len(codes)), "rss_before_mb": before,
            "encode_peak_mb": peak - before if reset else float("nan"), "retained_mb": after - before,
            "load_peak_mb": load_peak, "codes_mb": codes.nbytes / 2 ** 20, "wall_s": wall,
            "peak_reset": reset}


def measure(molecules: int, env: dict | None = None, repeats: int = 1) -> list[dict]:
    """:func:`child` of both methods, each in a fresh ``python benchmarks/encode_memory.py --child``
    with ``ELX_QM9_SUBSET=molecules`` (and ``env`` on top of this process's environment),
    ``repeats`` times, alternating; each dict also has ``repeat`` (0, 1, ...)."""
    env = dict(os.environ, **(env or {}), ELX_QM9_SUBSET=str(molecules), OMP_NUM_THREADS="1")
    out = []
    for rep in range(max(1, repeats)):
        for method in METHODS:
            run = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", method], env=env,
                                 capture_output=True, text=True, cwd=ROOT)
            line = next((ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                raise RuntimeError(f"encode memory child {method} failed: {run.stderr[-2000:]}")
            out.append({**json.loads(line[7:]), "repeat": rep})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--molecules", type=int, default=40_000)
    ap.add_argument("--repeats", type=int, default=1, help="fresh processes per variant (alternating)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(args.child)), flush=True)
        return 0
    res = measure(args.molecules, repeats=args.repeats)
    print("| encode | molecules | peak RSS during the encode, above the start | RSS kept after it | "
          "RSS before | process peak before (loading) | codes | wall |")
    print("|---|---|---|---|---|---|---|---|")
    for r in res:
        print(f"| {r['method']} | {r['molecules']:,} | {r['encode_peak_mb']:,.1f} MB | {r['retained_mb']:,.1f} MB | "
              f"{r['rss_before_mb']:,.0f} MB | {r['load_peak_mb']:,.0f} MB | {r['codes_mb']:.1f} MB | "
              f"{r['wall_s']:.1f} s |")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
