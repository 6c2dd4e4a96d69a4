"""Resident memory of encoding QM9: the per-batch list + concatenate (before) vs writing every
batch into one preallocated array (``backend.latents.encode_in_batches`` now).

Usage: python benchmarks/encode_memory.py [--molecules 40000]

Each variant runs in its own fresh process (so one's allocator state cannot help the other):
featurize the first ``--molecules`` QM9 molecules, then encode them with the shipped graph VAE
(batches of 128, one thread). Prints the resident-set growth across the encode, the process
peak and the wall time. The list version kept every batch's codes as views on the model's
output tensors, so each batch's whole output stayed alive until the concatenation.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(method: str) -> None:
    """Encode in this process with ``method`` ("list" or "preallocated") and print one line."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    from backend import latents, registry

    torch.set_num_threads(1)
    entry = registry.get("graph_vae_qm9")
    g = entry.dataset()
    arrays = (g.types, g.bonds, g.tiebreak)

    def as_list(encode, arrays, batch_size=128):
        out = []
        for s in range(0, len(arrays[0]), batch_size):
            out.append(encode(*(a[s:s + batch_size] for a in arrays)))
        return np.concatenate(out)

    fn = as_list if method == "list" else latents.encode_in_batches
    before, t0 = _rss(), time.perf_counter()
    codes = fn(entry._encode_arrays, arrays)
    wall, after = time.perf_counter() - t0, _rss()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"| {method} | {len(codes):,} | {(after - before) / 1e6:,.0f} MB | {peak / 1e6:,.0f} MB | "
          f"{codes.nbytes / 1e6:.1f} MB | {wall:.1f} s |", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--molecules", type=int, default=40_000)
    ap.add_argument("--child", choices=("list", "preallocated"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child)
        return 0
    print("| encode | molecules | RSS growth across the encode | process peak | codes | wall |")
    print("|---|---|---|---|---|---|")
    env = dict(os.environ, ELX_QM9_SUBSET=str(args.molecules), OMP_NUM_THREADS="1")
    for method in ("list", "preallocated"):
        run = subprocess.run([sys.executable, __file__, "--child", method], env=env, capture_output=True, text=True)
        line = [ln for ln in run.stdout.splitlines() if ln.startswith("|")]
        print(line[-1] if line else f"| {method} | failed: {run.stderr.strip().splitlines()[-1:]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
