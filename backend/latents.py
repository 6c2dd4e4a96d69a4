"""Encode a data set once into latent codes plus a metadata table; cached on disk.

The cache key is chosen by the caller and must include the SHA-256 of the
weights file (so new weights re-encode) and every seed that changes the codes.
Files live in :func:`backend.data.qm9.cache_dir` (outside git) as ``.npz``
(no pickle). Each molecule is encoded twice: under the node order as stored in
the data file, and under a seeded random relabelling (the realistic case: any
order is as valid as the file's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from backend.groups import GroupAction, LatentCodes

NODE_ORDERS = ("random", "stored")


def random_node_orders(m: int, n: int, seed: int) -> np.ndarray:
    """Seeded uniformly random permutations, shape (m, n); row ``i`` relabels sample ``i``."""
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((m, n)), axis=1)


def encode_in_batches(encode: Callable[..., np.ndarray], arrays: tuple[np.ndarray, ...],
                      batch_size: int = 128,
                      progress: Callable[[float, str], None] | None = None) -> np.ndarray:
    """Apply ``encode(*batch)`` -> (b, *code_shape) over the first axis of ``arrays``.

    Batches of 128 run about 1.8x faster than 2048 on CPU (measured: 345 vs 194 mol/s,
    one thread). ``progress(fraction, message)`` is called after every batch (tqdm on the
    command line, ``st.progress`` in the app).

    The output (M, *code_shape) is allocated once, after the first batch gives its shape and
    dtype, and every batch is written into it. A list of per-batch arrays concatenated at the
    end left the process holding far more memory than the codes after an encode of all of
    QM9 (from tens of MB to 1.9 GB from one process to the next, for 4.5 MB of codes: the
    allocator's, not live data), against 20-35 MB with the preallocated output
    (``benchmarks/encode_memory.py``, BENCHMARKS.md).
    """
    m = len(arrays[0])
    out = None
    reported = 0.0
    for start in range(0, m, batch_size):
        part = np.asarray(encode(*(a[start:start + batch_size] for a in arrays)))
        if out is None:
            out = np.empty((m,) + part.shape[1:], dtype=part.dtype)
        out[start:start + len(part)] = part
        del part
        done = min(start + batch_size, m)
        if progress is not None and (done == m or done / m - reported >= 0.005):
            reported = done / m
            progress(done / m, f"encoded {done:,} / {m:,}")
    return out if out is not None else np.zeros((0,))


@dataclass(frozen=True)
class EncodedDataset:
    """Codes of every sample under both node orders, row-aligned with ``table``.

    Attributes
    ----------
    table : DataFrame, one row per sample (ids, properties, split, ...).
    stored : LatentCodes (M, ...), codes of the inputs as stored.
    random : LatentCodes (M, ...), codes of the inputs relabelled by ``perms``.
    perms : ndarray (M, n), input ``i`` was relabelled as ``stored_input[perms[i]]``.
    node_order_seed : int
    cache_path : Path
    latent_acted_check : float or None, set when ``random`` was not encoded but made from
        the seed-0 codes by the latent action (an exactly equivariant encoder): the largest
        difference, relative to the largest code entry, between those codes and real
        encodings of a sample of re-presented inputs. None when ``random`` was encoded.
    """

    table: pd.DataFrame
    stored: LatentCodes
    random: LatentCodes
    perms: np.ndarray
    node_order_seed: int
    cache_path: Path
    latent_acted_check: float | None = None

    def codes(self, order: str = "random") -> LatentCodes:
        """Codes under ``order`` in :data:`NODE_ORDERS`.

        Raises
        ------
        ValueError
            For an unknown order.
        """
        if order not in NODE_ORDERS:
            raise ValueError(f"node order must be one of {NODE_ORDERS}, got {order!r}")
        return self.random if order == "random" else self.stored


def load_or_encode(cache_path: Path, table: pd.DataFrame, action: GroupAction,
                   compute: Callable[[], dict[str, np.ndarray]], node_order_seed: int,
                   mask: np.ndarray | None = None,
                   on_wait: Callable[[str], None] | None = None) -> EncodedDataset:
    """Read ``cache_path`` if it holds usable codes, else call ``compute()`` once and write it.

    ``compute`` returns ``{"stored": (M, ...), "random": (M, ...), "perms": (M, ...)}``.
    ``mask`` (M, n), if given, marks real node slots in the stored order; the
    random-order mask is derived by the action.

    The file goes through :func:`backend.cache.load_or_compute_npz`: a cache
    file that cannot be read, lacks an array, or does not fit (rows other than
    ``len(table)``, codes not of the action's shape) is moved aside to
    ``<name>.corrupt-<timestamp>`` with a warning and encoded again;
    concurrent first callers (threads or processes) encode once while the
    others wait (``on_wait(message)`` is called when one has to); the write is
    atomic. If the cache folder is full or read-only, the codes are returned
    anyway and kept in memory, and a :class:`backend.cache.WriteFailed` notice
    names the folder (see :func:`backend.cache.take_notices`).

    Parameters
    ----------
    cache_path : Path
        The ``.npz`` file; its key must include the weights hash and every seed.
    table : DataFrame
        One row per sample.
    action : GroupAction
        The latent action; codes have shape (M, *action.code_shape).
    compute : callable
        Encodes the data set; called only when no usable file exists.
    node_order_seed : int
        Seed of the random presentations (recorded in the result).
    mask : ndarray of bool, shape (M, n), optional
        Real node slots in the stored order.
    on_wait : callable, optional
        ``on_wait(message)``: called once, with a sentence naming the file, when
        another visitor or process is encoding the same file and this call waits
        for it (pages show it in their progress element).

    Returns
    -------
    EncodedDataset

    Raises
    ------
    backend.cache.CorruptCacheError
        If ``compute()`` itself returns codes that do not fit ``table`` or ``action``.
    OSError
        If the cache file cannot be locked or written for a reason other than a
        full or read-only folder (:data:`backend.cache.UNWRITABLE_ERRNOS`).
    """
    from backend.cache import CorruptCacheError, load_or_compute_npz

    cache_path = Path(cache_path)
    m = len(table)
    code_shape = tuple(getattr(action, "code_shape", ()) or ())

    def validate(arrays: dict[str, np.ndarray]) -> None:
        for name in ("stored", "random", "perms"):
            if arrays[name].ndim < 1 or len(arrays[name]) != m:
                raise CorruptCacheError(f"{name} has {len(arrays[name]) if arrays[name].ndim else 0} rows, "
                                        f"the data set {m}")
        for name in ("stored", "random"):
            if code_shape and tuple(arrays[name].shape[1:]) != code_shape:
                raise CorruptCacheError(f"{name} codes have shape {arrays[name].shape[1:]}, the model's "
                                        f"{code_shape}")
            if not np.issubdtype(arrays[name].dtype, np.floating):
                raise CorruptCacheError(f"{name} codes are {arrays[name].dtype}, not floating point")
        if not np.issubdtype(arrays["perms"].dtype, np.integer):
            raise CorruptCacheError(f"perms are {arrays['perms'].dtype}, not integers")
        if mask is not None:
            perms = arrays["perms"]
            if perms.shape != mask.shape or (perms.size and not (0 <= perms.min() and perms.max() < mask.shape[1])):
                raise CorruptCacheError(f"perms of shape {perms.shape} are not node orders of {mask.shape[1]} slots "
                                        f"for {mask.shape[0]} samples")

    arrays = load_or_compute_npz(cache_path, ("stored", "random", "perms"), compute, validate,
                                 on_wait=on_wait)
    stored = LatentCodes(arrays["stored"], action, mask)
    random_mask = None if mask is None else np.take_along_axis(mask, arrays["perms"], axis=1)
    random = LatentCodes(arrays["random"], action, random_mask)
    return EncodedDataset(table, stored, random, arrays["perms"], node_order_seed, cache_path)
