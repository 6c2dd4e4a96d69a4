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
    tags : ProjectionTags of the projection for this action (declared, w.r.t. the
        latent action).
    invariance_error : float, max over the data set of ``||s(z_random) - s(z_stored)||``
        (the same input under two presentations; 0 up to float error for an
        invariant projection of an exactly equivariant encoder), in the units of ``s``.
    invariance_rel_median, invariance_rel_max, invariance_rel_p90 : float, median, max and
        90th percentile over the data set of ``||s(z_random) - s(z_stored)||`` divided by
        ``typical_distance``.
    typical_distance : float, median of ``||s(z_i) - s(z_j)||`` over random pairs of
        different inputs: the scale against which an invariance error is small or large.
    trivial_action : bool, the model has no latent group action (the "projection" is
        the identity, so nothing about it is invariant to input transformations).
    latent_acted_check : float or None, copied from the codes
        (:attr:`backend.latents.EncodedDataset.latent_acted_check`): when set, the
        re-presented codes were made by the latent action, not encoded, so the movement
        measures the projection alone and the encoder's equivariance only on the sample.
    """

    raw: Map2D
    inv: Map2D
    projected: np.ndarray
    tags: ProjectionTags
    invariance_error: float
    invariance_rel_median: float = float("nan")
    invariance_rel_max: float = float("nan")
    typical_distance: float = float("nan")
    trivial_action: bool = False
    invariance_rel_p90: float = float("nan")
    latent_acted_check: float | None = None

    @property
    def measured_invariant(self) -> bool:
        """The map is invariant as measured: the projection is declared invariant to a
        non-trivial latent action and re-presented inputs move ``s`` by at most 5 % of
        the typical distance between two inputs for 9 in 10 inputs (90th percentile over
        the data set; the median where the percentile was not measured).

        The 5 % tolerance admits small residual errors; an exact encoder measures ~1e-7.
        The 90th percentile, not the median: a C_8 presentation draws multiples of 45°, half
        of which (multiples of 90°) are exact symmetries of the pixel grid, so the median
        would fall on the exact half or the approximate half by the luck of the seed.
        """
        level = self.invariance_rel_p90_or_median
        return bool(self.tags.invariant and not self.trivial_action and np.isfinite(level) and level <= 0.05)

    @property
    def invariance_rel_p90_or_median(self) -> float:
        """The 90th percentile of the relative movement, or the median where it was not measured."""
        return self.invariance_rel_p90 if np.isfinite(self.invariance_rel_p90) else self.invariance_rel_median


def typical_distance(features: np.ndarray, pairs: int = 2000, seed: int = 0) -> float:
    """Median Euclidean distance between ``pairs`` random pairs of distinct rows of ``features``.

    Parameters
    ----------
    features : ndarray (M, k).
    pairs : number of random pairs (seeded).

    Returns
    -------
    float (0.0 when fewer than two rows or all rows equal; callers guard the division).
    """
    m = len(features)
    if m < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    i = rng.integers(0, m, pairs)
    j = (i + rng.integers(1, m, pairs)) % m
    return float(np.median(np.linalg.norm(features[i] - features[j], axis=1)))


def projection(projection_key: str, seed: int = 0, k: int = 0):
    """A new projection by key; ``k > 0`` sets the number of random templates where the
    projection has them (max filtering, sorted coorbits) and is ignored otherwise."""
    proj = make_projection(projection_key, seed)
    if k and "k" in proj.get_params():
        proj.set_params(k=int(k))
    return proj


#: codes per chunk when projecting a whole data set (memory: one chunk's temporaries)
_CHUNK = 65_536


def _transform_chunked(proj, codes: LatentCodes) -> np.ndarray:
    """``proj.transform(codes)`` chunk by chunk into one preallocated array (B, k).

    Every projection transforms each code on its own (the same result as one call), so
    the temporaries of one chunk are all that is held besides the output: sorting 10 M
    codes (9, 1) in one call held about 0.7 GB more.
    """
    if len(codes) <= _CHUNK:
        return proj.transform(codes)
    first = proj.transform(codes[0:_CHUNK])
    out = np.empty((len(codes),) + first.shape[1:], dtype=first.dtype)
    out[:_CHUNK] = first
    for start in range(_CHUNK, len(codes), _CHUNK):
        out[start:start + _CHUNK] = proj.transform(codes[start:start + _CHUNK])
    return out


def compute_maps(encoded: EncodedDataset, order: str, projection_key: str, seed: int = 0,
                 k: int = 0) -> Maps:
    """PCA maps of raw and projected codes, fitted once on the whole data set, and the
    measured invariance of the projection (same inputs, both presentations).

    Raises
    ------
    UnsupportedActionError
        If the projection is not defined for the codes' action.
    """
    from backend.groups import TrivialAction

    codes = encoded.codes(order)
    proj = projection(projection_key, seed, k).fit(codes)
    projected = _transform_chunked(proj, codes)
    other = encoded.codes("stored" if order == "random" else "random")
    if len(codes):
        # chunked, so the check holds one chunk of the other presentation's features at a time
        moved = np.empty(len(codes))
        for start in range(0, len(codes), _CHUNK):
            part = slice(start, start + _CHUNK)
            moved[part] = np.linalg.norm(proj.transform(other[part]) - projected[part], axis=1)
        scale = typical_distance(projected)
        err = float(moved.max())
        rel_med = float(np.median(moved) / scale) if scale > 0 else float("nan")
        rel_max = float(moved.max() / scale) if scale > 0 else float("nan")
        rel_p90 = float(np.percentile(moved, 90) / scale) if scale > 0 else float("nan")
    else:
        err, rel_med, rel_max, scale, rel_p90 = 0.0, float("nan"), float("nan"), float("nan"), float("nan")
    return Maps(pca_map(codes.flat()), pca_map(projected), projected, proj.tags(), err,
                rel_med, rel_max, scale, isinstance(codes.action, TrivialAction), invariance_rel_p90=rel_p90,
                latent_acted_check=getattr(encoded, "latent_acted_check", None))


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
    raw_constrained, inv_constrained : lists (length k) of the entry's constrained decodes
        (e.g. the most probable valid molecule), or None when the family has none or the
        path is not decodable. Shown next to the model's own decodes, never instead of them.
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
    raw_constrained: list | None = None
    inv_constrained: list | None = None


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
        inv_on_raw_map=maps.raw.transform(inv_flat), inv_on_inv_map=maps.inv.transform(inv_proj),
        raw_constrained=entry.decode_constrained(raw),
        inv_constrained=entry.decode_constrained(inv) if inv is not None else None)


def random_pair(n_rows: int, seed: int) -> tuple[int, int]:
    """Two distinct seeded random rows."""
    rng = np.random.default_rng(seed)
    a, b = rng.choice(n_rows, 2, replace=False)
    return int(a), int(b)


def _first_number(value):
    """The first scalar of a ``customdata`` value in any form a Plotly selection delivers it.

    Streamlit 1.67 in a real browser sends a row of a 2-D typed ``customdata``
    array as a dict keyed by position (``{"0": 94, "1": 94}``); Python-side
    figures and older versions give a list or tuple; a 1-D ``customdata``
    gives a bare number (possibly as a string). Returns None for anything
    without a number.
    """
    while isinstance(value, (list, tuple, dict)):
        if isinstance(value, dict):
            if not value:
                return None
            keys = sorted(value, key=lambda k: (not str(k).lstrip("-").isdigit(),
                                                int(k) if str(k).lstrip("-").isdigit() else 0, str(k)))
            value = value[keys[0]]
        else:
            if not value:
                return None
            value = value[0]
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if np.isfinite(number) else None


def selected_rows(points) -> list[int]:
    """Global row ids of a Plotly selection event, sorted and without duplicates.

    Parameters
    ----------
    points : list of dict, ``event.selection.points`` from ``st.plotly_chart``.
        Each point's ``customdata`` holds the row id, as a number (lean maps:
        1-D customdata), a list/tuple, or a dict keyed by position (what the
        browser sends for 2-D typed arrays); path and orbit markers carry
        negative ids and are dropped, as are points without customdata.

    Returns
    -------
    list of int, the selected rows (>= 0).
    """
    rows = set()
    for p in points or []:
        if not isinstance(p, dict):
            continue
        row = _first_number(p.get("customdata"))
        if row is not None and row >= 0:
            rows.add(row)
    return sorted(rows)


def selection_table(table, rows, columns, option=None, maps: Maps | None = None):
    """The selected rows as a table: ``row`` (global row id), the given ``columns``, the colour
    in its display unit (column ``"<key> [<unit>]"``, e.g. ``gap [eV]`` converted from the stored
    Hartree, never the raw stored value under a bare name) and, with ``maps``, the coordinates
    on both maps (``raw_pc1, raw_pc2, inv_pc1, inv_pc2``).

    Parameters
    ----------
    table : DataFrame, the data set's table (M rows).
    rows : sequence of int in ``0..M-1``.
    columns : table columns to include as stored (ids, labels, split).
    option : the colour option (``backend.registry.ColorOption``) or None.
    maps : Maps whose coordinates are added, or None.
    """
    from backend.plots import color_column

    rows = np.asarray(rows, dtype=np.int64)
    keep = [c for c in columns if option is None or c != option.key]
    out = table.iloc[rows][keep].copy().reset_index(drop=True)
    out.insert(0, "row", rows)
    if option is not None:
        values, title = color_column(table.iloc[rows], option)
        out[title] = values
    if maps is not None:
        for name, m in (("raw", maps.raw), ("inv", maps.inv)):
            out[f"{name}_pc1"] = m.coords[rows, 0]
            out[f"{name}_pc2"] = m.coords[rows, 1]
    return out


def selection_csv(table, rows, columns, maps: Maps, option=None) -> str:
    """CSV text of :func:`selection_table` with both maps' coordinates."""
    return selection_table(table, rows, columns, option, maps).to_csv(index=False)


