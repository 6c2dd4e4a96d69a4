"""Invariant projections for C_N on ``c`` regular fields (B, c, N) (cyclic shifts of the fibre axis).

=========================  =========  ==========  =========  =============
projection                 invariant  lossless    isometric  cross-section
=========================  =========  ==========  =========  =============
orbit alignment            yes        yes         no         yes
max filtering (k random)   yes        generic(*)  no         no
sorted coorbits (k random) yes        generic(*)  no         no
Fourier modulus            yes        no          no         no
group max / mean pool      yes        no          no         no
=========================  =========  ==========  =========  =============

(*) with ``k >= 2 c N`` generic templates (Mixon & Qaddura 2022; Cahill,
Iverson, Mixon & Packer 2024; Balan & Tsoukanis 2023); tagged ``lossless=False``
because the guarantee is generic, not checked per draw. The template
projections use ``k = 2 c N`` by default (``k=None``, resolved at ``fit``).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from backend.groups import CyclicShiftAction, LatentCodes
from backend.projections.base import InvariantProjectionMixin, ProjectionSpec, ProjectionTags, _ReductionMixin


def _max_rows_per_chunk(per_row: int, budget: int = 1 << 19) -> int:
    """Rows per chunk so that a (rows, per_row) temporary stays near ``budget`` elements
    (2 MiB of float32: cache-sized, fastest of 2^16 .. 2^21 on a 100k x (16, 8) benchmark)."""
    return max(1, budget // max(1, per_row))


class GroupPoolingProjection(_ReductionMixin, InvariantProjectionMixin, TransformerMixin, BaseEstimator):
    """Max or mean over the fibre axis of each regular field: the lossy C_N baseline.

    This is e2cnn's ``GroupPooling`` (max) or the average over the group.

    Parameters
    ----------
    reduce : {"max", "mean"}, default="max"

    ``transform``: (B, c, N) codes -> (B, c) float32 array. Invariant and
    1-Lipschitz for the quotient distance (``|max a - max b| <= ||a - b||``),
    but lossy: it keeps one number per field (any two codes with the same
    per-field maxima collide, e.g. ``[1, 2, 0, 0]`` and ``[1, 0, 2, 0]``).

    Raises
    ------
    ValueError
        From ``fit``, for an unknown ``reduce``.

    Source: Weiler & Cesa, "General E(2)-Equivariant Steerable CNNs", NeurIPS
    2019 (group pooling); Hansen, Calissano & Feragen, ICML 2024.
    """

    supported_actions = (CyclicShiftAction,)
    _reductions = ("max", "mean")

    def __init__(self, *, reduce: str = "max"):
        self.reduce = reduce

    def _n_out(self, action) -> int:
        return action.c

    def transform(self, codes: LatentCodes) -> np.ndarray:
        """(B, c) pooled codes, float32.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        codes = self._check_fitted(codes)
        v = codes.values
        if self.reduce == "mean":
            return v.mean(axis=2, dtype=np.float64).astype(np.float32)
        out = v[:, :, 0].copy()
        for j in range(1, v.shape[2]):  # N elementwise passes: faster than reducing 8-long rows
            np.maximum(out, v[:, :, j], out=out)
        return out


