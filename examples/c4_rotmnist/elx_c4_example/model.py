"""A small C_4 group CNN autoencoder-classifier for 29 x 29 images, in plain torch (no e2cnn).

Encoder: a lifting convolution (one 5 x 5 filter bank used at the four rotations by 90 degrees),
a 3 x 3 stride-2 average pool (29 -> 15: it maps the centre pixel to the centre pixel, so it
commutes with rot90), a C_4 group convolution and a global max over pixels. The code is
``z`` of shape ``(c, 4)``: channel by rotation. Rotating the input by 90 degrees counter-clockwise
(``torch.rot90(x, 1, dims=(-2, -1))``, the explorer's convention) shifts the last axis by one,
exactly (up to float rounding): ``E(rot x) = roll(E(x), 1, axis=-1)``.

Decoder: ``D(z) = sigmoid(b + sum_k rot^k(sum_c z[c, k] T_c))`` with learned templates ``T``
(c, 29, 29), so ``D(roll(z, 1)) = rot D(z)``. Classifier: a linear map of the group-pooled code
``max_k z[:, k]`` (invariant).

Source: group-equivariant CNNs, lifting and group convolutions on p4 (Cohen & Welling, *Group
Equivariant Convolutional Networks*, ICML 2016, Sec. 6).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SIZE = 29


def rot(x: torch.Tensor, k: int) -> torch.Tensor:
    """Rotate the last two axes by ``k`` quarter turns counter-clockwise (``torch.rot90``)."""
    return torch.rot90(x, k, dims=(-2, -1))


@dataclass
class C4Config:
    """Sizes of :class:`C4GroupCNN` (stored in the sidecar's ``model_config``)."""

    lift_channels: int = 6
    group_channels: int = 12
    kernel: int = 5
    n_classes: int = 10
    n_rotations: int = 4  # fixed: the pixel grid's own symmetry

    def to_dict(self) -> dict:
        """Plain dict for the JSON sidecar."""
        return asdict(self)


class C4GroupCNN(nn.Module):
    """Images (B, 1, 29, 29) in [0, 1] -> codes (B, c, 4) -> images and class logits.

    Parameters
    ----------
    config : C4Config
    """

    def __init__(self, config: C4Config):
        super().__init__()
        self.config = config
        c1, c2, k = config.lift_channels, config.group_channels, config.kernel
        g = torch.Generator().manual_seed(0)
        self.lift = nn.Parameter(torch.randn(c1, 1, k, k, generator=g) / k)
        self.lift_bias = nn.Parameter(torch.zeros(c1))
        self.group = nn.Parameter(torch.randn(c2, c1, 4, 3, 3, generator=g) / (6 * c1 ** 0.5))
        self.group_bias = nn.Parameter(torch.zeros(c2))
        self.templates = nn.Parameter(torch.randn(c2, IMAGE_SIZE, IMAGE_SIZE, generator=g) * 0.01)
        self.decoder_bias = nn.Parameter(torch.tensor(-2.0))
        self.classifier = nn.Linear(c2, config.n_classes)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 1, 29, 29) -> codes (B, c, 4).

        Raises
        ------
        ValueError
            If the images are not (B, 1, 29, 29) (other sizes break the exact symmetry).
        """
        if images.ndim != 4 or tuple(images.shape[1:]) != (1, IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"expected images (B, 1, {IMAGE_SIZE}, {IMAGE_SIZE}), got {tuple(images.shape)}")
        c1, c2 = self.config.lift_channels, self.config.group_channels
        w1 = torch.cat([rot(self.lift, r) for r in range(4)])  # (4*c1, 1, k, k), rotation-major
        f = F.relu(F.conv2d(images, w1, self.lift_bias.repeat(4), padding=self.config.kernel // 2))
        f = F.avg_pool2d(f, 3, stride=2, padding=1)  # (B, 4*c1, 15, 15)
        # output rotation r, input rotation j: filter rot^r(W[:, :, (j - r) % 4])
        w2 = torch.cat([torch.cat([rot(self.group[:, :, (j - r) % 4], r) for j in range(4)], dim=1)
                        for r in range(4)])  # (4*c2, 4*c1, 3, 3)
        g = F.relu(F.conv2d(f, w2, self.group_bias.repeat(4), padding=1))  # (B, 4*c2, 15, 15)
        z = g.amax(dim=(-2, -1)).reshape(len(images), 4, c2)  # (B, 4, c2); rot90 only permutes pixels
        return z.transpose(1, 2).contiguous()  # (B, c2, 4)

    def classify(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, c, 4) -> logits (B, 10) from the group-pooled code (invariant)."""
        return self.classifier(codes.amax(dim=2))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, c, 4) -> images (B, 1, 29, 29) in [0, 1]."""
        out = sum(rot(torch.einsum("bc,chw->bhw", codes[:, :, r], self.templates), r) for r in range(4))
        return torch.sigmoid(out + self.decoder_bias)[:, None]

    def forward(self, images: torch.Tensor):
        """``(codes (B, c, 4), logits (B, 10), reconstructions (B, 1, 29, 29))``."""
        z = self.encode(images)
        return z, self.classify(z), self.decode(z)
