"""S_n permuting the node axis of per-node codes (B, n, d): the graph VAE's latent action.

Relabelling a graph's atoms permutes the rows of its per-node code. Alignment (and so the quotient
distance) is exact: a linear assignment problem, ``scipy.optimize.linear_sum_assignment``
(Jonker-Volgenant). Source: Hansen, Calissano & Feragen, ICML 2024, Sec. 4.1.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from backend.groups.base import GroupAction


class PermutationAction(GroupAction):
    """S_n acting on per-node codes of shape (B, n, d) by permuting the node axis.

    An element is a permutation array ``g`` of shape (n,) (one for the whole
    batch) or (B, n) (one per code). ``act(z, g)[b, i] = z[b, g[b, i]]``: slot
    ``i`` of the result holds the old slot ``g[i]``. With this convention
    ``act(act(z, h), g) = act(z, compose(g, h))`` where ``compose(g, h) = h[g]``.

    Parameters
    ----------
    n : int, number of node slots.
    d : int, latent size per node.

    Examples
    --------
    >>> a = PermutationAction(3, 1)
    >>> z = np.array([[[1.], [2.], [3.]]])
    >>> a.act(z, np.array([2, 0, 1]))[0, :, 0]
    array([3., 1., 2.])
    """

    name = "S_n"

    def __init__(self, n: int, d: int = 1):
        self.n, self.d = int(n), int(d)
        self.code_shape = (self.n, self.d)

    def __repr__(self) -> str:
        return f"PermutationAction(n={self.n}, d={self.d})"

    @property
    def identity(self) -> np.ndarray:
        """The identity permutation, shape (n,)."""
        return np.arange(self.n)

    def act(self, z: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Permute the node axis of ``z`` (B, n, d) by ``g`` (n,) or (B, n); new array."""
        z = self.check_codes(z)
        g = np.asarray(g)
        if g.ndim == 1:
            return z[:, g]
        return np.take_along_axis(z, g[:, :, None], axis=1)

    def act_mask(self, mask: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Permute a node mask (B, n) the same way as the codes."""
        g = np.asarray(g)
        return mask[:, g] if g.ndim == 1 else np.take_along_axis(mask, g, axis=1)

    def compose(self, g: np.ndarray, h: np.ndarray) -> np.ndarray:
        """``g . h`` (apply h first), so ``act(z, compose(g, h)) = act(act(z, h), g)``."""
        g, h = np.asarray(g), np.asarray(h)
        shape = np.broadcast_shapes(g.shape, h.shape)
        return np.take_along_axis(np.broadcast_to(h, shape), np.broadcast_to(g, shape), axis=-1)

    def inverse(self, g: np.ndarray) -> np.ndarray:
        """Inverse permutation(s), same shape as ``g``."""
        return np.argsort(np.asarray(g), axis=-1)

    def random_element(self, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
        """A uniformly random permutation (n,), or ``size`` of them (size, n)."""
        if size is None:
            return rng.permutation(self.n)
        return np.argsort(rng.random((size, self.n)), axis=1)

    def testing_elements(self, rng: np.random.Generator | None = None, n_random: int = 20) -> np.ndarray:
        """Elements to test invariance with: identity, all transpositions (i, i+1), the full
        reversal, and ``n_random`` seeded random permutations; shape (G, n)."""
        rng = rng if rng is not None else np.random.default_rng(0)
        out = [self.identity, self.identity[::-1].copy()]
        for i in range(self.n - 1):
            t = self.identity.copy()
            t[i], t[i + 1] = t[i + 1], t[i]
            out.append(t)
        out.extend(self.random_element(rng, n_random))
        return np.stack(out)

    def align(self, z: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Permute each ``z[b]`` to be closest to ``ref[b]``: exact, by linear assignment.

        Solves ``min_g ||act(z, g) - ref||^2`` with cost
        ``C[i, j] = ||ref_i - z_j||^2`` by ``scipy.optimize.linear_sum_assignment``.

        Parameters
        ----------
        z, ref : arrays of shape (B, n, d); ``ref`` may also be (n, d).

        Returns
        -------
        aligned : (B, n, d), ``act(z, g)``.
        g : (B, n), the optimal permutations.
        """
        z = self.check_codes(z)
        ref = np.asarray(ref)
        if ref.ndim == 2:
            ref = np.broadcast_to(ref, z.shape)
        ref = self.check_codes(ref)
        cost = ((ref[:, :, None, :] - z[:, None, :, :]) ** 2).sum(-1)  # (B, n, n)
        g = np.empty((len(z), self.n), dtype=np.int64)
        for b in range(len(z)):
            _, cols = linear_sum_assignment(cost[b])
            g[b] = cols
        return self.act(z, g), g
