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
  old file, no file, or the whole new file, never a half-written one. A writer
  killed mid-write (SIGKILL, power loss) leaves only its temporary
  ``.<name>.<random>.tmp``, which no reader opens; the next caller that takes
  the lock to compute the file removes such leftovers
  (:func:`remove_stale_temporaries`).
* **No room to write** (full disk, quota, read-only folder: :data:`UNWRITABLE_ERRNOS`):
  the computed arrays are returned anyway and kept in memory for the rest of
  the process (:func:`held_in_memory`), and a :class:`WriteFailed` notice names
  the folder and what to do. A lock file that cannot be created falls back to a
  lock between the threads of this process. So a full cache folder costs
  caching, not the app.

Nothing here imports torch or Streamlit.
"""

from __future__ import annotations

import collections
import contextlib
import errno
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
#: suffix of a writer's temporary file: ``.<name>.<random>.tmp``
TEMP_SUFFIX = ".tmp"
#: ``errno`` values meaning "this folder cannot take the file now" (full disk, quota, read-only
#: file system, no permission, file too large): caching is skipped with a notice, not an error
UNWRITABLE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                               errno.EFBIG})
#: how many computed-but-unwritable results are kept in memory (oldest dropped first)
MEMORY_FALLBACK_ENTRIES = 8


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


_WHY = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
        errno.EROFS: "the file system is read-only", errno.EACCES: "there is no permission to write there",
        errno.EPERM: "there is no permission to write there",
        errno.EFBIG: "the file is too large for that file system"}


@dataclass(frozen=True)
class WriteFailed:
    """A computed cache file that could not be written (full disk, read-only folder, ...).

    Attributes
    ----------
    path : Path
        The file that was not written.
    reason : str
        The error, e.g. ``"the disk is full (OSError 28: No space left on device)"``.
    nbytes : int
        Size of the arrays, bytes (uncompressed: an upper bound of the file's size).
    errno_code : int
        The ``errno`` of the failed write (decides the advice: space or permission).
    """

    path: Path
    reason: str
    nbytes: int
    errno_code: int = errno.ENOSPC

    def message(self) -> str:
        """For users and logs: the folder, what went wrong, what still works, what to do."""
        folder = self.path.parent
        size = f"{self.nbytes / 1e6:.1f} MB" if self.nbytes >= 100_000 else f"{self.nbytes / 1e3:.0f} kB"
        if self.errno_code in (errno.EROFS, errno.EACCES, errno.EPERM):
            todo = (f"make {folder} writable for the user the app runs as, or point ELX_CACHE_DIR at a "
                    "writable folder")
        else:
            todo = f"free at least {size} in {folder}, or point ELX_CACHE_DIR at a writable folder with room"
        return (f"Could not save {self.path.name} in the cache folder {folder}: {self.reason}. The app keeps "
                "working without caching it (the result is kept in memory until the server restarts and "
                f"is computed again after that). What to do: {todo}, then restart the app.")


_NOTICES: list[Quarantined | WriteFailed] = []
_NOTICES_LOCK = threading.Lock()
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()
_MEMORY: "collections.OrderedDict[str, dict[str, np.ndarray]]" = collections.OrderedDict()
_MEMORY_LOCK = threading.Lock()


def _key(path: Path) -> str:
    return os.path.abspath(path)


def held_in_memory(path: Path) -> bool:
    """True when the arrays of ``path`` could not be written and are kept in memory instead.

    Parameters
    ----------
    path : Path
        A cache file handled by :func:`load_or_compute_npz`.

    Returns
    -------
    bool
    """
    with _MEMORY_LOCK:
        return _key(path) in _MEMORY


def _memory_get(path: Path) -> dict[str, np.ndarray] | None:
    with _MEMORY_LOCK:
        arrays = _MEMORY.get(_key(path))
        if arrays is not None:
            _MEMORY.move_to_end(_key(path))
        return arrays


def _memory_put(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with _MEMORY_LOCK:
        _MEMORY[_key(path)] = arrays
        _MEMORY.move_to_end(_key(path))
        while len(_MEMORY) > MEMORY_FALLBACK_ENTRIES:
            _MEMORY.popitem(last=False)


def forget_memory() -> None:
    """Drop every result kept in memory after a failed write (tests; freeing memory)."""
    with _MEMORY_LOCK:
        _MEMORY.clear()


def is_unwritable(exc: BaseException) -> bool:
    """True for an ``OSError`` that means the folder cannot take a file now (:data:`UNWRITABLE_ERRNOS`).

    Parameters
    ----------
    exc : BaseException

    Returns
    -------
    bool
    """
    return isinstance(exc, OSError) and exc.errno in UNWRITABLE_ERRNOS


def _describe(exc: OSError) -> str:
    why = _WHY.get(exc.errno, "it cannot be written")
    return f"{why} ({type(exc).__name__} {exc.errno}: {exc.strerror or exc})"


def take_notices() -> list[Quarantined | WriteFailed]:
    """The notices recorded since the last call (and forget them).

    Returns
    -------
    list of Quarantined or WriteFailed
        Oldest first: corrupt files moved aside, files that could not be written;
        empty when neither happened. Each has ``message()`` for the page.
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
def locked(path: Path, on_wait: Callable[[str], None] | None = None) -> Iterator[bool]:
    """Hold the exclusive lock of ``path`` for the ``with`` block.

    The lock is an ``fcntl.flock`` on ``<path>.lock`` (created if needed, never
    deleted: deleting it would let two holders lock different files). ``flock``
    locks belong to an open file, so they exclude both other processes and
    other threads of this process (each call opens the file anew).

    A lock file that cannot be created because the folder is full or
    read-only (:func:`is_unwritable`) is logged, and the lock falls back to one
    between the threads of this process (other processes are not excluded
    then; their writes stay atomic).

    Parameters
    ----------
    path : Path
        The file to guard (need not exist); its folder must exist.
    on_wait : callable, optional
        Called once with a message when another holder has the lock and this
        call has to wait (e.g. to show "another visitor is encoding...").

    Yields
    ------
    bool
        True when the lock also excludes other processes (a ``flock``), False
        when it only excludes the threads of this process (see above).

    Raises
    ------
    OSError
        If the lock file cannot be created or locked for another reason.
    """
    path = Path(path)
    message = f"another visitor or process is computing {path.name}; waiting for it to finish"
    if fcntl is None:  # pragma: no cover - Windows: threads only
        with _thread_locked(path, on_wait, message):
            yield False
        return
    try:
        fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if not is_unwritable(exc):
            raise
        log.warning("cannot create the lock file %s (%s); locking between threads of this process only",
                    lock_path(path), _describe(exc))
        with _thread_locked(path, on_wait, message):
            yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(message)
            fcntl.flock(fd, fcntl.LOCK_EX)  # releases the GIL while it waits
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _thread_locked(path: Path, on_wait: Callable[[str], None] | None, message: str) -> Iterator[None]:
    """A lock between the threads of this process, one per file (no lock file needed)."""
    with _THREAD_LOCKS_GUARD:
        lock = _THREAD_LOCKS.setdefault(_key(path), threading.Lock())
    if not lock.acquire(blocking=False):
        if on_wait is not None:
            on_wait(message)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def temporaries(path: Path) -> list[Path]:
    """Writers' temporary files of ``path`` in its folder (``.<name>.<random>.tmp``).

    Parameters
    ----------
    path : Path
        A cache file (need not exist).

    Returns
    -------
    list of Path
        Sorted; empty when no writer is busy and none was killed mid-write.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f".{_glob_escape(path.name)}.*{TEMP_SUFFIX}"))


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove temporary files of ``path`` left by writers that died mid-write.

    Call it only while holding :func:`locked` for ``path``: every writer of
    :func:`load_or_compute_npz` writes under that lock, so any temporary file
    seen then belongs to a writer that no longer runs (killed, or a crashed
    process). Such files are never read (readers open only ``path``); this
    only gives their space back.

    Parameters
    ----------
    path : Path
        The cache file.

    Returns
    -------
    list of Path
        The files removed (each is logged).
    """
    removed = []
    for tmp in temporaries(path):
        try:
            tmp.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:  # e.g. a read-only folder: harmless, it is never read
            log.warning("could not remove the leftover temporary file %s: %s", tmp, exc)
            continue
        log.warning("removed %s, left by a writer of %s that stopped mid-write", tmp.name, path.name)
        removed.append(tmp)
    return removed


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
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

    A corrupt file that cannot be moved aside because the folder is full or
    read-only is left in place (logged) and None is returned all the same.

    Raises
    ------
    OSError
        If a corrupt file cannot be moved aside or its lock cannot be taken for
        another reason.
    """
    path = Path(path)
    arrays, reason = _read(path, names, validate)
    if reason is None:
        return arrays
    with locked(path):
        arrays, reason = _read(path, names, validate)
        if reason is not None:
            _quarantine_if_possible(path, reason)
    return arrays


def _quarantine_if_possible(path: Path, reason: str) -> None:
    try:
        quarantine(path, reason)
    except OSError as exc:
        if not is_unwritable(exc):
            raise
        log.warning("the cache file %s is unreadable (%s) but cannot be moved aside: %s; it is ignored",
                    path, reason, _describe(exc))


def load_or_compute_npz(path: Path, names: tuple[str, ...],
                        compute: Callable[[], dict[str, np.ndarray]],
                        validate: Callable[[dict[str, np.ndarray]], None] | None = None,
                        compressed: bool = False,
                        on_wait: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
    """Read the cached arrays at ``path``, or compute and write them once.

    A usable file is returned without locking. Otherwise the caller takes the
    lock (:func:`locked`) and reads again (a concurrent caller may have written
    the file meanwhile); a file that is still unusable is moved aside
    (:func:`quarantine`), temporary files of writers that died mid-write are
    removed (:func:`remove_stale_temporaries`), ``compute()`` runs, its result is
    checked with ``validate`` and written with :func:`atomic_write_npz`.

    If the folder cannot take the file (:func:`is_unwritable`: full disk, quota,
    read-only), the computed arrays are returned anyway, kept in memory for
    later calls in this process (at most :data:`MEMORY_FALLBACK_ENTRIES` files),
    and a :class:`WriteFailed` notice is logged and recorded for
    :func:`take_notices`.

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
        If the file cannot be written or locked for a reason other than those of
        :data:`UNWRITABLE_ERRNOS`.
    Exception
        Whatever ``compute`` or ``validate`` raise for freshly computed arrays
        (nothing is written then).
    """
    path = Path(path)
    arrays, _ = _read(path, names, validate)
    if arrays is not None:
        return arrays
    kept = _memory_get(path)
    if kept is not None:
        return kept
    with locked(path, on_wait=on_wait) as every_process_waits:
        arrays, reason = _read(path, names, validate)
        if arrays is not None:
            return arrays
        kept = _memory_get(path)  # computed by a caller we waited for, which could not write it
        if kept is not None:
            return kept
        if reason is not None:
            _quarantine_if_possible(path, reason)
        if every_process_waits:  # else another process might be writing one right now
            remove_stale_temporaries(path)
        computed = compute()
        arrays = {n: computed[n] for n in names}
        if validate is not None:
            validate(arrays)
        try:
            atomic_write_npz(path, arrays, compressed=compressed)
        except OSError as exc:
            if not is_unwritable(exc):
                raise
            _memory_put(path, arrays)
            notice = WriteFailed(path, _describe(exc), int(sum(np.asarray(a).nbytes for a in arrays.values())),
                                 exc.errno)
            log.warning(notice.message())
            with _NOTICES_LOCK:
                _NOTICES.append(notice)
    return arrays
