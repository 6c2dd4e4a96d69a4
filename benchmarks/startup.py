"""Time the dashboard's data start-up: first start (empty cache) vs second start (warm cache).

Usage: python benchmarks/startup.py [--subset N] [--browser]

Uses a fresh temporary ELX_CACHE_DIR for the cold run, then repeats with the files it wrote.
Prints seconds per stage and the warm/cold ratio. Covers what the app does before it can draw
(featurize QM9, encode every molecule under two node orders, fit both PCA maps); browser
rendering is not included.

``--browser`` instead times what a visitor waits for: ``streamlit run app.py`` started with an
empty cache folder, the Latent maps page opened in headless Chromium (Playwright, Debian's
``/usr/bin/chromium``), until both maps show all their points; then the server is stopped and
started again on the cache it wrote, and the same is timed warm. Seconds from starting the
server, and from opening the page.
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


def browser_once(cache: Path, subset: int) -> dict[str, float]:
    """Start the app on ``cache``, open the Latent maps page, wait until both maps show points."""
    from playwright.sync_api import sync_playwright

    from tests.e2e import driver as d
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_app

    t0 = time.perf_counter()
    proc, url = start_app(cache, cache.parent / f"{cache.name}.log", {"ELX_QM9_SUBSET": str(subset or "")},
                          timeout=300)
    try:
        t_server = time.perf_counter() - t0
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            t1 = time.perf_counter()
            page.goto(f"{url}/latent_maps?model=graph_vae_qm9")
            page.wait_for_function(f"() => {d.CHARTS_JS}.length >= 2", timeout=900_000)
            while True:
                counts = d.points_per_chart(page)
                if len(counts) >= 2 and min(counts[:2]) > 0:
                    break
                time.sleep(0.1)
            rows = sum(1 for pt in d.map_points(page, 0) if pt[2] >= 0)  # data points (no colour-bar marker)
            t_page = time.perf_counter() - t1
            browser.close()
        return {"server up": t_server, "page opened -> both maps drawn": t_page,
                "total (start -> maps)": time.perf_counter() - t0, "data points per map": float(rows)}
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=0, help="ELX_QM9_SUBSET (0 = all of QM9)")
    parser.add_argument("--browser", action="store_true", help="time the page in Chromium instead")
    args = parser.parse_args()
    if args.browser:
        load = os.getloadavg()
        with tempfile.TemporaryDirectory() as tmp:
            cache = Path(tmp) / "cache"
            cold, warm = browser_once(cache, args.subset), browser_once(cache, args.subset)
        print(f"load average (1, 5, 15 min) before: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}")
        print(f"{'stage':34s} {'first start [s]':>16s} {'second start [s]':>17s}")
        for key in cold:
            print(f"{key:34s} {cold[key]:16.1f} {warm[key]:17.1f}")
        return
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
