"""Fault injection for the cache (issue 14): a server killed mid-encode, a writer killed
mid-write, and a full disk under the cache folder. Loopback only; prints a table.

    python benchmarks/fault_injection.py                  # all scenarios (about 1 min)
    python benchmarks/fault_injection.py --only kill-write full-disk --out faults.json

Scenarios (each says ``ok`` or what went wrong):

``kill-encode``
    ``streamlit run app.py`` (shipped weights, ``ELX_QM9_SUBSET`` molecules, empty cache
    folder); Chromium opens Latent maps; once the encode of the codes has started (the lock
    file ``latents_graph_vae_qm9_*.npz.lock`` exists, the codes file does not) and is still
    running half a second later, the server gets **SIGKILL**. Then: no codes file may exist
    (or, if the kill came after the rename, a complete one); the server is started again on
    the same folder; Latent maps must draw both maps without an exception box and without a
    "was unreadable" warning (nothing half-written was found); the codes file must load with
    ``allow_pickle=False`` and hold one row per molecule; no writer's temporary file and no
    quarantined file may be left; the second server's log must hold no traceback.
``kill-write``
    A child process runs :func:`backend.latents.load_or_encode` on 130,831 × 9 codes (the
    size of all of QM9) whose write is stopped halfway: ``numpy.savez`` is replaced *in the
    child only* by one that writes the first half of the real archive, ``fsync``s it, and
    waits. The child gets **SIGKILL** there, holding the file lock. Then: the codes file must
    not exist, the half-written temporary ``.<name>.<random>.tmp`` must (that is the state a
    crash leaves); the next caller must get the lock at once (the kernel drops a dead
    process's ``flock``), compute the codes, write a complete file and remove the leftover.
    The kill lands mid-write by construction here; a real server's write of this file takes
    a few hundred milliseconds, too short to hit reliably from outside.
``full-disk``
    A **real tmpfs** of 1 MiB (``mount -t tmpfs -o size=1m``; needs root or CAP_SYS_ADMIN)
    is filled to the last byte and used as ``ELX_CACHE_DIR``; the server starts on it and
    Chromium opens Latent maps, Interpolation and Orbits. Expected: a warning naming the
    folder and ``ELX_CACHE_DIR`` (what to do), both maps drawn, no exception box on any page,
    no traceback in the server log; featurized QM9 and the codes stay in memory. Where
    ``mount`` is not permitted the scenario is reported as *not run* (the default test suite
    covers ENOSPC by making the write raise ``OSError(ENOSPC)``:
    ``tests/test_faults_disk.py``).

The functions are used by ``tests/test_faults_disk.py`` (``kill-write``, tmpfs helpers) and
``tests/e2e/test_load_faults.py`` (the server scenarios, marked ``slow``).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: molecules of the QM9 subset the server scenarios use (as the browser tests do)
QM9_SUBSET = 1500


class MountNotPermitted(RuntimeError):
    """``mount -t tmpfs`` failed here (not root, no CAP_SYS_ADMIN, or no ``mount``)."""


# --------------------------------------------------------------------------- a full disk
@contextlib.contextmanager
def mounted_tmpfs(folder: Path, size: str = "1m"):
    """Mount a tmpfs of ``size`` on ``folder`` (created) for the ``with`` block, then unmount it.

    Parameters
    ----------
    folder : Path
        Mount point; created if missing, left (empty) afterwards.
    size : str
        tmpfs ``size=`` option, e.g. ``"1m"`` (1 MiB).

    Yields
    ------
    Path
        ``folder``.

    Raises
    ------
    MountNotPermitted
        If the mount fails (the reason is in the message).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(folder)],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise MountNotPermitted(f"mount could not run: {exc}") from exc
    if done.returncode != 0:
        raise MountNotPermitted(f"mount -t tmpfs failed: {(done.stderr or done.stdout).strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def fill(folder: Path, name: str = "filler.bin") -> int:
    """Write zeros into ``folder/name`` until the file system reports ENOSPC.

    Parameters
    ----------
    folder : Path
        A folder on the (small) file system to fill.
    name : str
        Name of the filler file.

    Returns
    -------
    int
        Bytes written (the free space there was).

    Raises
    ------
    OSError
        For any error other than ENOSPC.
    """
    written = 0
    chunk = b"\0" * 4096
    fd = os.open(Path(folder) / name, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            try:
                written += os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    finally:
        os.close(fd)
    return written


def free_bytes(folder: Path) -> int:
    """Bytes free for unprivileged writers on the file system of ``folder``."""
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


# --------------------------------------------------------------------------- a writer killed mid-write
_HALF_WRITE_CHILD = textwrap.dedent("""
    import io, os, sys, time
    import numpy as np
    import pandas as pd
    sys.path.insert(0, {root!r})
    from backend.groups import PermutationAction
    from backend.latents import load_or_encode

    real_savez = np.savez

    def half_then_hang(fh, **arrays):      # the write stops halfway, as a crash would stop it
        buf = io.BytesIO()
        real_savez(buf, **arrays)
        data = buf.getvalue()
        fh.write(data[: len(data) // 2])
        fh.flush()
        os.fsync(fh.fileno())
        with open({ready!r}, "w") as out:
            out.write(str(len(data)))
        time.sleep(600)

    np.savez = half_then_hang
    rows = {rows}
    rng = np.random.default_rng(0)
    codes = {{"stored": rng.normal(size=(rows, 9, 1)).astype(np.float32),
              "random": rng.normal(size=(rows, 9, 1)).astype(np.float32),
              "perms": np.argsort(rng.random((rows, 9)), axis=1)}}
    load_or_encode({path!r}, pd.DataFrame({{"i": np.arange(rows)}}), PermutationAction(9, 1), lambda: codes, 0)
""")


def expected_codes(rows: int) -> dict:
    """The codes the ``kill-write`` child writes: seeded, ``stored``/``random`` (rows, 9, 1) float32,
    ``perms`` (rows, 9) int."""
    import numpy as np

    rng = np.random.default_rng(0)
    return {"stored": rng.normal(size=(rows, 9, 1)).astype(np.float32),
            "random": rng.normal(size=(rows, 9, 1)).astype(np.float32),
            "perms": np.argsort(rng.random((rows, 9)), axis=1)}


def kill_mid_write(folder: Path, rows: int = 130_831, timeout: float = 120.0) -> dict:
    """Run the ``kill-write`` scenario in ``folder`` and check what the next caller does.

    Parameters
    ----------
    folder : Path
        An empty folder (the cache folder of the scenario).
    rows : int
        Rows of the codes (130,831 = all of QM9: a 19 MB file).
    timeout : float
        Seconds to wait for the child to reach the half-written state, s.

    Returns
    -------
    dict
        ``ok`` (bool), ``problems`` (list of str), and the observations: ``archive_bytes``,
        ``temp_bytes_at_kill``, ``final_existed_after_kill``, ``temps_after_kill``,
        ``lock_wait_s`` (how long the next caller waited for the dead child's lock),
        ``recomputed``, ``temps_after_recovery``, ``rows_read``, ``notices``.

    Raises
    ------
    RuntimeError
        If the child does not reach the half-written state in ``timeout`` s.
    """
    import numpy as np
    import pandas as pd

    from backend import cache
    from backend.groups import PermutationAction
    from backend.latents import load_or_encode

    folder = Path(folder)
    path = folder / f"latents_kill_write_{rows}.npz"
    ready = folder / "child_ready.txt"
    script = _HALF_WRITE_CHILD.format(root=str(ROOT), ready=str(ready), rows=rows, path=str(path))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.time() + timeout
    while not ready.exists():
        if child.poll() is not None:
            raise RuntimeError(f"the writer exited before its write: {child.communicate()[1][-2000:]}")
        if time.time() > deadline:
            child.kill()
            raise RuntimeError(f"the writer did not reach its write in {timeout} s")
        time.sleep(0.05)
    time.sleep(0.1)
    temps = cache.temporaries(path)
    out = {"archive_bytes": int(ready.read_text() or 0),
           "temp_bytes_at_kill": [t.stat().st_size for t in temps]}
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=30)
    out["child_exit"] = child.returncode
    out["final_existed_after_kill"] = path.exists()
    out["temps_after_kill"] = [t.name for t in cache.temporaries(path)]
    ready.unlink()

    calls = []
    codes = expected_codes(rows)
    cache.take_notices()
    t0 = time.perf_counter()
    waited = []
    enc = load_or_encode(path, pd.DataFrame({"i": np.arange(rows)}), PermutationAction(9, 1),
                         lambda: calls.append(1) or codes, 0, on_wait=waited.append)
    out["lock_wait_s"] = round(time.perf_counter() - t0, 3)
    out["waited_message"] = waited
    out["recomputed"] = len(calls)
    out["temps_after_recovery"] = [t.name for t in cache.temporaries(path)]
    with np.load(path, allow_pickle=False) as z:
        out["rows_read"] = int(len(z["stored"]))
        same = all(np.array_equal(z[k], codes[k]) for k in codes)
    out["notices"] = [n.message() for n in cache.take_notices()]
    problems = []
    if out["child_exit"] != -signal.SIGKILL:
        problems.append(f"the writer exited with {out['child_exit']}, not by SIGKILL")
    if not (len(out["temp_bytes_at_kill"]) == 1 and 0 < out["temp_bytes_at_kill"][0] < out["archive_bytes"]):
        problems.append(f"expected one half-written temporary file at the kill, saw {out['temp_bytes_at_kill']}")
    if out["final_existed_after_kill"]:
        problems.append("a codes file existed after the writer was killed mid-write")
    if len(out["temps_after_kill"]) != 1:
        problems.append(f"expected the leftover temporary file after the kill, saw {out['temps_after_kill']}")
    if out["recomputed"] != 1:
        problems.append(f"the next caller computed {out['recomputed']} times, expected 1")
    if out["temps_after_recovery"]:
        problems.append(f"leftover temporary files not removed: {out['temps_after_recovery']}")
    if out["rows_read"] != rows or not same or not np.array_equal(enc.stored.values, codes["stored"]):
        problems.append("the rewritten codes file is not the computed codes")
    if out["waited_message"]:
        problems.append(f"the next caller waited for a lock held by a dead process: {out['waited_message']}")
    out["problems"], out["ok"] = problems, not problems
    return out


# --------------------------------------------------------------------------- server scenarios
def _browser():
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    return pw, browser


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)


