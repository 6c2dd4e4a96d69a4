"""Load test: concurrent browser sessions through Latent maps, Interpolation and Orbits.

Starts ``streamlit run app.py`` on 127.0.0.1 (loopback only) and drives it with ``--sessions``
concurrent sessions for ``--duration`` seconds: one headless Chromium (Debian's, through
Playwright's async API), one browser context per session. Each session repeats a fixed cycle:

1. open ``/latent_maps?model=...`` (a new page load, hence a new Streamlit session; the old one
   is dropped), wait until the run settles;
2. click *Interpolation* in the sidebar, wait; move the step slider one step (a fragment
   rerun), wait;
3. click *Orbits*, wait.

Sessions alternate between ``--models`` and start staggered over ``--ramp`` seconds. Before
the measured window one session walks the cycle once (``warm-up``: on an empty cache that is
the first start, featurizing and encoding). Bounded: every wait has a timeout, the window has
a fixed length, and at most ``--sessions`` pages are open.

**Errors** (must be 0): an exception box (``stException``) or an error box
(``stAlertContentError``) on a page, a navigation or wait that fails or times out
(``--step-timeout``), an uncaught page error or console error, an HTTP status >= 400 from the
app (Streamlit's own base-path probes excepted, as in ``tests/e2e/driver.py``).

**Page settle time, server side**: the server runs with ``ELX_RUN_TIMING_LOG`` set, so
``app.py`` appends the wall time of every full script run (sidebar + page, in the server's
script thread, from the first line of ``app.py`` to the end of the page: model and cache
look-ups, maps, decoding, waits for the GIL and locks, the time to hand the elements to
Streamlit's send queue). It does not include the time to push the bytes over the websocket or
the browser's drawing, nor fragment reruns (the step slider). Next to it, for context, the
client-side time from the action (navigation start, click, key press) to the moment the page
showed no running indicator for good (at least 0.4 s: the detector waits that long before it
looks; then 0.8 s without a status widget, spinner or skeleton), which includes the transfer
and, for the maps, Chromium's software-rendered WebGL on the same cores. Runs that ended inside the
measured window count; runs that did not complete (``RerunException``: restarted by a widget
change; ``StopException``: stopped, e.g. because the session closed) are counted but not in the
percentiles.

**Server memory**: VmRSS of the server process from ``/proc`` every ``--sample`` seconds;
the verdict compares the peak of the last third of the window with the peak of the middle
third (plateau: growth below 5 % or 50 MB) and gives the slope of a straight line over the
second half (MB/min).

    python benchmarks/load_test.py --quick                      # 3 sessions, 30 s, QM9 subset
    python benchmarks/load_test.py --sessions 20 --duration 300 --qm9-subset 0 --warm-from .cache \\
        --out load.json                                          # shipped weights, all of QM9

Prints a table; ``--out`` writes the figures as JSON. Exit status 1 if there were errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PAGES = ("latent_maps", "interpolation", "orbits")
IDLE_JS = """() => !document.querySelector('[data-testid="stStatusWidget"]')
              && !document.querySelector('[data-testid="stSpinner"]')
              && !document.querySelector('[data-testid="stSkeleton"]')"""


# --------------------------------------------------------------------------- measurements
def rss_mb(pid: int) -> float | None:
    """Resident memory (VmRSS) of process ``pid``, MB (10^6 bytes); None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        return None
    return None


def read_runs(path: Path) -> list[dict]:
    """The script runs ``app.py`` logged to ``ELX_RUN_TIMING_LOG`` (one JSON object per line;
    keys ``end`` (Unix s), ``ms``, ``page``, ``session``, ``outcome``); unparsable lines skipped."""
    runs = []
    if not Path(path).exists():
        return runs
    for line in Path(path).read_text().splitlines():
        try:
            runs.append(json.loads(line))
        except ValueError:
            continue
    return runs


def percentiles(values) -> dict:
    """``n``, ``p50``, ``p95``, ``max`` of ``values`` (None for an empty list)."""
    v = np.asarray(list(values), dtype=float)
    if not len(v):
        return {"n": 0, "p50": None, "p95": None, "max": None}
    return {"n": int(len(v)), "p50": round(float(np.percentile(v, 50)), 1),
            "p95": round(float(np.percentile(v, 95)), 1), "max": round(float(v.max()), 1)}


