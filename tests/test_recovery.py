"""Recovery from broken files (issue #14): each test failed before its fix.

* a sidecar that does not parse: the model is unavailable with the reason, the others work,
  ``python -m backend check`` fails;
* five kinds of corrupt cache file (empty, truncated, not a zip, wrong arrays, wrong row
  count), for latent codes and featurized QM9: moved aside, computed again, named;
* concurrent first callers (threads, and two processes) compute once; temporary names are
  unique per writer.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend import cache
from backend.groups import CyclicShiftAction
from backend.latents import load_or_encode
from tests.conftest import ROOT

M, C, N = 12, 2, 4
CORRUPT_KINDS = ("empty", "truncated", "not_a_zip", "wrong_arrays", "wrong_rows")


@pytest.fixture(autouse=True)
def _no_stale_notices():
    cache.take_notices()
    yield
    cache.take_notices()


def _codes(rows: int = M) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"stored": rng.normal(size=(rows, C, N)).astype(np.float32),
            "random": rng.normal(size=(rows, C, N)).astype(np.float32),
            "perms": rng.integers(0, N, rows)}


class Counter:
    """A ``compute`` that counts its calls (thread-safe) and can take its time."""

    def __init__(self, arrays: dict, delay: float = 0.0):
        self.arrays, self.delay, self.calls = arrays, delay, 0
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        return self.arrays


def _encode(path: Path, compute) -> object:
    return load_or_encode(path, pd.DataFrame({"i": range(M)}), CyclicShiftAction(C, N), compute, 0)


def _corrupt(path: Path, kind: str, good: dict, rows: int | None = None) -> bytes:
    """Write a corrupt file of ``kind`` at ``path`` (``good``: valid arrays); return its bytes."""
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        buf = io.BytesIO()
        np.savez(buf, **good)
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    elif kind == "not_a_zip":
        path.write_bytes(b"this is not a zip archive\n" * 20)
    elif kind == "wrong_arrays":
        np.savez(path, something_else=np.zeros(3))
    elif kind == "wrong_rows":
        short = {k: v[: (rows or len(next(iter(good.values())))) - 1] for k, v in good.items()}
        with open(path, "wb") as fh:
            np.savez(fh, **short)
    return path.read_bytes()


def _check_quarantined(path: Path, original: bytes, caplog) -> None:
    moved = sorted(path.parent.glob(path.name + cache.CORRUPT_MARKER + "*"))
    assert len(moved) == 1, list(path.parent.iterdir())
    assert moved[0].read_bytes() == original  # kept for inspection, byte for byte
    notices = cache.take_notices()
    assert len(notices) == 1 and notices[0].path == path and notices[0].moved_to == moved[0]
    assert str(path) in notices[0].message() and moved[0].name in notices[0].message()
    assert str(path) in caplog.text  # named in the server log too
    assert not list(path.parent.glob("*.tmp"))


# --------------------------------------------------------------------------- sidecars
@pytest.mark.parametrize("content", ["", "{\"model_config\": {", "[1, 2]", "{\"seed\": 0}", "\udcff"])
def test_a_sidecar_that_does_not_parse_makes_only_that_model_unavailable(tiny_weights, tmp_path, monkeypatch,
                                                                         content):
    from backend import registry

    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights[0], folder)
    # a second model whose sidecar is broken
    (folder / "rot_mnist_c8.pt").write_bytes(b"not really weights")
    (folder / "rot_mnist_c8.json").write_text(content, errors="surrogateescape")
    monkeypatch.setenv("ELX_WEIGHTS_DIR", str(folder))
    for entry in registry.MODELS.values():
        entry.reset()
    try:
        assert registry.available() == ["graph_vae_qm9"]
        reasons = registry.unavailable()
        assert set(reasons) == {"rot_mnist_c8", "rot_mnist_cnn_aug"}
        assert str(folder / "rot_mnist_c8.json") in reasons["rot_mnist_c8"]
        assert "retrain" in reasons["rot_mnist_c8"] or "restore" in reasons["rot_mnist_c8"]
        with pytest.raises(registry.SidecarError, match="rot_mnist_c8.json"):
            registry.get("rot_mnist_c8").sidecar
        # the other model is untouched
        assert registry.get("graph_vae_qm9").sidecar["model_config"]
        assert registry.get("graph_vae_qm9").model() is not None
    finally:
        for entry in registry.MODELS.values():
            entry.reset()


def test_check_command_fails_on_a_corrupt_sidecar_or_weights(tiny_weights, tmp_path, monkeypatch):
    from backend import registry
    from backend.__main__ import check_models

    folder = tmp_path / "weights"
    shutil.copytree(tiny_weights[0], folder)
    monkeypatch.setenv("ELX_WEIGHTS_DIR", str(folder))
    out = io.StringIO()
    assert check_models(["graph_vae_qm9"], out) == 0, out.getvalue()
    assert out.getvalue().startswith("ok graph_vae_qm9")

    (folder / "graph_vae_qm9.json").write_text("")
    out = io.StringIO()
    assert check_models(["graph_vae_qm9"], out) == 1
    assert "FAIL graph_vae_qm9" in out.getvalue() and "graph_vae_qm9.json is empty" in out.getvalue()

    shutil.copy2(tiny_weights[0] / "graph_vae_qm9.json", folder / "graph_vae_qm9.json")
    weights = folder / "graph_vae_qm9.pt"
    weights.write_bytes(weights.read_bytes()[:100])
    out = io.StringIO()
    assert check_models(["graph_vae_qm9"], out) == 1
    assert "SHA-256" in out.getvalue()

    out = io.StringIO()  # every registered model by default: the two others are missing here
    assert check_models(None, out) == 1
    assert out.getvalue().count("FAIL") == 3
    registry.get("graph_vae_qm9").reset()


def test_check_command_exit_status_from_the_shell(tmp_path):
    env = dict(os.environ, ELX_WEIGHTS_DIR=str(tmp_path))
    run = subprocess.run([sys.executable, "-m", "backend", "check", "--model", "graph_vae_qm9"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "FAIL graph_vae_qm9: no weights" in run.stdout, run.stdout + run.stderr


# --------------------------------------------------------------------------- corrupt latent caches
@pytest.mark.parametrize("kind", CORRUPT_KINDS)
def test_a_corrupt_latent_cache_is_moved_aside_encoded_again_and_named(tmp_path, kind, caplog):
    path = tmp_path / "latents_model_abc_seed0_12_66.npz"
    good = _codes()
    original = _corrupt(path, kind, good)
    compute = Counter(good)
    with caplog.at_level("WARNING"):
        enc = _encode(path, compute)
    assert compute.calls == 1
    np.testing.assert_array_equal(enc.stored.values, good["stored"])
    _check_quarantined(path, original, caplog)
    # the rebuilt file is used from now on
    again = Counter(good)
    _encode(path, again)
    assert again.calls == 0 and not cache.take_notices()


def test_a_cache_with_the_wrong_code_shape_is_encoded_again(tmp_path):
    path = tmp_path / "latents.npz"
    good = _codes()
    np.savez(path, **{**good, "stored": good["stored"][:, :1]})
    compute = Counter(good)
    _encode(path, compute)
    assert compute.calls == 1 and "shape" in cache.take_notices()[0].reason


# --------------------------------------------------------------------------- corrupt QM9 feature caches
@pytest.mark.parametrize("kind", CORRUPT_KINDS)
def test_a_corrupt_qm9_feature_cache_is_moved_aside_featurized_again_and_named(tmp_path, monkeypatch, kind,
                                                                                caplog):
    from backend.data import qm9

    monkeypatch.setenv("ELX_CACHE_DIR", str(tmp_path))
    first = qm9.load_qm9_graphs(progress=False, subset=40)
    (path,) = tmp_path.glob("qm9_graphs_*_subset40.npz")
    with np.load(path) as z:
        good = {k: z[k] for k in z.files}
    original = _corrupt(path, kind, good, rows=40)
    calls = []
    real = qm9.featurize_table
    monkeypatch.setattr(qm9, "featurize_table", lambda *a, **k: calls.append(1) or real(*a, **k))
    with caplog.at_level("WARNING"):
        again = qm9.load_qm9_graphs(progress=False, subset=40)
    assert len(calls) == 1
    np.testing.assert_array_equal(again.types, first.types)
    pd.testing.assert_frame_equal(again.table, first.table)
    _check_quarantined(path, original, caplog)
    qm9.load_qm9_graphs(progress=False, subset=40)
    assert len(calls) == 1  # read from the rebuilt file


# --------------------------------------------------------------------------- concurrency
def test_concurrent_first_callers_in_threads_encode_once(tmp_path):
    path = tmp_path / "latents.npz"
    compute = Counter(_codes(), delay=0.5)
    results, errors = [], []

    def visit():
        try:
            results.append(_encode(path, compute))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=visit) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert compute.calls == 1 and len(results) == 5
    for r in results:
        np.testing.assert_array_equal(r.random.values, results[0].random.values)


def test_concurrent_callers_that_find_a_corrupt_file_move_it_once_and_encode_once(tmp_path, caplog):
    path = tmp_path / "latents.npz"
    original = _corrupt(path, "truncated", _codes())
    compute = Counter(_codes(), delay=0.5)
    with caplog.at_level("WARNING"):
        threads = [threading.Thread(target=_encode, args=(path, compute)) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert compute.calls == 1
    _check_quarantined(path, original, caplog)  # exactly one file moved aside, one notice


def test_a_lone_reader_quarantines_too(tmp_path):
    path = tmp_path / "latents.npz"
    _corrupt(path, "not_a_zip", _codes())
    assert cache.load_npz_or_quarantine(path, ("stored",)) is None
    assert not path.exists() and len(cache.take_notices()) == 1
    assert cache.load_npz_or_quarantine(path, ("stored",)) is None and not cache.take_notices()


def test_waiting_callers_are_told_why_they_wait(tmp_path):
    path = tmp_path / "latents.npz"
    told = []
    with cache.locked(path):
        t = threading.Thread(target=lambda: load_or_encode(path, pd.DataFrame({"i": range(M)}),
                                                           CyclicShiftAction(C, N), Counter(_codes()), 0,
                                                           on_wait=told.append))
        t.start()
        time.sleep(0.5)
        assert t.is_alive()  # blocked on the lock
    t.join(30)
    assert len(told) == 1 and "latents.npz" in told[0]


_PROCESS_SCRIPT = textwrap.dedent("""
    import os, sys, time
    import numpy as np, pandas as pd
    sys.path.insert(0, {root!r})
    from backend.groups import CyclicShiftAction
    from backend.latents import load_or_encode

    def compute():
        with open({log!r}, "a") as fh:
            fh.write(f"{{os.getpid()}}\\n")
        time.sleep(1.5)
        rng = np.random.default_rng(0)
        return {{"stored": rng.normal(size=({m}, {c}, {n})).astype(np.float32),
                 "random": rng.normal(size=({m}, {c}, {n})).astype(np.float32),
                 "perms": rng.integers(0, {n}, {m})}}

    while time.time() < {start}:
        time.sleep(0.01)
    enc = load_or_encode({path!r}, pd.DataFrame({{"i": range({m})}}), CyclicShiftAction({c}, {n}), compute, 0)
    print(float(enc.stored.values.sum()))
