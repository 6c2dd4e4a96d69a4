"""One backend call per dashboard artefact: maps, selections, interpolation.

The Streamlit pages call these functions and draw what they return; every
array operation of a view happens here, so it can be tested without a browser.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.embedding import Map2D, pca_map
from backend.groups import LatentCodes
from backend.interpolation import linear_path, nearest_rows, projected_path, section_path
from backend.latents import EncodedDataset
from backend.projections import ProjectionTags, make_projection


@dataclass(frozen=True)
class Maps:
    """Equivariant and invariant 2-D maps of one (model, node order, projection, seed).

    Attributes
    ----------
    raw : Map2D of the flattened raw codes (M, n * d).
    inv : Map2D of the projected codes (M, k).
    projected : ndarray (M, k), the invariant features ``s(z)``.
    tags : ProjectionTags of the projection for this action.
    invariance_error : float, max over the data set of ``||s(z_random) - s(z_stored)||``
        (the same molecule under two node orders; 0 up to float error for an
        invariant projection).
    """

    raw: Map2D
    inv: Map2D
    projected: np.ndarray
    tags: ProjectionTags
    invariance_error: float


def projection(projection_key: str, seed: int = 0, k: int = 0):
    """A new projection by key; ``k > 0`` sets the number of random templates where the
    projection has them (max filtering, sorted coorbits) and is ignored otherwise."""
    proj = make_projection(projection_key, seed)
    if k and "k" in proj.get_params():
        proj.set_params(k=int(k))
    return proj


def compute_maps(encoded: EncodedDataset, order: str, projection_key: str, seed: int = 0,
                 k: int = 0) -> Maps:
    """PCA maps of raw and projected codes, fitted once on the whole data set."""
    codes = encoded.codes(order)
    proj = projection(projection_key, seed, k).fit(codes)
    projected = proj.transform(codes)
    other = encoded.codes("stored" if order == "random" else "random")
    err = float(np.abs(proj.transform(other) - projected).max()) if len(codes) else 0.0
    return Maps(pca_map(codes.flat()), pca_map(projected), projected, proj.tags(), err)


@dataclass(frozen=True)
class Interpolation:
    """Both paths between two codes, decoded, and their positions on both maps.

    Attributes
    ----------
    raw_codes : LatentCodes (k, n, d), straight line between raw codes.
    inv_codes : LatentCodes (k, n, d) or None, straight line between cross-section
        representatives (None when the projection is not decodable).
    raw_decoded, inv_decoded : lists of decoded objects (length k).
    inv_nearest_rows : ndarray (k,) or None, nearest real sample at each step of the
        straight line in projected space (for non-decodable projections).
    raw_on_raw_map, raw_on_inv_map, inv_on_raw_map, inv_on_inv_map : (k, 2) coordinates.
    """

    raw_codes: LatentCodes
    inv_codes: LatentCodes | None
    raw_decoded: list
    inv_decoded: list | None
    inv_nearest_rows: np.ndarray | None
    raw_on_raw_map: np.ndarray
    raw_on_inv_map: np.ndarray
    inv_on_raw_map: np.ndarray
    inv_on_inv_map: np.ndarray


def interpolate(entry, encoded: EncodedDataset, maps: Maps, order: str, projection_key: str,
                z_a: LatentCodes, z_b: LatentCodes, steps: int, seed: int = 0, k: int = 0) -> Interpolation:
    """Decode the raw and the invariant path between codes ``z_a`` and ``z_b`` (batch size 1).

    For a cross-section projection the invariant path is decoded; otherwise
    each step of the straight line in projected space is replaced by the
    nearest real sample (``inv_nearest_rows``).
    """
    codes = encoded.codes(order)
    proj = projection(projection_key, seed, k).fit(codes)
    raw = linear_path(z_a, z_b, steps)
    raw_decoded = entry.decode(raw)
    raw_proj = proj.transform(raw)
    if proj.tags().cross_section:
        inv = section_path(z_a, z_b, proj, steps, align_to_each_other=True)
        inv_decoded = entry.decode(inv)
        inv_proj = proj.transform(inv)
        inv_flat = inv.flat()
        nearest = None
    else:
        inv = None
        inv_proj = projected_path(proj.transform(z_a)[0], proj.transform(z_b)[0], steps)
        nearest, _ = nearest_rows(inv_proj, maps.projected)
        inv_decoded = None
        inv_flat = codes.flat()[nearest]
    return Interpolation(
        raw_codes=raw, inv_codes=inv, raw_decoded=raw_decoded, inv_decoded=inv_decoded,
        inv_nearest_rows=nearest,
        raw_on_raw_map=maps.raw.transform(raw.flat()), raw_on_inv_map=maps.inv.transform(raw_proj),
        inv_on_raw_map=maps.raw.transform(inv_flat), inv_on_inv_map=maps.inv.transform(inv_proj))


def random_pair(n_rows: int, seed: int) -> tuple[int, int]:
    """Two distinct seeded random rows."""
    rng = np.random.default_rng(seed)
    a, b = rng.choice(n_rows, 2, replace=False)
    return int(a), int(b)


def selected_rows(points: list[dict]) -> list[int]:
    """Global row ids from a Plotly selection (``customdata[0]``), dropping path markers (< 0)."""
    rows = []
    for p in points:
        cd = p.get("customdata")
        if cd is None:
            continue
        row = int(cd[0] if isinstance(cd, (list, tuple)) else cd)
        if row >= 0:
            rows.append(row)
    return sorted(set(rows))


def endpoint(entry, encoded: EncodedDataset, order: str, row: int | None = None,
             text: str | None = None, seed: int = 0) -> tuple[LatentCodes, str, int | None]:
    """Code (1, ...) of an interpolation endpoint, a caption, and its data-set row (or None).

    Either a data-set ``row`` (its code under ``order``) or a typed ``text``
    (a SMILES for molecules, an image index for images) that the model entry
    resolves with ``endpoint_from_text``.

    Raises
    ------
    ValueError
        If neither or both of ``row`` and ``text`` are given.
    Exception
        The entry's ``text_errors`` for bad typed input (e.g.
        :class:`backend.data.qm9.MoleculeError` for an unparsable SMILES).
    """
    if (row is None) == (text is None):
        raise ValueError("give exactly one of row and text")
    if text is not None:
        return entry.endpoint_from_text(text, encoded, order, seed)
    return encoded.codes(order)[row], entry.describe_row(row)["title"], row


@dataclass(frozen=True)
class OrbitView:
    """One input acted on by many group elements, traced on both maps.

    Attributes
    ----------
    elements : ndarray (G, ...), the group elements applied to the input.
    codes : LatentCodes (G, ...), codes of the transformed inputs.
    raw_xy, inv_xy : (G, 2), positions on the equivariant and the invariant map.
    projected : (G, k), ``s(z)`` of each transformed input.
    invariance_error : float, max over the orbit of ``||s(z_g) - s(z_e)||`` (first
        element = identity) divided by the median norm of ``s`` over the data set
        (so 0.01 means 1 % of a typical code's size).
    invariance_error_abs : float, the same without the division.
    raw_spread : float, the same ratio for the raw codes (how far the orbit
        moves the equivariant code).
    """

    elements: np.ndarray
    codes: LatentCodes
    raw_xy: np.ndarray
    inv_xy: np.ndarray
    projected: np.ndarray
    invariance_error: float
    invariance_error_abs: float
    raw_spread: float


def orbit_view(entry, maps: Maps, encoded: EncodedDataset, order: str, projection_key: str, row: int,
               elements: np.ndarray, seed: int = 0, k: int = 0) -> OrbitView:
    """Encode the input at ``row`` transformed by each element; place the orbit on both maps.

    The first element should be the identity (the reference for the
    invariance error). Uses the model entry's ``encode_transformed``.
    """
    codes = entry.encode_transformed(row, elements)
    proj = projection(projection_key, seed, k).fit(encoded.codes(order))
    projected = proj.transform(codes)
    scale_s = float(np.median(np.linalg.norm(maps.projected, axis=1))) or 1.0
    flat_all = encoded.codes(order).flat()
    scale_z = float(np.median(np.linalg.norm(flat_all, axis=1))) or 1.0
    err = float(np.linalg.norm(projected - projected[:1], axis=1).max())
    spread = float(np.linalg.norm(codes.flat() - codes.flat()[:1], axis=1).max())
    return OrbitView(np.asarray(elements), codes, maps.raw.transform(codes.flat()),
                     maps.inv.transform(projected), projected, err / scale_s, err, spread / scale_z)
