"""The plugin's one model spec, found by the explorer through the ``latent_explorer.models`` entry point.

Everything about rotated MNIST (loading, drawing, colours, typed image indices, rotating inputs)
comes from the explorer's :mod:`backend.families.images`; this file only says how to build the
network and what its codes are.
"""

from __future__ import annotations

from pathlib import Path

from backend.families.base import EvaluationPlan, ModelSpec
from backend.families.images import ROTATED_MNIST, ImageAutoencoder, ImageRotation
from backend.groups import CyclicShiftAction

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class C4Model(ImageAutoencoder):
    """:class:`~elx_c4_example.model.C4GroupCNN` as a latent model: codes (c, 4), C_4 shifting the
    fibre; inputs rotated in steps of 90 degrees (exact on the pixel grid)."""

    def __init__(self, weights_path: Path, sidecar: dict):
        super().__init__(weights_path, sidecar)
        cfg = sidecar["model_config"]
        self.latent_action = CyclicShiftAction(cfg["group_channels"], 4)
        self.input_action = ImageRotation(4, "rotating the input image (C_4: rotations by multiples of 90° are "
                                             "exact symmetries of this network; other angles interpolate pixels)")

    def build_module(self):
        """The network, strict-loaded from the state_dict (``weights_only=True``), in eval mode."""
        import torch

        from elx_c4_example.model import C4Config, C4GroupCNN

        model = C4GroupCNN(C4Config(**self.sidecar["model_config"]))
        model.load_state_dict(torch.load(self.weights_path, map_location="cpu", weights_only=True), strict=True)
        return model.eval()

    def headline_metrics(self) -> list[tuple[str, str]]:
        """Test accuracy, reconstruction error and the 90° equivariance error."""
        m = self.sidecar.get("metrics_test", {})
        return [("Test accuracy (rotated digits)", f"{100 * m.get('test_accuracy', 0):.1f} %"),
                ("Reconstruction MSE / pixel", f"{m.get('reconstruction_mse_per_pixel', float('nan')):.4f}"),
                ("Equivariance error, 90°", f"{m.get('equivariance_rot90_max', float('nan')):.1e}")]

    def card_text(self) -> str:
        """Code shape and where the model comes from."""
        cfg = self.sidecar.get("model_config", {})
        return (f"Example plugin (`examples/c4_rotmnist`): a pure-torch C_4 group CNN. Latent code per image: "
                f"**{cfg.get('group_channels')} × 4** (channels × rotations).")


SPEC = ModelSpec(
    id="rot_mnist_c4_example", label="C_4 group CNN (example plugin) · rotated MNIST", domain=ROTATED_MNIST,
    load=C4Model, evaluation=EvaluationPlan("classes", "c4example"),
    train_hint="python -m elx_c4_example.train", weights_dir=WEIGHTS_DIR)
