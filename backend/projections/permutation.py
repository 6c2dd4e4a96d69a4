"""Invariant projections for S_n on per-node codes (B, n, d).

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
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from backend.groups import LatentCodes, PermutationAction
from backend.projections.base import (InvariantProjectionMixin, ProjectionSpec, ProjectionTags,
                                      UnsupportedActionError, _ReductionMixin)


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


class PoolingProjection(_ReductionMixin, InvariantProjectionMixin, TransformerMixin, BaseEstimator):
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

    def _n_out(self, action) -> int:
        return action.d

    def transform(self, codes: LatentCodes) -> np.ndarray:
        """(B, d) pooled codes."""
        codes = self._check_fitted(codes)
        return getattr(np, self.reduce)(codes.values, axis=1).astype(np.float32)


#: catalogue entries, in display order (the first is the UI default)
SPECS = (
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
