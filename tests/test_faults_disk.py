"""Faults under the cache folder (issue 14): a full disk, a writer killed mid-write, leftovers.

Which fault each test really exercises:

* ``ENOSPC`` **simulated**: the archive writer (``numpy.savez``) is replaced by one that writes
  a few bytes and then raises ``OSError(ENOSPC)``, as a full disk does mid-write (always runs);
* a **real full tmpfs** (``mount -t tmpfs -o size=1m``, filled to the last byte): runs where
  mounting is permitted (root or CAP_SYS_ADMIN), skipped elsewhere;
* a **real SIGKILL** of a writer process halfway through its write
  (``benchmarks/fault_injection.py kill-write``; the half-write is arranged inside the child);
* a lock file that cannot be created (``EROFS`` raised by ``os.open`` for the lock file only).

Each test failed before the fix (a full disk raised ``OSError`` to the page; a killed writer's
temporary file was never removed).
"""

from __future__ import annotations

import errno
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backend import cache
from backend.groups import CyclicShiftAction
from backend.latents import load_or_encode
from benchmarks import fault_injection as fi
from tests.test_recovery import C, M, N, Counter, _codes  # the same small C_N codes and counting compute


@pytest.fixture(autouse=True)
def _clean_state():
    cache.take_notices()
    cache.forget_memory()
    yield
    cache.take_notices()
    cache.forget_memory()


def _encode(path: Path, compute, on_wait=None):
    return load_or_encode(path, pd.DataFrame({"i": range(M)}), CyclicShiftAction(C, N), compute, 0,
                          on_wait=on_wait)


@pytest.fixture()
def enospc(monkeypatch):
    """Every ``.npz`` write raises ENOSPC after writing a few bytes (a disk that fills mid-write)."""
    def full(fh, **arrays):
        fh.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    monkeypatch.setattr(np, "savez_compressed", full)


def _check_write_failed(path: Path, notices) -> None:
    assert len(notices) == 1, notices
    notice = notices[0]
    assert isinstance(notice, cache.WriteFailed) and notice.path == path
    text = notice.message()
    assert f"cache folder {path.parent}" in text and path.name in text  # names the folder and file
    assert "disk is full" in text and "ELX_CACHE_DIR" in text and "free at least" in text  # what to do


# --------------------------------------------------------------------------- a full disk
def test_a_full_disk_gives_the_codes_a_notice_naming_the_folder_and_no_temporary_file(tmp_path, enospc,
                                                                                      caplog):
    path = tmp_path / "latents.npz"
    compute = Counter(_codes())
    with caplog.at_level("WARNING"):
        enc = _encode(path, compute)
    np.testing.assert_array_equal(enc.stored.values, _codes()["stored"])
    assert not path.exists() and not cache.temporaries(path)  # the partial write was removed
    _check_write_failed(path, cache.take_notices())
    assert str(tmp_path) in caplog.text  # the server log names the folder too
    assert cache.held_in_memory(path)
    again = _encode(path, compute)  # kept in memory: no second encode, no second notice
    assert compute.calls == 1 and not cache.take_notices()
    np.testing.assert_array_equal(again.random.values, enc.random.values)


