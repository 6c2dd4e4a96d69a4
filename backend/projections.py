"""Invariant projections ``s: Z -> Z_s`` with ``s(g.z) = s(z)``, as scikit-learn transformers.

Each projection takes :class:`~backend.groups.LatentCodes` (which carry their
group action) and returns a plain (B, k) float array. It declares what it
keeps as :class:`ProjectionTags`:

* *invariant*: ``s(g.z) = s(z)`` for every group element;
* *lossless*: separates orbits (``s(z1) = s(z2)`` only if ``[z1] = [z2]``);
* *isometric*: ``||s(z1) - s(z2)|| = d([z1], [z2])``, the exact quotient distance;
* *cross_section*: ``s(z)`` is (a flattening of) a point on the orbit of ``z``,
  given by ``section(codes)``, so the decoder can take it ("decodable").

For S_n on per-node codes (B, n, d):

=======================  =========  ========  =========  =============
projection               invariant  lossless  isometric  cross-section
=======================  =========  ========  =========  =============
sort (d = 1)             yes        yes       yes        yes
sort, lexicographic rows yes        yes       no         yes
sort each channel        yes        d = 1     d = 1      d = 1
sum / mean / max pool    yes        no        no         no
=======================  =========  ========  =========  =============

Sorting a code with d = 1 is an isometric cross-section: by the
rearrangement inequality ``||sort(z1) - sort(z2)|| = min_sigma ||z1 -
sigma.z2||`` (Hansen, Calissano & Feragen, ICML 2024, Sec. 4.1).

Conventions follow scikit-learn: the constructor stores keyword arguments
only; ``fit`` validates and sets trailing-underscore attributes; ``transform``
is pure and raises ``NotFittedError`` before ``fit``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError

from backend.groups import GroupAction, LatentCodes, PermutationAction


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


class SortProjection(InvariantProjectionMixin, TransformerMixin, BaseEstimator):
    """Sort the per-node codes: an invariant cross-section for S_n.

    For ``d = 1`` the nodes are sorted by value (ascending); this is an
    isometric cross-section (rearrangement inequality). For ``d > 1`` rows are
    sorted lexicographically (first channel, then the next to break ties): still
    a cross-section and lossless, not isometric.

    ``transform``: (B, n, d) codes -> (B, n * d) array. ``section``: the sorted
    codes themselves, on the input's orbit, for decoding.

    Source: Hansen, Calissano & Feragen, ICML 2024, Sec. 4.1.
    """

    supported_actions = (PermutationAction,)

    def __init__(self):
        pass

    def _tags(self, action) -> ProjectionTags:
        return ProjectionTags(invariant=True, lossless=True, isometric=action.d == 1,
                              cross_section=True)

    def _n_out(self, action) -> int:
        return action.n * action.d

    def sorting_permutation(self, codes: LatentCodes) -> np.ndarray:
        """The permutation (B, n) that sorts each code (stable, lexicographic by channel)."""
        v = codes.values  # (B, n, d)
        if v.shape[2] == 1:
            return np.argsort(v[:, :, 0], axis=1, kind="stable")
        # np.lexsort sorts by the last key first: pass channels in reverse order.
        return np.stack([np.lexsort(v[b].T[::-1]) for b in range(len(v))])

    def section(self, codes: LatentCodes) -> LatentCodes:
        """Codes moved to the cross-section: the sorted representative of each orbit."""
        codes = self._check_fitted(codes)
        return codes.act(self.sorting_permutation(codes))

    def transform(self, codes: LatentCodes) -> np.ndarray:
        """(B, n * d) float32 array of sorted codes."""
        return self.section(codes).flat().copy()


class ChannelSortProjection(InvariantProjectionMixin, TransformerMixin, BaseEstimator):
    """Sort each latent channel over the nodes separately: invariant, lossy for d > 1.

    Output (B, n * d), channel-major. It forgets which values sat on the same
    node, so two different orbits can coincide; it is 1-Lipschitz for the
    quotient distance. For d = 1 it equals :class:`SortProjection`.
    """

    supported_actions = (PermutationAction,)

    def __init__(self):
        pass

    def _tags(self, action) -> ProjectionTags:
        one = action.d == 1
        return ProjectionTags(invariant=True, lossless=one, isometric=one, cross_section=one)

    def _n_out(self, action) -> int:
        return action.n * action.d

    def section(self, codes: LatentCodes) -> LatentCodes:
        """Only for d = 1 (where this is sorting); raises otherwise."""
        codes = self._check_fitted(codes)
        if codes.action.d != 1:
            raise UnsupportedActionError("per-channel sorting is a cross-section only for d = 1")
        return SortProjection().fit(codes).section(codes)

    def transform(self, codes: LatentCodes) -> np.ndarray:
        """(B, n * d) array: each channel's node values sorted ascending."""
        codes = self._check_fitted(codes)
        s = np.sort(codes.values, axis=1)  # (B, n, d)
        return np.ascontiguousarray(s.transpose(0, 2, 1)).reshape(len(s), -1)


