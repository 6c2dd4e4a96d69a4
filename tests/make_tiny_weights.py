"""Tiny weights for the tests, made by the project's own training command (in-process).

Each model family trains on small data of its own, in seconds: the graph VAE on
the seeded :data:`TINY_QM9_SUBSET`-molecule subset of QM9 (``$ELX_QM9_SUBSET``:
only those molecules are featurized), the rotated-MNIST models on their first
300 images. No family needs another's data or weights. The fixtures of
``tests/conftest.py`` call :func:`make`; as a script it fills a folder, e.g. to
try the app on tiny models::

    python -m tests.make_tiny_weights /tmp/tiny                 # all three models
    python -m tests.make_tiny_weights /tmp/tiny qm9 rotmnist    # only these
    ELX_WEIGHTS_DIR=/tmp/tiny ELX_QM9_SUBSET=600 ELX_MNIST_LIMIT=300 streamlit run app.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: QM9 molecules the tiny graph VAE sees (train/valid/test by the usual seeded split:
#: about 2400/300/300, enough for ``--limit 256`` per split).
TINY_QM9_SUBSET = 3000

TINY_ARGS = {
    "qm9": ["train", "qm9", "--limit", "256", "--epochs", "3", "--batch-size", "32",
            "--hidden", "16", "--enc-layers", "2", "--dec-layers", "2", "--n-prior", "64",
            "--name", "graph_vae_qm9"],
    "rotmnist": ["train", "rotmnist", "--limit", "300", "--epochs", "2", "--batch-size", "32",
                 "--widths", "2", "2", "3", "3", "--latent-fields", "4", "--lr", "0.003",
                 "--name", "rot_mnist_c8"],
    "augcnn": ["train", "augcnn", "--limit", "300", "--epochs", "2", "--batch-size", "32",
               "--widths", "4", "4", "8", "8", "--latent-dim", "8", "--lr", "0.003", "--augment", "1",
               "--name", "rot_mnist_cnn_aug"],
}
MODEL_IDS = {"qm9": "graph_vae_qm9", "rotmnist": "rot_mnist_c8", "augcnn": "rot_mnist_cnn_aug"}
#: Environment of each family's training run.
TRAIN_ENV = {"qm9": {"ELX_QM9_SUBSET": str(TINY_QM9_SUBSET)}, "rotmnist": {}, "augcnn": {}}


@contextmanager
def _environ(values: dict[str, str]):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def make(family: str, out: Path) -> dict:
    """Train the tiny model of ``family`` (``qm9``, ``rotmnist``, ``augcnn``) into ``out``.

    Runs ``python -m backend train <family> ...`` in-process with :data:`TINY_ARGS`
    and returns the sidecar it wrote (``out/<model id>.json``).
    """
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from backend.__main__ import main

    out = Path(out)
    with _environ(TRAIN_ENV[family]):
        status = main(TINY_ARGS[family] + ["--out", str(out)])
    if status != 0:
        raise RuntimeError(f"training the tiny {family} model exited with {status}")
    return json.loads((out / f"{MODEL_IDS[family]}.json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.make_tiny_weights", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="weights folder to write")
    parser.add_argument("families", nargs="*", metavar="FAMILY",
                        help=f"which models, of {', '.join(TINY_ARGS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.families) - set(TINY_ARGS))
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {list(TINY_ARGS)}")
    import torch

    torch.set_num_threads(1)  # these small models run fastest on one thread (see tests/conftest.py)
    for family in args.families or list(TINY_ARGS):
        make(family, args.out)
        print(f"wrote {args.out / MODEL_IDS[family]}.pt")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
