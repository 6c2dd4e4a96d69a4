"""Training-step throughput of the QM9 graph VAE (molecules per second), before vs after.

Usage: python benchmarks/train_step.py [--threads 1] [--batch-size 128] [--steps 20] [--repeats 3]

One optimiser step = batch gather from the training tensors, forward, negative ELBO,
backward, gradient clipping, AdamW update. All variants run in this process on the same
real QM9 batches, interleaved, and the median step time of each is reported:

- ``baseline``: the shipped code (commit 520e16e): two channel matmuls per 2->2 layer
  (``T_ij`` and ``T_ji``), broadcast terms added one by one, and a loss that gathers the
  atoms / pairs / bonds with boolean indexing. Reproduced below by swapping those methods in.
- ``fused``: today's default layers (one matmul for ``T_ij`` and ``T_ji``, the O(n) terms
  folded before the broadcast) and the dense masked loss; same parameters and outputs.
- ``symmetric``: ``GraphVAEConfig(symmetric=True)``, tied layers for symmetric pair tensors
  (one ``C x C`` channel mix per layer instead of two; a different model, see its docstring).
- ``v2``: the model of the long run ``graph_vae_qm9`` (trained as ``graph_vae_qm9_v2``) (``decoder="hybrid"``: the
  equivariant decoder plus an MLP on the sorted codes, ``mlp_hidden=256``).

Also prints evaluation throughput (encode + decode of posterior means) under
``torch.no_grad`` vs ``torch.inference_mode``. Timings on a shared machine are noisy:
compare the ratios, not the absolute numbers. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types as pytypes
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from models import graph_vae as gv  # noqa: E402

SHIPPED = dict(hidden=48, enc_layers=3, dec_layers=3, latent_dim=1, beta=0.1)  # graph_vae_qm9.json


# ----------------------------------------------------------------- the shipped (baseline) code
def _baseline_2to2(self, t):
    diag = torch.diagonal(t, dim1=1, dim2=2).transpose(1, 2)
    row_mean, col_mean = t.mean(2), t.mean(1)
    vec = torch.cat([diag, row_mean, col_mean], -1)
    scal = torch.cat([diag.mean(1), t.mean((1, 2))], -1)
    out = self.full(t) + self.full_t(t.transpose(1, 2))
    out = out + self.rows(vec)[:, :, None, :] + self.cols(vec)[:, None, :, :]
    out = out + self.glob(scal)[:, None, None, :]
    on_diag = self.diag(torch.cat([vec, scal[:, None, :].expand(-1, vec.shape[1], -1)], -1))
    return out + torch.diag_embed(on_diag.transpose(1, 2), dim1=1, dim2=2)


def _baseline_nll(logits, types, bonds, edge_pos_weight=1.0):
    exists = types > 0
    n = types.shape[1]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    pairs = exists[:, :, None] & exists[:, None, :] & upper
    bonded = (bonds > 0) & pairs
    b = types.shape[0]
    return {
        "exists": F.binary_cross_entropy_with_logits(logits["exists"], exists.float(), reduction="sum") / b,
        "atom": F.cross_entropy(logits["atom"][exists], (types[exists] - 1).long(), reduction="sum") / b,
        "edge": F.binary_cross_entropy_with_logits(logits["edge"][pairs], bonded[pairs].float(),
                                                   reduction="sum") / b,
        "bond": F.cross_entropy(logits["bond"][bonded], (bonds[bonded] - 1).long(), reduction="sum") / b,
    }


def make_baseline(model: gv.GraphVAE) -> gv.GraphVAE:
    """Swap the shipped (pre-v2) 2->2 forward into every ``Equivariant2to2`` of ``model``, in place."""
    for mod in model.modules():
        if isinstance(mod, gv.Equivariant2to2):
            mod.forward = pytypes.MethodType(_baseline_2to2, mod)
    return model


# ----------------------------------------------------------------- timing
def make_step(model, data, batch_size, rng, baseline: bool):
    """A closure running one full optimiser step on a random batch of ``data``."""
    types, bonds, tiebreak = data
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step():
        idx = torch.from_numpy(rng.choice(len(types), batch_size, replace=False))
        t, b, tb = types[idx], bonds[idx], tiebreak[idx]
        logits, mu, logvar, _ = model(t, b, tb, sample=True)
        parts = (_baseline_nll if baseline else gv.reconstruction_nll)(logits, t, b)
        loss = sum(parts.values()) + 0.1 * gv.gaussian_kl(mu, logvar)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        loss.detach().item()

    return step


def main(argv=None) -> int:
    """Run the benchmark; prints a table of molecules per second and ratios. Returns 0."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per variant and repeat")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from backend.data.qm9 import load_qm9_graphs
    from backend.training import graph_tensors

    graphs = load_qm9_graphs(progress=False)
    train_rows = np.flatnonzero(graphs.table["split"].to_numpy() == "train")
    data = graph_tensors(graphs, train_rows)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch_size}, "
          f"shipped config {SHIPPED}, {len(train_rows)} training molecules")

    variants = {}
    for name, cfg, baseline in (("baseline", SHIPPED, True), ("fused", SHIPPED, False),
                                ("symmetric", {**SHIPPED, "symmetric": True}, False),
                                ("v2", {**SHIPPED, "decoder": "hybrid", "mlp_hidden": 256}, False)):
        torch.manual_seed(0)
        model = gv.GraphVAE(gv.GraphVAEConfig(**cfg)).train()
        if baseline:
            make_baseline(model)
        step = make_step(model, data, args.batch_size, np.random.default_rng(0), baseline)
        for _ in range(3):
            step()  # warm-up
        variants[name] = (step, [])
    for _ in range(args.repeats):
        for name, (step, times) in variants.items():
            for _ in range(args.steps):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
    base = args.batch_size / statistics.median(variants["baseline"][1])
    print(f"\n{'training step':<12} {'mol/s':>9} {'ms/step':>9} {'vs baseline':>12}")
    for name, (_, times) in variants.items():
        med = statistics.median(times)
        print(f"{name:<12} {args.batch_size / med:9.0f} {1000 * med:9.1f} {args.batch_size / med / base:11.2f}x")

    # evaluation: posterior means -> deterministic decode, 1024 molecules per batch
    model = gv.GraphVAE(gv.GraphVAEConfig(**SHIPPED)).eval()
    t, b, tb = (x[:1024] for x in data)
    res = {}
    for name, ctx in (("no_grad", torch.no_grad), ("inference_mode", torch.inference_mode)):
        times = []
        for _ in range(3 * args.repeats):
            with ctx():
                t0 = time.perf_counter()
                model.decode(model.encode(t, b, tb)[0])
                times.append(time.perf_counter() - t0)
        res[name] = 1024 / statistics.median(times)
    print(f"\nevaluation (encode + decode): no_grad {res['no_grad']:.0f} mol/s, inference_mode "
          f"{res['inference_mode']:.0f} mol/s ({res['inference_mode'] / res['no_grad']:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