def server_timing(runs: list[dict], t_start: float, t_end: float) -> dict:
    """Per-page and overall percentiles (ms) of the runs that ended in ``[t_start, t_end]``.

    Returns
    -------
    dict
        ``pages``: ``{page: {n, p50, p95, max}}`` over the runs that completed (``outcome``
        ``ok``); ``all``: the same over every page; ``outcomes``: counts per outcome (a
        ``StopException`` is ``st.stop()`` or a run stopped because its session closed, e.g. a
        page load replacing it; a ``RerunException`` a run restarted by a widget change).
    """
    window = [r for r in runs if t_start <= r.get("end", 0) <= t_end]
    done = [r for r in window if r.get("outcome") == "ok"]
    outcomes: dict[str, int] = {}
    for r in window:
        outcomes[r.get("outcome", "?")] = outcomes.get(r.get("outcome", "?"), 0) + 1
    pages = {p: percentiles(r["ms"] for r in done if r.get("page") == p)
             for p in sorted({r.get("page", "") for r in done})}
    return {"pages": pages, "all": percentiles(r["ms"] for r in done), "outcomes": outcomes}


def memory_verdict(samples: list[tuple[float, float]]) -> dict:
    """Does the server's RSS level off? ``samples``: (seconds since the window opened, MB).

    Returns
    -------
    dict
        ``first``, ``peak``, ``last`` (MB); ``peak_by_third`` (MB); ``slope_second_half_mb_per_min``;
        ``plateau`` (True when the last third's peak is within 5 % or 50 MB of the middle third's).
    """
    if len(samples) < 6:
        return {"plateau": None, "n": len(samples)}
    t = np.array([s[0] for s in samples])
    m = np.array([s[1] for s in samples])
    thirds = np.array_split(np.arange(len(m)), 3)
    peaks = [float(m[i].max()) for i in thirds]
    half = t >= t[-1] / 2
    slope = float(np.polyfit(t[half] / 60.0, m[half], 1)[0]) if half.sum() >= 2 else float("nan")
    growth = peaks[2] - peaks[1]
    return {"n": len(samples), "first": round(float(m[0]), 1), "peak": round(float(m.max()), 1),
            "last": round(float(m[-1]), 1), "peak_by_third": [round(p, 1) for p in peaks],
            "slope_second_half_mb_per_min": round(slope, 2),
            "plateau": bool(growth <= max(0.05 * peaks[1], 50.0))}


# --------------------------------------------------------------------------- one browser session
class Session:
    """One visitor: a browser context, its page, its errors and client-side settle times."""

    def __init__(self, index: int, model: str):
        self.index, self.model = index, model
        self.errors: list[str] = []
        self.client_s: dict[str, list[float]] = {p: [] for p in PAGES + ("step",)}
        self.cycles = 0
        self.page = None

    def watch(self, page) -> None:
        """Record page errors, console errors and failed requests of ``page``."""
        def console(msg):
            if msg.type == "error" and "Failed to load resource" not in msg.text:
                self.errors.append(f"console: {msg.text[:300]}")

        def response(resp):
            path = urllib.parse.urlparse(resp.url).path
            probe = path.count("/") >= 3 and path.rsplit("/", 2)[-2] == "_stcore" and \
                path.endswith(("/_stcore/health", "/_stcore/host-config"))
            if resp.status >= 400 and not probe:
                self.errors.append(f"HTTP {resp.status}: {resp.url}")

        page.on("console", console)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {str(e)[:300]}"))
        page.on("response", response)


async def wait_idle(page, timeout: float, quiet: float = 0.8) -> float:
    """Wait until no status widget, spinner or skeleton has shown for ``quiet`` s in a row.

    Returns
    -------
    float
        ``time.monotonic()`` when that calm began (the page settled then).

    Raises
    ------
    TimeoutError
        If the page does not settle in ``timeout`` s.
    """
    deadline = time.monotonic() + timeout
    calm_since = None
    while time.monotonic() < deadline:
        if await page.evaluate(IDLE_JS):
            calm_since = calm_since or time.monotonic()
            if time.monotonic() - calm_since >= quiet:
                return calm_since
        else:
            calm_since = None
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the page did not settle in {timeout:.0f} s")