class FourierModulusProjection(InvariantProjectionMixin, TransformerMixin, BaseEstimator):
    """Modulus of the DFT of each field's fibre: invariant, lossy, not isometric.

    A cyclic shift multiplies DFT coefficient ``m`` by ``exp(-2 pi i k m / N)``,
    so ``|rfft(z)|`` is invariant. The output is ``|rfft(z, norm="ortho")|``
    with the coefficients that stand for a conjugate pair (``0 < m < N / 2``)
    scaled by ``sqrt(2)``: by Parseval ``||s(z)|| = ||z||``, and ``s`` is
    1-Lipschitz for the quotient distance. It forgets all phases: the relative
    phase between fields (``[[1, 0, 0, 0], [1, 0, 0, 0]]`` vs
    ``[[1, 0, 0, 0], [0, 1, 0, 0]]`` collide) and, even for ``c = 1``, the
    reflection ``z[::-1]`` (phase retrieval is not unique).

    ``transform``: (B, c, N) -> (B, c * (N // 2 + 1)) float32, field-major
    (all frequencies of field 0 first).

    Source: Hansen, Calissano & Feragen, ICML 2024 (lossy invariants); the
    shift theorem of the DFT.
    """

    supported_actions = (CyclicShiftAction,)

    def __init__(self):
        pass

    def _tags(self, action) -> ProjectionTags:
        return ProjectionTags(invariant=True, lossless=False, isometric=False, cross_section=False)

    def _n_out(self, action) -> int:
        return action.c * (action.N // 2 + 1)

    def transform(self, codes: LatentCodes) -> np.ndarray:
        """(B, c * (N // 2 + 1)) float32 array of weighted Fourier moduli.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        codes = self._check_fitted(codes)
        n = codes.action.N
        mod = np.abs(np.fft.rfft(codes.values.astype(np.float64), axis=2, norm="ortho"))  # (B, c, F)
        weight = np.full(n // 2 + 1, np.sqrt(2.0))
        weight[0] = 1.0
        if n % 2 == 0:
            weight[-1] = 1.0
        return (mod * weight).astype(np.float32).reshape(len(mod), -1)


class OrbitAlignmentProjection(InvariantProjectionMixin, TransformerMixin, BaseEstimator):
    """Shift every code to best match one reference code: a decodable cross-section for C_N.

    ``section(z) = act(z, k*)`` with ``k* = argmax_k <act(z, k), reference_>``
    (canonicalization by template matching). The result lies on the orbit of
    ``z``, so it can be decoded; being one point per orbit it separates
    orbits (lossless). It is not isometric: two nearby codes can align to
    different shifts.

    Parameters
    ----------
    reference : {"mean", "first"}, default="mean"
        How ``fit`` picks ``reference_`` (c, N):

        * ``"first"``: the first fitted code (in the given order) that is not
          shift-symmetric.
        * ``"mean"``: a data-adapted template. Start from a fitted code drawn
          with ``seed`` (not shift-symmetric), then repeat: align every fitted
          code to the reference, take the mean of the aligned codes as the new
          reference, until the shifts stop changing (at most ``max_iter``
          rounds; each round lowers the spread of the aligned codes, as in
          k-means with one cluster). Aligned codes then look like the typical
          code, so similar codes tend to be rotated alike (no section of
          C_N is continuous everywhere; jumps sit where two shifts tie).

        A shift-symmetric reference (``act(r, k) = r`` for some ``k != 0``)
        would tie whole orbits, so references closer than
        ``1e-3 * ||r||`` to a shift of themselves are skipped; if every fitted
        code is (nearly) symmetric, a seeded standard normal reference is used.
    seed : int, default=0
        Chooses the starting code and the subsample for ``"mean"`` (and the
        fallback reference).
    max_iter : int, default=10
        Rounds of the ``"mean"`` iteration.
    subsample : int or None, default=10000
        ``"mean"`` is computed from at most this many fitted codes, drawn
        with ``seed`` (``None``: all), so ``fit`` costs the same for any data
        set size.

    Attributes
    ----------
    reference_ : ndarray (c, N), float64
    n_iter_ : int, rounds run by the ``"mean"`` iteration (0 for ``"first"``).

    Notes
    -----
    Ties: the maximising shift is the smallest one within a relative ``1e-9``
    of the maximum (:meth:`CyclicShiftAction.best_shifts`). Shifts that tie
    because ``z`` is itself shift-symmetric give the same point, so the
    section is still well defined there. Ties between *different* points of
    the orbit happen only on a finite union of hyperplanes (measure zero for a
    reference that is not shift-symmetric); there, and within FFT rounding of
    them, the choice depends on the input's shift, so invariance can break.
    Random Gaussian codes (the contract tests) never hit them.

    ``transform``: (B, c, N) -> (B, c * N) float32, the flattened section.

    Raises
    ------
    ValueError
        From ``fit``, for an unknown ``reference``, ``max_iter < 1`` or
        ``subsample < 1``.

    Source: Hansen, Calissano & Feragen, ICML 2024 (cross-sections /
    canonicalization); Kaba et al., "Equivariance with Learned
    Canonicalization Functions", ICML 2023.
    """

    supported_actions = (CyclicShiftAction,)
    _references = ("mean", "first")
    _symmetry_rtol = 1e-3

    def __init__(self, *, reference: str = "mean", seed: int = 0, max_iter: int = 10,
                 subsample: int | None = 10_000):
        self.reference = reference
        self.seed = seed
        self.max_iter = max_iter
        self.subsample = subsample

    def _tags(self, action) -> ProjectionTags:
        return ProjectionTags(invariant=True, lossless=True, isometric=False, cross_section=True)

    def _n_out(self, action) -> int:
        return action.c * action.N

    def _asymmetric(self, action, z: np.ndarray) -> np.ndarray:
        """(B,) bool: ``min_{k != 0} ||act(z, k) - z|| > 1e-3 ||z||`` (True when N = 1)."""
        if action.N == 1:
            return np.linalg.norm(z.reshape(len(z), -1), axis=1) > 0
        d = action.all_shift_distances(z, z)[:, 1:].min(axis=1)
        return d > self._symmetry_rtol * np.linalg.norm(z.reshape(len(z), -1), axis=1)

    def _fit(self, codes) -> None:
        if self.reference not in self._references:
            raise ValueError(f"reference must be one of {self._references}, got {self.reference!r}")
        if int(self.max_iter) < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")
        if self.subsample is not None and int(self.subsample) < 1:
            raise ValueError(f"subsample must be >= 1 or None, got {self.subsample}")
        action = codes.action
        rng = np.random.default_rng(self.seed)
        if self.reference == "first":
            order = np.arange(len(codes))
        else:
            order = rng.permutation(len(codes))
            if self.subsample is not None:
                order = order[:int(self.subsample)]
        x = codes.values[order].astype(np.float64)  # the codes the reference is made of, in order
        ref = None
        for start in range(0, len(x), 256):  # the first candidates almost always qualify
            ok = np.flatnonzero(self._asymmetric(action, x[start:start + 256]))
            if len(ok):
                ref = x[start + ok[0]]
                break
        if ref is None:
            ref = np.random.default_rng(self.seed).standard_normal(action.code_shape)
        self.n_iter_ = 0
        if self.reference == "mean" and len(x):
            prev = None
            for _ in range(int(self.max_iter)):
                shifts = action.best_shifts(action.cross_correlation(x, ref))
                if prev is not None and np.array_equal(shifts, prev):
                    break
                self.n_iter_ += 1
                prev = shifts
                mean = action.act(x, shifts).mean(axis=0)
                if not self._asymmetric(action, mean[None])[0]:
                    break
                ref = mean
        self.reference_ = np.array(ref, dtype=np.float64)

    def alignment_shifts(self, codes: LatentCodes) -> np.ndarray:
        """The shift (B,) int64 that moves each code onto the cross-section.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        codes = self._check_fitted(codes)
        a = codes.action
        return a.best_shifts(a.cross_correlation(codes.values, self.reference_))

    def section(self, codes: LatentCodes) -> LatentCodes:
        """Codes (B, c, N) moved onto the cross-section: each aligned to ``reference_``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        return codes.act(self.alignment_shifts(codes))

    def transform(self, codes: LatentCodes) -> np.ndarray:
        """(B, c * N) float32 array: the flattened section.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        return self.section(codes).flat().copy()


def _sorting_network(n: int) -> list[tuple[int, int]]:
    """Compare-exchange pairs ``(i, j)``, ``i < j``, that sort any ``n`` values ascending.

    Batcher's merge exchange (Knuth, TAOCP Vol. 3, Algorithm 5.2.2 M), valid for
    every ``n``; 19 pairs for ``n = 8``, 63 for ``n = 16``.
    """
    pairs = []
    if n < 2:
        return pairs
    t = (n - 1).bit_length()
    p = 1 << (t - 1)
    while p > 0:
        q, r, d = 1 << (t - 1), 0, p
        while True:
            pairs.extend((i, i + d) for i in range(n - d) if i & p == r)
            if q == p:
                break
            d, q, r = q - p, q >> 1, p
        p >>= 1
    return pairs


class _CoorbitProjection(InvariantProjectionMixin, TransformerMixin, BaseEstimator):
    """Shared part of the random-template projections: templates and the coorbit by FFT.

    The *coorbit* of a template ``w`` at ``z`` is the vector of the ``N``
    inner products ``<w, g.z>`` over the group. For all codes and templates at
    once: ``rfft`` each code along the fibre, contract the channel axis in the
    Fourier domain (``sum_c W[c, m] conj(Z[c, m])``, one real matrix product
    per frequency ``m``), and go back with the real inverse DFT written as a
    small (N, N + 2) matrix (what ``np.fft.irfft`` computes; for the short
    fibres of C_N this is faster than a strided ``irfft``). Cost per code
    about ``4 c k N`` flops instead of ``2 c k N^2`` for the orbit. Work is
    chunked over the batch to bound memory; the forward ``rfft`` runs in float64, the
    products and the inverse in float32.
    """

    supported_actions = (CyclicShiftAction,)
    _random_templates = True

    def _k(self, action) -> int:
        return 2 * action.c * action.N if self.k is None else int(self.k)

    def _fit(self, codes) -> None:
        action = codes.action
        if self.k is not None and int(self.k) < 1:
            raise ValueError(f"k must be a positive number of templates or None, got {self.k!r}")
        k, n = self._k(action), action.N
        w = np.random.default_rng(self.seed).standard_normal((k,) + action.code_shape)
        w /= np.linalg.norm(w.reshape(k, -1), axis=1)[:, None, None]
        self.templates_ = w.astype(np.float32)
        # Fourier-domain weights: Re S_m = Wr.Zr + Wi.Zi, Im S_m = Wi.Zr - Wr.Zi (S = W conj(Z))
        wf = np.fft.rfft(w, axis=2).transpose(2, 1, 0)  # (F, c, k)
        re = np.concatenate([wf.real, wf.imag], axis=1)   # (F, 2c, k)
        im = np.concatenate([wf.imag, -wf.real], axis=1)  # (F, 2c, k)
        self._spectral_weights = np.ascontiguousarray(np.stack([re, im], axis=1), dtype=np.float32)
        m = np.arange(n // 2 + 1)[:, None]
        j = np.arange(n)[None, :]
        mult = np.where((m == 0) | ((n % 2 == 0) & (m == n // 2)), 1.0, 2.0) / n
        theta = 2 * np.pi * m * j / n
        inv = np.stack([mult * np.cos(theta), -mult * np.sin(theta)], axis=1)  # (F, 2, N)
        self._inverse_dft = np.ascontiguousarray(inv.reshape(-1, n).T, dtype=np.float32)  # (N, 2F)

    def _n_out(self, action) -> int:  # pragma: no cover - interface
        raise NotImplementedError

    def _tags(self, action) -> ProjectionTags:
        return ProjectionTags(invariant=True, lossless=False, isometric=False, cross_section=False)

    def _coorbit_chunks(self, values: np.ndarray):
        """Yield ``(start, stop, corr)``: corr (N, b, k), ``corr[j, b, i] = <w_i, act(z_b, j)>``
        for the codes ``values[start:stop]`` (one contiguous (b, k) plane per shift)."""
        k, n = self.templates_.shape[0], self.templates_.shape[2]
        step = _max_rows_per_chunk(k * (n + 2))
        for start in range(0, len(values), step):
            zf = np.fft.rfft(values[start:start + step].astype(np.float64), axis=2)  # (b, c, F)
            x = np.concatenate([zf.real, zf.imag], axis=1).astype(np.float32).transpose(2, 0, 1)  # (F, b, 2c)
            spec = np.matmul(x[:, None], self._spectral_weights)             # (F, 2, b, k)
            b = spec.shape[2]
            spec = spec.reshape(-1, b * k)                                   # (2F, b k)
            yield start, start + b, (self._inverse_dft @ spec).reshape(n, b, k)

    def coorbits(self, codes: LatentCodes) -> np.ndarray:
        """All inner products ``<w_i, act(z_b, j)>``, shape (B, k, N), float32 (unsorted).

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        codes = self._check_fitted(codes)
        k, n = self.templates_.shape[0], codes.action.N
        out = np.empty((len(codes), k, n), dtype=np.float32)
        for start, stop, corr in self._coorbit_chunks(codes.values):
            out[start:stop] = corr.transpose(1, 2, 0)
        return out


class MaxFilteringProjection(_CoorbitProjection):
    """Max filtering with ``k`` random templates: ``s_i(z) = max_g <w_i, g.z>``.

    Parameters
    ----------
    k : int or None, default=None
        Number of templates; ``None`` means ``2 * c * N`` (twice the code
        dimension), decided at ``fit`` when the action is known.
    seed : int, default=0
        Seed of the templates.

    Attributes
    ----------
    templates_ : ndarray (k, c, N), float32
        Standard normal draws (``numpy.random.default_rng(seed)``), each
        rescaled to unit Frobenius norm so that every feature is 1-Lipschitz
        for the quotient distance.

    Notes
    -----
    Invariant by construction (a maximum over the orbit). For a group of
    isometries of ``R^d`` (here ``d = c N``), ``k >= 2d`` generic templates
    give an injective max filter bank (Mixon & Qaddura, "Injectivity,
    stability, and positive definiteness of max filtering", 2022); for a
    finite group a suitable bank is moreover bi-Lipschitz in the quotient
    metric (Cahill, Iverson, Mixon & Packer, "Group-invariant max filtering",
    Found. Comput. Math. 2024), with bounds for generic and Gaussian templates
    in Mixon & Qaddura. The tags stay conservative (``lossless=False``): the
    guarantee is generic and not checked per draw.

    ``transform``: (B, c, N) -> (B, k) float32, computed for all codes and
    templates at once by FFT cross-correlation (see :class:`_CoorbitProjection`).

    Raises
    ------
    ValueError
        From ``fit``, for ``k < 1``.

    Source: Hansen, Calissano & Feragen, ICML 2024 (random invariant
    projections); Cahill et al. 2024; Mixon & Qaddura 2022.
    """

    def __init__(self, *, k: int | None = None, seed: int = 0):
        self.k = k
        self.seed = seed

    def _n_out(self, action) -> int:
        return self._k(action)

    def transform(self, codes: LatentCodes) -> np.ndarray:
        """(B, k) float32 array, ``out[b, i] = max_j <w_i, act(z_b, j)>``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        codes = self._check_fitted(codes)
        out = np.empty((len(codes), self.templates_.shape[0]), dtype=np.float32)
        for start, stop, corr in self._coorbit_chunks(codes.values):
            np.max(corr, axis=0, out=out[start:stop])
        return out


class SortedCoorbitProjection(_CoorbitProjection):
    """Sorted coorbits with ``k`` random templates: ``sort_g <w_i, g.z>``, descending.

    Parameters
    ----------
    k : int or None, default=None
        Number of templates; ``None`` means ``2 * c * N``, decided at ``fit``.
    m : int or None, default=None
        Keep the ``m`` largest values of each sorted coorbit (``m = 1`` is
        max filtering); ``None`` keeps all ``N``.
    seed : int, default=0
        Seed of the templates.

    Attributes
    ----------
    templates_ : ndarray (k, c, N), float32, unit-norm standard normal draws.

    Notes
    -----
    Invariant: a shift permutes the coorbit, sorting forgets the order. With
    all ``N`` values kept it contains max filtering, so it separates orbits
    whenever the max filter bank with the same templates does (generic ``k >=
    2 c N``). Sorted coorbits of finite groups are bi-Lipschitz when injective
    (Balan & Tsoukanis, "G-invariant representations using coorbits:
    bi-Lipschitz properties", 2023); Dym & Gortler ("Low dimensional invariant
    embeddings for universal geometric learning", 2023) show ``2 c N + 1``
    generic invariants of such a family suffice to separate. Tags stay
    conservative (``lossless=False``).

    ``transform``: (B, c, N) -> (B, m * k) float32, rank-major: column
    ``r * k + i`` is the ``r``-th largest of ``<w_i, g.z>`` over ``g`` (so the
    first ``k`` columns are max filtering). The sort is a fixed
    compare-exchange network (Batcher's merge exchange, Knuth TAOCP 5.2.2 M)
    applied elementwise to the ``N`` planes of the coorbit, which keeps the
    work vectorised over codes and templates.

    Raises
    ------
    ValueError
        From ``fit``, for ``k < 1`` or ``m`` outside ``1 .. N``.

    Source: Hansen, Calissano & Feragen, ICML 2024; Balan & Tsoukanis 2023.
    """

    def __init__(self, *, k: int | None = None, m: int | None = None, seed: int = 0):
        self.k = k
        self.m = m
        self.seed = seed

    def _m(self, action) -> int:
        return action.N if self.m is None else int(self.m)

    def _fit(self, codes) -> None:
        if self.m is not None and not 1 <= int(self.m) <= codes.action.N:
            raise ValueError(f"m must be in 1..{codes.action.N} or None, got {self.m!r}")
        super()._fit(codes)

    def _n_out(self, action) -> int:
        return self._k(action) * self._m(action)

    def transform(self, codes: LatentCodes) -> np.ndarray:
        """(B, m * k) float32 array: each template's coorbit sorted descending, top ``m`` kept.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        codes = self._check_fitted(codes)
        k, n, m = self.templates_.shape[0], codes.action.N, self._m(codes.action)
        network = _sorting_network(n)
        out = np.empty((len(codes), m, k), dtype=np.float32)
        for start, stop, corr in self._coorbit_chunks(codes.values):
            tmp = np.empty_like(corr[0])
            for i, j in network:  # ascending along the shift axis, elementwise over (b, k)
                np.minimum(corr[i], corr[j], out=tmp)
                np.maximum(corr[i], corr[j], out=corr[j])
                corr[i] = tmp
            out[start:stop] = corr[::-1][:m].transpose(1, 0, 2)
        return out.reshape(len(codes), m * k)


#: catalogue entries, in display order (the first is the UI default)
SPECS = (
    ProjectionSpec("orbit_alignment", "Orbit alignment (cross-section)",
                   lambda seed=0: OrbitAlignmentProjection(seed=seed), (CyclicShiftAction,),
                   "Rotate each code to best match a reference code (the mean of the aligned "
                   "codes); lossless and decodable, not isometric."),
    ProjectionSpec("max_filtering", "Max filtering (random templates)",
                   lambda seed=0: MaxFilteringProjection(seed=seed), (CyclicShiftAction,),
                   "Max over rotations of the inner product with 2·c·N seeded random templates; "
                   "bi-Lipschitz, separates orbits for generic templates."),
    ProjectionSpec("sorted_coorbits", "Sorted coorbits (random templates)",
                   lambda seed=0: SortedCoorbitProjection(seed=seed), (CyclicShiftAction,),
                   "Inner products with 2·c·N seeded random templates under every rotation, "
                   "sorted; contains max filtering."),
    ProjectionSpec("fourier_modulus", "Fourier modulus",
                   lambda seed=0: FourierModulusProjection(), (CyclicShiftAction,),
                   "Modulus of the DFT over rotations of each field; lossy (forgets phases)."),
    ProjectionSpec("group_mean_pool", "Group mean pooling",
                   lambda seed=0: GroupPoolingProjection(reduce="mean"), (CyclicShiftAction,),
                   "Mean over rotations of each field: lossy baseline."),
    ProjectionSpec("group_max_pool", "Group max pooling",
                   lambda seed=0: GroupPoolingProjection(reduce="max"), (CyclicShiftAction,),
                   "Max over rotations of each field (e2cnn GroupPooling): lossy baseline."),
)