def _alerts(page) -> list[str]:
    loc = page.locator('[data-testid="stAlert"]')
    return [loc.nth(i).inner_text() for i in range(loc.count())]


def _open_and_check(page, url: str, path: str, problems: list[str], settle_s: float = 600.0) -> list[str]:
    """Open ``url/path``, wait for the run, record an exception box or a failed navigation."""
    from tests.e2e import driver as d

    try:
        page.goto(f"{url}/{path}", timeout=120_000)
        page.wait_for_selector('[data-testid="stApp"]', timeout=120_000)
        time.sleep(0.5)
        d.wait_idle(page, timeout=settle_s)
    except Exception as exc:  # a failed navigation or a page that never settles
        problems.append(f"{path}: {type(exc).__name__}: {str(exc)[:300]}")
        return []
    boxes = page.locator('[data-testid="stException"]')
    if boxes.count():
        problems.append(f"{path}: exception box: {boxes.first.inner_text()[:500]}")
    return _alerts(page)


def kill_encode(work: Path, subset: int = QM9_SUBSET, start_timeout: float = 600.0) -> dict:
    """The ``kill-encode`` scenario (see the module docstring) in the empty folder ``work``.

    Parameters
    ----------
    work : Path
        Scenario folder: ``cache/``, server logs.
    subset : int
        ``ELX_QM9_SUBSET`` of the server (molecules featurized and encoded).
    start_timeout : float
        Seconds to wait for the encode to start after the page was opened, s.

    Returns
    -------
    dict
        ``ok``, ``problems`` and the observations (files at the kill, times, alerts).
    """
    import numpy as np

    from backend import cache
    from tests.e2e.conftest import start_app

    work = Path(work)
    folder = work / "cache"
    folder.mkdir(parents=True, exist_ok=True)
    env = {"ELX_QM9_SUBSET": str(subset)}
    out: dict = {"subset": subset}
    problems: list[str] = []
    pw, browser = _browser()
    try:
        proc, url = start_app(folder, work / "server1.log", env)
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        t0 = time.time()
        page.goto(f"{url}/latent_maps", timeout=120_000)
        lock = None
        while time.time() - t0 < start_timeout and lock is None:
            locks = [p for p in folder.glob("latents_graph_vae_qm9_*.npz.lock")
                     if not p.with_name(p.name[: -len(cache.LOCK_SUFFIX)]).exists()]
            lock = locks[0] if locks else None
            time.sleep(0.05)
        if lock is None:
            _stop(proc)
            raise RuntimeError(f"the encode did not start in {start_timeout} s")
        codes = lock.with_name(lock.name[: -len(cache.LOCK_SUFFIX)])
        time.sleep(0.5)
        out["encode_started_after_s"] = round(time.time() - t0 - 0.5, 1)
        out["codes_file_before_kill"] = codes.exists()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        out["server_exit"] = proc.returncode
        out["files_after_kill"] = sorted(p.name for p in folder.iterdir())
        out["codes_file_after_kill"] = codes.exists()
        out["temps_after_kill"] = [t.name for t in cache.temporaries(codes)]
        if codes.exists():  # only acceptable if complete (the kill came after the rename)
            problems.append("the codes file existed at the kill: the encode was not interrupted")
        ctx.close()

        proc, url = start_app(folder, work / "server2.log", env)
        try:
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = ctx.new_page()
            t1 = time.time()
            alerts = _open_and_check(page, url, "latent_maps", problems)
            out["restart_first_map_s"] = round(time.time() - t1, 1)
            out["alerts"] = alerts
            n_charts = page.locator('[data-testid="stPlotlyChart"], [data-testid="stCustomComponentV1"]').count()
            out["charts"] = n_charts
            if n_charts < 2:
                problems.append(f"after the restart Latent maps drew {n_charts} charts, expected 2 or more")
            if any("unreadable" in a for a in alerts):
                problems.append(f"a half-written file was found after the restart: {alerts}")
            ctx.close()
        finally:
            _stop(proc)
        log = (work / "server2.log").read_text()
        if "Traceback" in log:
            problems.append("the restarted server logged a traceback: " + log[log.index("Traceback"):][:800])
        if not codes.exists():
            problems.append("no codes file after the restart")
        else:
            with np.load(codes, allow_pickle=False) as z:
                out["rows_read"] = {k: int(len(z[k])) for k in z.files}
            if set(out["rows_read"].values()) != {subset}:
                problems.append(f"the codes file has rows {out['rows_read']}, expected {subset}")
        out["temps_after_restart"] = [t.name for t in cache.temporaries(codes)]
        out["quarantined"] = sorted(p.name for p in folder.glob("*" + cache.CORRUPT_MARKER + "*"))
        if out["temps_after_restart"] or out["quarantined"]:
            problems.append(f"left over: {out['temps_after_restart'] + out['quarantined']}")
    finally:
        browser.close()
        pw.stop()
    out["problems"], out["ok"] = problems, not problems
    return out