async def check_page(session: Session, what: str) -> None:
    """Record an exception box or an error box on the session's page as an error."""
    page = session.page
    for sel, kind in (('[data-testid="stException"]', "exception box"),
                      ('[data-testid="stAlertContentError"]', "error box")):
        loc = page.locator(sel)
        if await loc.count():
            session.errors.append(f"{what}: {kind}: {(await loc.first.inner_text())[:300]}")


async def step(session: Session, what: str, action, timeout: float) -> bool:
    """Run ``action()`` (a navigation or input), wait for the page to settle, check it.
    Returns False (and records an error) if it failed or timed out."""
    t0 = time.monotonic()
    try:
        await action()
        await asyncio.sleep(0.4)  # let the status widget appear before looking for calm
        settled = await wait_idle(session.page, timeout)
    except Exception as exc:  # a failed navigation or a page that never settles
        session.errors.append(f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
        return False
    session.client_s[what].append(settled - t0)
    await check_page(session, what)
    return True


async def cycle(session: Session, url: str, timeout: float) -> None:
    """One pass: Latent maps (fresh page load), Interpolation + one slider step, Orbits."""
    page = session.page

    async def open_maps():
        await page.goto(f"{url}/latent_maps?model={session.model}", timeout=timeout * 1000)
        await page.wait_for_selector('[data-testid="stApp"]', timeout=timeout * 1000)

    def nav(title):
        async def go():
            await page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click(
                timeout=timeout * 1000)
        return go

    async def slider_step():
        slider = page.locator('[data-testid="stSlider"]').filter(has_text="Step along the path") \
            .locator('input[type="range"]')
        await slider.first.focus(timeout=timeout * 1000)
        await page.keyboard.press("ArrowRight")

    if not await step(session, "latent_maps", open_maps, timeout):
        return
    if await step(session, "interpolation", nav("Interpolation"), timeout):
        await step(session, "step", slider_step, timeout)
    await step(session, "orbits", nav("Orbits"), timeout)
    session.cycles += 1


async def run_session(browser, session: Session, url: str, start_at: float, stop_at: float,
                      timeout: float, min_cycles: int = 0) -> None:
    """Start at ``start_at`` (monotonic s), then cycle until ``stop_at`` (the cycle under way is
    finished), at least ``min_cycles`` times."""
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        session.page = await context.new_page()
        session.watch(session.page)
        done = 0
        while done < min_cycles or time.monotonic() < stop_at:
            await cycle(session, url, timeout)
            done += 1
    finally:
        await context.close()


async def sample_memory(pid: int, t0: float, every: float, out: list, stop: asyncio.Event) -> None:
    """Append (seconds since ``t0``, server RSS in MB) every ``every`` s until ``stop`` is set."""
    while not stop.is_set():
        mb = rss_mb(pid)
        if mb is not None:
            out.append((round(time.monotonic() - t0, 1), round(mb, 1)))
        try:
            await asyncio.wait_for(stop.wait(), every)
        except asyncio.TimeoutError:
            pass


async def drive(url: str, pid: int, args) -> dict:
    """Warm-up, then the measured window; returns the raw observations."""
    from playwright.async_api import async_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    models = args.models
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        warm = []
        t_warm = time.monotonic()
        for model in dict.fromkeys(models):  # each model once, one after the other
            s = Session(-1, model)
            await run_session(browser, s, url, 0.0, 0.0, args.warmup_timeout, min_cycles=1)
            warm.append(s)
        warmup_s = time.monotonic() - t_warm

        sessions = [Session(i, models[i % len(models)]) for i in range(args.sessions)]
        t0 = time.monotonic()
        wall0 = time.time()
        stop_at = t0 + args.duration
        samples: list = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_memory(pid, t0, args.sample, samples, stop))
        results = await asyncio.gather(
            *(run_session(browser, s, url, t0 + args.ramp * i / max(1, args.sessions), stop_at, args.step_timeout)
              for i, s in enumerate(sessions)), return_exceptions=True)
        t_end = time.monotonic()
        wall_end = time.time()
        stop.set()
        await sampler
        # keep sampling a moment after the last session closed: what the server keeps
        for _ in range(3):
            await asyncio.sleep(args.sample)
            mb = rss_mb(pid)
            if mb is not None:
                samples.append((round(time.monotonic() - t0, 1), round(mb, 1)))
        await browser.close()
    crashed = [f"session task: {type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    return {"warm": warm, "warmup_s": warmup_s, "sessions": sessions, "window": (wall0, wall_end),
            "elapsed_s": t_end - t0, "samples": samples, "crashed": crashed}


