"""Real-browser latency of the dashboard: slider moves, colour and projection changes.

Starts ``streamlit run app.py`` on 127.0.0.1 (shipped weights, all of QM9 unless
``--qm9-subset``), drives it with Playwright in Debian's Chromium and prints, per action,
p50 / p95 of the time from the input event to the page settling, the bytes the server sent
over the websocket per action, and the server's RSS. No assertions: figures to read.

    python benchmarks/browser_latency.py                       # 50 slider moves, 20 + 20 changes
    python benchmarks/browser_latency.py --slider 10 --colour 4 --projection 4 --qm9-subset 5000

Run it on an idle machine: other work on the same cores adds to every figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e import driver as d  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, start_app  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, MB (Linux /proc)."""
    total = 0
    pids = [pid]
    try:
        import subprocess

        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(p) for p in out]
    except Exception:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def summary(name: str, times: list[float], sent: list[int]) -> str:
    t = np.array(times) * 1000
    b = np.array(sent) / 1e6
    return (f"| {name} | {len(t)} | {np.percentile(t, 50):.0f} | {np.percentile(t, 95):.0f} | "
            f"{t.max():.0f} | {np.median(b):.3f} | {b.max():.3f} |")


STEP_WATCH = """(target) => {
    window._elxT0 = null; window._elxT1 = null;
    document.addEventListener('keydown', () => { if (window._elxT0 === null) window._elxT0 = performance.now(); },
                              {once: true, capture: true});
    const seen = () => [...document.querySelectorAll('figcaption')].some(f => f.textContent.startsWith(target));
    const obs = new MutationObserver(() => {
        if (window._elxT1 === null && window._elxT0 !== null && seen()) {
            obs.disconnect();
            requestAnimationFrame(() => { window._elxT1 = performance.now(); });
        }
    });
    obs.observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def data_changed(page, charts: list[int]) -> bool:
    return page.evaluate("(cs) => cs.every(i => document.querySelectorAll('[data-testid=\"stPlotlyChart\"] "
                         ".js-plotly-plot')[i].data !== window._elxData[i])", charts)


def mark_data(page) -> None:
    page.evaluate("() => { window._elxData = [...document.querySelectorAll('[data-testid=\"stPlotlyChart\"] "
                  ".js-plotly-plot')].map(g => g.data); }")


def time_select_changes(page, watch, label: str, charts: list[int], n: int) -> tuple[list[float], list[int]]:
    """Pick ``n`` options of the select box ``label`` in turn; per change, the time from the
    click to the ``charts`` (indices) holding new data and the page settling, and the bytes
    the server sent."""
    options = d.open_options(page, label)
    page.keyboard.press("Escape")
    times, sent = [], []
    for i in range(n):
        target = options[(i + 1) % len(options)]
        mark_data(page)
        before = watch.ws_bytes
        d.open_options(page, label)
        t = time.perf_counter()
        page.get_by_role("option").filter(has_text=target).first.click()
        # settled: the maps hold new data, or (two options that give identical maps, e.g. sorting
        # and sorting each channel for d = 1: Streamlit then re-sends nothing) the run is over
        deadline = time.time() + 300
        while not data_changed(page, charts) and time.time() < deadline:
            if time.perf_counter() - t > 1.0 and page.evaluate(
                    "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"):
                break
            time.sleep(0.02)
        d.wait_idle(page, quiet=0.05)
        times.append(time.perf_counter() - t)
        sent.append(watch.ws_bytes - before)
    return times, sent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slider", type=int, default=50)
    ap.add_argument("--colour", type=int, default=20)
    ap.add_argument("--projection", type=int, default=20)
    ap.add_argument("--qm9-subset", type=int, default=0, help="0 = all 130,831 molecules")
    ap.add_argument("--cache-dir", default=str(ROOT / ".cache"), help="warm cache (default: the repo's)")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="elx_latency_"))
    env = {"ELX_QM9_SUBSET": str(args.qm9_subset)} if args.qm9_subset else {"ELX_QM9_SUBSET": ""}
    proc, url = start_app(Path(args.cache_dir), work / "streamlit.log", env)
    rows = []
    rss = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            watch = d.PageWatch(page)
            t0 = time.perf_counter()
            d.open_page(page, url, "interpolation", model="graph_vae_qm9")
            page.get_by_text("step 4 · ").first.wait_for(timeout=600_000)
            first = time.perf_counter() - t0
            rss.append(rss_mb(proc.pid))
            n = page.evaluate("() => document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .js-plotly-plot')"
                              "[document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .js-plotly-plot').length - 1]"
                              ".data.reduce((a, t) => a + (t.x ? t.x.length : 0), 0)")
            print(f"Interpolation page first drawn in {first:.1f} s; points on the last map: {n:,}")

            slider = page.locator('[data-testid="stSlider"]').filter(has_text="Step along the path") \
                .locator('input[type="range"]')
            step, times, sent = 4, [], []
            for i in range(args.slider):
                key, step = ("ArrowRight", step + 1) if (i // 4) % 2 == 0 else ("ArrowLeft", step - 1)
                before = watch.ws_bytes
                slider.focus()
                # timed inside the browser: from the keydown event to the next animation frame
                # after the new step's caption is in the DOM (a MutationObserver; Playwright's own
                # text polling over this large page would add its scan time to the figure)
                page.evaluate(STEP_WATCH, f"step {step} · ")
                page.keyboard.press(key)
                page.wait_for_function("() => window._elxT1 !== null", timeout=60_000)
                times.append(page.evaluate("() => (window._elxT1 - window._elxT0) / 1000"))
                d.wait_idle(page, quiet=0.05)  # settle before the next press (not timed)
                sent.append(watch.ws_bytes - before)
            rows.append(summary("Interpolation: step slider moved (key press)", times, sent))
            rss.append(rss_mb(proc.pid))

            d.open_page(page, url, "latent_maps", model="graph_vae_qm9")
            for label, charts, n in (("Colour by", [0, 1], args.colour),
                                     ("Invariant projection", [1], args.projection)):
                if n <= 0:
                    continue
                times, sent = time_select_changes(page, watch, label, charts, n)
                rows.append(summary(f"Latent maps: '{label}' changed (new or used before)", times, sent))
                rss.append(rss_mb(proc.pid))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)
    print(f"\ncores: {os.cpu_count()}, load average before the run: {os.getloadavg()[0]:.2f}")
    print("| action | n | p50 [ms] | p95 [ms] | max [ms] | websocket MB (median) | MB (max) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(r)
    print(f"\nserver RSS over the run [MB]: {', '.join(f'{r:.0f}' for r in rss)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