def validity(decoded: list) -> list[bool] | None:
    """Validity of each decoded step for the path figures, or None when it means nothing
    (every item's ``valid`` is None, e.g. images: no step is drawn as invalid)."""
    if all(getattr(d, "valid", None) is None for d in decoded):
        return None
    return [bool(d.valid) for d in decoded]


def endpoint(entry, encoded: EncodedDataset, order: str, row: int | None = None,
             text: str | None = None, seed: int = 0,
             upload: tuple | None = None) -> tuple[LatentCodes, str, int | None]:
    """Code (1, ...) of an interpolation endpoint, a caption, and its data-set row (or None).

    Either a data-set ``row`` (its code under ``order``), a typed ``text``
    (a SMILES for molecules, an image index for images) that the model entry
    resolves with ``endpoint_from_text``, or a user's uploaded input
    ``upload = (digest, index)`` (:func:`backend.user_inputs.endpoint`).

    Raises
    ------
    ValueError
        If not exactly one of ``row``, ``text`` and ``upload`` is given.
    Exception
        The entry's ``text_errors`` for bad typed input (e.g.
        :class:`backend.data.qm9.MoleculeError` for an unparsable SMILES);
        :class:`backend.user_inputs.UnknownInputsError` for an upload no longer held.
    """
    if sum(x is not None for x in (row, text, upload)) != 1:
        raise ValueError("give exactly one of row, text and upload")
    if upload is not None:
        from backend import user_inputs

        return user_inputs.endpoint(entry, encoded, order, upload, seed)
    if text is not None:
        return entry.endpoint_from_text(text, encoded, order, seed)
    return encoded.codes(order)[row], entry.describe_row(row)["title"], row


