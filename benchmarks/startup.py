"""Time the dashboard's data start-up: first start (empty cache) vs second start (warm cache).

Usage: python benchmarks/startup.py [--subset N]

Uses a fresh temporary ELX_CACHE_DIR for the cold run, then repeats with the files it wrote.
Prints seconds per stage and the warm/cold ratio. Covers what the app does before it can draw
(featurize QM9, encode every molecule under two node orders, fit both PCA maps); browser
rendering is not included.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_once() -> dict[str, float]:
    from backend import registry, views

    entry = registry.get("graph_vae_qm9")
    entry.reset()
    t = {}
    t0 = time.perf_counter()
    entry.dataset()
    t["load + featurize QM9"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    enc = entry.encode_dataset(0)
    t["encode (stored + random order)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    views.compute_maps(enc, "random", "sort", 0)
    t["PCA maps (raw + sorted)"] = time.perf_counter() - t0
    t["total"] = sum(t.values())
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=0, help="ELX_QM9_SUBSET (0 = all of QM9)")
    args = parser.parse_args()
    if args.subset:
        os.environ["ELX_QM9_SUBSET"] = str(args.subset)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["ELX_CACHE_DIR"] = tmp
        cold = run_once()
        warm = run_once()
    print(f"{'stage':34s} {'first start [s]':>16s} {'second start [s]':>17s} {'ratio':>7s}")
    for key in cold:
        print(f"{key:34s} {cold[key]:16.2f} {warm[key]:17.2f} {warm[key] / max(cold[key], 1e-9):7.3f}")


if __name__ == "__main__":
    main()