def full_disk(work: Path, subset: int = QM9_SUBSET) -> dict:
    """The ``full-disk`` scenario (see the module docstring) under ``work``.

    Parameters
    ----------
    work : Path
        Scenario folder: ``cache/`` becomes the full tmpfs; server log.
    subset : int
        ``ELX_QM9_SUBSET`` of the server.

    Returns
    -------
    dict
        ``ok``, ``problems``, and ``alerts`` (the warnings shown), ``filled_bytes``,
        ``free_bytes_at_start``, per-page checks.

    Raises
    ------
    MountNotPermitted
        If no tmpfs can be mounted here.
    """
    from tests.e2e import driver as d
    from tests.e2e.conftest import start_app

    work = Path(work)
    folder = work / "cache"
    out: dict = {"subset": subset, "tmpfs": "1m"}
    problems: list[str] = []
    with mounted_tmpfs(folder, "1m"):
        out["filled_bytes"] = fill(folder)
        out["free_bytes_at_start"] = free_bytes(folder)
        pw, browser = _browser()
        proc, url = start_app(folder, work / "server.log", {"ELX_QM9_SUBSET": str(subset)})
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            t0 = time.time()
            alerts = _open_and_check(page, url, "latent_maps", problems)
            out["first_map_s"] = round(time.time() - t0, 1)
            out["alerts"] = alerts
            out["charts"] = page.locator('[data-testid="stPlotlyChart"], [data-testid="stCustomComponentV1"]').count()
            if out["charts"] < 2:
                problems.append(f"Latent maps drew {out['charts']} charts on a full disk, expected 2 or more")
            named = [a for a in alerts if str(folder) in a and "ELX_CACHE_DIR" in a]
            if not named:
                problems.append(f"no warning names the cache folder {folder} and what to do; alerts: {alerts}")
            out["warnings_naming_the_folder"] = len(named)
            for title in ("Interpolation", "Orbits", "Latent maps"):
                try:
                    d.goto_nav(page, title)
                except Exception as exc:
                    problems.append(f"{title}: {type(exc).__name__}: {str(exc)[:300]}")
                    continue
                if page.locator('[data-testid="stException"]').count():
                    problems.append(f"{title}: exception box on a full disk")
                errors = [a for a in _alerts(page) if "Could not load" in a]
                if errors:
                    problems.append(f"{title}: {errors[0][:300]}")
            out["files_in_cache"] = sorted(p.name for p in folder.iterdir())
        finally:
            _stop(proc)
            browser.close()
            pw.stop()
    log = (work / "server.log").read_text()
    if "Traceback" in log:
        problems.append("the server logged a traceback: " + log[log.index("Traceback"):][:800])
    out["server_log_warnings"] = [ln for ln in log.splitlines() if "Could not save" in ln][:4]
    out["problems"], out["ok"] = problems, not problems
    return out


