"""Rotation-equivariant autoencoder-classifier for rotated MNIST (e2cnn, C_N).

The encoder is a stack of e2cnn ``R2Conv`` layers between *regular* fields of
the rotation group C_N (``gspaces.Rot2dOnR2(N)``, Weiler & Cesa, "General
E(2)-Equivariant Steerable CNNs", NeurIPS 2019) that shrinks the 29 x 29 input
to a 1 x 1 grid. The latent code is ``c`` regular fields at that one pixel,
``z`` of shape ``(c, N)``; rotating the input by ``2 pi k / N`` cyclically
shifts the fibre axis of ``z`` by ``k`` (exactly for multiples of 90 degrees,
approximately otherwise, because the pixel grid is only C_4-symmetric). This is
the second example of Hansen, Calissano & Feragen, "Interpreting Equivariant
Representations" (ICML 2024, Sec. 5.2).

* Classifier head: *group pooling* (max over the fibre, an invariant map) and a
  small MLP to 10 logits, so predictions are rotation-invariant.
* Decoder: e2cnn transposed convolutions ``R2ConvTransposed`` back up
  1 -> 3 -> 7 -> 15 -> 29 and a last ``R2Conv`` to one trivial field
  (the image), equivariant like the encoder.
* Loss: cross-entropy + ``recon_weight`` * mean squared pixel error.

Grid sizes are all odd (29, 15, 7, 3, 1) and every strided layer maps the
centre pixel to the centre pixel, so a 90-degree rotation of the input is an
exact symmetry of the whole network (e2cnn's tutorial uses 29 x 29 for this
reason). Feeding any other size breaks it: :meth:`RotMNISTNet.encode` raises
``ValueError`` for inputs that are not ``(B, 1, 29, 29)``.

Saving and loading: save ``state_dict`` only (e2cnn modules do not pickle).
``R2Conv`` keeps its expanded ``filter`` buffers only in eval mode, so a
state_dict saved in eval mode strict-loads only into a model in eval mode:
:func:`load_rot_mnist` builds the model, calls ``eval()``, strict-loads and
returns it in eval mode, the one recipe used everywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

IMAGE_SIZE = 29  # odd, so that the rotation centre is a pixel


@dataclass
class RotMNISTConfig:
    """Hyper-parameters of :class:`RotMNISTNet` (stored in the weights' sidecar)."""

    n_rotations: int = 8  # N of the cyclic group C_N
    latent_fields: int = 16  # c: regular fields in the code, z in R^{c x N}
    widths: tuple[int, int, int, int] = (6, 12, 16, 16)  # regular fields per encoder layer
    n_classes: int = 10
    recon_weight: float = 10.0  # lambda in CE + lambda * MSE
    # "strided": strided R2Conv downsampling (the first shipped model);
    # "antialiased": stride-1 R2Conv + InnerBatchNorm, then e2cnn's PointwiseAvgPoolAntialiased
    # (Gaussian blur before subsampling, Zhang 2019, "Making Convolutional Networks
    # Shift-Invariant Again"), which makes off-grid rotations much closer to a fibre shift
    arch: str = "strided"
    decoder_widths: tuple[int, int, int, int] | None = None  # None: the encoder's widths

    def to_dict(self) -> dict:
        """Plain dict of the fields (for the JSON sidecar)."""
        d = asdict(self)
        d["widths"] = list(self.widths)
        d["decoder_widths"] = list(self.decoder_widths) if self.decoder_widths else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RotMNISTConfig":
        """Inverse of :meth:`to_dict` (sidecars without ``arch`` are the strided model)."""
        d = dict(d)
        d["widths"] = tuple(d["widths"])
        if d.get("decoder_widths"):
            d["decoder_widths"] = tuple(d["decoder_widths"])
        return cls(**d)


class RotMNISTNet(nn.Module):
    """C_N-equivariant encoder, invariant classifier and equivariant decoder.

    Parameters
    ----------
    config : RotMNISTConfig

    Shapes
    ------
    images ``(B, 1, 29, 29)`` float32 in [0, 1]; codes ``(B, c, N)``;
    logits ``(B, 10)``; reconstructions ``(B, 1, 29, 29)`` in [0, 1].
    """

    def __init__(self, config: RotMNISTConfig | None = None):
        super().__init__()
        from e2cnn import gspaces
        from e2cnn import nn as enn

        from models.e2cnn_compat import install

        install()  # NumPy 2 fixes for non-C_N gspaces + silence e2cnn's uint8 warning

        self.config = cfg = config or RotMNISTConfig()
        self.gspace = gs = gspaces.Rot2dOnR2(N=cfg.n_rotations)

        def reg(c):
            return enn.FieldType(gs, c * [gs.regular_repr])

        if cfg.arch not in ("strided", "antialiased"):
            raise ValueError(f"arch must be 'strided' or 'antialiased', got {cfg.arch!r}")
        w1, w2, w3, w4 = cfg.widths
        self.in_type = enn.FieldType(gs, [gs.trivial_repr])
        self.latent_type = reg(cfg.latent_fields)
        if cfg.arch == "antialiased":
            self.encoder = self._antialiased_encoder(enn, reg, cfg)
        else:
            self.encoder = self._strided_encoder(enn, reg, cfg)
        # invariant classifier: group pooling (max over the fibre) + MLP
        self.group_pool = enn.GroupPooling(self.latent_type)
        self.classifier = nn.Sequential(nn.Linear(cfg.latent_fields, 64), nn.ReLU(),
                                        nn.Linear(64, cfg.n_classes))
        # equivariant decoder: 1 -> 3 -> 7 -> 15 -> 29 -> image
        w1, w2, w3, w4 = cfg.decoder_widths or cfg.widths
        self.decoder = enn.SequentialModule(
            enn.R2ConvTransposed(self.latent_type, reg(w4), kernel_size=3),
            enn.ReLU(reg(w4)),
            enn.R2ConvTransposed(reg(w4), reg(w3), kernel_size=3, stride=2),
            enn.ReLU(reg(w3)),
            enn.R2ConvTransposed(reg(w3), reg(w2), kernel_size=3, stride=2),
            enn.ReLU(reg(w2)),
            enn.R2ConvTransposed(reg(w2), reg(w1), kernel_size=3, stride=2, padding=1),
            enn.ReLU(reg(w1)),
            enn.R2Conv(reg(w1), enn.FieldType(gs, [gs.trivial_repr]), kernel_size=5, padding=2),
        )

    def _strided_encoder(self, enn, reg, cfg):
        """29 -> 29 -> 15 -> 7 -> 3 -> 1 with strided ``R2Conv`` (odd sizes, centre to centre)."""
        w1, w2, w3, w4 = cfg.widths
        return enn.SequentialModule(
            enn.R2Conv(self.in_type, reg(w1), kernel_size=5, padding=2),
            enn.ReLU(reg(w1)),
            enn.R2Conv(reg(w1), reg(w2), kernel_size=3, padding=1, stride=2),
            enn.ReLU(reg(w2)),
            enn.R2Conv(reg(w2), reg(w3), kernel_size=3, padding=0, stride=2),
            enn.ReLU(reg(w3)),
            enn.R2Conv(reg(w3), reg(w4), kernel_size=3, padding=0, stride=2),
            enn.ReLU(reg(w4)),
            enn.R2Conv(reg(w4), self.latent_type, kernel_size=3, padding=0),
        )

    def _antialiased_encoder(self, enn, reg, cfg):
        """29 -> 15 -> 7 -> 3 -> 1 with blur-then-subsample pooling (all sizes odd, centre to centre).

        Each stage: stride-1 ``R2Conv`` + ``InnerBatchNorm`` + ``ReLU``, then
        ``PointwiseAvgPoolAntialiased(sigma=0.66, stride=2)`` (a 5 x 5 isotropic
        Gaussian, so 90-degree rotations stay exact); paddings 2, 1, 1 keep the centre
        pixel on the centre pixel: 29 -> 15 -> 7 -> 3. A last 3 x 3 ``R2Conv`` maps 3 -> 1.
        """
        w1, w2, w3, w4 = cfg.widths

        def block(cin, cout, k):
            return [enn.R2Conv(cin, cout, kernel_size=k, padding=k // 2),
                    enn.InnerBatchNorm(cout), enn.ReLU(cout)]

        return enn.SequentialModule(
            *block(self.in_type, reg(w1), 5),
            *block(reg(w1), reg(w1), 3),
            enn.PointwiseAvgPoolAntialiased(reg(w1), sigma=0.66, stride=2, padding=2),  # 29 -> 15
            *block(reg(w1), reg(w2), 3),
            *block(reg(w2), reg(w2), 3),
            enn.PointwiseAvgPoolAntialiased(reg(w2), sigma=0.66, stride=2, padding=1),  # 15 -> 7
            *block(reg(w2), reg(w3), 3),
            enn.PointwiseAvgPoolAntialiased(reg(w3), sigma=0.66, stride=2, padding=1),  # 7 -> 3
            *block(reg(w3), reg(w4), 3),
            enn.R2Conv(reg(w4), self.latent_type, kernel_size=3, padding=0),  # 3 -> 1
        )

    # ------------------------------------------------------------------ parts
    @property
    def code_shape(self) -> tuple[int, int]:
        """``(c, N)``."""
        return (self.config.latent_fields, self.config.n_rotations)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 1, 29, 29)`` -> codes ``(B, c, N)`` (regular fields at the one pixel).

        Raises
        ------
        ValueError
            If the images are not ``(B, 1, 29, 29)``: other sizes break the
            exact 90-degree symmetry of the grid.
        """
        if images.ndim != 4 or tuple(images.shape[1:]) != (1, IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"expected images of shape (B, 1, {IMAGE_SIZE}, {IMAGE_SIZE}), "
                             f"got {tuple(images.shape)}")
        from e2cnn import nn as enn

        out = self.encoder(enn.GeometricTensor(images, self.in_type)).tensor  # (B, c*N, 1, 1)
        return out.reshape(len(images), *self.code_shape)

    def classify(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, c, N)`` -> class logits ``(B, 10)``, invariant to fibre shifts."""
        return self.classifier(codes.amax(dim=2))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, c, N)`` -> images ``(B, 1, 29, 29)`` in [0, 1] (sigmoid)."""
        from e2cnn import nn as enn

        x = enn.GeometricTensor(codes.reshape(len(codes), -1, 1, 1), self.latent_type)
        return torch.sigmoid(self.decoder(x).tensor)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(codes (B, c, N), logits (B, 10), reconstructions (B, 1, 29, 29))``."""
        z = self.encode(images)
        return z, self.classify(z), self.decode(z)


