"""Argmax vs valence-constrained decode of the shipped QM9 graph VAE on test molecules.

Usage: OMP_NUM_THREADS=1 python benchmarks/constrained_decode.py [--n 2000] [--time-limit 2.0]
                                                               [--seed 0] [--weights NAME]

Takes ``--n`` molecules of the test split (split seed from the weights' sidecar; a seeded random
subset when ``--n`` is smaller than the split), encodes them to posterior means, and decodes
each code twice: with :meth:`models.graph_vae.GraphVAE.decode` (argmax) and with
:func:`backend.decoding.constrained_decode` (the most probable graph under valence, charge and
connectivity constraints; HiGHS MILP). Prints validity (RDKit sanitization + one component,
``backend.data.qm9.VALIDITY_DEFINITION``), exact reconstruction (same canonical SMILES as the
input), the mean decoder log-likelihood of each decode and of the input graph, the solve-time
median / p95 / max, the fraction proven optimal and the status counts. The first run
featurizes all of QM9 (1-2 min) and caches it in ``.cache/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.data.qm9 import graph_to_molecule, load_qm9_graphs  # noqa: E402
from backend.decoding import constrained_decode_logits, log_likelihood  # noqa: E402
from backend.training import graph_tensors  # noqa: E402
from models.graph_vae import GraphVAE  # noqa: E402


def load_model(name: str) -> tuple[GraphVAE, dict]:
    """The registry's graph VAE ``name`` (its one loading recipe: strict, ``weights_only=True``)
    and its sidecar."""
    from backend import registry

    entry = registry.get(name)
    return entry.model(), entry.sidecar


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="test molecules (default 2000)")
    parser.add_argument("--time-limit", type=float, default=2.0, help="HiGHS limit per code, s")
    parser.add_argument("--seed", type=int, default=0, help="seed of the test subset")
    parser.add_argument("--weights", default="graph_vae_qm9", help="weights stem in models/weights")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    model, sidecar = load_model(args.weights)
    graphs = load_qm9_graphs(split_seed=sidecar["data"]["split_seed"], progress=True)
    test = np.flatnonzero((graphs.table["split"].to_numpy() == "test")
                          & graphs.table["representable"].to_numpy())
    rng = np.random.default_rng(args.seed)
    rows = np.sort(rng.choice(test, size=min(args.n, len(test)), replace=False))
    types, bonds, tiebreak = graph_tensors(graphs, rows)
    target = graphs.table["canonical_smiles"].to_numpy()[rows]

    with torch.no_grad():
        mu, _ = model.encode(types, bonds, tiebreak)
        arg_types, arg_bonds = model.decode(mu)
        logits = {k: v.double().numpy() for k, v in model.decode_logits(mu).items()}

    from tqdm import tqdm

    stats = {k: [] for k in ("arg_valid", "arg_exact", "con_valid", "con_exact", "arg_ll",
                             "con_ll", "true_ll", "same_as_valid_argmax")}
    seconds, statuses = [], Counter()
    for k in tqdm(range(len(rows)), desc="decode", unit="mol"):
        one = {key: v[k] for key, v in logits.items()}
        at, ab = arg_types[k].numpy(), arg_bonds[k].numpy()
        arg = graph_to_molecule(at, ab)
        res = constrained_decode_logits(one, time_limit=args.time_limit)
        con = graph_to_molecule(res.types, res.bonds)
        seconds.append(res.seconds)
        statuses[res.status] += 1
        stats["arg_valid"].append(arg.valid)
        stats["arg_exact"].append(arg.valid and arg.smiles == target[k])
        stats["con_valid"].append(con.valid)
        stats["con_exact"].append(con.valid and con.smiles == target[k])
        stats["arg_ll"].append(log_likelihood(one, at, ab))
        stats["con_ll"].append(res.log_likelihood)
        stats["true_ll"].append(log_likelihood(one, types[k].numpy(), bonds[k].numpy()))
        if arg.valid:
            stats["same_as_valid_argmax"].append(con.smiles == arg.smiles)

    m = len(rows)
    pct = lambda xs: f"{100 * np.mean(xs):6.1f} %" if len(xs) else "     -"  # noqa: E731
    sec = np.array(seconds)
    print(f"\nweights {args.weights} (sha256 {sidecar.get('weights_sha256', '?')[:12]}), "
          f"{m} test molecules (seed {args.seed}), time limit {args.time_limit:g} s per code, "
          f"torch threads 1")
    print(f"{'decode':<14}{'valid':>10}{'exact':>10}{'mean log p(G|z)':>18}")
    print(f"{'argmax':<14}{pct(stats['arg_valid']):>10}{pct(stats['arg_exact']):>10}"
          f"{np.mean(stats['arg_ll']):>18.3f}")
    print(f"{'constrained':<14}{pct(stats['con_valid']):>10}{pct(stats['con_exact']):>10}"
          f"{np.mean(stats['con_ll']):>18.3f}")
    print(f"{'input graph':<14}{'100.0 %':>10}{'100.0 %':>10}{np.mean(stats['true_ll']):>18.3f}")
    print(f"constrained solve time: median {1e3 * np.median(sec):.0f} ms, "
          f"p95 {1e3 * np.percentile(sec, 95):.0f} ms, max {1e3 * sec.max():.0f} ms, "
          f"total {sec.sum():.1f} s")
    print(f"proven optimal: {pct([s == 'optimal' for s in statuses.elements()]).strip()}  "
          f"status counts: {dict(statuses)}")
    print(f"constrained == argmax where argmax is valid: {pct(stats['same_as_valid_argmax']).strip()} "
          f"of {len(stats['same_as_valid_argmax'])}")
    con_ll, true_ll = np.array(stats["con_ll"]), np.array(stats["true_ll"])
    print(f"constrained log p >= input graph's log p (must hold when optimal): "
          f"{pct(con_ll >= true_ll - 1e-6).strip()}; decoder prefers another valid graph "
          f"(log p higher by > 1e-6): {pct(con_ll > true_ll + 1e-6).strip()}")


if __name__ == "__main__":
    t0 = time.time()
    main()
    print(f"wall time {time.time() - t0:.0f} s")
