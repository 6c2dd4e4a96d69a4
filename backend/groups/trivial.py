"""The trivial latent action: one element, the identity, on codes (B, D, 1).

For a network with no known latent group action (a plain CNN trained with rotation
augmentation): rotating its input moves its code in a way no latent action describes, so the only
honest latent symmetry is the trivial one. Orbits are single points, the quotient distance is the
Euclidean distance and every projection is invariant; invariance to input rotations has to come
from the input side (orbit averaging, :func:`backend.train.rotmnist.orbit_spread`).

A class of its own, not C_1: nothing that asks for a cyclic action (``isinstance(a,
CyclicShiftAction)``, the C_N projections) takes it.
"""

from __future__ import annotations

import numpy as np

from backend.groups.base import GroupAction


class TrivialAction(GroupAction):
    """The one-element group acting on codes (B, D, 1): every element is the identity.

    Elements are the integer ``0`` (one for the whole batch) or an integer array of zeros of shape
    (B,), so code written for the integer elements of :class:`~backend.groups.CyclicShiftAction`
    needs no special case. The codes keep the trailing axis of length 1 of the codes cache and of
    uploaded ``(M, D)`` codes.

    Parameters
    ----------
    D : int
        Code size, ``D >= 1``.

    Raises
    ------
    ValueError
        If ``D < 1``.

    Examples
    --------
    >>> a = TrivialAction(3)
    >>> z = np.arange(6.).reshape(2, 3, 1)
    >>> a.quotient_distance(z[:1], z[1:])  # Euclidean
    array([5.19615242])
    """

    name = "trivial"

    def __init__(self, D: int):
        self.D = int(D)
        if self.D < 1:
            raise ValueError(f"TrivialAction needs D >= 1, got {D}")
        self.code_shape = (self.D, 1)

    def __repr__(self) -> str:
        return f"TrivialAction(D={self.D})"

    @property
    def identity(self) -> int:
        """The only element, ``0``."""
        return 0

    @staticmethod
    def _elements(g) -> np.ndarray:
        g = np.asarray(g)
        if not np.issubdtype(g.dtype, np.integer):
            raise TypeError(f"elements of the trivial group are the integer 0, got dtype {g.dtype}")
        if g.ndim > 1 or np.any(g != 0):
            raise ValueError("the trivial group has one element, 0 (shape () or (B,))")
        return g

    def act(self, z: np.ndarray, g=0) -> np.ndarray:
        """A copy of ``z`` (B, D, 1): the identity acts.

        Raises
        ------
        ActionMismatchError
            If ``z`` is not (B, D, 1).
        TypeError, ValueError
            If ``g`` is not ``0`` or an array of zeros of length ``B``.
        """
        z = self.check_codes(z)
        g = self._elements(g)
        if g.ndim == 1 and len(g) != len(z):
            raise ValueError(f"{len(g)} elements for {len(z)} codes")
        return z.copy()

    def compose(self, g, h):
        """``0`` (broadcast like numpy addition)."""
        return np.zeros(np.broadcast_shapes(np.shape(g), np.shape(h)), dtype=np.int64)

    def inverse(self, g):
        """``0``, same shape as ``g``."""
        return np.zeros(np.shape(g), dtype=np.int64)

    def random_element(self, rng: np.random.Generator, size: int | None = None):
        """``0``, or ``size`` zeros (size,); draws nothing from ``rng``."""
        return np.int64(0) if size is None else np.zeros(size, dtype=np.int64)

    def testing_elements(self, rng: np.random.Generator | None = None, n_random: int = 0) -> np.ndarray:
        """The whole group, ``[0]``."""
        return np.zeros(1, dtype=np.int64)

    def align(self, z: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(copy of z, zeros (B,))``: nothing to align; checks both shapes."""
        z = self.check_codes(z)
        ref = np.asarray(ref)
        self.check_codes(ref[None] if ref.ndim == 2 else ref)
        return z.copy(), np.zeros(len(z), dtype=np.int64)
