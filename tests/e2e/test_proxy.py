"""The app behind nginx with ``deploy/nginx.conf`` (issue #14): basic auth, the WebSocket
upgrade, ``/_stcore/metrics`` blocked, a Host allow-list.

nginx runs as the current user with its configuration, pid file, logs and temporary
folders in a temporary directory, listening on a free loopback port in front of the
session's app (``app_url``). ``deploy/nginx.conf`` is used as shipped, with only its
placeholders (port, host name, upstream, password file) replaced. Without nginx
(``apt-get install nginx apache2-utils``) the tests are skipped, unless
``ELX_REQUIRE_BROWSER=1``. The last test needs no nginx: Streamlit's own Host allow-list for
its WebSocket, set through ``STREAMLIT_SERVER_ALLOWED_HOSTS``.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import pwd
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.e2e import driver as d
from tests.e2e.conftest import ROOT, free_port, start_app

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
USER, PASSWORD = "lab", "orbit-test-pw"
#: placeholder in deploy/nginx.conf -> what the test puts there (filled in by the fixture)
PLACEHOLDERS = ("listen 80", "server_name explorer.example.org;", "127.0.0.1:8501",
                "/etc/nginx/latent-explorer.htpasswd")


def _nginx_or_skip() -> None:
    if not Path(NGINX).exists():
        msg = "nginx is not installed (apt-get install -y nginx apache2-utils)"
        if os.environ.get("ELX_REQUIRE_BROWSER") == "1":
            pytest.fail(msg + " and ELX_REQUIRE_BROWSER=1")
        pytest.skip(msg)


def _password_file(path: Path) -> None:
    htpasswd = shutil.which("htpasswd")
    if htpasswd:  # bcrypt, as the README tells admins to do
        subprocess.run([htpasswd, "-B", "-b", "-c", str(path), USER, PASSWORD], check=True,
                       capture_output=True)
    else:  # nginx also reads the (weak) {SHA} scheme; enough for a test
        digest = base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()
        path.write_text(f"{USER}:{{SHA}}{digest}\n")


def _site_config(port: int, app_port: int, password_file: Path) -> str:
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    for placeholder in PLACEHOLDERS:
        assert placeholder in site, f"deploy/nginx.conf no longer has {placeholder!r}"
    return (site.replace("listen 80", f"listen 127.0.0.1:{port}")
            .replace("server_name explorer.example.org;", "server_name 127.0.0.1 localhost;")
            .replace("127.0.0.1:8501", f"127.0.0.1:{app_port}")
            .replace("/etc/nginx/latent-explorer.htpasswd", str(password_file)))


def _websocket_status(url: str, host: str) -> int:
    """HTTP status of a WebSocket handshake on ``/_stcore/stream`` with this Host (101 = accepted)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", "/_stcore/stream", headers={
            "Host": host, "Origin": f"http://{host}", "Upgrade": "websocket", "Connection": "Upgrade",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(), "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Protocol": "streamlit"})
        return conn.getresponse().status
    finally:
        conn.close()


def _get(url: str, auth: bool = True, host: str | None = None) -> tuple[int, bytes]:
    """Status and body of a GET (HTTP errors are statuses, not exceptions)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    if host:
        headers["Host"] = host
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def proxy_url(app_url, tmp_path_factory):
    """URL of nginx (``deploy/nginx.conf``) in front of the session's app."""
    _nginx_or_skip()
    work = tmp_path_factory.mktemp("nginx")
    for folder in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / folder).mkdir()
    _password_file(work / "htpasswd")
    port = free_port()
    (work / "site.conf").write_text(_site_config(port, urllib.parse.urlsplit(app_url).port, work / "htpasswd"))
    # as root, nginx would hand its workers to "nobody", who cannot read the temporary folder
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    (work / "nginx.conf").write_text(f"""
{user}
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    include {work}/site.conf;
}}
""")
    args = [NGINX, "-p", str(work), "-c", str(work / "nginx.conf"), "-e", str(work / "error.log")]
    check = subprocess.run(args + ["-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited: {proc.stderr.read()} {(work / 'error.log').read_text()}")
        try:
            _get(url + "/_stcore/health")
            break
        except OSError:
            if time.time() > deadline:
                proc.kill()
                raise RuntimeError("nginx did not answer in 30 s")
            time.sleep(0.2)
    yield url
    proc.terminate()  # SIGTERM: fast shutdown of the master and its worker
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_without_a_password_the_proxy_refuses(proxy_url):
    status, _ = _get(proxy_url + "/", auth=False)
    assert status == 401
    status, _ = _get(proxy_url + "/_stcore/health", auth=True)
    assert status == 200


def test_metrics_are_open_on_the_app_but_refused_through_the_proxy(app_url, proxy_url):
    assert _get(app_url + "/_stcore/metrics", auth=False)[0] == 200  # what the admin found
    for path in ("/_stcore/metrics", "/_stcore/metrics?families=session_state", "//_stcore/metrics",
                 "/_stcore/metrics/"):
        status, body = _get(proxy_url + path)
        assert status == 403, (path, status)
        assert b"session" not in body


def test_an_unknown_host_header_gets_no_answer(proxy_url):
    port = urllib.parse.urlsplit(proxy_url).port
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        _get(proxy_url + "/", host=f"attacker.example:{port}")
    assert _get(proxy_url + "/", host=f"localhost:{port}")[0] == 200


def test_latent_maps_page_through_the_proxy(proxy_url, browser, artifacts):
    context = browser.new_context(viewport={"width": 1500, "height": 1100},
                                  http_credentials={"username": USER, "password": PASSWORD, "send": "always"})
    page = context.new_page()
    watch = d.PageWatch(page)
    try:
        d.open_page(page, proxy_url, "latent_maps")
        # the raw and the invariant map, drawn by the map component (its page, script and
        # Plotly are served through the proxy too) with their points
        page.wait_for_function(f"() => {d.CHARTS_JS}.length >= 2", timeout=120_000)
        d.wait_idle(page)
        assert d.chart_count(page) >= 2
        assert min(d.points_per_chart(page)[:2]) > 0
        d.assert_no_exception(page)
        assert page.locator('[data-testid="stAlertContentError"]').count() == 0
        assert watch.ws_bytes > 0  # the page arrived over the proxied WebSocket
        page.screenshot(path=str(artifacts / "latent_maps_through_proxy.png"), full_page=True)
    finally:
        problems = watch.problems()
        context.close()
    assert not problems, problems


def test_streamlit_host_allow_list_from_the_environment(tmp_path):
    """Without a proxy, ``STREAMLIT_SERVER_ALLOWED_HOSTS`` (read by Streamlit itself) refuses the
    WebSocket of an unknown Host; unset, any Host is accepted (what the admin measured)."""
    proc, url = start_app(tmp_path / "cache", tmp_path / "streamlit.log",
                          {"STREAMLIT_SERVER_ALLOWED_HOSTS": "explorer.example.org localhost"})
    port = urllib.parse.urlsplit(url).port
    try:
        assert _websocket_status(url, f"localhost:{port}") == 101
        assert _websocket_status(url, f"explorer.example.org:{port}") == 101
        assert _websocket_status(url, f"attacker.example:{port}") == 403
    finally:
        proc.terminate()
        proc.wait(10)
