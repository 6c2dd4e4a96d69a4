"""Maps of 10k to 10M synthetic codes: scatter vs density raster, bytes sent, peak memory.

For each size a fresh child process (so its peak RSS is its own) generates seeded S_n codes
(M, 9, 1) in chunks into preallocated arrays (``backend.density.synthetic_codes``), projects
them chunk by chunk (sorting, then a streaming 2-D PCA: ``streaming_pca_map``) and builds
both figures of the invariant map coloured by the continuous ``radius``:

* the lean WebGL scatter (``backend.plots.latent_map``, what the app draws up to the threshold),
* the density raster (``backend.density.density_figure``, datashader, above the threshold).

Printed per size: build time (s) and JSON length (MB, ``plotly.io.to_json``, what Streamlit
sends) of each figure, time and peak RSS (``VmHWM``) after encoding + projecting, and peak
RSS at the end (the figures' JSON included). ``--app-path`` maps with the app's own
``views.compute_maps`` (both presentations, invariance check, PCA from chunks above 4 M values)
instead of the streaming PCA, for comparison; ``python -m backend benchmark`` reports its peak
memory against the whole-array SVD it used before. ``--browser`` also times ``Plotly.newPlot`` of both figures
in headless Chromium (skipped above 2M points). No assertions: figures to read.

    python benchmarks/scale_maps.py                       # 10k 100k 200k 500k 1M
    python benchmarks/scale_maps.py --sizes 1000000 10000000 --no-scatter-above 2000000
    python benchmarks/scale_maps.py --sizes 100000 1000000 --app-path

Run it on an idle machine: other work on the same cores adds to every time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def peak_rss_mb() -> float:
    """Peak resident memory of this process (``VmHWM`` in /proc/self/status), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def browser_ms(fig_json: str) -> float | None:
    """Milliseconds of ``Plotly.newPlot`` for one figure in headless Chromium (None if unavailable)."""
    try:
        from playwright.sync_api import sync_playwright

        from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
    except ImportError:
        return None
    import plotly

    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + ["--use-gl=swiftshader"])
        page = b.new_page(viewport={"width": 900, "height": 600})
        page.set_content('<div id="g" style="width:800px;height:460px"></div>')
        page.add_script_tag(path=str(js))
        page.evaluate("(s) => { window.__fig = JSON.parse(s); }", fig_json)
        ms = page.evaluate("""async () => { const t = performance.now();
            await Plotly.newPlot('g', window.__fig.data, window.__fig.layout);
            await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
            return performance.now() - t; }""")
        b.close()
    return float(ms)


def child(m: int, app_path: bool, scatter: bool, browser: bool) -> dict:
    """One size, in this process: generate, project, build both figures; returns the figures."""
    import numpy as np
    import plotly.io as pio

    from backend import density, plots

    # the app's ColorOption without importing backend.registry (which imports torch: ~300 MB of RSS)
    radius = type("ColorOption", (), dict(key="radius", label="norm of the code", unit="latent units",
                                          categorical=False, scale=1.0))()
    out = {"points": m, "rss_start_mb": peak_rss_mb()}
    t = time.perf_counter()
    if app_path:
        from backend import views
        from backend.registry import SyntheticCodesEntry

        enc = SyntheticCodesEntry(m).encode_dataset(0)
        coords = views.compute_maps(enc, "random", "sort", 0).inv.coords
        table = enc.table
    else:
        import pandas as pd

        codes = density.synthetic_codes(m, seed=0)
        coords = density.streaming_pca_map(lambda a, b: np.sort(codes.random[a:b, :, 0], axis=1), m).coords
        table = pd.DataFrame({"radius": codes.radius}, copy=False)
    out["encode_project_s"] = time.perf_counter() - t
    out["rss_encode_project_mb"] = peak_rss_mb()
    if scatter:
        t = time.perf_counter()
        fig = plots.latent_map(coords, table, radius)
        text = pio.to_json(fig, validate=False)
        out["scatter_s"], out["scatter_mb"] = time.perf_counter() - t, len(text) / 1e6
        if browser:
            out["scatter_browser_ms"] = browser_ms(text)
        del fig, text
    values = table["radius"].to_numpy()
    density.density_figure(coords[:1000], values[:1000], radius)  # datashader's first call compiles (numba)
    t = time.perf_counter()
    fig = density.density_figure(coords, values, radius)
    text = pio.to_json(fig, validate=False)
    out["raster_s"], out["raster_mb"] = time.perf_counter() - t, len(text) / 1e6
    if browser:
        out["raster_browser_ms"] = browser_ms(text)
    out["rss_peak_mb"] = peak_rss_mb()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 200_000, 500_000, 1_000_000])
    ap.add_argument("--app-path", action="store_true", help="map with views.compute_maps (the app's path)")
    ap.add_argument("--no-scatter-above", type=int, default=2_000_000,
                    help="skip the scatter above this many points (its JSON passes Streamlit's 200 MB limit near 8M)")
    ap.add_argument("--browser", action="store_true", help="also time Plotly.newPlot in headless Chromium")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        res = child(args.child, args.app_path, args.child <= args.no_scatter_above,
                    args.browser and args.child <= 2_000_000)
        print("RESULT " + json.dumps(res))
        return
    rows = []
    for m in args.sizes:
        cmd = [sys.executable, __file__, "--child", str(m), "--no-scatter-above", str(args.no_scatter_above)]
        cmd += ["--app-path"] * args.app_path + ["--browser"] * args.browser
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            print(f"{m:,} points failed:\n{proc.stderr[-2000:]}")
            continue
        rows.append(json.loads(line[7:]))
        print(f"done {m:,}", file=sys.stderr)
    path = "app (views.compute_maps)" if args.app_path else "chunked (synthetic_codes + streaming_pca_map)"
    print(f"\nInvariant map of synthetic S_n codes (9, 1), coloured by radius; projection path: {path}")
    head = (f"{'points':>11} | {'encode+project s':>16} | {'peak RSS after, MB':>18} | {'scatter build s':>15} | "
            f"{'scatter JSON MB':>15} | {'raster build s':>14} | {'raster JSON MB':>14} | {'peak RSS end, MB':>16}")
    if args.browser:
        head += f" | {'scatter draw ms':>15} | {'raster draw ms':>14}"
    print(head)
    print("-" * len(head))
    fmt = lambda v, spec: format(v, spec) if isinstance(v, (int, float)) else "-"  # noqa: E731
    for r in rows:
        line = (f"{r['points']:>11,} | {r['encode_project_s']:>16.2f} | {r['rss_encode_project_mb']:>18.0f} | "
                f"{fmt(r.get('scatter_s'), '>15.2f'):>15} | {fmt(r.get('scatter_mb'), '>15.1f'):>15} | "
                f"{r['raster_s']:>14.2f} | {r['raster_mb']:>14.2f} | {r['rss_peak_mb']:>16.0f}")
        if args.browser:
            line += (f" | {fmt(r.get('scatter_browser_ms'), '>15.0f'):>15} | "
                     f"{fmt(r.get('raster_browser_ms'), '>14.0f'):>14}")
        print(line)
    print(f"(RSS of the interpreter with numpy/pandas/plotly imported: "
          f"{rows[0]['rss_start_mb']:.0f} MB)" if rows else "")


if __name__ == "__main__":
    main()
