"""Throughput of every invariant projection (fit + transform) against a plain copy of the codes.

Usage: OMP_NUM_THREADS=1 python benchmarks/projections.py [--n 100000] [--repeat 3] [--chunk 20000]

For C_N: ``n`` random float32 codes of shape (16, 8) (16 regular fields of C_8); for S_n:
``n`` codes of shape (9, 1) (QM9's node budget, one latent per node). Each projection is
fitted on all codes and then transforms them in chunks of ``--chunk`` codes (outputs are
dropped after each chunk, so memory stays bounded: sorted coorbits give 2048 floats per
C_N code). The baseline, timed in the same process and chunked the same way, is the raw
equivariant view: flattening and copying the codes. Prints the best of ``--repeat`` runs:
seconds, codes per second, and the projection's time as a multiple of the baseline's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.groups import CyclicShiftAction, LatentCodes, PermutationAction  # noqa: E402
from backend.projections import make_projection, projections_for  # noqa: E402


def _baseline(codes: LatentCodes, chunk: int) -> int:
    """The raw equivariant view: flattened copies, chunk by chunk; returns the output width."""
    width = 0
    for start in range(0, len(codes), chunk):
        width = codes.values[start:start + chunk].reshape(-1, codes.values[0].size).copy().shape[1]
    return width


def _project(key: str, codes: LatentCodes, chunk: int) -> int:
    """Fit on all codes, transform chunk by chunk; returns the output width."""
    proj = make_projection(key, 0).fit(codes)
    width = 0
    for start in range(0, len(codes), chunk):
        width = proj.transform(codes[slice(start, start + chunk)]).shape[1]
    return width


def _best(fn, repeat: int) -> tuple[float, int]:
    best, width = np.inf, 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        width = fn()
        best = min(best, time.perf_counter() - t0)
    return best, width


def run(n: int, repeat: int, chunk: int, seed: int = 0) -> list[tuple]:
    """Rows ``(group, key, output width, seconds, codes/s, x baseline)`` for both groups."""
    rng = np.random.default_rng(seed)
    rows = []
    for action in (CyclicShiftAction(16, 8), PermutationAction(9, 1)):
        codes = LatentCodes(rng.standard_normal((n,) + action.code_shape).astype(np.float32), action)
        base_t, base_w = _best(lambda: _baseline(codes, chunk), repeat)
        rows.append((repr(action), "baseline: flatten + copy", base_w, base_t, n / base_t, 1.0))
        for spec in projections_for(action):
            t, w = _best(lambda key=spec.key: _project(key, codes, chunk), repeat)
            rows.append((repr(action), spec.key, w, t, n / t, t / base_t))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="codes per group")
    parser.add_argument("--repeat", type=int, default=3, help="runs per projection (best is kept)")
    parser.add_argument("--chunk", type=int, default=20_000, help="codes per transform call")
    args = parser.parse_args()
    rows = run(args.n, args.repeat, args.chunk)
    print(f"{args.n:,} float32 codes per group, best of {args.repeat}, transform chunks of {args.chunk:,}")
    print(f"{'action':28s} {'projection':26s} {'dim':>6s} {'fit+transform [s]':>18s} "
          f"{'codes/s':>12s} {'x baseline':>11s}")
    for action, key, width, t, rate, ratio in rows:
        print(f"{action:28s} {key:26s} {width:6d} {t:18.3f} {rate:12,.0f} {ratio:11.1f}")


if __name__ == "__main__":
    main()
