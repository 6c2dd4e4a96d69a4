"""Group actions on latent codes, and codes that carry their action.

One module per group action (the e2cnn and geomstats way: an action is a type, not a flag):

* :class:`PermutationAction` (:mod:`.permutation`) -- S_n permuting the node axis of per-node
  codes (B, n, d) (the graph VAE: relabelling atoms permutes rows);
* :class:`CyclicShiftAction` (:mod:`.cyclic`) -- C_N cyclically shifting the fibre axis of ``c``
  regular fields (B, c, N) (an e2cnn network with ``Rot2dOnR2(N)``);
* :class:`TrivialAction` (:mod:`.trivial`) -- the one-element group on codes (B, D, 1), for a
  network with no known latent action;

all implementing :class:`GroupAction` (:mod:`.base`), and :class:`LatentCodes` (:mod:`.codes`),
a frozen batch of codes that knows its action. A new group is one more module here plus its
projections in :mod:`backend.projections`; the tag-driven projection tests then check it.

This package imports nothing else from the project: model code (``models/``) may use it.

Source: Hansen, Calissano & Feragen, "Interpreting Equivariant Representations", ICML 2024,
Sec. 3-4.
"""

from backend.groups.base import ActionMismatchError, GroupAction
from backend.groups.codes import LatentCodes
from backend.groups.cyclic import CyclicShiftAction
from backend.groups.permutation import PermutationAction
from backend.groups.trivial import TrivialAction

__all__ = ["ActionMismatchError", "CyclicShiftAction", "GroupAction", "LatentCodes", "PermutationAction",
           "TrivialAction"]
