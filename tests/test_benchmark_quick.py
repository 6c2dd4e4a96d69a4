"""``python -m backend benchmark --quick``: every row is there and every figure is a number.

Runs the command line as a user would (a fresh process, in a temporary folder, the report
written there with ``--out``), without the browser rows. Nothing about speed is asserted:
CI machines differ and share their cores; the figures only have to be finite and positive.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_writes_every_row_with_finite_positive_figures(tmp_path):
    from backend.groups import CyclicShiftAction, PermutationAction
    from backend.projections import projections_for

    out, raw = tmp_path / "BENCHMARKS.md", tmp_path / "bench.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1",
               ELX_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "backend", "benchmark", "--quick", "--skip-browser",
                           "--out", str(out), "--json", str(raw)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]

    rows = json.loads(raw.read_text())["rows"]
    sections = [r["section"] for r in rows]
    n_proj = len(projections_for(CyclicShiftAction(16, 8))) + len(projections_for(PermutationAction(9, 1)))
    assert sections.count("featurize") == 1 and sections.count("encode") == 1
    assert sections.count("projections") == n_proj
    assert sections.count("quotient distance") == 2
    assert sections.count("maps") == 6  # scatter bytes + time for two colours, raster bytes + time
    memory = [r["item"] for r in rows if r["section"] == "memory"]
    assert len(memory) == 3  # the quick sizes of the maps (2) and of the encode (1)
    assert sum(item.startswith("encode ") for item in memory) == 1
    assert "browser" not in sections
    for r in rows:
        assert math.isfinite(r["value"]) and r["value"] > 0, r
        if r["ratio"] is not None:
            assert math.isfinite(r["ratio"]) and r["ratio"] > 0, r

    text = out.read_text()
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| section |")) + 2
    table = lines[start:lines.index("", start)]
    assert len(table) == len(rows)
    assert "commit: `" in text and "cores" in text and "load average" in text
    assert "python -m backend benchmark --quick --skip-browser" in text
    assert "Memory while generating and mapping codes" in text
    assert "Memory while encoding" in text
    # the table printed on the console is the one in the report
    assert table[0] in proc.stdout