@dataclass(frozen=True)
class OrbitView:
    """One input acted on by many group elements, traced on both maps.

    Attributes
    ----------
    elements : GroupElements (G), the typed input-group elements applied to the input
        (:class:`~backend.families.base.Permutations`, :class:`~backend.families.base.Angles`).
    codes : LatentCodes (G, ...), codes of the transformed inputs.
    raw_xy, inv_xy : (G, 2), positions on the equivariant and the invariant map.
    projected : (G, k), ``s(z)`` of each transformed input.
    invariance_error : float, max over the orbit of ``||s(z_g) - s(z_e)||`` (first
        element = identity) divided by the typical distance between the projections
        of two different inputs (``Maps.typical_distance``; 0.01 means 1 % of it).
    invariance_error_abs : float, the same without the division.
    raw_spread : float, max over the orbit of ``||z_g - z_e||`` divided by the
        typical distance between the raw codes of two different inputs (how far the
        orbit moves the equivariant code).
    """

    elements: object
    codes: LatentCodes
    raw_xy: np.ndarray
    inv_xy: np.ndarray
    projected: np.ndarray
    invariance_error: float
    invariance_error_abs: float
    raw_spread: float


def orbit_view(entry, maps: Maps, encoded: EncodedDataset, order: str, projection_key: str, row: int | None,
               elements, seed: int = 0, k: int = 0, inputs=None) -> OrbitView:
    """Encode the input at ``row`` transformed by each element; place the orbit on both maps.

    ``elements`` are the input action's typed elements (or an array in its unit: slot orders
    (G, n), radians (G,)). The first should be the identity (the reference for the invariance
    error). Uses the model entry's ``encode_transformed``; with ``inputs`` (a batch of one of
    the domain's inputs, e.g. a user's uploaded molecule) that input is transformed instead
    of the data set's ``row``.
    """
    elements = entry.input_action.as_elements(elements)
    if inputs is None:
        codes = entry.encode_transformed(row, elements)
    else:
        codes = entry.encode_inputs(entry.input_action.act(inputs, elements))
    proj = projection(projection_key, seed, k).fit(encoded.codes(order))
    projected = proj.transform(codes)
    scale_s = maps.typical_distance if np.isfinite(maps.typical_distance) and maps.typical_distance > 0 \
        else typical_distance(maps.projected) or 1.0
    scale_z = typical_distance(encoded.codes(order).flat()) or 1.0
    err = float(np.linalg.norm(projected - projected[:1], axis=1).max())
    spread = float(np.linalg.norm(codes.flat() - codes.flat()[:1], axis=1).max())
    return OrbitView(elements, codes, maps.raw.transform(codes.flat()),
                     maps.inv.transform(projected), projected, err / scale_s, err, spread / scale_z)