def rot_mnist_loss(model: RotMNISTNet, images: torch.Tensor, labels: torch.Tensor,
                   outputs: tuple | None = None) -> dict:
    """Cross-entropy + ``recon_weight`` * mean squared pixel error.

    ``outputs``: ``model(images)`` when the caller already ran the model (it needs the codes too).
    Returns a dict of scalar tensors: ``ce`` (nats per image), ``mse`` (per
    pixel, images in [0, 1]), ``loss``, ``acc`` (fraction correct).
    """
    _, logits, recon = model(images) if outputs is None else outputs
    ce = F.cross_entropy(logits, labels)
    mse = F.mse_loss(recon, images)
    loss = ce + model.config.recon_weight * mse
    acc = (logits.argmax(1) == labels).float().mean()
    return {"ce": ce, "mse": mse, "loss": loss, "acc": acc}


def load_rot_mnist(path: str | Path, config: RotMNISTConfig) -> RotMNISTNet:
    """Build, switch to eval mode, strict-load a state_dict saved in eval mode, return in eval mode.

    This fixed recipe matters for e2cnn: ``R2Conv`` has ``filter`` buffers only in
    eval mode, so a non-strict load, or a load in train mode, would leave stale
    filters that silently give wrong outputs.

    Raises
    ------
    RuntimeError
        From ``load_state_dict(strict=True)`` if keys or shapes differ.
    FileNotFoundError
        If ``path`` does not exist.
    """
    model = RotMNISTNet(config)
    model.eval()
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model