""")


def test_concurrent_first_callers_in_two_processes_encode_once(tmp_path):
    path, log = tmp_path / "latents.npz", tmp_path / "computed.log"
    script = _PROCESS_SCRIPT.format(root=str(ROOT), log=str(log), path=str(path), m=M, c=C, n=N,
                                    start=time.time() + 4.0)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert len(log.read_text().split()) == 1, log.read_text()
    assert outs[0][0] == outs[1][0]  # both read the same codes


def test_writers_use_unique_temporary_names_in_the_same_folder(tmp_path, monkeypatch):
    path = tmp_path / "latents.npz"
    sources = []
    real_replace = os.replace

    def spy(src, dst):
        sources.append(Path(src))
        return real_replace(src, dst)

    monkeypatch.setattr(cache.os, "replace", spy)
    cache.atomic_write_npz(path, _codes())
    cache.atomic_write_npz(path, _codes())
    _encode(tmp_path / "other.npz", Counter(_codes()))
    assert len(sources) == 3 and len({s.name for s in sources}) == 3
    assert all(s.parent == tmp_path for s in sources)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.tmp.npz"))
    with np.load(path) as z:
        assert set(z.files) == {"stored", "random", "perms"}


def test_a_failed_write_leaves_no_temporary_file_and_the_old_file_intact(tmp_path):
    path = tmp_path / "latents.npz"
    cache.atomic_write_npz(path, _codes())
    before = path.read_bytes()
    with pytest.raises(ValueError, match="Python objects"):
        cache.atomic_write_npz(path, {"stored": np.array([object()], dtype=object)})
    assert path.read_bytes() == before and not list(tmp_path.glob("*.tmp"))
