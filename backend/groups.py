"""Group actions on latent codes, and codes that carry their action.

A *group action* ``G x Z -> Z`` says how a symmetry of the input moves the
latent code of an equivariant model. In scope here:

* :class:`PermutationAction` -- S_n permuting the node axis of per-node codes
  ``z`` of shape (n, d) (the graph VAE: relabelling atoms permutes rows).
* :class:`CyclicShiftAction` -- C_N cyclically shifting the fibre axis of ``c``
  regular fields ``z`` of shape (c, N) (an e2cnn network with ``Rot2dOnR2(N)``:
  rotating the input by ``2 pi k / N`` shifts the fibre axis by ``k``).
* :class:`TrivialAction` -- the one-element group on codes of shape (D, 1):
  for a network with no known latent action (a plain CNN trained with
  augmentation), so its codes travel through the same machinery.

Each action offers ``act``, ``identity``, ``compose``, ``inverse``,
``random_element``, ``testing_elements``, an exact ``align`` (the group element
that brings one code closest to another) and the exact ``quotient_distance``
``d([z1], [z2]) = min_g ||z1 - g.z2||`` on the quotient space ``Z/G``. Both go
through the one ``align``, as in geomstats' quotient metrics.

:class:`LatentCodes` is a frozen batch of codes that knows its action (the
e2cnn ``GeometricTensor`` rule): callers never say which axis to permute.

Source: Hansen, Calissano & Feragen, "Interpreting Equivariant
Representations", ICML 2024, Sec. 3-4; assignment by
``scipy.optimize.linear_sum_assignment`` (Jonker-Volgenant) for S_n; circular
cross-correlation by FFT (``numpy.fft.rfft`` / ``irfft``) for C_N.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment


class ActionMismatchError(ValueError):
    """Two operands carry different group actions (or codes of the wrong shape)."""


class GroupAction:
    """Interface of a group action on codes of shape (B, *code_shape)."""

    code_shape: tuple[int, ...] = ()
    name: str = "action"

    def act(self, z: np.ndarray, g: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def check_codes(self, z: np.ndarray) -> np.ndarray:
        """``z`` as a float array of shape (B, *code_shape).

        Raises
        ------
        ActionMismatchError
            If the trailing shape is not ``code_shape``.
        """
        z = np.asarray(z)
        if z.ndim != len(self.code_shape) + 1 or tuple(z.shape[1:]) != tuple(self.code_shape):
            raise ActionMismatchError(
                f"{self!r} acts on codes of shape (B, {', '.join(map(str, self.code_shape))}); "
                f"got {z.shape}")
        return z

    def quotient_distance(self, z1: np.ndarray, z2: np.ndarray) -> np.ndarray:
        """Exact quotient distance ``min_g ||z1 - g.z2||`` (Frobenius), shape (B,).

        Pairs are matched by batch position; ``z1`` and ``z2`` have shape
        (B, *code_shape).
        """
        z1 = self.check_codes(z1)
        aligned, _ = self.align(z2, z1)
        return np.sqrt(((z1 - aligned) ** 2).reshape(len(z1), -1).sum(1))

    def orbit(self, z: np.ndarray, elements: np.ndarray) -> np.ndarray:
        """Codes ``g.z`` of one code ``z`` (shape code_shape) for each element: (G, *code_shape)."""
        z = np.asarray(z)
        return self.act(np.broadcast_to(z, (len(elements),) + z.shape), elements)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.code_shape == other.code_shape

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.code_shape))


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


class CyclicShiftAction(GroupAction):
    """C_N acting on ``c`` regular fields, codes of shape (B, c, N), by cyclic shifts of the fibre.

    An element is an integer shift ``k`` (one for the whole batch: a Python or
    numpy integer, or a 0-d array) or an integer array of shape (B,) (one per
    code); shifts are taken mod ``N``. Convention:
    ``act(z, k)[..., j] = z[..., (j - k) mod N]``, i.e. ``np.roll(z, k, axis=-1)``.
    Then ``act(act(z, h), g) = act(z, compose(g, h))`` with
    ``compose(g, h) = (g + h) mod N``.

    For an e2cnn network with ``Rot2dOnR2(N)`` and regular output fields, the
    regular representation maps basis vector ``e_j`` to ``e_{(j + k) mod N}``
    for the rotation by ``+2 pi k / N``; so the code of the input rotated by
    ``+2 pi k / N`` is ``act(z, k)`` (the model's equivariance test checks
    this sign on the trained network).

    Parameters
    ----------
    c : int
        Number of regular fields (channels).
    N : int
        Order of the rotation group (length of the fibre axis), ``N >= 1``.

    Raises
    ------
    ValueError
        If ``c < 1`` or ``N < 1``.

    Notes
    -----
    Alignment and quotient distance are exact: the inner products
    ``<act(z, k), ref>`` for all ``k`` are one circular cross-correlation over
    the fibre axis, computed with ``numpy.fft.rfft`` / ``irfft`` for the whole
    batch at once (no loop over samples).

    Source: Hansen, Calissano & Feragen, "Interpreting Equivariant
    Representations", ICML 2024; Weiler & Cesa, "General E(2)-Equivariant
    Steerable CNNs", NeurIPS 2019 (regular fields of C_N).

    Examples
    --------
    >>> a = CyclicShiftAction(1, 4)
    >>> z = np.array([[[1., 2., 3., 4.]]])
    >>> a.act(z, 1)[0, 0]
    array([4., 1., 2., 3.])
    """

    name = "C_N"

    def __init__(self, c: int, N: int):
        self.c, self.N = int(c), int(N)
        if self.c < 1 or self.N < 1:
            raise ValueError(f"CyclicShiftAction needs c >= 1 and N >= 1, got c={c}, N={N}")
        self.code_shape = (self.c, self.N)

    def __repr__(self) -> str:
        return f"CyclicShiftAction(c={self.c}, N={self.N})"

    @property
    def identity(self) -> int:
        """The zero shift, ``0``."""
        return 0

    def _elements(self, g) -> np.ndarray:
        g = np.asarray(g)
        if not np.issubdtype(g.dtype, np.integer):
            raise TypeError(f"C_N elements are integer shifts, got dtype {g.dtype}")
        if g.ndim > 1:
            raise ValueError(f"C_N elements have shape () or (B,), got {g.shape}")
        return np.mod(g, self.N)

    def act(self, z: np.ndarray, g) -> np.ndarray:
        """Shift the fibre axis of ``z`` by ``g``: ``np.roll(z, g, axis=-1)``; new array.

        Parameters
        ----------
        z : ndarray of shape (B, c, N)
        g : int or ndarray of shape () or (B,), integer shifts.

        Returns
        -------
        ndarray of shape (B, c, N), ``out[b, :, j] = z[b, :, (j - g[b]) mod N]``.

        Raises
        ------
        ActionMismatchError
            If ``z`` is not (B, c, N).
        TypeError
            If ``g`` is not integer.
        ValueError
            If ``g`` is an array whose length is not ``B`` (or has more than one axis).
        """
        z = self.check_codes(z)
        g = self._elements(g)
        if g.ndim == 0:
            return np.roll(z, int(g), axis=-1)
        if len(g) != len(z):
            raise ValueError(f"{len(g)} shifts for {len(z)} codes")
        idx = np.mod(np.arange(self.N)[None, :] - g[:, None], self.N)  # (B, N)
        return np.take_along_axis(z, idx[:, None, :], axis=2)

    def compose(self, g, h):
        """``g . h = (g + h) mod N`` (apply h first); broadcasts like numpy addition."""
        return np.mod(np.asarray(g) + np.asarray(h), self.N)

    def inverse(self, g):
        """``(-g) mod N``, same shape as ``g``."""
        return np.mod(-np.asarray(g), self.N)

    def random_element(self, rng: np.random.Generator, size: int | None = None):
        """A uniformly random shift in ``[0, N)`` (numpy integer), or ``size`` of them (size,)."""
        if size is None:
            return rng.integers(0, self.N)
        return rng.integers(0, self.N, size=size)

    def testing_elements(self, rng: np.random.Generator | None = None, n_random: int = 0) -> np.ndarray:
        """All ``N`` shifts ``0, ..., N - 1``, shape (N,).

        ``rng`` and ``n_random`` are accepted for the common interface and
        unused: the whole group is listed, so random elements add nothing.
        """
        return np.arange(self.N)

    def cross_correlation(self, z: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """Inner products ``<act(z[b], k), ref[b]>`` for every shift ``k``, shape (B, N), float64.

        Computed as ``irfft(sum_c rfft(ref) * conj(rfft(z)))`` along the fibre
        axis: ``sum_j ref[j] z[j - k]`` is a circular cross-correlation, whose
        DFT is ``R[m] conj(Z[m])`` for real signals.

        Parameters
        ----------
        z : ndarray of shape (B, c, N)
        ref : ndarray of shape (B, c, N) or (c, N) (one reference for all codes).

        Raises
        ------
        ActionMismatchError
            If the shapes do not match the action.
        """
        z = self.check_codes(z)
        ref = np.asarray(ref)
        if ref.ndim == 2:
            ref = ref[None]
            self.check_codes(ref)
        else:
            ref = self.check_codes(ref)
            if len(ref) != len(z):
                raise ActionMismatchError(f"{len(ref)} references for {len(z)} codes")
        zf = np.conj(np.fft.rfft(z.astype(np.float64, copy=False), axis=-1))  # (B, c, F)
        rf = np.fft.rfft(ref.astype(np.float64, copy=False), axis=-1)           # (B or 1, c, F)
        if len(rf) == 1:
            spectrum = np.einsum("cf,bcf->bf", rf[0], zf)
        else:
            spectrum = np.einsum("bcf,bcf->bf", rf, zf)
        return np.fft.irfft(spectrum, n=self.N, axis=-1)

    def best_shifts(self, corr: np.ndarray, rtol: float = 1e-9) -> np.ndarray:
        """Maximising shift per row of ``corr`` (B, N), ties broken towards the smallest shift.

        Every shift whose correlation is within ``rtol * max_k |corr[b, k]|``
        of the row maximum counts as a maximiser, and the smallest of them is
        returned (shape (B,), int64). The tolerance absorbs FFT rounding, so a
        tie between two shifts that give the same point (a shift-symmetric
        code) is always resolved the same way.
        """
        corr = np.asarray(corr)
        top = corr.max(axis=1, keepdims=True)
        tol = rtol * np.abs(corr).max(axis=1, keepdims=True)
        return np.argmax(corr >= top - tol, axis=1).astype(np.int64)

    def align(self, z: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shift each ``z[b]`` to be closest to ``ref[b]``: exact, by FFT cross-correlation.

        ``||act(z, k) - ref||^2 = ||z||^2 + ||ref||^2 - 2 <act(z, k), ref>``, so
        the best shift maximises :meth:`cross_correlation`; ties (within a
        relative ``1e-9``) go to the smallest shift (:meth:`best_shifts`).

        Parameters
        ----------
        z : ndarray of shape (B, c, N)
        ref : ndarray of shape (B, c, N) or (c, N).

        Returns
        -------
        aligned : ndarray of shape (B, c, N), ``act(z, k)``, dtype of ``z``.
        k : ndarray of shape (B,), int64, the optimal shifts.

        Raises
        ------
        ActionMismatchError
            If the shapes do not match the action.
        """
        z = self.check_codes(z)
        k = self.best_shifts(self.cross_correlation(z, ref))
        return self.act(z, k), k

    def all_shift_distances(self, z1: np.ndarray, z2: np.ndarray) -> np.ndarray:
        """``||z1[b] - act(z2[b], k)||`` for every shift ``k``, shape (B, N), float64.

        The row minimum is :meth:`quotient_distance`. Computed from
        :meth:`cross_correlation` (``||z1||^2 + ||z2||^2 - 2 corr``, clipped at
        0), so a distance that is exactly 0 comes out as about
        ``sqrt(eps) * ||z||``; :meth:`quotient_distance` recomputes the
        difference after alignment and has no such cancellation.

        Parameters
        ----------
        z1, z2 : ndarrays of shape (B, c, N), paired by batch position.

        Raises
        ------
        ActionMismatchError
            If the shapes do not match the action or each other.
        """
        z1, z2 = self.check_codes(z1), self.check_codes(z2)
        if len(z1) != len(z2):
            raise ActionMismatchError(f"{len(z1)} codes against {len(z2)}")
        sq = lambda v: (v.astype(np.float64) ** 2).sum(axis=(1, 2))[:, None]  # noqa: E731
        d2 = sq(z1) + sq(z2) - 2.0 * self.cross_correlation(z2, z1)
        return np.sqrt(np.maximum(d2, 0.0))


class TrivialAction(CyclicShiftAction):
    """The trivial group acting on codes (B, D, 1): every element is the identity.

    For models whose latent space carries no known group action, such as a
    plain CNN trained with rotation augmentation: rotating its input moves its
    code in a way no latent action describes, so the only honest latent
    symmetry is the trivial one. Then orbits are single points, the quotient
    distance is the Euclidean distance and every projection is invariant;
    invariance to input rotations has to come from the input side (orbit
    averaging, :func:`backend.training_mnist.orbit_spread`).

    Implemented as C_1 (``CyclicShiftAction(D, 1)``), so it shares the exact
    align and quotient distance.

    Parameters
    ----------
    D : int, code size, ``D >= 1``.
    """

    name = "trivial"

    def __init__(self, D: int):
        super().__init__(D, 1)

    def __repr__(self) -> str:
        return f"TrivialAction(D={self.c})"


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
