"""Python API for notebooks and scripts: the dashboard's analyses without Streamlit.

Thin wrappers over the backend the pages use, so a notebook gets the same numbers as
the dashboard::

    from backend import api

    data = api.load_codes("my_codes.npz", action="C_8")      # checked, no pickle
    m = api.maps(data, "orbit_alignment")                     # both 2-D maps
    feats = api.project(data.codes, "max_filtering", seed=0)  # (M, k) invariant features
    api.distortion(data.codes)                                # table per projection

    entry = api.load("rot_mnist_c8")                          # a shipped model
    enc = api.encode(entry)                                   # all inputs, cached in .cache/

Run from the repository root (or put it on ``sys.path``). The functions take and
return the backend's own types: :class:`~backend.groups.LatentCodes` (values with their
group action), :class:`~backend.latents.EncodedDataset` (codes of every input under two
presentations plus a table), :class:`~backend.views.Maps` and pandas DataFrames.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from backend import codes_analysis, codes_upload, export, registry, views
from backend.codes_upload import CodesFileError, UploadedCodes
from backend.groups import LatentCodes
from backend.latents import EncodedDataset

__all__ = ["models", "load", "encode", "load_codes", "codes_from_array", "dataset", "projections", "project",
           "maps", "distortion", "probes", "export_table", "CodesFileError"]


def models() -> list[str]:
    """Ids of the registered models whose weights are usable (:func:`backend.registry.available`)."""
    return registry.available()


def load(model_id: str):
    """The registry entry of a model, with its weights checked.

    Parameters
    ----------
    model_id : str
        E.g. ``"graph_vae_qm9"``, ``"rot_mnist_c8"``; see :func:`models`.

    Returns
    -------
    backend.registry.ModelEntry
        ``entry.model()`` is the ``torch.nn.Module`` in eval mode, ``entry.dataset()`` the
        data set, ``entry.latent_action`` the group action on its codes.

    Raises
    ------
    backend.registry.UnknownModelError
        For an id that is not registered.
    backend.registry.WeightsNotFoundError
        If its weights or sidecar are missing or the sidecar does not parse.
    """
    entry = registry.get(model_id)
    entry.sidecar  # raises WeightsNotFoundError / SidecarError with what to do
    return entry


def encode(model, seed: int = 0, progress=None) -> EncodedDataset:
    """Codes of every input of the model's data set, as stored and re-presented.

    Parameters
    ----------
    model : str or ModelEntry
        A model id or the entry from :func:`load`.
    seed : int
        Seed of the random presentations (node orders, extra rotations).
    progress : callable ``(fraction, message)``, optional
        Called during the first encoding (afterwards the codes come from the cache).

    Returns
    -------
    EncodedDataset
        ``.table`` (one row per input), ``.codes("stored")`` and ``.codes("random")``:
        LatentCodes (M, ...) with the model's latent action.

    Raises
    ------
    backend.registry.WeightsNotFoundError
        If the model's weights are missing.
    """
    entry = load(model) if isinstance(model, str) else model
    return entry.encode_dataset(seed, progress=progress)


def load_codes(path, action: str | None = None, labels=None) -> UploadedCodes:
    """Your own latent codes from a ``.npy`` / ``.npz`` file, checked as the dashboard checks uploads.

    Parameters
    ----------
    path : path-like
        The codes file (layout: :mod:`backend.codes_upload`).
    action : str, optional
        ``"S_n"`` / ``"S_9"`` (codes (M, n, d)), ``"C_N"`` / ``"C_8"`` (codes (M, c, N)) or
        ``"none"`` (codes (M, D)); None: the file's ``action`` entry.
    labels : path-like, optional
        A CSV with a header line and one row per code.

    Returns
    -------
    UploadedCodes
        ``.codes`` (LatentCodes), ``.table`` (``code_id``, labels, ``code_norm``),
        ``.action``, ``.notes``.

    Raises
    ------
    CodesFileError
        For every problem with the files, with a message (wrong rank, NaN/inf, n or N
        other than declared, over ``$ELX_CODES_MAX_MB``, object arrays, CSV rows ...).
    """
    return codes_upload.load_codes_file(path, action, labels)


def codes_from_array(codes: np.ndarray, action: str, labels=None, mask=None, name: str = "array") -> UploadedCodes:
    """:func:`load_codes` for arrays already in memory (same checks).

    Parameters
    ----------
    codes : ndarray
        (M, n, d) for S_n, (M, c, N) for C_N, (M, D) for none.
    action : str
        As in :func:`load_codes`.
    labels : DataFrame or dict of 1-D arrays, optional
        One value per code per column (numbers or strings).
    mask : ndarray (M, n) of bool, optional
        Real node slots (S_n only).
    name : str
        Shown in messages.

    Returns
    -------
    UploadedCodes

    Raises
    ------
    CodesFileError
        As :func:`load_codes`.
    """
    arrays = {"codes": np.asarray(codes)}
    if mask is not None:
        arrays["mask"] = np.asarray(mask)
    for key, values in (dict(labels) if labels is not None else {}).items():
        values = np.asarray(values)
        arrays[str(key)] = values.astype(str) if values.dtype.kind == "O" else values
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return codes_upload.parse_codes(buf.getvalue(), name, action)


def dataset(data: UploadedCodes, seed: int = 0) -> EncodedDataset:
    """Your codes as given (``"stored"``) and re-presented by a seeded random group element
    per code (``"random"``), the form :func:`maps` and the pages use.

    Parameters
    ----------
    data : UploadedCodes
    seed : int
        Seed of the group elements.

    Returns
    -------
    EncodedDataset
    """
    moved, elements = codes_upload.presentations(data.codes, seed)
    return EncodedDataset(data.table, data.codes, moved, elements, seed, Path(os.devnull))


def projections(action_or_codes) -> pd.DataFrame:
    """The invariant projections defined for a latent action, with their declared tags.

    Parameters
    ----------
    action_or_codes : GroupAction, LatentCodes or UploadedCodes

    Returns
    -------
    DataFrame
        Columns ``key, label, invariant, lossless, isometric, decodable, description``.
    """
    from backend.projections import make_projection, projections_for

    action = getattr(getattr(action_or_codes, "codes", action_or_codes), "action", action_or_codes)
    rows = []
    for spec in projections_for(action):
        t = make_projection(spec.key).tags(action)
        rows.append({"key": spec.key, "label": spec.label, "invariant": t.invariant, "lossless": t.lossless,
                     "isometric": t.isometric, "decodable": t.cross_section, "description": spec.description})
    return pd.DataFrame(rows)


def project(codes: LatentCodes, name: str, seed: int = 0, k: int = 0) -> np.ndarray:
    """Invariant features ``s(z)`` of codes: the projection fitted on ``codes``, then applied.

    Parameters
    ----------
    codes : LatentCodes (M, ...)
        E.g. ``data.codes`` or ``enc.codes("random")``.
    name : str
        A key of :func:`projections` (``"sort"``, ``"max_filtering"``, ...).
    seed : int
        Seed of random templates / references.
    k : int
        Random templates of max filtering / sorted coorbits (0: ``2·c·N``).

    Returns
    -------
    ndarray (M, F)
        One row per code, in the projection's feature units.

    Raises
    ------
    KeyError
        For an unknown projection name.
    backend.projections.UnsupportedActionError
        If the projection is not defined for the codes' action.
    """
    return views.projection(name, seed, k).fit(codes).transform(codes)


def _as_dataset(data, seed: int) -> EncodedDataset:
    if isinstance(data, UploadedCodes):
        return dataset(data, seed)
    if isinstance(data, EncodedDataset):
        return data
    raise TypeError(f"expected UploadedCodes or EncodedDataset, got {type(data).__name__}")


def maps(data, projection: str, order: str = "random", seed: int = 0, proj_seed: int = 0, k: int = 0) -> views.Maps:
    """The dashboard's two maps: PCA of the raw codes and of the projected codes.

    Parameters
    ----------
    data : UploadedCodes or EncodedDataset
        Your codes (:func:`load_codes`) or a model's (:func:`encode`).
    projection : str
        Projection key (:func:`projections`).
    order : {"random", "stored"}
        Which presentation is mapped; the other one measures invariance.
    seed : int
        Presentation seed (used for UploadedCodes).
    proj_seed, k : int
        Projection seed and random templates.

    Returns
    -------
    backend.views.Maps
        ``.raw.coords`` and ``.inv.coords`` (M, 2), ``.projected`` (M, F), ``.tags``,
        ``.measured_invariant`` and the invariance errors.
    """
    return views.compute_maps(_as_dataset(data, seed), order, projection, proj_seed, k)


def distortion(codes: LatentCodes, seed: int = 0, k: int = 0, **sizes) -> pd.DataFrame:
    """How much each projection keeps, against the exact quotient distance
    (:func:`backend.codes_analysis.distortion_table`; ``sizes``: ``max_codes``, ``n_pairs``,
    ``n_queries``, ``pool``).

    Returns
    -------
    DataFrame
        One row per projection plus the raw codes: tags, distance ratios (unitless),
        confusion rate, neighbour agreement.
    """
    return codes_analysis.distortion_table(codes, seed=seed, k=k, **sizes)


def probes(data, targets=None, order: str = "stored", seed: int = 0, k: int = 0, **options) -> pd.DataFrame:
    """Probes (ridge / logistic regression and k-NN) for each label, on raw codes and every projection
    (:func:`backend.codes_analysis.probe_table`; ``options``: ``probes``, ``seeds``, ``n_train``,
    ``n_test``, ``test_fraction``).

    Parameters
    ----------
    data : UploadedCodes or EncodedDataset
    targets : sequence of str, optional
        Table columns to predict (default: every usable label).
    order : {"stored", "random"}
        Which presentation's codes are probed.

    Returns
    -------
    DataFrame
        ``target, task, representation, probe, metric, mean, std, n_train, n_test``.
    """
    enc = _as_dataset(data, seed)
    return codes_analysis.probe_table(enc.codes(order), enc.table, targets, seed=seed, k=k, **options)


def export_table(data, m: views.Maps, id_col: str | None = None) -> pd.DataFrame:
    """Both maps' coordinates with row numbers, ids and properties (:func:`backend.export.maps_table`);
    write it with ``df.to_parquet(...)`` or ``df.to_csv(...)``.

    Parameters
    ----------
    data : UploadedCodes or EncodedDataset
    m : Maps from :func:`maps` on the same data.
    id_col : str, optional
        Default ``code_id`` where the table has it.
    """
    table = data.table
    return export.maps_table(table, m, id_col or ("code_id" if "code_id" in table else None))
