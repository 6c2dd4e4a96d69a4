"""Compare rotated-MNIST weights on all 1,000 held-out digits: accuracy with its Wilson interval,
the 45-degree figures (e2cnn models), and exact McNemar tests on the digits two models disagree on.

Usage::

    python scripts/compare_rot_mnist.py NAME=STEM [NAME=STEM ...] [--pair A B ...]

``STEM`` is a weights path without ``.pt`` (its ``.json`` sidecar beside it says which model it
is). Earlier weights are in the git history, e.g.
``git show 9d2fbea:models/weights/rot_mnist_c8.pt > /tmp/v2.pt`` (and the ``.json``). Source of
the tests: Wilson interval (``backend.stats``), exact McNemar = binomial test on the discordant
pairs (``scipy.stats.binomtest``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from scipy.stats import binomtest

    from backend.stats import wilson_interval
    from backend.train.rotmnist import RotTrainConfig, equivariance_errors, load_data
    from models.aug_cnn import AugCNNConfig, load_aug_cnn
    from models.rot_mnist import RotMNISTConfig, load_rot_mnist

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="NAME=STEM")
    ap.add_argument("--pair", nargs=2, action="append", default=[], metavar=("A", "B"),
                    help="McNemar test of B against A (repeatable)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    data = load_data(RotTrainConfig())
    te = data.rows("test")
    x, y = np.ascontiguousarray(data.images[te], dtype=np.float32), data.labels[te]
    right = {}
    for item in args.runs:
        name, stem = item.split("=", 1)
        card = json.loads(Path(stem + ".json").read_text())
        if card["model"] == "rot_mnist_cnn_aug":
            model = load_aug_cnn(stem + ".pt", AugCNNConfig.from_dict(card["model_config"]))
        else:
            model = load_rot_mnist(stem + ".pt", RotMNISTConfig.from_dict(card["model_config"]))
        with torch.no_grad():
            pred = np.concatenate([model.classify(model.encode(torch.from_numpy(x[i:i + 200]))).argmax(1).numpy()
                                   for i in range(0, len(x), 200)])
        right[name] = pred == y
        lo, hi = wilson_interval(int(right[name].sum()), len(y))
        line = f"{name}: accuracy {100 * right[name].mean():.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]"
        if card["model"] != "rot_mnist_cnn_aug":
            e = equivariance_errors(model, x)
            line += (f"; 45° predictions unchanged {100 * e['prediction_agreement_rot_2pi_over_N']:.1f} %; "
                     f"pooled-code change (median) {e['pooled_invariance_rot_2pi_over_N_median']:.3f}; "
                     f"equivariance error (median / max) {e['equivariance_rot_2pi_over_N_median']:.3f} / "
                     f"{e['equivariance_rot_2pi_over_N_max']:.3f}")
        print(line, flush=True)
    for a, b in args.pair:
        only_b, only_a = int((~right[a] & right[b]).sum()), int((right[a] & ~right[b]).sum())
        p = binomtest(only_b, only_b + only_a).pvalue if only_a + only_b else 1.0
        print(f"{b} vs {a}: only {b} right {only_b}, only {a} right {only_a}, exact McNemar p = {p:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
