"""Paths between two codes: in the latent space Z and in the quotient via a cross-section.

* Raw path: the straight line ``(1 - t) z1 + t z2`` between the codes as the
  encoder produced them (depends on how each input was presented).
* Invariant path: the straight line between ``s(z1)`` and ``s(z2)`` for a
  cross-section ``s``, the end moved along its orbit to be closest to the start. For sorting with d = 1 the sorted codes form a convex
  cone, so this line stays sorted and is a geodesic of the quotient space
  (Hansen, Calissano & Feragen, ICML 2024, Sec. 4.1); every point on it is a
  code the decoder can take.
* For projections that are not cross-sections there is nothing to decode: the
  straight line in projected space is shown by its nearest real samples.
"""

from __future__ import annotations

import numpy as np

from backend.groups import LatentCodes


def linear_path(z1: LatentCodes, z2: LatentCodes, steps: int) -> LatentCodes:
    """``steps`` codes evenly spaced from ``z1`` to ``z2`` (both of batch size 1), (steps, ...).

    Raises
    ------
    ValueError
        If ``steps < 2`` or a code is not a single sample.
    ActionMismatchError
        If the two codes carry different actions.
    """
    if steps < 2:
        raise ValueError(f"a path needs at least 2 steps, got {steps}")
    if len(z1) != 1 or len(z2) != 1:
        raise ValueError("linear_path takes two single codes (batch size 1)")
    z1._check(z2)
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32).reshape((steps,) + (1,) * (z1.values.ndim - 1))
    return LatentCodes((1 - t) * z1.values + t * z2.values, z1.action)


def section_path(z1: LatentCodes, z2: LatentCodes, projection, steps: int,
                 align_to_each_other: bool = True) -> LatentCodes:
    """Straight line between cross-section representatives of ``z1`` and ``z2``.

    ``section(z1)`` is the start; the end is ``section(z2)`` moved along its
    orbit to be closest to the start (``action.align``, exact), so the line is
    a geodesic of the quotient space between the two orbits. For sorting with
    d = 1 the alignment changes nothing (sorted codes are already optimally
    aligned, rearrangement inequality); for C_N orbit alignment it turns two
    codes aligned to a common reference into codes aligned to each other.
    With ``align_to_each_other=False`` both ends are the plain section.

    ``projection`` must be fitted and offer ``section`` (its tags say
    ``cross_section``); otherwise ``TypeError``.
    """
    if not hasattr(projection, "section"):
        raise TypeError(f"{type(projection).__name__} is not a cross-section: nothing to decode")
    s1, s2 = projection.section(z1), projection.section(z2)
    if align_to_each_other:
        aligned, _ = s1.action.align(s2.values, s1.values)
        s2 = LatentCodes(aligned, s1.action)
    return linear_path(LatentCodes(s1.values, s1.action), s2, steps)


def projected_path(p1: np.ndarray, p2: np.ndarray, steps: int) -> np.ndarray:
    """Straight line between two projected codes (D,) -> (steps, D)."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    return (1 - t) * np.asarray(p1, dtype=np.float64) + t * np.asarray(p2, dtype=np.float64)


def nearest_rows(points: np.ndarray, data: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Row of ``data`` (M, D) nearest to each of ``points`` (k, D) and the Euclidean distance.

    Used where a path cannot be decoded: each step is shown by the nearest real sample.
    """
    points = np.asarray(points, dtype=np.float64)
    best = np.full(len(points), np.inf)
    arg = np.zeros(len(points), dtype=np.int64)
    p2 = (points ** 2).sum(1)
    for start in range(0, len(data), chunk):
        block = np.asarray(data[start:start + chunk], dtype=np.float64)
        d2 = p2[:, None] - 2 * points @ block.T + (block ** 2).sum(1)[None, :]
        j = d2.argmin(1)
        better = d2[np.arange(len(points)), j] < best
        best[better] = d2[np.arange(len(points)), j][better]
        arg[better] = start + j[better]
    return arg, np.sqrt(np.maximum(best, 0.0))
