"""Deployment pieces that can run without a Docker daemon: lint the Dockerfile, run what it runs
(the Docker steps, as subprocesses, are slow tests)."""

import json
import os
import re
import shutil
import stat
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


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _instructions(text: str) -> list[str]:
    """Dockerfile instructions, continuation lines joined, comments dropped."""
    out, cur = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        cur += line.rstrip()[:-1] + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            out.append(cur.strip())
            cur = ""
    return out


def _healthcheck_shell(text: str) -> str:
    """The ``sh -c`` command of a ``["CMD", "sh", "-c", ...]`` / ``CMD ["sh", "-c", ...]`` health check."""
    m = re.search(r'\[(?:"CMD", )?"sh", "-c", ("(?:[^"\\]|\\.)*")\]', text)
    assert m, "health check is not an exec-form sh -c command"
    return json.loads(m.group(1))


def test_dockerfile_layer_order_keeps_encode_cached():
    """requirements -> backend + models + weights -> encode -> app files: editing a page, a
    results table or the README must not invalidate the encode layer (no ``COPY . .``)."""
    ins = _instructions(_dockerfile())
    final = ins[max(i for i, x in enumerate(ins) if x.startswith("FROM "))]
    body = ins[ins.index(final):]
    copies = [x for x in body if x.startswith("COPY ")]
    assert not any(re.fullmatch(r"COPY (--\S+ )*\.\s+\.\/?", c) for c in copies), copies
    encode = next(i for i, x in enumerate(body) if "python -m backend encode qm9" in x)
    before = " ".join(x for x in body[:encode] if x.startswith("COPY "))
    after = " ".join(x for x in body[encode:] if x.startswith("COPY "))
    # everything encode reads is in place before it ...
    assert "--from=deps /opt/venv" in before
    assert "backend/" in before and "models/weights/" in before
    for module in sorted((ROOT / "models").glob("*.py")):
        assert f"models/{module.name}" in before, f"models/{module.name} is not copied before the encode step"
    # ... and the app files come after it
    for app_file in ("app.py", "app_pages/", ".streamlit/", "models/results/"):
        assert app_file in after and app_file not in before, app_file
    assert "README" not in before
    # requirements are installed in their own stage, before any source file is copied
    deps = ins.index(next(x for x in ins if x.startswith("FROM base AS deps")))
    assert ins.index(next(x for x in ins if "requirements.txt" in x and x.startswith("COPY"))) > deps


def test_dockerfile_base_image_and_torch_source_are_build_args():
    text = _dockerfile()
    m = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.M)
    assert m and re.fullmatch(r"python:3\.11\.\d+-slim(-bookworm)?(@sha256:[0-9a-f]{64})?", m.group(1)), m
    assert re.search(r"^FROM \$\{BASE_IMAGE\} AS base$", text, re.M)
    assert "@sha256:" in text  # how to pin by digest is written down next to the default
    assert re.search(r"^ARG TORCH_SOURCE=https://download\.pytorch\.org/whl/cpu$", text, re.M)


