"""The user-facing projections by key: one :class:`ProjectionSpec` per projection and action type.

Each group's module (:mod:`.permutation`, :mod:`.cyclic`, :mod:`.trivial`) lists its own
``SPECS``; this module joins them in display order and looks them up. A new group adds its
module's ``SPECS`` to :data:`PROJECTIONS` here.
"""

from __future__ import annotations

from backend.groups import GroupAction
from backend.projections import cyclic, permutation, trivial
from backend.projections.base import ProjectionSpec

PROJECTIONS: dict[str, ProjectionSpec] = {spec.key: spec for spec in (*permutation.SPECS, *cyclic.SPECS,
                                                                       *trivial.SPECS)}


def projections_for(action: GroupAction) -> list[ProjectionSpec]:
    """The projections defined for ``action`` (its exact type), in display order."""
    return [s for s in PROJECTIONS.values() if type(action) in s.actions]


def make_projection(key: str, seed: int = 0, **params):
    """A new, unfitted projection by key.

    Parameters
    ----------
    key : str
        A key of :data:`PROJECTIONS`.
    seed : int, default=0
        Seed of the projection's random choices (unused by deterministic ones).
    **params
        Overrides of the projection's constructor parameters, e.g. ``k=64``
        for the template projections (set with ``set_params``).

    Raises
    ------
    KeyError
        For an unknown key (the message lists the known ones).
    ValueError
        For a parameter the projection does not have.
    """
    if key not in PROJECTIONS:
        raise KeyError(f"unknown projection {key!r}; known: {', '.join(PROJECTIONS)}")
    proj = PROJECTIONS[key].make(seed)
    if params:
        unknown = set(params) - set(proj.get_params())
        if unknown:
            raise ValueError(f"projection {key!r} has no parameter(s) {sorted(unknown)}; "
                             f"it takes {sorted(proj.get_params()) or 'none'}")
        proj.set_params(**params)
    return proj
