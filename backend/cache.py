"""Cached ``.npz`` files that survive corruption and concurrent first visitors.

Every derived file under :func:`backend.data.qm9.cache_dir` (featurized QM9,
latent codes) goes through :func:`load_or_compute_npz`:

* **Read**: :func:`load_npz_or_quarantine` loads the arrays (``allow_pickle=False``)
  and checks them (the zip's CRC-32 of every array, the expected array names,
  the caller's shape and row checks). A file that fails is *quarantined* (under
  the lock, after a second read): moved aside to ``<name>.corrupt-<timestamp>``
  (kept for inspection, never read again), logged and recorded as a
  :class:`Quarantined` notice that pages show (:func:`take_notices`); the
  arrays are then computed again.
* **Compute once**: the computation runs under :func:`locked`, an exclusive
  ``fcntl.flock`` on ``<file>.lock`` in the same folder, so concurrent first
  callers, threads of one process (Streamlit sessions) or several processes
  (workers, the command line), compute once; the others wait, then read the file.
* **Write**: :func:`atomic_write_npz` writes to a unique temporary name in the
  same folder and renames it into place (``os.replace``), so a reader sees the
  old file, no file, or the whole new file, never a half-written one.

Nothing here imports torch or Streamlit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

try:  # POSIX; elsewhere only threads of one process are serialized
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

log = logging.getLogger(__name__)

#: suffix of the lock file next to a cached file
LOCK_SUFFIX = ".lock"
#: marker in the name of a quarantined file: ``<name>.corrupt-<timestamp>``
CORRUPT_MARKER = ".corrupt-"


class CorruptCacheError(ValueError):
    """A cached file's arrays fail a check (missing array, wrong shape or row count)."""


@dataclass(frozen=True)
class Quarantined:
    """A corrupt cache file that was moved aside.

    Attributes
    ----------
    path : Path
        Where the file was (it is computed again there).
    moved_to : Path
        Where the corrupt file now lies.
    reason : str
        What was wrong with it (the load error or the failed check).
    """

    path: Path
    moved_to: Path
    reason: str

    def message(self) -> str:
        """One sentence for users and logs: the file, what was wrong, what happened."""
        return (f"The cache file {self.path} was unreadable ({self.reason}); it was moved aside to "
                f"{self.moved_to.name} and is being computed again.")


_NOTICES: list[Quarantined] = []
_NOTICES_LOCK = threading.Lock()
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


def take_notices() -> list[Quarantined]:
    """The quarantine notices recorded since the last call (and forget them).

    Returns
    -------
    list of Quarantined
        Oldest first; empty when no cache file was found corrupt.
    """
    with _NOTICES_LOCK:
        out = list(_NOTICES)
        _NOTICES.clear()
    return out


def lock_path(path: Path) -> Path:
    """``<path>.lock``: the lock file guarding ``path``."""
    path = Path(path)
    return path.with_name(path.name + LOCK_SUFFIX)


