"""Older import path of the QM9 graph-VAE training: see :mod:`backend.train.qm9` and :mod:`backend.train.loop`."""

from backend.provenance import file_sha256, git_commit  # noqa: F401
from backend.train.loop import (CHECKPOINT_DIR, CHECKPOINT_FORMAT, WEIGHTS_DIR, learning_rate,  # noqa: F401
                                load_checkpoint, save_checkpoint)
from backend.train.qm9 import (RESUMABLE_OVERRIDES, TrainConfig, graph_tensors, graph_vae_metrics,  # noqa: F401
                               train_graph_vae)
