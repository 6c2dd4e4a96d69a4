"""Invariant projections ``s: Z -> Z_s`` with ``s(g.z) = s(z)``, as scikit-learn transformers.

One module per group action, as in :mod:`backend.groups`:

* :mod:`.base` -- :class:`ProjectionTags` (invariant, lossless, isometric, cross-section), the
  shared transformer plumbing (:class:`InvariantProjectionMixin`) and :class:`ProjectionSpec`;
* :mod:`.permutation` -- S_n on per-node codes: sorting, per-channel sorting, pooling;
* :mod:`.cyclic` -- C_N on regular fields: orbit alignment, max filtering, sorted coorbits,
  Fourier modulus, group pooling;
* :mod:`.trivial` -- the identity, for codes without a latent group action;
* :mod:`.catalogue` -- :data:`PROJECTIONS` by key, :func:`projections_for`, :func:`make_projection`.

Every projection is checked against its tags by one generated test suite
(``tests/test_projection_contract.py``).
"""

from backend.projections.base import (InvariantProjectionMixin, ProjectionSpec, ProjectionTags,
                                      UnsupportedActionError)
from backend.projections.catalogue import PROJECTIONS, make_projection, projections_for
from backend.projections.cyclic import (FourierModulusProjection, GroupPoolingProjection, MaxFilteringProjection,
                                        OrbitAlignmentProjection, SortedCoorbitProjection)
from backend.projections.permutation import ChannelSortProjection, PoolingProjection, SortProjection
from backend.projections.trivial import IdentityProjection

__all__ = ["PROJECTIONS", "ChannelSortProjection", "FourierModulusProjection", "GroupPoolingProjection",
           "IdentityProjection", "InvariantProjectionMixin", "MaxFilteringProjection", "OrbitAlignmentProjection",
           "PoolingProjection", "ProjectionSpec", "ProjectionTags", "SortProjection", "SortedCoorbitProjection",
           "UnsupportedActionError", "make_projection", "projections_for"]