def test_concurrent_callers_on_a_full_disk_encode_once(tmp_path, enospc):
    path = tmp_path / "latents.npz"
    compute = Counter(_codes(), delay=0.5)
    results = []
    threads = [threading.Thread(target=lambda: results.append(_encode(path, compute))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert compute.calls == 1 and len(results) == 4
    assert len(cache.take_notices()) == 1


def test_the_memory_fallback_is_bounded(tmp_path, enospc):
    for i in range(cache.MEMORY_FALLBACK_ENTRIES + 3):
        _encode(tmp_path / f"latents{i}.npz", Counter(_codes()))
    kept = [i for i in range(cache.MEMORY_FALLBACK_ENTRIES + 3) if cache.held_in_memory(tmp_path / f"latents{i}.npz")]
    assert kept == list(range(3, cache.MEMORY_FALLBACK_ENTRIES + 3))  # the oldest were dropped


def test_other_write_errors_still_raise(tmp_path, monkeypatch):
    def broken(fh, **arrays):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="Input/output"):
        _encode(tmp_path / "latents.npz", Counter(_codes()))
    assert not cache.held_in_memory(tmp_path / "latents.npz")


def test_a_lock_file_that_cannot_be_created_falls_back_to_a_thread_lock(tmp_path, monkeypatch, enospc):
    path = tmp_path / "latents.npz"
    real_open = cache.os.open

    def read_only_for_locks(name, *args, **kwargs):
        if str(name).endswith(cache.LOCK_SUFFIX):
            raise OSError(errno.EROFS, "Read-only file system", str(name))
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr(cache.os, "open", read_only_for_locks)
    compute = Counter(_codes(), delay=0.5)
    told, results = [], []
    threads = [threading.Thread(target=lambda: results.append(_encode(path, compute, told.append)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert compute.calls == 1 and len(results) == 3
    assert len(told) == 2 and all("latents.npz" in m for m in told)  # the others waited, and were told


@pytest.fixture()
def full_tmpfs(tmp_path):
    """A real 1 MiB tmpfs, filled to the last byte (skipped where ``mount`` is not permitted)."""
    try:
        with fi.mounted_tmpfs(tmp_path / "full", "1m") as folder:
            fi.fill(folder)
            assert fi.free_bytes(folder) == 0
            yield folder
    except fi.MountNotPermitted as exc:
        pytest.skip(f"no tmpfs here ({exc}); the ENOSPC tests above simulate it")


def test_a_real_full_tmpfs_keeps_codes_and_featurized_qm9_in_memory(full_tmpfs, monkeypatch):
    from backend.data import qm9

    path = full_tmpfs / "latents.npz"
    compute = Counter(_codes())
    enc = _encode(path, compute)
    np.testing.assert_array_equal(enc.stored.values, _codes()["stored"])
    assert not path.exists() and not cache.temporaries(path)
    _check_write_failed(path, cache.take_notices())
    monkeypatch.setenv("ELX_CACHE_DIR", str(full_tmpfs))
    graphs = qm9.load_qm9_graphs(progress=False, subset=40)  # the compressed writer, same folder
    assert len(graphs.table) == 40
    notices = cache.take_notices()
    assert len(notices) == 1 and str(full_tmpfs) in notices[0].message()
    assert not list(full_tmpfs.glob(".*.tmp"))


# --------------------------------------------------------------------------- a killed writer
def test_a_writer_killed_mid_write_leaves_no_codes_file_and_the_next_caller_recovers(tmp_path):
    res = fi.kill_mid_write(tmp_path, rows=20_000)
    assert res["ok"], res["problems"]
    assert res["final_existed_after_kill"] is False and len(res["temps_after_kill"]) == 1
    assert res["recomputed"] == 1 and res["temps_after_recovery"] == [] and res["rows_read"] == 20_000


def test_a_leftover_temporary_file_is_never_read_and_is_removed_when_the_file_is_computed(tmp_path):
    path = tmp_path / "latents.npz"
    leftover = tmp_path / ".latents.npz.k1ll3d__.tmp"
    leftover.write_bytes(b"PK\x03\x04 half of an archive")
    other = tmp_path / ".other.npz.abcdefgh.tmp"  # another file's: not touched
    other.write_bytes(b"x")
    compute = Counter(_codes())
    enc = _encode(path, compute)
    assert compute.calls == 1 and not leftover.exists() and other.exists()
    np.testing.assert_array_equal(enc.perms, _codes()["perms"])
    assert not cache.take_notices()  # nothing corrupt was read
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == {"stored", "random", "perms"}


def test_a_temporary_file_of_a_running_writer_is_left_alone_while_a_good_file_exists(tmp_path):
    path = tmp_path / "latents.npz"
    _encode(path, Counter(_codes()))
    busy = tmp_path / ".latents.npz.inflight.tmp"
    busy.write_bytes(b"being written")
    compute = Counter(_codes())
    _encode(path, compute)  # reads the good file without taking the lock
    assert compute.calls == 0 and busy.exists()


def test_a_read_only_cache_folder_advises_write_access_not_free_space(tmp_path, monkeypatch):
    def read_only(fh, **arrays):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(np, "savez", read_only)
    path = tmp_path / "latents.npz"
    enc = _encode(path, Counter(_codes()))
    assert enc.stored.values.shape == (M, C, N)
    (notice,) = cache.take_notices()
    text = notice.message()
    assert "read-only" in text and f"make {tmp_path} writable" in text and "free at least" not in text
