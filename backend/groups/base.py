"""The interface every group action on latent codes implements, and its one error.

A *group action* ``G x Z -> Z`` says how a symmetry of the input moves the latent code of an
equivariant model. Each action (one file per group in this package) offers ``act``, ``identity``,
``compose``, ``inverse``, ``random_element``, ``testing_elements``, an exact ``align`` (the group
element that brings one code closest to another) and the exact ``quotient_distance``
``d([z1], [z2]) = min_g ||z1 - g.z2||`` on the quotient space ``Z/G``; both go through the one
``align``, as in geomstats' quotient metrics.

Source: Hansen, Calissano & Feragen, "Interpreting Equivariant Representations", ICML 2024, Sec. 3-4.
"""

from __future__ import annotations

import numpy as np


class ActionMismatchError(ValueError):
    """Two operands carry different group actions (or codes of the wrong shape)."""


class GroupAction:
    """Interface of a group action on codes of shape (B, *code_shape)."""

    code_shape: tuple[int, ...] = ()
    name: str = "action"

    def act(self, z: np.ndarray, g: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def check_codes(self, z: np.ndarray) -> np.ndarray:
        """``z`` as a float array of shape (B, *code_shape).

        Raises
        ------
        ActionMismatchError
            If the trailing shape is not ``code_shape``.
        """
        z = np.asarray(z)
        if z.ndim != len(self.code_shape) + 1 or tuple(z.shape[1:]) != tuple(self.code_shape):
            raise ActionMismatchError(
                f"{self!r} acts on codes of shape (B, {', '.join(map(str, self.code_shape))}); "
                f"got {z.shape}")
        return z

    def quotient_distance(self, z1: np.ndarray, z2: np.ndarray) -> np.ndarray:
        """Exact quotient distance ``min_g ||z1 - g.z2||`` (Frobenius), shape (B,).

        Pairs are matched by batch position; ``z1`` and ``z2`` have shape
        (B, *code_shape).
        """
        z1 = self.check_codes(z1)
        aligned, _ = self.align(z2, z1)
        return np.sqrt(((z1 - aligned) ** 2).reshape(len(z1), -1).sum(1))

    def orbit(self, z: np.ndarray, elements: np.ndarray) -> np.ndarray:
        """Codes ``g.z`` of one code ``z`` (shape code_shape) for each element: (G, *code_shape)."""
        z = np.asarray(z)
        return self.act(np.broadcast_to(z, (len(elements),) + z.shape), elements)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.code_shape == other.code_shape

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.code_shape))
