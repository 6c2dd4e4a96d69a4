"""What every invariant projection shares: its tags, its input checks, its catalogue entry.

An invariant projection ``s: Z -> Z_s`` with ``s(g.z) = s(z)`` is a scikit-learn transformer
that takes :class:`~backend.groups.LatentCodes` (which carry their group action) and returns a
plain (B, k) float array. It declares what it keeps as :class:`ProjectionTags`:

* *invariant*: ``s(g.z) = s(z)`` for every group element;
* *lossless*: separates orbits (``s(z1) = s(z2)`` only if ``[z1] = [z2]``);
* *isometric*: ``||s(z1) - s(z2)|| = d([z1], [z2])``, the exact quotient distance;
* *cross_section*: ``s(z)`` is (a flattening of) a point on the orbit of ``z``,
  given by ``section(codes)``, so the decoder can take it ("decodable").

Conventions follow scikit-learn: the constructor stores keyword arguments only; ``fit``
validates and sets trailing-underscore attributes; ``transform`` is pure and raises
``NotFittedError`` before ``fit``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import NotFittedError

from backend.groups import GroupAction, LatentCodes


@dataclass(frozen=True)
class ProjectionTags:
    """What an invariant projection keeps; shown in the UI and read by the test generator."""

    invariant: bool = True
    lossless: bool = False
    isometric: bool = False
    cross_section: bool = False
    exact: bool = True  # invariance holds to float precision (not only approximately)

    def labels(self) -> list[str]:
        """Human-readable flags, e.g. ``['invariant', 'lossless', 'isometric', 'decodable']``."""
        names = {"invariant": "invariant", "lossless": "lossless", "isometric": "isometric",
                 "cross_section": "decodable (cross-section)"}
        return [label for key, label in names.items() if getattr(self, key)]


class UnsupportedActionError(TypeError):
    """The projection is not defined for this group action."""


class InvariantProjectionMixin:
    """Shared plumbing: fit bookkeeping, input checks, tags, feature names."""

    supported_actions: tuple[type, ...] = (GroupAction,)

    def _check_codes(self, codes) -> LatentCodes:
        if not isinstance(codes, LatentCodes):
            raise TypeError(
                f"{type(self).__name__} expects LatentCodes (values + group action), "
                f"got {type(codes).__name__}")
        if not isinstance(codes.action, self.supported_actions):
            raise UnsupportedActionError(
                f"{type(self).__name__} is defined for {[a.__name__ for a in self.supported_actions]}, "
                f"not {codes.action!r}")
        return codes

    def fit(self, codes: LatentCodes, y=None):
        """Record the action and input size; returns ``self``."""
        codes = self._check_codes(codes)
        self.action_ = codes.action
        self.n_features_in_ = int(np.prod(codes.action.code_shape))
        self._fit(codes)
        return self

    def _fit(self, codes: LatentCodes) -> None:
        """Hook for projections with fitted state (templates, references)."""

    def _check_fitted(self, codes: LatentCodes) -> LatentCodes:
        if not hasattr(self, "action_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(codes) first")
        codes = self._check_codes(codes)
        if codes.action != self.action_:
            raise UnsupportedActionError(f"fitted on {self.action_!r}, got {codes.action!r}")
        return codes

    def tags(self, action: GroupAction | None = None) -> ProjectionTags:
        """Tags for ``action`` (default: the fitted one)."""
        action = action if action is not None else getattr(self, "action_", None)
        if action is None:
            raise NotFittedError("tags depend on the action: pass it or fit first")
        return self._tags(action)

    def _tags(self, action: GroupAction) -> ProjectionTags:  # pragma: no cover - interface
        raise NotImplementedError

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        """``<classname lowercase><i>`` for each output column."""
        k = self._n_out(self.action_)
        prefix = type(self).__name__.lower()
        return np.array([f"{prefix}{i}" for i in range(k)], dtype=object)

    def _n_out(self, action: GroupAction) -> int:  # pragma: no cover - interface
        raise NotImplementedError


class _ReductionMixin:
    """Shared part of the pooling projections: validate ``reduce`` in ``fit``; lossy tags."""

    _reductions: tuple[str, ...] = ()

    def _fit(self, codes) -> None:
        if self.reduce not in self._reductions:
            raise ValueError(f"reduce must be one of {self._reductions}, got {self.reduce!r}")

    def _tags(self, action) -> ProjectionTags:
        return ProjectionTags(invariant=True, lossless=False, isometric=False, cross_section=False)


@dataclass(frozen=True)
class ProjectionSpec:
    """A named, user-facing projection: factory plus description for the UI."""

    key: str
    label: str
    make: object  # callable(seed: int) -> projection
    actions: tuple[type, ...]
    description: str
