"""Real-browser fixtures: the app served by ``streamlit run`` on 127.0.0.1, driven by Playwright
in Debian's Chromium (Playwright cannot download its own browser here).

The server runs the shipped weights on small data (``ELX_QM9_SUBSET``, ``ELX_MNIST_LIMIT``)
with its own empty cache folder, so the first visit also exercises the first-start path.
Without ``/usr/bin/chromium`` (or ``$ELX_CHROMIUM``) the tests are skipped, unless
``ELX_REQUIRE_BROWSER=1`` (set by ``.ci/run``), which turns the skip into a failure.
Screenshots go to ``$ELX_E2E_ARTIFACTS`` (default: pytest's temporary folder), never to git.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("ELX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
#: where a page may send requests: the app on loopback and in-page URLs
LOCAL_URLS = ("http://127.0.0.1", "ws://127.0.0.1", "http://localhost", "ws://localhost", "data:", "blob:",
              "about:")
QM9_SUBSET = 1500
MNIST_LIMIT = 400


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


def _browser_or_skip():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        msg = f"no Chromium at {CHROMIUM} (apt install chromium)"
        if os.environ.get("ELX_REQUIRE_BROWSER") == "1":
            pytest.fail(msg + " and ELX_REQUIRE_BROWSER=1")
        pytest.skip(msg)
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        if os.environ.get("ELX_REQUIRE_BROWSER") == "1":
            pytest.fail("playwright is not installed and ELX_REQUIRE_BROWSER=1")
        pytest.skip("playwright is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(cache_dir: Path, log_path: Path, extra_env: dict | None = None, app_root: Path = ROOT,
              timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """Start ``streamlit run app.py`` in ``app_root`` on a free loopback port; wait (up to ``timeout``
    seconds) for its health check. Small data by default (``extra_env`` overrides, e.g.
    ``ELX_QM9_SUBSET=""`` for all of QM9); raises RuntimeError if the server exits or never answers."""
    port = free_port()
    env = dict(os.environ, ELX_CACHE_DIR=str(cache_dir), ELX_QM9_SUBSET=str(QM9_SUBSET),
               ELX_MNIST_LIMIT=str(MNIST_LIMIT), OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("ELX_WEIGHTS_DIR", None)  # the shipped weights
    env.update(extra_env or {})
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port),
         "--browser.gatherUsageStats", "false"],
        cwd=app_root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early: {log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"streamlit did not answer its health check in {timeout:g} s")


@contextlib.contextmanager
def served_app(work: Path, extra_env: dict | None = None):
    """Serve the app from ``work`` (own cache folder and log) while the block runs; afterwards
    stop it and fail if its log holds a traceback."""
    proc, url = start_app(work / "cache", work / "streamlit.log", extra_env)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    log = (work / "streamlit.log").read_text()
    assert "Traceback" not in log, log[-3000:]


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """URL of the app on the shipped weights and small data, served for the whole session."""
    _browser_or_skip()
    with served_app(tmp_path_factory.mktemp("e2e_app")) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session."""
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    """Folder for screenshots (test artefacts, not committed)."""
    path = Path(os.environ.get("ELX_E2E_ARTIFACTS") or tmp_path_factory.mktemp("e2e_screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser_context(browser):
    """One browser context for the session: its HTTP cache keeps the app's lazily loaded
    JavaScript chunks, which a busy 2-core machine sometimes failed to serve in time when every
    test started from an empty cache ("Failed to fetch dynamically imported module"). Each test
    still gets its own page, hence its own Streamlit session."""
    context = browser.new_context(viewport={"width": 1500, "height": 1100}, accept_downloads=True)
    yield context
    context.close()


@pytest.fixture()
def page(browser_context, request, artifacts):
    """A new page (a new Streamlit session); fails the test on console errors, page errors,
    a Streamlit exception box or any request that leaves the machine (the app must work
    offline: fonts, icons and scripts all come from the local server), and saves a screenshot
    at the end."""
    from tests.e2e.driver import PageWatch

    pg = browser_context.new_page()
    watch = PageWatch(pg)
    external: list[str] = []
    pg.on("request", lambda r: external.append(r.url) if not r.url.startswith(LOCAL_URLS) else None)
    yield pg
    name = request.node.name.replace("/", "_").replace("[", "_").replace("]", "")
    try:
        pg.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    finally:
        problems = watch.problems()
        pg.close()
    assert not problems, problems
    assert not external, f"requests that leave the machine: {external[:5]}"
