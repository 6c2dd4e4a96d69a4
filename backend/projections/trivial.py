"""The one projection for the trivial latent action: the codes themselves."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from backend.groups import LatentCodes, TrivialAction
from backend.projections.base import InvariantProjectionMixin, ProjectionSpec, ProjectionTags


class IdentityProjection(InvariantProjectionMixin, TransformerMixin, BaseEstimator):
    """The codes themselves, flattened: the only projection for the trivial latent action.

    Under :class:`backend.groups.TrivialAction` every orbit is one point, so
    the identity is an isometric cross-section. It is *not* invariant to the
    transformations of the model's inputs (that is the point of showing it:
    a network trained with augmentation still moves its code when the input
    rotates).

    ``transform``: (B, D, 1) -> (B, D). ``section``: the codes.
    """

    supported_actions = (TrivialAction,)

    def __init__(self):
        pass

    def _tags(self, action) -> ProjectionTags:
        return ProjectionTags(invariant=True, lossless=True, isometric=True, cross_section=True)

    def _n_out(self, action) -> int:
        return int(np.prod(action.code_shape))

    def section(self, codes: LatentCodes) -> LatentCodes:
        """The codes, unchanged."""
        return self._check_fitted(codes)

    def transform(self, codes: LatentCodes) -> np.ndarray:
        """(B, D) float32 copy of the codes."""
        return self._check_fitted(codes).flat().copy()


#: catalogue entries
SPECS = (
    ProjectionSpec("identity", "None (no latent group action)", lambda seed=0: IdentityProjection(),
                   (TrivialAction,),
                   "The raw codes: the model has no known latent action, so nothing can be "
                   "factored out in latent space."),
)