# --------------------------------------------------------------------------- command line
SCENARIOS = ("kill-encode", "kill-write", "full-disk")


def main(argv=None) -> int:
    """Run the scenarios, print a table, write ``--out`` JSON; exit 1 if any failed."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    ap.add_argument("--qm9-subset", type=int, default=QM9_SUBSET)
    ap.add_argument("--rows", type=int, default=130_831, help="rows of the kill-write codes file")
    ap.add_argument("--out", type=Path, help="write the results as JSON")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="elx_faults_") as tmp:
        for name in args.only:
            work = Path(tmp) / name
            work.mkdir()
            t0 = time.time()
            try:
                if name == "kill-write":
                    res = kill_mid_write(work, rows=args.rows)
                elif name == "kill-encode":
                    res = kill_encode(work, subset=args.qm9_subset)
                else:
                    res = full_disk(work, subset=args.qm9_subset)
            except MountNotPermitted as exc:
                res = {"ok": None, "problems": [], "not_run": str(exc)}
            except Exception as exc:
                res = {"ok": False, "problems": [f"{type(exc).__name__}: {exc}"]}
            res["seconds"] = round(time.time() - t0, 1)
            results[name] = res
            print(f"{name}: {json.dumps(res, default=str)}", flush=True)
    print("\n| scenario | result | time | details |\n|---|---|---|---|")
    for name, res in results.items():
        verdict = "not run" if res["ok"] is None else ("ok" if res["ok"] else "FAILED")
        detail = res.get("not_run") or "; ".join(res["problems"]) or _short(name, res)
        print(f"| {name} | {verdict} | {res['seconds']} s | {detail} |")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=str))
    return 0 if all(r["ok"] is not False for r in results.values()) else 1


def _short(name: str, res: dict) -> str:
    if name == "kill-write":
        return (f"killed with {res['temp_bytes_at_kill']} of {res['archive_bytes']} bytes written; no codes file; "
                f"next caller waited {res['lock_wait_s']} s, encoded once, temp removed, {res['rows_read']} rows")
    if name == "kill-encode":
        return (f"SIGKILL {res['encode_started_after_s']} s after opening (encode running, no codes file); "
                f"restart: maps in {res['restart_first_map_s']} s, {res['rows_read']} rows, nothing left over")
    return (f"{res['filled_bytes']} bytes filled; maps in {res['first_map_s']} s with "
            f"{res['warnings_naming_the_folder']} warning(s) naming the folder; no exception on 4 page visits")


if __name__ == "__main__":
    sys.exit(main())
