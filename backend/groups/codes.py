"""Latent codes that carry their group action (the e2cnn ``GeometricTensor`` rule).

:class:`LatentCodes` is a frozen batch of codes that knows its action, so callers never say which
axis to permute; ``.flat()`` gives the (B, D) array for PCA.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backend.groups.base import ActionMismatchError, GroupAction


@dataclass(frozen=True)
class LatentCodes:
    """A batch of latent codes that carries its group action.

    Parameters
    ----------
    values : ndarray of shape (B, *action.code_shape), float32
        E.g. (B, n, d) for per-node codes.
    action : GroupAction
    mask : ndarray of shape (B, n), bool, optional
        For padded molecules: which node slots hold a real atom. Permuted with
        the codes; never used by the group maths (padded slots are acted on
        like the others).

    Only batch indexing is allowed (``codes[3]``, ``codes[idx]``). ``+``, ``-``
    and scalar ``*`` give new codes with the same action; combining codes with
    different actions raises :class:`ActionMismatchError`.
    """

    values: np.ndarray
    action: GroupAction
    mask: np.ndarray | None = field(default=None)

    def __post_init__(self):
        vals = np.asarray(self.values, dtype=np.float32)
        self.action.check_codes(vals)
        vals = vals.copy() if vals.flags.writeable else vals
        vals.flags.writeable = False
        object.__setattr__(self, "values", vals)
        if self.mask is not None:
            m = np.asarray(self.mask, dtype=bool)
            if m.shape != vals.shape[:2]:
                raise ActionMismatchError(f"mask shape {m.shape} != codes' {vals.shape[:2]}")
            object.__setattr__(self, "mask", m)

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, idx) -> "LatentCodes":
        if isinstance(idx, tuple):
            raise IndexError("LatentCodes allows batch indexing only")
        if isinstance(idx, (int, np.integer)):
            idx = [int(idx)]
        return LatentCodes(self.values[idx], self.action,
                           None if self.mask is None else self.mask[idx])

    def flat(self) -> np.ndarray:
        """Read-only (B, D) view of the values, D = prod(code_shape)."""
        return self.values.reshape(len(self.values), -1)

    def act(self, g: np.ndarray) -> "LatentCodes":
        """New codes ``g . z`` (mask moved along)."""
        mask = None
        if self.mask is not None and hasattr(self.action, "act_mask"):
            mask = self.action.act_mask(self.mask, g)
        return LatentCodes(self.action.act(self.values, g), self.action, mask)

    def _check(self, other: "LatentCodes") -> None:
        if not isinstance(other, LatentCodes) or other.action != self.action:
            raise ActionMismatchError(f"cannot combine codes of {self.action!r} with {other!r}")

    def __add__(self, other: "LatentCodes") -> "LatentCodes":
        self._check(other)
        return LatentCodes(self.values + other.values, self.action)

    def __sub__(self, other: "LatentCodes") -> "LatentCodes":
        self._check(other)
        return LatentCodes(self.values - other.values, self.action)

    def __mul__(self, scalar: float) -> "LatentCodes":
        return LatentCodes(self.values * float(scalar), self.action)

    __rmul__ = __mul__