class PoolingProjection(InvariantProjectionMixin, TransformerMixin, BaseEstimator):
    """Sum, mean or max over the node axis: the lossy baseline (a DeepSets readout).

    Parameters
    ----------
    reduce : {"sum", "mean", "max"}, default="mean"

    ``transform``: (B, n, d) -> (B, d).
    """

    supported_actions = (PermutationAction,)
    _reductions = ("sum", "mean", "max")

    def __init__(self, *, reduce: str = "mean"):
        self.reduce = reduce

    def _fit(self, codes) -> None:
        if self.reduce not in self._reductions:
            raise ValueError(f"reduce must be one of {self._reductions}, got {self.reduce!r}")

    def _tags(self, action) -> ProjectionTags:
        return ProjectionTags(invariant=True, lossless=False, isometric=False, cross_section=False)

    def _n_out(self, action) -> int:
        return action.d

    def transform(self, codes: LatentCodes) -> np.ndarray:
        """(B, d) pooled codes."""
        codes = self._check_fitted(codes)
        return getattr(np, self.reduce)(codes.values, axis=1).astype(np.float32)


@dataclass(frozen=True)
class ProjectionSpec:
    """A named, user-facing projection: factory plus description for the UI."""

    key: str
    label: str
    make: object  # callable(seed: int) -> projection
    actions: tuple[type, ...]
    description: str


PROJECTIONS: dict[str, ProjectionSpec] = {
    spec.key: spec for spec in (
        ProjectionSpec("sort", "Sorting (cross-section)", lambda seed=0: SortProjection(),
                       (PermutationAction,),
                       "Sort node codes; isometric cross-section when d = 1 (lexicographic rows for d > 1)."),
        ProjectionSpec("channel_sort", "Sort each channel", lambda seed=0: ChannelSortProjection(),
                       (PermutationAction,), "Sort each latent channel separately; lossy for d > 1."),
        ProjectionSpec("sum_pool", "Sum pooling", lambda seed=0: PoolingProjection(reduce="sum"),
                       (PermutationAction,), "Sum over nodes: lossy baseline."),
        ProjectionSpec("mean_pool", "Mean pooling", lambda seed=0: PoolingProjection(reduce="mean"),
                       (PermutationAction,), "Mean over nodes: lossy baseline."),
        ProjectionSpec("max_pool", "Max pooling", lambda seed=0: PoolingProjection(reduce="max"),
                       (PermutationAction,), "Max over nodes: lossy baseline."),
    )
}


def projections_for(action: GroupAction) -> list[ProjectionSpec]:
    """The projections defined for ``action``, in display order."""
    return [s for s in PROJECTIONS.values() if isinstance(action, s.actions)]


def make_projection(key: str, seed: int = 0):
    """A new, unfitted projection by key.

    Raises
    ------
    KeyError
        For an unknown key (the message lists the known ones).
    """
    if key not in PROJECTIONS:
        raise KeyError(f"unknown projection {key!r}; known: {', '.join(PROJECTIONS)}")
    return PROJECTIONS[key].make(seed)
