"""Plain (non-equivariant) CNN autoencoder-classifier trained with rotation augmentation.

The augmentation counterpart of :mod:`models.rot_mnist`: the same 29 x 29
rotated-MNIST inputs, the same loss (cross-entropy + ``recon_weight`` * MSE)
and a latent code of the same size (``D = 128 = 16 x 8``), but ordinary
``torch.nn.Conv2d`` layers. Trained on digits rotated afresh at every step
(``python -m backend train augcnn``), the network learns to *classify*
rotated digits, yet nothing makes its code transform predictably: there is
no known group action on its latent space. Hansen, Calissano & Feragen,
"Interpreting Equivariant Representations" (ICML 2024, Sec. 6) argue that such
networks show the same ambiguity as equivariant ones (one digit, many codes);
:mod:`backend.probes` measures it and compares the raw code with the
*orbit-averaged* code ``mean_g f(g x)`` over sampled input rotations.

Codes are returned as ``(B, D, 1)`` so that they travel with the trivial
latent action :class:`backend.groups.TrivialAction` like the other models' codes.

Shapes: images ``(B, 1, 29, 29)`` float32 in [0, 1]; codes ``(B, D, 1)``;
logits ``(B, 10)``; reconstructions ``(B, 1, 29, 29)`` in [0, 1].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

IMAGE_SIZE = 29


@dataclass
class AugCNNConfig:
    """Hyper-parameters of :class:`AugCNN` (stored in the weights' sidecar)."""

    latent_dim: int = 128  # D, the same size as the e2cnn code (16 fields x 8 rotations)
    widths: tuple[int, int, int, int] = (16, 32, 64, 128)  # channels per encoder layer
    n_classes: int = 10
    recon_weight: float = 10.0  # lambda in CE + lambda * MSE

    def to_dict(self) -> dict:
        """Plain dict of the fields (for the JSON sidecar)."""
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "AugCNNConfig":
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["widths"] = tuple(d["widths"])
        return cls(**d)


class AugCNN(nn.Module):
    """Conv encoder 29 -> 29 -> 15 -> 7 -> 3 -> 1, MLP classifier on the code, transposed-conv decoder.

    ELU activations: with ReLU the decoder died in the first 100 steps (its output stuck at
    black, MSE 0.095 = predicting 0) in a measured run.

    The layer sizes mirror :class:`models.rot_mnist.RotMNISTNet` so that the two
    differ only in the constraint (equivariance vs augmentation).

    Parameters
    ----------
    config : AugCNNConfig
    """

    def __init__(self, config: AugCNNConfig | None = None):
        super().__init__()
        self.config = cfg = config or AugCNNConfig()
        w1, w2, w3, w4 = cfg.widths
        d = cfg.latent_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(1, w1, 5, padding=2), nn.ELU(),
            nn.Conv2d(w1, w2, 3, stride=2, padding=1), nn.ELU(),   # 15
            nn.Conv2d(w2, w3, 3, stride=2), nn.ELU(),               # 7
            nn.Conv2d(w3, w4, 3, stride=2), nn.ELU(),               # 3
            nn.Conv2d(w4, d, 3),                                     # 1
        )
        self.classifier = nn.Sequential(nn.Linear(d, 64), nn.ELU(), nn.Linear(64, cfg.n_classes))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(d, w4, 3), nn.ELU(),                           # 3
            nn.ConvTranspose2d(w4, w3, 3, stride=2), nn.ELU(),                # 7
            nn.ConvTranspose2d(w3, w2, 3, stride=2), nn.ELU(),                # 15
            nn.ConvTranspose2d(w2, w1, 3, stride=2, padding=1), nn.ELU(),     # 29
            nn.Conv2d(w1, 1, 5, padding=2),
        )

    @property
    def code_shape(self) -> tuple[int, int]:
        """``(D, 1)``."""
        return (self.config.latent_dim, 1)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 1, 29, 29)`` -> codes ``(B, D, 1)``.

        Raises
        ------
        ValueError
            If the images are not ``(B, 1, 29, 29)``.
        """
        if images.ndim != 4 or tuple(images.shape[1:]) != (1, IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"expected images of shape (B, 1, {IMAGE_SIZE}, {IMAGE_SIZE}), "
                             f"got {tuple(images.shape)}")
        return self.encoder(images).reshape(len(images), *self.code_shape)

    def classify(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, D, 1)`` -> class logits ``(B, 10)`` (no invariance built in)."""
        return self.classifier(codes.reshape(len(codes), -1))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, D, 1)`` -> images ``(B, 1, 29, 29)`` in [0, 1] (sigmoid)."""
        return torch.sigmoid(self.decoder(codes.reshape(len(codes), -1, 1, 1)))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(codes (B, D, 1), logits (B, 10), reconstructions (B, 1, 29, 29))``."""
        z = self.encode(images)
        return z, self.classify(z), self.decode(z)


def load_aug_cnn(path: str | Path, config: AugCNNConfig) -> AugCNN:
    """Build, strict-load a state_dict (``weights_only=True``), return in eval mode.

    Raises
    ------
    RuntimeError
        From ``load_state_dict(strict=True)`` if keys or shapes differ.
    FileNotFoundError
        If ``path`` does not exist.
    """
    model = AugCNN(config)
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model