def _fake_bin(tmp_path):
    """``pip``, ``python`` and ``python3`` that log their arguments instead of running."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("pip", "python", "python3"):
        exe = bin_dir / name
        exe.write_text(f'#!/bin/sh\necho "{name} $*" >> "{tmp_path}/calls"\n')
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return bin_dir


@pytest.mark.parametrize("source, expect", [
    ("https://download.pytorch.org/whl/cpu",
     ["pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu",
      "pip install -r /wheels/requirements.txt"]),
    ("pypi", ["pip install -r /wheels/requirements.txt"]),
    ("wheelhouse", ["pip install --no-index --find-links /wheels torch==2.13.0",
                    "pip install --no-index --find-links /wheels -r /wheels/requirements.txt"]),
    ("nonsense", None),
])
def test_dockerfile_torch_source_install_commands(tmp_path, source, expect):
    """Run the deps stage's RUN line with logging stand-ins for pip: each TORCH_SOURCE installs
    from where it says (the wheelhouse with --no-index: no network at all)."""
    run = next(x for x in _instructions(_dockerfile()) if x.startswith("RUN python3 -m venv /opt/venv"))
    bin_dir = _fake_bin(tmp_path)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "TORCH_SOURCE": source}
    res = subprocess.run(["sh", "-c", run[len("RUN "):]], env=env, capture_output=True, text=True)
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
    if expect is None:
        assert res.returncode == 2 and "TORCH_SOURCE must be" in res.stderr
        return
    assert res.returncode == 0, res.stderr
    assert [c for c in calls if c.startswith("pip ")] == expect


def test_healthcheck_checks_weights_with_enough_time():
    """Docker's and compose's health checks: the health URL and ``python -m backend check``
    (~5 s, it loads torch), with a timeout well above that."""
    hc = next(x for x in _instructions(_dockerfile()) if x.startswith("HEALTHCHECK "))
    assert int(re.search(r"--timeout=(\d+)s", hc).group(1)) >= 20
    cmd = _healthcheck_shell(hc)
    assert "/_stcore/health" in cmd and "python -m backend check" in cmd
    compose = (ROOT / "compose.yaml").read_text()
    assert _healthcheck_shell(compose) == cmd
    assert int(re.search(r"^\s+timeout: (\d+)s$", compose, re.M).group(1)) >= 20


def test_compose_limits_memory_and_keeps_cache_in_a_volume():
    compose = (ROOT / "compose.yaml").read_text()
    for var in ("ELX_READ_ONLY", "STREAMLIT_SERVER_ALLOWED_HOSTS", "ELX_CACHE_DIR"):
        assert re.search(rf"^\s+{var}: \S", compose, re.M), var
    assert re.search(r"^\s+mem_limit: \d+[mg]\b", compose, re.M)
    assert re.search(r"^\s+- explorer-cache:/app/\.cache$", compose, re.M)
    assert re.search(r"^volumes:\n  explorer-cache:", compose, re.M)
    assert "127.0.0.1:8501:8501" in compose


def test_dockerignore_keeps_artefacts_out_and_sources_in():
    import fnmatch

    patterns = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines()
                if l.strip() and not l.startswith("#")]

    def ignored(path):
        return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p.replace("**/", "")) or
                   path.startswith(p.rstrip("/") + "/") for p in patterns)

    for out in (".cache/x.npz", ".venv/bin/python", "tests/test_deploy.py", ".git/HEAD",
                ".pytest_cache/v", ".hypothesis/x", "backend/__pycache__/x.pyc", "models/checkpoints/x.ckpt"):
        assert ignored(out), out
    for keep in ("requirements.txt", "backend/cli.py", "models/graph_vae.py", "models/weights/x.pt",
                 "models/results/x.csv", "app.py", "app_pages/home.py", ".streamlit/config.toml",
                 "wheels/torch.whl"):
        assert not ignored(keep), keep


def test_container_smoke_script_parses():
    script = ROOT / "scripts" / "container_smoke.sh"
    assert os.access(script, os.X_OK)
    res = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "--format docker" in script.read_text()  # podman's OCI format would drop HEALTHCHECK


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


def _run_healthcheck(port, weights_dir):
    """The Dockerfile's HEALTHCHECK command, pointed at ``port`` and ``weights_dir``."""
    hc = next(x for x in _instructions(_dockerfile()) if x.startswith("HEALTHCHECK "))
    cmd = _healthcheck_shell(hc).replace("localhost:8501", f"127.0.0.1:{port}")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ELX_WEIGHTS_DIR": str(weights_dir)}
    return subprocess.run(["sh", "-c", cmd], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=int(re.search(r"--timeout=(\d+)s", hc).group(1)) * 2)


@pytest.mark.slow
def test_dockerfile_cmd_serves_health(tiny_registry, tiny_all_weights, tmp_path):
    """The image's CMD (streamlit run app.py, headless) starts and answers its health check; the
    image's HEALTHCHECK command passes on intact weights and fails on a missing sidecar."""
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
                    break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("streamlit did not answer its health check within 90 s")
        res = _run_healthcheck(port, tiny_all_weights)
        assert res.returncode == 0, res.stdout + res.stderr
        broken = tmp_path / "weights"
        shutil.copytree(tiny_all_weights, broken)
        next(broken.glob("*.json")).unlink()
        assert _run_healthcheck(port, broken).returncode != 0
    finally:
        proc.terminate()
        proc.wait(timeout=20)