# --------------------------------------------------------------------------- the server
def prepare_cache(folder: Path, warm_from: Path | None) -> int:
    """Fill the empty cache ``folder`` from ``warm_from``'s ``.npz`` files (hard links where
    possible, else copies; locks, quarantined and temporary files are left out). Returns the
    number of files. Cache files are never modified in place (writes are atomic renames), so
    hard links are safe."""
    folder.mkdir(parents=True, exist_ok=True)
    if warm_from is None:
        return 0
    n = 0
    for f in Path(warm_from).glob("*.npz"):
        try:
            os.link(f, folder / f.name)
        except OSError:
            shutil.copy2(f, folder / f.name)
        n += 1
    return n


def main(argv=None) -> int:
    """Run the load test; print the table; write ``--out``. Exit status 1 on any error."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--duration", type=float, default=300.0, help="measured window, s")
    ap.add_argument("--ramp", type=float, default=20.0, help="sessions start evenly over this many s")
    ap.add_argument("--models", default="graph_vae_qm9,rot_mnist_c8",
                    help="comma-separated model ids, assigned to sessions in turn")
    ap.add_argument("--qm9-subset", type=int, default=1500, help="ELX_QM9_SUBSET of the server; 0 = all of QM9")
    ap.add_argument("--mnist-limit", type=int, default=400, help="ELX_MNIST_LIMIT of the server; 0 = all")
    ap.add_argument("--weights-dir", type=Path, help="ELX_WEIGHTS_DIR (default: the shipped weights)")
    ap.add_argument("--warm-from", type=Path, help="cache folder to start from (its .npz files are linked)")
    ap.add_argument("--step-timeout", type=float, default=240.0, help="limit of one navigation + settle, s")
    ap.add_argument("--warmup-timeout", type=float, default=900.0, help="the same during the warm-up, s")
    ap.add_argument("--sample", type=float, default=2.0, help="RSS sampling interval, s")
    ap.add_argument("--quick", action="store_true", help="3 sessions, 30 s window, 3 s ramp (CI)")
    ap.add_argument("--keep", type=Path, help="keep the server log and run log in this folder")
    ap.add_argument("--out", type=Path, help="write the figures as JSON")
    args = ap.parse_args(argv)
    if args.quick:
        args.sessions, args.duration, args.ramp = 3, 30.0, 3.0
    args.models = [m for m in args.models.split(",") if m]

    from tests.e2e.conftest import start_app

    work = Path(tempfile.mkdtemp(prefix="elx_load_"))
    try:
        warmed = prepare_cache(work / "cache", args.warm_from)
        run_log = work / "runs.jsonl"
        env = {"ELX_RUN_TIMING_LOG": str(run_log), "ELX_QM9_SUBSET": str(args.qm9_subset),
               "ELX_MNIST_LIMIT": str(args.mnist_limit), "OMP_NUM_THREADS": "1"}
        if args.weights_dir:
            env["ELX_WEIGHTS_DIR"] = str(args.weights_dir)
        load_before = os.getloadavg()
        t_start = time.time()
        proc, url = start_app(work / "cache", work / "server.log", env)
        start_s = time.time() - t_start
        try:
            obs = asyncio.run(drive(url, proc.pid, args))
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except Exception:
                proc.kill()
        log = (work / "server.log").read_text()
        runs = read_runs(run_log)
        report = summarize(args, obs, runs, log, start_s, load_before, warmed)
        print_report(report)
        if args.out:
            args.out.write_text(json.dumps(report, indent=2))
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for name in ("server.log", "runs.jsonl"):
                if (work / name).exists():
                    shutil.copy2(work / name, args.keep / name)
        return 0 if report["errors"]["total"] == 0 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def summarize(args, obs: dict, runs: list[dict], log: str, start_s: float, load_before, warmed: int) -> dict:
    """All figures as one JSON-able dict (see the module docstring for what each means)."""
    sessions: list[Session] = obs["sessions"]
    errors = [f"session {s.index} ({s.model}): {e}" for s in sessions for e in s.errors]
    warm_errors = [f"warm-up ({s.model}): {e}" for s in obs["warm"] for e in s.errors]
    tracebacks = log.count("Traceback")
    client = {p: percentiles(1000 * t for s in sessions for t in s.client_s[p]) for p in PAGES + ("step",)}
    wall0, wall_end = obs["window"]
    return {
        "config": {"sessions": args.sessions, "duration_s": args.duration, "ramp_s": args.ramp,
                   "models": args.models, "qm9_subset": args.qm9_subset, "mnist_limit": args.mnist_limit,
                   "weights": str(args.weights_dir or "shipped"), "warm_cache_files": warmed,
                   "browser": "one headless Chromium, one context per session",
                   "cpus": os.cpu_count(), "load_average_before": [round(x, 2) for x in load_before],
                   "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "server_start_s": round(start_s, 1),
        "warmup_s": round(obs["warmup_s"], 1),
        "window_s": round(obs["elapsed_s"], 1),
        "window_unix_s": [round(wall0, 3), round(wall_end, 3)],
        "cycles": {"total": sum(s.cycles for s in sessions),
                   "per_session_min": min((s.cycles for s in sessions), default=0),
                   "per_session_max": max((s.cycles for s in sessions), default=0)},
        "errors": {"total": len(errors) + len(obs["crashed"]) + tracebacks, "list": (errors + obs["crashed"])[:50],
                   "server_tracebacks": tracebacks, "warmup": warm_errors[:10]},
        "server_settle_ms": server_timing(runs, wall0, wall_end),
        "client_settle_ms": client,
        "server_rss_mb": memory_verdict(obs["samples"]),
        "rss_samples": obs["samples"],
    }


def print_report(r: dict) -> None:
    """The figures as Markdown tables on stdout."""
    c = r["config"]
    print(f"\n{c['sessions']} sessions for {r['window_s']} s (ramp {c['ramp_s']} s), models {', '.join(c['models'])}, "
          f"QM9 subset {c['qm9_subset'] or 'all'}, MNIST limit {c['mnist_limit'] or 'all'}, weights {c['weights']}, "
          f"{c['warm_cache_files']} warm cache files; server start {r['server_start_s']} s, warm-up "
          f"{r['warmup_s']} s; load average before {c['load_average_before']}, after {c['load_average_after']}")
    print(f"cycles (maps → interpolation + step → orbits): {r['cycles']['total']} "
          f"({r['cycles']['per_session_min']}-{r['cycles']['per_session_max']} per session)")
    e = r["errors"]
    print(f"errors: {e['total']} (server tracebacks {e['server_tracebacks']})")
    for line in e["list"][:10]:
        print("  ", line)
    print("\n| page | server runs | server p50 | server p95 | server max | client p50 | client p95 |")
    print("|---|---|---|---|---|---|---|")
    sv, cl = r["server_settle_ms"]["pages"], r["client_settle_ms"]

    def fmt(v):
        return "–" if v is None else f"{v / 1000:.2f} s"

    for p in PAGES + ("step",):
        s = sv.get(p, percentiles([]))
        k = cl.get(p, percentiles([]))
        runs = "(fragment, not logged)" if p == "step" else s["n"]
        print(f"| {p} | {runs} | {fmt(s['p50'])} | {fmt(s['p95'])} | {fmt(s['max'])} | {fmt(k['p50'])} | "
              f"{fmt(k['p95'])} |")
    a = r["server_settle_ms"]["all"]
    print(f"| all pages | {a['n']} | {fmt(a['p50'])} | {fmt(a['p95'])} | {fmt(a['max'])} | | |")
    print(f"run outcomes in the window: {r['server_settle_ms']['outcomes']}")
    m = r["server_rss_mb"]
    if m.get("plateau") is None:
        print(f"server RSS: too few samples ({m['n']})")
    else:
        print(f"server RSS (MB): first {m['first']}, peak {m['peak']}, last {m['last']}; peak per third "
              f"{m['peak_by_third']}; slope over the second half {m['slope_second_half_mb_per_min']} MB/min; "
              f"{'levels off' if m['plateau'] else 'STILL GROWING'}")


if __name__ == "__main__":
    sys.exit(main())
