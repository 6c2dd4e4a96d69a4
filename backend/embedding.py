"""2-D maps of codes: PCA fitted once on the whole data set, with a fixed sign rule.

The equivariant view is the map of the raw flattened codes; the invariant view
is the same map of the projected codes ``s(z)``.

Sign rule (so screenshots are comparable across runs): each principal axis is
flipped so that its loading of largest absolute value is positive.

Source: ``sklearn.decomposition.PCA`` (full SVD, deterministic); for tall data a chunked
covariance fit (:func:`pca_map_chunked`) that never copies the whole array.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA


@dataclass(frozen=True)
class Map2D:
    """A fitted 2-D PCA map.

    Attributes
    ----------
    coords : ndarray (M, 2), float32, the map of the fitting data.
    mean : ndarray (D,)
    components : ndarray (2, D), sign-fixed principal axes.
    explained_variance_ratio : ndarray (2,)
    """

    coords: np.ndarray
    mean: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Map new points (k, D) -> (k, 2) with the same axes."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"map was fitted on {self.mean.shape[0]} features, got {x.shape[1]}")
        return ((x - self.mean) @ self.components.T).astype(np.float32)


#: above this many values (rows x features) a map with at most :data:`EXACT_MAX_FEATURES`
#: features is fitted from chunks (covariance, :func:`pca_map_chunked`) instead of one SVD of
#: a float64 copy of the whole array: 4 M values = 32 MB of float64 (QM9's 130,831 x 9 codes
#: stay on the exact SVD)
CHUNKED_MIN_VALUES = 4_000_000
#: up to this many features the exact solvers (full SVD or covariance) are used
EXACT_MAX_FEATURES = 256
#: rows per chunk of :func:`pca_map_chunked`
PCA_CHUNK = 65_536


def _sign_fixed(comps: np.ndarray) -> np.ndarray:
    """Flip each row of ``comps`` (k, D) so that its loading of largest absolute value is positive."""
    comps = comps.copy()
    for i in range(len(comps)):
        if comps[i, np.argmax(np.abs(comps[i]))] < 0:
            comps[i] *= -1
    return comps


def pca_map_chunked(features, m: int, chunk: int = PCA_CHUNK) -> Map2D:
    """2-D PCA map of ``m`` rows read chunk by chunk (two passes), without holding them all.

    Pass 1 accumulates, in float64, the sum and the scatter matrix of the rows shifted by
    the first chunk's mean (so that large offsets do not cancel); the principal axes are the
    top two eigenvectors of the covariance (``numpy.linalg.eigh``): the same axes as the
    SVD of the centred data, up to float error, with the same sign rule. Pass 2 writes the
    coordinates into a preallocated (m, 2) float32 array. Peak memory: the output plus one
    chunk in float64 (``chunk x D x 8`` bytes) plus a D x D matrix.

    Parameters
    ----------
    features : ndarray (m, D) (any float dtype; read in slices, never copied whole), or a
        callable ``(start, stop) -> ndarray (stop - start, D)`` (e.g. a projection applied
        to a slice of the codes).
    m : int, number of rows (≥ 2).
    chunk : int, rows per slice.

    Returns
    -------
    Map2D (``coords`` float32 (m, 2)). With D = 1 the second axis is all zeros.

    Raises
    ------
    ValueError
        If ``m < 2``.
    """
    if m < 2:
        raise ValueError("need at least 2 codes for a PCA map")
    read = features if callable(features) else (lambda a, b: features[a:b])
    total, scatter, shift, d = None, None, None, None
    for start in range(0, m, chunk):
        stop = min(start + chunk, m)
        x = np.asarray(read(start, stop), dtype=np.float64).reshape(stop - start, -1)
        if shift is None:
            d, shift = x.shape[1], x.mean(0)
            total, scatter = np.zeros(d), np.zeros((d, d))
        x = x - shift
        total += x.sum(0)
        scatter += x.T @ x
    mean_shifted = total / m
    cov = (scatter - m * np.outer(mean_shifted, mean_shifted)) / (m - 1)
    evals, evecs = np.linalg.eigh(cov)
    order = np.argsort(evals)[::-1]
    evals, evecs = np.clip(evals[order], 0, None), evecs[:, order]
    k = min(2, d)
    comps = _sign_fixed(evecs[:, :k].T)
    ratio = evals[:k] / evals.sum() if evals.sum() > 0 else np.zeros(k)
    if k == 1:
        comps = np.vstack([comps, np.zeros_like(comps)])
        ratio = np.array([ratio[0], 0.0])
    mean = shift + mean_shifted
    coords = np.empty((m, 2), np.float32)
    for start in range(0, m, chunk):
        stop = min(start + chunk, m)
        x = np.asarray(read(start, stop), dtype=np.float64).reshape(stop - start, d)
        coords[start:stop] = (x - mean) @ comps.T
    return Map2D(coords, mean, comps, np.asarray(ratio))


def pca_map(x: np.ndarray, method: str = "auto") -> Map2D:
    """Fit a 2-D PCA on ``x`` (M, D) and return the map of every row.

    With D = 1 the second axis is all zeros. Three solvers give the same axes (up to
    float error, same sign rule):

    * ``"svd"``: exact SVD of a float64 copy (scikit-learn ``svd_solver="full"``, cost
      ~ M·D², memory several float64 copies of ``x``: 4.6 GB peak for a 10 M x 9 map);
    * ``"chunked"``: :func:`pca_map_chunked`, covariance from chunks and a preallocated
      output (memory: the output plus one chunk; the same data measured 0.2 GB over the
      codes, see ``python -m backend benchmark``);
    * ``"randomized"``: the seeded randomized SVD (Halko, Martinsson & Tropp 2011;
      scikit-learn ``svd_solver="randomized"``, cost ~ M·D), which for the top two
      components agrees with the exact one to float precision on these maps and made a
      5,000 x 2,048 map (sorted coorbits, k = 256) 9.1 s -> well under a second.

    ``"auto"`` picks ``"randomized"`` above :data:`EXACT_MAX_FEATURES` features,
    ``"chunked"`` for more than :data:`CHUNKED_MIN_VALUES` values, else ``"svd"``.

    Parameters
    ----------
    x : ndarray (M, D) or (M, ...) (flattened to (M, D)).
    method : {"auto", "svd", "chunked", "randomized"}.

    Returns
    -------
    Map2D

    Raises
    ------
    ValueError
        For fewer than 2 rows or an unknown ``method``.
    """
    x = np.asarray(x)
    x = x.reshape(len(x), -1)
    if len(x) < 2:
        raise ValueError("need at least 2 codes for a PCA map")
    if method == "auto":
        method = ("randomized" if x.shape[1] > EXACT_MAX_FEATURES else
                  "chunked" if x.size > CHUNKED_MIN_VALUES else "svd")
    if method == "chunked":
        return pca_map_chunked(x, len(x))
    if method not in ("svd", "randomized"):
        raise ValueError(f"unknown PCA method {method!r}; use auto, svd, chunked or randomized")
    x = np.asarray(x, dtype=np.float64)
    k = min(2, x.shape[1])
    solver = dict(svd_solver="full") if method == "svd" else \
        dict(svd_solver="randomized", random_state=0, n_oversamples=20, iterated_power=7)
    pca = PCA(n_components=k, **solver).fit(x)
    comps = _sign_fixed(pca.components_)
    ratio = pca.explained_variance_ratio_
    if k == 1:
        comps = np.vstack([comps, np.zeros_like(comps)])
        ratio = np.array([ratio[0], 0.0])
    coords = ((x - pca.mean_) @ comps.T).astype(np.float32)
    return Map2D(coords, pca.mean_.copy(), comps, np.asarray(ratio))