@contextlib.contextmanager
def locked(path: Path, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the exclusive lock of ``path`` for the ``with`` block.

    The lock is an ``fcntl.flock`` on ``<path>.lock`` (created if needed, never
    deleted: deleting it would let two holders lock different files). ``flock``
    locks belong to an open file, so they exclude both other processes and
    other threads of this process (each call opens the file anew).

    Parameters
    ----------
    path : Path
        The file to guard (need not exist); its folder must exist.
    on_wait : callable, optional
        Called once with a message when another holder has the lock and this
        call has to wait (e.g. to show "another visitor is encoding...").

    Yields
    ------
    None

    Raises
    ------
    OSError
        If the lock file cannot be created or locked (e.g. a read-only folder).
    """
    path = Path(path)
    message = f"waiting for another process or visitor that is writing {path.name}"
    if fcntl is None:  # pragma: no cover - Windows: threads only
        with _THREAD_LOCKS_GUARD:
            lock = _THREAD_LOCKS.setdefault(str(path.resolve()), threading.Lock())
        if not lock.acquire(blocking=False):
            if on_wait is not None:
                on_wait(message)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()
        return
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(message)
            fcntl.flock(fd, fcntl.LOCK_EX)  # releases the GIL while it waits
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def atomic_write_npz(path: Path, arrays: dict[str, np.ndarray], compressed: bool = False) -> Path:
    """Write ``arrays`` to ``path`` as ``.npz`` so that readers never see a partial file.

    The arrays go to a unique temporary file in the same folder
    (``.<name>.<random>.tmp``, from :func:`tempfile.mkstemp`, so concurrent
    writers never share a name), are flushed to disk, and the file is renamed
    onto ``path`` with :func:`os.replace` (atomic on one file system). On any
    error the temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : Path
        Destination; its folder must exist.
    arrays : dict of str to ndarray
        Arrays to store (no object arrays: the cache is read with ``allow_pickle=False``).
    compressed : bool
        Use :func:`numpy.savez_compressed` instead of :func:`numpy.savez`.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OSError
        If the folder is not writable or the disk is full.
    ValueError
        If an array holds Python objects (they would need pickle to read back).
    """
    path = Path(path)
    for name, value in arrays.items():
        if np.asarray(value).dtype.hasobject:
            raise ValueError(f"array {name!r} holds Python objects; the cache stores plain arrays only")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            (np.savez_compressed if compressed else np.savez)(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def quarantine(path: Path, reason: str) -> Quarantined:
    """Move a corrupt cache file aside to ``<name>.corrupt-<timestamp>`` and record it.

    The notice is logged as a warning and kept for :func:`take_notices`.

    Parameters
    ----------
    path : Path
        The corrupt file.
    reason : str
        What was wrong (shown to users).

    Returns
    -------
    Quarantined
        The notice.

    Raises
    ------
    OSError
        If the file cannot be renamed (e.g. it is gone); call it under :func:`locked`.
    """
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%S") + f"{time.time() % 1:.6f}"[1:] + f"-{os.getpid()}"
    moved = path.with_name(path.name + CORRUPT_MARKER + stamp)
    os.replace(path, moved)
    notice = Quarantined(path, moved, reason)
    log.warning(notice.message())
    with _NOTICES_LOCK:
        _NOTICES.append(notice)
    return notice


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or "no details"
    if len(text) > 200:
        text = text[:200] + "..."
    return f"{type(exc).__name__}: {text}"


def _read(path: Path, names: tuple[str, ...],
          validate: Callable[[dict[str, np.ndarray]], None] | None
          ) -> tuple[dict[str, np.ndarray] | None, str | None]:
    """``(arrays, None)`` for a usable file, ``(None, None)`` for none, ``(None, reason)`` for a corrupt one."""
    if not path.exists():
        return None, None
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise CorruptCacheError("a single array, not an .npz archive")
        with z:
            missing = [n for n in names if n not in z.files]
            if missing:
                raise CorruptCacheError(f"missing array(s) {', '.join(missing)}; has {', '.join(z.files) or 'none'}")
            arrays = {n: z[n] for n in names}
        if validate is not None:
            validate(arrays)
    except MemoryError:
        raise
    except FileNotFoundError:  # moved aside or replaced by another caller meanwhile
        return None, None
    except Exception as exc:  # any failure to read or check means: do not trust the file
        return None, _reason(exc)
    return arrays, None


def load_npz_or_quarantine(path: Path, names: tuple[str, ...],
                           validate: Callable[[dict[str, np.ndarray]], None] | None = None
                           ) -> dict[str, np.ndarray] | None:
    """The arrays ``names`` of the cached file ``path``, or None if it is absent or corrupt.

    A file that cannot be read (empty, truncated, not a zip, a failed CRC-32
    check, pickled objects), lacks one of ``names``, or fails ``validate`` is
    moved aside with :func:`quarantine` and None is returned, so the caller
    computes the arrays again. The move happens under :func:`locked` after a
    second read, so a file that a concurrent writer has just replaced is not
    moved by mistake. Do not call this while holding the lock of ``path``.

    Parameters
    ----------
    path : Path
        The cached ``.npz`` file.
    names : tuple of str
        Arrays to read (all are loaded into memory, which also checks their CRC).
    validate : callable, optional
        ``validate(arrays)`` raises (any ``Exception``, typically
        :class:`CorruptCacheError`) when the arrays do not fit the caller's data,
        e.g. the wrong number of rows.

    Returns
    -------
    dict of str to ndarray, or None
        None when there is no usable file.

    Raises
    ------
    OSError
        If a corrupt file cannot be moved aside or its lock cannot be taken.
    """
    path = Path(path)
    arrays, reason = _read(path, names, validate)
    if reason is None:
        return arrays
    with locked(path):
        arrays, reason = _read(path, names, validate)
        if reason is not None:
            quarantine(path, reason)
    return arrays


def load_or_compute_npz(path: Path, names: tuple[str, ...],
                        compute: Callable[[], dict[str, np.ndarray]],
                        validate: Callable[[dict[str, np.ndarray]], None] | None = None,
                        compressed: bool = False,
                        on_wait: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
    """Read the cached arrays at ``path``, or compute and write them once.

    A usable file is returned without locking. Otherwise the caller takes the
    lock (:func:`locked`) and reads again (a concurrent caller may have written
    the file meanwhile); a file that is still unusable is moved aside
    (:func:`quarantine`), ``compute()`` runs, its result is checked with
    ``validate`` and written with :func:`atomic_write_npz`.

    Parameters
    ----------
    path : Path
        The cached ``.npz`` file; its folder must exist.
    names : tuple of str
        Arrays the file holds; ``compute()`` must return at least these.
    compute : callable
        ``compute() -> {name: array}``; runs at most once per missing file
        across threads and processes.
    validate : callable, optional
        ``validate(arrays)`` raises when arrays do not fit the caller's data (see
        :func:`load_npz_or_quarantine`); also applied to what ``compute`` returns.
    compressed : bool
        Write with :func:`numpy.savez_compressed`.
    on_wait : callable, optional
        See :func:`locked`.

    Returns
    -------
    dict of str to ndarray
        The arrays ``names``.

    Raises
    ------
    KeyError
        If ``compute()`` does not return every array in ``names``.
    OSError
        If the folder is not writable (lock or file).
    Exception
        Whatever ``compute`` or ``validate`` raise for freshly computed arrays
        (nothing is written then).
    """
    path = Path(path)
    arrays, _ = _read(path, names, validate)
    if arrays is not None:
        return arrays
    with locked(path, on_wait=on_wait):
        arrays, reason = _read(path, names, validate)
        if arrays is not None:
            return arrays
        if reason is not None:
            quarantine(path, reason)
        computed = compute()
        arrays = {n: computed[n] for n in names}
        if validate is not None:
            validate(arrays)
        atomic_write_npz(path, arrays, compressed=compressed)
    return arrays
