"""Real-browser latency of the dashboard: slider moves, colour and projection changes.

Starts ``streamlit run app.py`` on 127.0.0.1 (shipped weights, all of QM9 unless
``--qm9-subset``), drives it with Playwright in Debian's Chromium and prints, per action,
p50 / p95 of the time from the input event to the page settling, the bytes the server sent
over the websocket per action, the CPU seconds each process spent on it, and the server's
RSS. No assertions: figures to read.

    python benchmarks/browser_latency.py                       # 50 slider moves, 20 + 20 changes
    python benchmarks/browser_latency.py --slider 10 --colour 4 --projection 4 --qm9-subset 5000
    python benchmarks/browser_latency.py --slider 0 --colour 6 --projection 0 --json /tmp/lat.json

CPU seconds per action (``/proc/<pid>/stat``: user + system time of the Streamlit server,
Chromium's renderer, its GPU process (WebGL, SwiftShader: software) and the rest of Chromium)
do not grow with other work on the machine the way wall times do: on a busy machine they are
the better figure to compare two versions by. Wall times are what a user waits; run on an
idle machine for those. ``--app-root`` serves another checkout (e.g. ``git archive HEAD``
unpacked in a temporary folder) with the same cache, for before/after comparisons.

For each colour and projection change the page also records, inside the browser, every
``Plotly.react`` call (Streamlit's chart component mounts a new chart per change and hands
it to Plotly twice), the time spent in them and the WebGL draw calls they issued; for the
map component (``app_pages/components/map_chart``, the default) its own counters in its
frame: ``Plotly.react`` calls and canvas draws of the points, with their script time.
``--baseline-env ELX_MAP_COMPONENT=0`` times the same actions with ``st.plotly_chart`` first,
in the same invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e import driver as d  # noqa: E402
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids of every process now running (Linux /proc)."""
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def descendants(pid: int) -> list[int]:
    """``pid`` and all its descendants now running."""
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class CpuMeter:
    """CPU seconds of the server tree and of Chromium's processes, by kind, between two reads.

    Kinds: ``server`` (the Streamlit process and its children), ``renderer``, ``gpu``
    (Chromium's GPU process: WebGL in SwiftShader) and ``browser`` (Chromium's other
    processes). Processes that exit between two reads are not counted.
    """

    def __init__(self, server_pid: int | None = None):
        self.server_pid = server_pid
        self.kinds: dict[int, str] = {}

    def _classify(self) -> None:
        server = set(descendants(self.server_pid)) if self.server_pid else set()
        for p in descendants(os.getpid()):
            if p in self.kinds or p == os.getpid():
                continue
            cmd = _cmdline(p)
            if p in server:
                self.kinds[p] = "server"
            elif "chrom" in cmd:
                self.kinds[p] = ("renderer" if "--type=renderer" in cmd else
                                 "gpu" if "--type=gpu-process" in cmd else "browser")

    def read(self) -> dict[str, float]:
        """Cumulative CPU seconds per kind now."""
        self._classify()
        out = {"server": 0.0, "renderer": 0.0, "gpu": 0.0, "browser": 0.0}
        for p, kind in self.kinds.items():
            out[kind] += cpu_seconds(p)
        return out


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, MB (Linux /proc)."""
    total = 0
    for p in descendants(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def start_app(app_root: Path, cache_dir: Path, log_path: Path, env_extra: dict) -> tuple[subprocess.Popen, str]:
    """``streamlit run app.py`` in ``app_root`` on a free loopback port (the test suite's
    :func:`tests.e2e.conftest.start_app`, with all of the data unless ``env_extra`` limits it)."""
    from tests.e2e.conftest import start_app as serve

    env = {"ELX_QM9_SUBSET": "", "ELX_MNIST_LIMIT": "", "PYTHONPATH": str(app_root), **env_extra}
    return serve(cache_dir, log_path, env, app_root=app_root, timeout=180)


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

# Inside the page: every Plotly.react call (sync ms, WebGL draw calls it issued) and the size of
# the largest JSON.stringify per action (Streamlit's chart component re-themes each new figure
# through a JSON round trip after Plotly decoded its typed arrays).
PLOTLY_HOOK = """() => {
  if (window._elxHook) return true;
  if (!window.Plotly) return false;
  window._elxHook = true; window._elxReacts = []; window._elxDraws = 0; window._elxJson = [];
  for (const C of [WebGLRenderingContext, WebGL2RenderingContext]) {
    for (const fn of ['drawArrays', 'drawElements']) { const o = C.prototype[fn];
      C.prototype[fn] = function(...a) { window._elxDraws += 1; return o.apply(this, a); }; } }
  const P = window.Plotly, orig = P.react;
  P.react = function(gd, ...rest) {
    const t0 = performance.now(), d0 = window._elxDraws;
    const fresh = !gd._elxSeen; gd._elxSeen = true;
    const r = orig.call(this, gd, ...rest);
    window._elxReacts.push({sync_ms: performance.now() - t0, fresh: fresh, draws_sync: window._elxDraws - d0});
    return r; };
  const s = JSON.stringify;
  JSON.stringify = function(...a) { const t = performance.now(); const r = s.apply(this, a);
    if (r && r.length > 1e6) window._elxJson.push([r.length, performance.now() - t]); return r; };
  return true; }"""


# data points of the first map on the page (row ids >= 0: not the colour bar's or overlays' markers;
# the map component's own points, ``gd._elxPoints``, all are)
POINTS_JS = f"""() => {{ const c = {d.CHARTS_JS}[0]; if (!c) return null; const gd = c.gd;
    let n = gd._elxPoints ? gd._elxPoints.n : 0;
    for (const t of gd._fullData) {{ const cd = t.customdata || []; for (let i = 0; i < (t._length || 0); i++)
        if (Number(Array.isArray(cd[i]) ? cd[i][0] : cd[i]) >= 0) n++; }}
    return n; }}"""

# a chart's identity for "redrawn": st.plotly_chart's data object (a new chart per figure), the map
# component's revision (set once it has drawn new arguments)
_DATA_ID = "(c) => c.gd._elxRev !== undefined ? c.gd._elxRev : c.gd.data"
# the map component's own counters (iframe: Plotly.react calls and canvas draws), summed over charts
_COMPONENT_STATS = f"""() => {d.CHARTS_JS}.reduce((a, c) => {{ const s = c.gd._elxStats; if (!s) return a;
    return [a[0] + s.reacts, a[1] + s.react_ms, a[2] + s.draws, a[3] + s.draw_ms]; }}, [0, 0, 0, 0])"""


def data_changed(page, charts: list[int]) -> bool:
    """True when every chart in ``charts`` (indices among the page's Plotly charts, including
    the map component's) holds another data object (Streamlit mounted a new chart) or, for the
    map component, has drawn another revision than when :func:`mark_data` ran; False while a
    chart is missing (between unmounting the old chart and mounting the new one)."""
    return page.evaluate(f"(cs) => {{ const g = {d.CHARTS_JS}, id = {_DATA_ID}; return cs.every(i => g[i] !== undefined "
                         "&& id(g[i]) !== undefined && id(g[i]) !== window._elxData[i]); }", charts)


def mark_data(page) -> None:
    """Remember each chart's data object (for :func:`data_changed`) and clear the page's records."""
    page.evaluate(f"() => {{ const id = {_DATA_ID}; window._elxData = {d.CHARTS_JS}.map(id); window._elxReacts = []; "
                  "window._elxJson = []; }")


def _hook_frames(page) -> int:
    """Install :data:`PLOTLY_HOOK` in the page and its iframes; WebGL draw calls counted in all."""
    page.evaluate(PLOTLY_HOOK)
    for f in page.frames[1:]:
        try:
            f.evaluate("() => { for (const C of [WebGLRenderingContext, WebGL2RenderingContext]) {"
                       "if (C.prototype._elxHooked) continue; C.prototype._elxHooked = true;"
                       "for (const fn of ['drawArrays', 'drawElements']) { const o = C.prototype[fn];"
                       "C.prototype[fn] = function(...a) { window.top._elxDraws = (window.top._elxDraws || 0) + 1;"
                       "return o.apply(this, a); }; } } }")
        except Exception:  # a frame that went away
            pass
    return 0


def _cpu_delta(a: dict, b: dict) -> dict:
    return {k: b[k] - a[k] for k in a}


def time_select_changes(page, watch, meter: CpuMeter, label: str, charts: list[int], n: int) -> dict:
    """Pick ``n`` options of the select box ``label`` in turn; per change, the time from the
    click to the ``charts`` (indices) holding new data and the page settling, the bytes the
    server sent, the CPU seconds per process kind and what the page recorded (Plotly.react
    calls, WebGL draw calls, large JSON.stringify calls)."""
    options = d.open_options(page, label)
    page.keyboard.press("Escape")
    out = {"times": [], "sent": [], "cpu": [], "reacts": [], "react_ms": [], "draws": [], "stringify_mb": [],
           "stringify_ms": [], "canvas_draws": [], "canvas_ms": []}
    for i in range(n):
        target = options[(i + 1) % len(options)]
        _hook_frames(page)
        mark_data(page)
        draws0 = page.evaluate("() => window._elxDraws || 0")
        stats0 = page.evaluate(_COMPONENT_STATS)
        before = watch.ws_bytes
        d.open_options(page, label)
        cpu0 = meter.read()
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
        out["times"].append(time.perf_counter() - t)
        out["cpu"].append(_cpu_delta(cpu0, meter.read()))
        out["sent"].append(watch.ws_bytes - before)
        rec = page.evaluate("() => [window._elxReacts || [], window._elxDraws || 0, window._elxJson || []]")
        stats = [b - a for a, b in zip(stats0, page.evaluate(_COMPONENT_STATS))]
        out["reacts"].append(len(rec[0]) + stats[0])
        out["react_ms"].append(sum(r["sync_ms"] for r in rec[0]) + stats[1])
        out["canvas_draws"].append(stats[2])
        out["canvas_ms"].append(stats[3])
        out["draws"].append(rec[1] - draws0)
        out["stringify_mb"].append(sum(j[0] for j in rec[2]) / 1e6)
        out["stringify_ms"].append(sum(j[1] for j in rec[2]))
    return out


def _stats(times: list[float], sent: list[int], cpu: list[dict] | None = None, **extra) -> dict:
    t = np.array(times, dtype=np.float64) * 1000
    out = {"n": len(t), "p50_ms": float(np.percentile(t, 50)), "p95_ms": float(np.percentile(t, 95)),
           "max_ms": float(t.max()), "ws_mb_median": float(np.median(np.array(sent) / 1e6)),
           "ws_mb_max": float(np.max(np.array(sent) / 1e6))}
    if cpu:
        for kind in cpu[0]:
            out[f"cpu_{kind}_s_median"] = float(np.median([c[kind] for c in cpu]))
        out["cpu_total_s_median"] = float(np.median([sum(c.values()) for c in cpu]))
    for key, values in extra.items():
        if values:
            out[f"{key}_median"] = float(np.median(values))
    return out


def run(slider: int = 50, colour: int = 20, projection: int = 20, qm9_subset: int = 0,
        cache_dir: Path | None = None, app_root: Path | None = None, app_env: dict | None = None) -> dict:
    """Drive the app and measure; returns a dict of results (see :func:`main` for the table).

    Parameters
    ----------
    slider, colour, projection : int, number of actions of each kind (0 skips it).
    qm9_subset : int, ``ELX_QM9_SUBSET`` of the served app (0 = all 130,831 molecules).
    cache_dir : Path, the app's ``ELX_CACHE_DIR`` (default: the repository's ``.cache``,
        warm after a first start).
    app_root : Path, the checkout to serve (default: this repository).
    app_env : dict, extra environment of the served app (e.g. ``ELX_DENSITY_THRESHOLD``).

    Returns
    -------
    dict with ``actions`` (name -> statistics: ``n``, ``p50_ms``, ``p95_ms``, ``max_ms``,
    ``ws_mb_median``, CPU seconds per process kind, in-page counts), ``points`` (points on
    the last map of the Interpolation page, or None), ``rss_mb`` (server RSS samples),
    ``load_before`` / ``load_after`` (1-minute load average) and ``cores``.
    """
    from playwright.sync_api import sync_playwright

    app_root = Path(app_root or ROOT)
    work = Path(tempfile.mkdtemp(prefix="elx_latency_"))
    env = {"ELX_QM9_SUBSET": str(qm9_subset) if qm9_subset else "", **(app_env or {})}
    load_before = os.getloadavg()[0]
    proc, url = start_app(app_root, Path(cache_dir or ROOT / ".cache"), work / "streamlit.log", env)
    result = {"actions": {}, "points": None, "rss_mb": [], "cores": os.cpu_count(), "load_before": load_before,
              "app_root": str(app_root)}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            watch = d.PageWatch(page)
            meter = CpuMeter(proc.pid)
            if slider > 0:
                t0 = time.perf_counter()
                d.open_page(page, url, "interpolation", model="graph_vae_qm9")
                page.get_by_text("step 4 · ").first.wait_for(timeout=600_000)
                result["interpolation_first_s"] = time.perf_counter() - t0
                result["rss_mb"].append(rss_mb(proc.pid))
                slider_el = page.locator('[data-testid="stSlider"]').filter(has_text="Step along the path") \
                    .locator('input[type="range"]')
                step, times, sent, cpu = 4, [], [], []
                for i in range(slider):
                    key, step = ("ArrowRight", step + 1) if (i // 4) % 2 == 0 else ("ArrowLeft", step - 1)
                    before = watch.ws_bytes
                    slider_el.focus()
                    # timed inside the browser: from the keydown event to the next animation frame
                    # after the new step's caption is in the DOM (a MutationObserver; Playwright's own
                    # text polling over this large page would add its scan time to the figure)
                    page.evaluate(STEP_WATCH, f"step {step} · ")
                    cpu0 = meter.read()
                    page.keyboard.press(key)
                    page.wait_for_function("() => window._elxT1 !== null", timeout=60_000)
                    times.append(page.evaluate("() => (window._elxT1 - window._elxT0) / 1000"))
                    d.wait_idle(page, quiet=0.05)  # settle before the next press (not timed)
                    cpu.append(_cpu_delta(cpu0, meter.read()))
                    sent.append(watch.ws_bytes - before)
                result["actions"]["slider"] = _stats(times, sent, cpu)
                result["rss_mb"].append(rss_mb(proc.pid))
            if colour > 0 or projection > 0:
                d.open_page(page, url, "latent_maps", model="graph_vae_qm9")
                result["points"] = page.evaluate(POINTS_JS)
                for key, label, charts, n in (("colour", "Colour by", [0, 1], colour),
                                              ("projection", "Invariant projection", [1], projection)):
                    if n <= 0:
                        continue
                    rec = time_select_changes(page, watch, meter, label, charts, n)
                    result["actions"][key] = _stats(rec["times"], rec["sent"], rec["cpu"], reacts=rec["reacts"],
                                                    react_ms=rec["react_ms"], draws=rec["draws"],
                                                    stringify_mb=rec["stringify_mb"],
                                                    stringify_ms=rec["stringify_ms"], canvas_draws=rec["canvas_draws"],
                                                    canvas_ms=rec["canvas_ms"])
                    result["rss_mb"].append(rss_mb(proc.pid))
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    result["load_after"] = os.getloadavg()[0]
    shutil.rmtree(work, ignore_errors=True)  # the server's log (kept when the run failed)
    return result


def _before_figure(coords: np.ndarray, values: np.ndarray, fixed_margins: bool):
    """The map as ``backend.plots.latent_map`` built it before this benchmark's fixes: one
    trace, a per-point float32 colour array on a Viridis scale, margins 10 px (automatic
    margins grow them after the first draw) unless ``fixed_margins``."""
    import plotly.graph_objects as go

    n = len(coords)
    lo, hi = np.percentile(values, [1, 99])
    fig = go.Figure(go.Scattergl(
        x=coords[:, 0], y=coords[:, 1], mode="markers", customdata=np.arange(n, dtype=np.int32),
        showlegend=False, hovertemplate="row %{customdata}<br>v: %{marker.color:.4g}<extra></extra>",
        marker=dict(size=3, opacity=0.7, color=values.astype(np.float32), colorscale="Viridis", showscale=True,
                    cmin=lo, cmax=hi, colorbar=dict(title=dict(text="v [unit]", side="right"), thickness=14))))
    if fixed_margins:
        fig.update_layout(height=460, margin=dict(l=58, r=96, t=30, b=48), xaxis=dict(automargin=False),
                          yaxis=dict(automargin=False))
    else:
        fig.update_layout(height=460, margin=dict(l=10, r=10, t=30, b=40))
    return fig


def figure_variants(n: int = 130_831, repeats: int = 3, seed: int = 0) -> list[dict]:
    """Cost of drawing one map of ``n`` points in headless Chromium, figure by figure.

    A bare page with the ``plotly.min.js`` of the installed ``plotly`` package draws each
    variant ``repeats`` times the way Streamlit 1.67's chart component does on a colour
    change: ``Plotly.react`` on a new chart, then a second ``Plotly.react`` with a JSON
    round-tripped copy of the figure (its theme effect). Variants, each adding one change:
    the figure before (per-point colour array, automatic margins, Plotly's WebGL pixel ratio
    2), fixed margins, pixel ratio 1, and 32 constant-colour bins (the app's figure now, which Streamlit's chart
    component draws this way when ``ELX_MAP_COMPONENT=0``; the map component draws its points itself).
    Synthetic points (seeded Gaussian clusters) and a continuous colour.

    Returns
    -------
    list of dict: ``variant``, ``first_ms`` (first ``Plotly.react`` until two animation
    frames later, median), ``second_ms`` (the round trip and second call, median),
    ``draws`` (WebGL draw calls of both), ``gpu_s`` / ``renderer_s`` (CPU seconds of
    Chromium's GPU process and renderer for both calls, median), ``json_mb``.
    """
    import plotly
    import plotly.io as pio
    from playwright.sync_api import sync_playwright

    from backend import plots

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (6, 2))
    coords = (centres[rng.integers(0, 6, n)] + rng.normal(0, 1.0, (n, 2))).astype(np.float32)
    values = coords[:, 0] * 0.7 + rng.normal(0, 0.5, n)
    option = type("ColorOption", (), dict(key="v", label="v", unit="unit", categorical=False, scale=1.0))()
    import pandas as pd

    table = pd.DataFrame({"v": values})
    variants = [
        ("before: per-point colour array, automatic margins, WebGL pixel ratio 2",
         _before_figure(coords, values, False), {}),
        ("+ fixed margins (one draw per Plotly call instead of two)", _before_figure(coords, values, True), {}),
        ("+ WebGL pixel ratio 1 (a quarter of the pixels)", _before_figure(coords, values, True),
         {"plotGlPixelRatio": 1}),
        (f"+ {plots.COLOUR_BINS} constant-colour bins (the figure now; st.plotly_chart draws it so with "
         "ELX_MAP_COMPONENT=0)", plots.latent_map(coords, table, option),
         plots.map_chart_config(n)),
    ]
    js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.set_content('<div id="g" style="width:640px;height:460px"></div>')
        page.add_script_tag(path=str(js))
        page.evaluate("""() => { window._elxDraws = 0;
          for (const C of [WebGLRenderingContext, WebGL2RenderingContext]) {
            for (const fn of ['drawArrays', 'drawElements']) { const o = C.prototype[fn];
              C.prototype[fn] = function(...a) { window._elxDraws += 1; return o.apply(this, a); }; } } }""")
        meter = CpuMeter(None)
        for name, fig, config in variants:
            text = pio.to_json(fig, validate=False)
            page.evaluate("(s) => { window._elxSpec = s; }", text)
            rec = []
            for _ in range(repeats):
                page.evaluate("() => { Plotly.purge('g'); window._elxDraws = 0; }")
                time.sleep(0.2)
                c0 = meter.read()
                ms = page.evaluate("""async (cfg) => {
                    const frames = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
                    const f = JSON.parse(window._elxSpec); const t0 = performance.now();
                    await Plotly.react('g', f.data, f.layout, cfg); await frames(); const t1 = performance.now();
                    const gd = document.getElementById('g');
                    const again = JSON.parse(JSON.stringify({data: gd.data, layout: gd.layout}));
                    await Plotly.react('g', again.data, again.layout, cfg); await frames();
                    return [t1 - t0, performance.now() - t1, window._elxDraws]; }""", config)
                c1 = meter.read()
                rec.append((ms[0], ms[1], ms[2], c1["gpu"] - c0["gpu"], c1["renderer"] - c0["renderer"]))
            r = np.array(rec, dtype=np.float64)
            out.append({"variant": name, "first_ms": float(np.median(r[:, 0])), "second_ms": float(np.median(r[:, 1])),
                        "draws": int(np.median(r[:, 2])), "gpu_s": float(np.median(r[:, 3])),
                        "renderer_s": float(np.median(r[:, 4])), "json_mb": len(text) / 1e6})
        browser.close()
    return out


NAMES = {"slider": "Interpolation: step slider moved (key press -> new step drawn)",
         "colour": "Latent maps: 'Colour by' changed (both maps redrawn)",
         "projection": "Latent maps: 'Invariant projection' changed (invariant map redrawn)"}


def table(result: dict) -> str:
    """The results as a Markdown table (one row per action)."""
    lines = ["| action | n | p50 [ms] | p95 [ms] | max [ms] | websocket MB (median) | CPU s per action: "
             "server / renderer / GPU / other (median) |", "|---|---|---|---|---|---|---|"]
    for key, s in result["actions"].items():
        cpu = "/".join(f"{s.get(f'cpu_{k}_s_median', float('nan')):.2f}" for k in ("server", "renderer", "gpu",
                                                                                      "browser"))
        lines.append(f"| {NAMES.get(key, key)} | {s['n']} | {s['p50_ms']:.0f} | {s['p95_ms']:.0f} | "
                     f"{s['max_ms']:.0f} | {s['ws_mb_median']:.3f} | {cpu} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slider", type=int, default=50)
    ap.add_argument("--colour", type=int, default=20)
    ap.add_argument("--projection", type=int, default=20)
    ap.add_argument("--qm9-subset", type=int, default=0, help="0 = all 130,831 molecules")
    ap.add_argument("--cache-dir", default=str(ROOT / ".cache"), help="warm cache (default: the repo's)")
    ap.add_argument("--app-root", default=str(ROOT), help="checkout to serve (default: this one)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    ap.add_argument("--app-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment of the served app (repeatable), e.g. ELX_DENSITY_THRESHOLD=100000")
    ap.add_argument("--variants", type=int, default=0, metavar="REPEATS",
                    help="also time figure variants of one 130,831-point map on a bare Plotly page")
    ap.add_argument("--baseline-env", action="append", default=[], metavar="KEY=VALUE",
                    help="first time the same actions on the app with this extra environment (repeatable; e.g. "
                         "ELX_MAP_COMPONENT=0: the maps drawn by st.plotly_chart), then the app as configured, in "
                         "this invocation; prints both tables and the ratios")
    ap.add_argument("--baseline-slider", type=int, default=None, metavar="N",
                    help="slider moves of the --baseline-env run (default: --slider; 0 skips them, e.g. when the "
                         "baseline's setting does not touch the Interpolation page)")
    args = ap.parse_args(argv)
    env = dict(kv.split("=", 1) for kv in args.app_env)
    base = None
    if args.baseline_env:
        base_slider = args.slider if args.baseline_slider is None else args.baseline_slider
        base = run(base_slider, args.colour, args.projection, args.qm9_subset, Path(args.cache_dir),
                   Path(args.app_root), {**env, **dict(kv.split("=", 1) for kv in args.baseline_env)})
        base["app_env"] = args.app_env + args.baseline_env
    res = run(args.slider, args.colour, args.projection, args.qm9_subset, Path(args.cache_dir),
              Path(args.app_root), env)
    res["app_env"] = args.app_env
    if base is not None:
        res["baseline"] = base
        print(f"baseline ({' '.join(args.baseline_env)}): points on a map: {base['points']}; load average (1 min) "
              f"before / after: {base['load_before']:.2f} / {base['load_after']:.2f}")
        print(table(base))
        print()
    if args.variants:
        res["variants"] = figure_variants(repeats=args.variants)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    print(f"points on a map: {res['points']}; cores: {res['cores']}, load average (1 min) before / after: "
          f"{res['load_before']:.2f} / {res['load_after']:.2f}")
    print(table(res))
    for key in ("colour", "projection"):
        s = res["actions"].get(key)
        if s:
            print(f"{key}: per change (median) {s.get('reacts_median', 0):.0f} Plotly.react calls taking "
                  f"{s.get('react_ms_median', 0):.0f} ms, {s.get('draws_median', 0):.0f} WebGL draw calls, "
                  f"{s.get('stringify_mb_median', 0):.1f} MB of JSON.stringify in "
                  f"{s.get('stringify_ms_median', 0):.0f} ms")
    print(f"server RSS over the run [MB]: {', '.join(f'{r:.0f}' for r in res['rss_mb'])}")
    for key, s in res["actions"].items():
        if s.get("canvas_draws_median"):
            print(f"{key}: map component canvas draws {s['canvas_draws_median']:.0f} per change taking "
                  f"{s.get('canvas_ms_median', 0):.0f} ms")
        b = (base or {}).get("actions", {}).get(key)
        if b:
            print(f"{key} against the baseline: p50 {b['p50_ms']:.0f} -> {s['p50_ms']:.0f} ms "
                  f"({b['p50_ms'] / s['p50_ms']:.2f} x faster), p95 {b['p95_ms']:.0f} -> {s['p95_ms']:.0f} ms "
                  f"({b['p95_ms'] / s['p95_ms']:.2f} x), CPU {b.get('cpu_total_s_median', 0):.2f} -> "
                  f"{s.get('cpu_total_s_median', 0):.2f} s, sent {b['ws_mb_median']:.2f} -> {s['ws_mb_median']:.2f} MB")
    for v in res.get("variants", []):
        print(f"{v['variant']}: first draw {v['first_ms']:.0f} ms, "
              f"Streamlit's second hand-off {v['second_ms']:.0f} ms, "
              f"{v['draws']} WebGL draw calls, CPU GPU process {v['gpu_s']:.2f} s + renderer {v['renderer_s']:.2f} s, "
              f"{v['json_mb']:.2f} MB JSON")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
