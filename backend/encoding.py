"""One generic ``encode_dataset``: the codes of every input under both presentations, cached.

For any registered model (:class:`backend.families.base.ModelSpec`): the inputs as stored, and
the same inputs re-presented by the model's input action with seeded random elements
(``InputAction.random_elements``: relabelled atoms, images rotated again). Both are encoded in
batches and cached by :func:`backend.latents.load_or_encode` under a key holding the weights
hash, the seed and a digest of the rows. For an exactly equivariant encoder
(``LatentModel.latent_elements``) a new seed reuses the seed-0 codes, acted on in latent space,
after checking a sample encoded for real. This replaces the two hand-written copies that the
graph VAE and the rotated-MNIST entries had.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np

from backend.latents import EncodedDataset, encode_in_batches, load_or_encode

#: sample size and relative tolerance of the equivariance check before cached codes are reused
EQUIVARIANCE_SAMPLE = 256
EQUIVARIANCE_TOL = 1e-4


@contextlib.contextmanager
def one_torch_thread():
    """Run the block with one torch intra-op thread, then restore the count.

    Small encoder batches run about 10x slower with two threads on a 2-core machine (thread
    hand-off dominates; measured 345 vs 31 molecules/s).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def encode_all(model, inputs, progress: Callable[[float, str], None] | None = None) -> np.ndarray:
    """Code values (M, *code_shape) of a batch of inputs, ``model.encode_batch_size`` at a time.

    Parameters
    ----------
    model : LatentModel
    inputs : the domain's input batch (indexable by an integer array, ``len`` = M).
    progress : callable ``(fraction, message)``, optional.
    """
    m = len(inputs)
    if m == 0:
        return np.zeros((0, *model.latent_action.code_shape), np.float32)
    return encode_in_batches(lambda idx: model.encode(inputs[idx]).values, (np.arange(m),),
                             batch_size=model.encode_batch_size, progress=progress)


def encode_dataset(entry, seed: int = 0, progress: Callable[[float, str], None] | bool | None = None,
                   on_wait: Callable[[str], None] | None = None) -> EncodedDataset:
    """Codes of every input of ``entry``'s data set as stored and re-presented with ``seed``.

    Parameters
    ----------
    entry : backend.registry.ModelEntry
        Gives the spec's domain, the loaded :class:`LatentModel` (``entry.latent()``), the data set
        (``entry.dataset()``) and the cache file (``entry.encoded_cache_path(seed)``).
    seed : int
        Seed of the random presentation elements.
    progress : callable ``(fraction, message)``, True for a tqdm bar, or None.
    on_wait : callable ``(message)``, optional
        Called if another visitor or process is encoding the same file and this call waits for it.

    Returns
    -------
    EncodedDataset
        ``perms`` holds ``input_action.to_stored`` of the elements (slot orders, rotation steps).

    Raises
    ------
    backend.registry.WeightsNotFoundError
        If the weights or sidecar are missing.
    OSError
        If the cache folder is not writable.
    """
    model, data, domain = entry.latent(), entry.dataset(), entry.domain
    action = model.input_action
    m = len(data.table)
    elements = action.random_elements(m, seed)
    if seed != 0 and model.latent_elements(elements) is not None and not entry.encoded_cache_path(seed).exists():
        reused = _reuse_seed0(entry, seed, elements, progress, on_wait)
        if reused is not None:
            return reused

    def compute() -> dict[str, np.ndarray]:
        bar = None
        if progress is True:
            from tqdm import tqdm

            bar = tqdm(total=2 * m, desc=f"encoding {entry.id}", unit=entry.item_noun[:3])
        inputs = domain.inputs(data)
        out = {"perms": action.to_stored(elements)}
        for i, (name, batch) in enumerate((("stored", inputs), ("random", action.act(inputs, elements)))):
            def report(frac, msg, i=i, name=name):
                if bar is not None:
                    bar.n = int((i + frac) * m)
                    bar.refresh()
                elif callable(progress):
                    progress((i + frac) / 2, f"{name}: {msg}")
            out[name] = encode_all(model, batch, report)
        if bar is not None:
            bar.close()
        return out

    enc = load_or_encode(entry.encoded_cache_path(seed), data.table, model.latent_action, compute, seed,
                         mask=domain.mask(data), on_wait=on_wait)
    table = domain.presentation_columns(enc.table, action.from_stored(enc.perms))
    return EncodedDataset(table, enc.stored, enc.random, enc.perms, seed, enc.cache_path)


def _reuse_seed0(entry, seed: int, elements, progress, on_wait=None) -> EncodedDataset | None:
    """Codes of presentation ``seed`` from the seed-0 codes, without encoding the data set again.

    For an exactly equivariant encoder ``E(g·x) = h·E(x)`` (``h = latent_elements(g)``), so the
    re-presented codes are the stored codes acted on by ``h``. Checked on
    :data:`EQUIVARIANCE_SAMPLE` inputs encoded for real; the largest difference relative to the
    largest code entry is kept in ``entry.equivariance_checks[seed]``. Returns None (the caller
    encodes everything) when it exceeds :data:`EQUIVARIANCE_TOL`. Nothing is written to disk.
    """
    model, data = entry.latent(), entry.dataset()
    base = encode_dataset(entry, 0, progress, on_wait)
    random = base.stored.act(model.latent_elements(elements))
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(data.table), min(EQUIVARIANCE_SAMPLE, len(data.table)), replace=False)
    moved = model.input_action.act(entry.domain.inputs(data, sample), elements[sample])
    encoded = model.encode(moved).values
    scale = float(np.abs(base.stored.values).max()) or 1.0
    err = float(np.abs(encoded - random.values[sample]).max()) / scale
    entry.equivariance_checks[seed] = err
    if not err <= EQUIVARIANCE_TOL:
        return None
    table = entry.domain.presentation_columns(base.table, elements)
    return EncodedDataset(table, base.stored, random, model.input_action.to_stored(elements), seed,
                          base.cache_path, latent_acted_check=err)
