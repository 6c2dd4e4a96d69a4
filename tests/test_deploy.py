"""Deployment pieces that can run without a Docker daemon: lint the Dockerfile, run what it runs
(the Docker steps, as subprocesses, are slow tests)."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT


def test_dockerfile_lints_clean():
    exe = shutil.which("hadolint") or os.path.join(os.path.dirname(sys.executable), "hadolint")
    res = subprocess.run([exe, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip() == "", res.stdout + res.stderr


def test_requirements_pin_everything_and_torch():
    lines = [l.strip() for l in (ROOT / "requirements.txt").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[\w.]+", l) for l in lines), lines
    assert "torch==2.13.0" in lines
    assert "torch==2.13.0" in (ROOT / "Dockerfile").read_text()


@pytest.mark.slow
def test_dockerfile_build_step_encode_runs(tiny_all_weights):
    """The image runs ``python -m backend encode qm9``, ``... rotmnist`` and ``... augcnn`` at build
    time (here on the tiny models and small data)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ELX_WEIGHTS_DIR": str(tiny_all_weights),
           "ELX_QM9_SUBSET": "600", "ELX_MNIST_LIMIT": "300"}
    docker = (ROOT / "Dockerfile").read_text()
    for dataset, expect in (("qm9", "encoded 600 molecules"), ("rotmnist", "encoded 300 images"),
                            ("augcnn", "encoded 300 images")):
        assert f"python -m backend encode {dataset}" in docker
        res = subprocess.run([sys.executable, "-m", "backend", "encode", dataset], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
        assert expect in res.stdout


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_dockerfile_cmd_serves_health(tiny_registry):
    """The image's CMD (streamlit run app.py, headless) starts and answers its health check."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address=127.0.0.1",
         f"--server.port={port}", "--server.headless=true", "--browser.gatherUsageStats=false"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    assert r.read().decode().strip() == "ok"
                    return
            except OSError:
                time.sleep(1)
        pytest.fail("streamlit did not answer its health check within 90 s")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
