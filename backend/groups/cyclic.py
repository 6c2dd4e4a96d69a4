"""C_N cyclically shifting the fibre axis of ``c`` regular fields (B, c, N): the e2cnn model's action.

An e2cnn network with ``Rot2dOnR2(N)`` and regular output fields: rotating the input by
``2 pi k / N`` shifts the fibre axis by ``k``. Alignment and quotient distance are exact, by
circular cross-correlation over the fibre axis (``numpy.fft.rfft`` / ``irfft``).
"""

from __future__ import annotations

import numpy as np

from backend.groups.base import ActionMismatchError, GroupAction


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
