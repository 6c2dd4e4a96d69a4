"""Training and evaluation of the QM9 graph VAE; weights + JSON sidecar on disk.

``python -m backend train qm9 ...`` calls :func:`train_graph_vae`. The weights
are a plain ``state_dict`` (``models/weights/<name>.pt``) and the sidecar
(``<name>.json``) records the command, seed, data, split, git commit, epochs,
wall time, model configuration and the test-split metrics of
:func:`graph_vae_metrics`. Weights are always read back with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from backend.data.qm9 import VALIDITY_DEFINITION, QM9Graphs, graph_to_molecule, load_qm9_graphs
from models.graph_vae import GraphVAE, GraphVAEConfig, elbo_loss

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "models" / "weights"


@dataclass
class TrainConfig:
    """Optimisation settings for :func:`train_graph_vae`."""

    epochs: float = 6.0  # passes over the training split (fractions allowed)
    batch_size: int = 128
    lr: float = 2e-3  # AdamW peak learning rate, cosine-decayed to 2 % of it
    weight_decay: float = 1e-5
    kl_warmup: float = 0.5  # epochs over which beta ramps linearly from 0
    seed: int = 0  # model init, batches and posterior samples
    split_seed: int = 0  # the 80/10/10 split
    limit: int = 0  # use only the first `limit` molecules of each split (0 = all)
    max_minutes: float = 0.0  # stop early after this wall time (0 = no limit)
    threads: int = 0  # torch threads (0 = torch's default)


def step_schedule(n_items: int, batch_size: int, total: int, peak_lr: float, rng: np.random.Generator,
                  bar=None):
    """Yield ``(step, batch indices (torch.long), lr)`` for ``total`` optimiser steps.

    Each epoch visits the items in a fresh ``rng.permutation``; the learning
    rate follows a cosine from ``peak_lr`` down to 2 % of it. ``bar`` (an
    iterable such as a tqdm over ``range(total)``) replaces the plain range.
    """
    steps_per_epoch = max(1, math.ceil(n_items / batch_size))
    order = rng.permutation(n_items)
    for step in (bar if bar is not None else range(total)):
        pos = (step % steps_per_epoch) * batch_size
        if step and step % steps_per_epoch == 0:
            order = rng.permutation(n_items)
        lr = peak_lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * step / total)))
        yield step, torch.from_numpy(order[pos:pos + batch_size]), lr


def git_commit() -> str:
    """The repository's HEAD commit, with ``+dirty`` if tracked files changed, or ``unknown``."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def graph_tensors(graphs: QM9Graphs, rows=None) -> tuple[torch.Tensor, ...]:
    """``(types (M, n), bonds (M, n, n), tiebreak (M, n))`` as long tensors."""
    rows = slice(None) if rows is None else rows
    return tuple(torch.from_numpy(np.ascontiguousarray(a[rows]).astype(np.int64))
                 for a in (graphs.types, graphs.bonds, graphs.tiebreak))


@torch.no_grad()
def graph_vae_metrics(model: GraphVAE, graphs: QM9Graphs, rows: np.ndarray, n_prior: int = 10000,
                      seed: int = 0, batch_size: int = 1024, progress: bool = False) -> dict:
    """Reconstruction and validity metrics of a graph VAE on ``rows`` of ``graphs``.

    Codes are posterior means; decoding is :meth:`GraphVAE.decode`.

    Returns a dict with: ``node_existence_acc`` (over all slots),
    ``atom_type_acc`` (over true atoms), ``bond_acc`` (4-way none/single/
    double/triple over pairs of true atoms), ``exact_reconstruction`` (decoded
    canonical SMILES equals the input's), ``validity_test_codes`` and
    ``validity_prior`` (``n_prior`` samples z ~ N(0, I)), ``uniqueness_prior``
    (distinct valid SMILES / valid), the validity definition, and counts.
    """
    model.eval()
    types, bonds, tiebreak = graph_tensors(graphs, rows)
    smiles_in = graphs.table["smiles"].to_numpy()[rows]
    n = types.shape[1]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    counts = dict(node=0, node_ok=0, atom=0, atom_ok=0, pair=0, pair_ok=0, exact=0, valid=0)
    from rdkit import Chem

    batches = range(0, len(types), batch_size)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc="test metrics", unit="batch")
    for start in batches:
        sl = slice(start, start + batch_size)
        t, b, tb = types[sl], bonds[sl], tiebreak[sl]
        mu, _ = model.encode(t, b, tb)
        pt, pb = model.decode(mu)
        exists = t > 0
        counts["node"] += exists.numel()
        counts["node_ok"] += int(((pt > 0) == exists).sum())
        counts["atom"] += int(exists.sum())
        counts["atom_ok"] += int((pt[exists] == t[exists]).sum())
        pairs = exists[:, :, None] & exists[:, None, :] & upper
        counts["pair"] += int(pairs.sum())
        counts["pair_ok"] += int((pb[pairs] == b[pairs]).sum())
        for k in range(len(t)):
            dec = graph_to_molecule(pt[k].numpy(), pb[k].numpy())
            counts["valid"] += dec.valid
            if dec.valid and dec.smiles == Chem.MolToSmiles(Chem.MolFromSmiles(smiles_in[start + k])):
                counts["exact"] += 1
    m = len(types)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n_prior, n, model.config.latent_dim, generator=gen)
    valid_prior, smiles_prior = 0, set()
    for start in range(0, n_prior, batch_size):
        pt, pb = model.decode(z[start:start + batch_size])
        for k in range(len(pt)):
            dec = graph_to_molecule(pt[k].numpy(), pb[k].numpy())
            if dec.valid:
                valid_prior += 1
                smiles_prior.add(dec.smiles)
    return {
        "n_molecules": m,
        "node_existence_acc": counts["node_ok"] / max(counts["node"], 1),
        "atom_type_acc": counts["atom_ok"] / max(counts["atom"], 1),
        "bond_acc": counts["pair_ok"] / max(counts["pair"], 1),
        "exact_reconstruction": counts["exact"] / max(m, 1),
        "validity_test_codes": counts["valid"] / max(m, 1),
        "n_prior_samples": n_prior,
        "validity_prior": valid_prior / max(n_prior, 1),
        "uniqueness_prior": len(smiles_prior) / max(valid_prior, 1),
        "validity_definition": VALIDITY_DEFINITION,
    }


def train_graph_vae(model_cfg: GraphVAEConfig, train_cfg: TrainConfig, name: str,
                    out_dir: Path = WEIGHTS_DIR, graphs: QM9Graphs | None = None,
                    command: str | None = None, n_prior: int = 10000) -> dict:
    """Train a :class:`GraphVAE` on QM9's training split; write weights and sidecar.

    Parameters
    ----------
    model_cfg, train_cfg : the model and optimisation settings.
    name : file stem; writes ``out_dir/name.pt`` and ``out_dir/name.json``.
    graphs : featurized QM9 (default: all of it, from :func:`load_qm9_graphs`).
    command : the command line to record (default: ``sys.argv``).

    Returns
    -------
    The sidecar dict. Progress is shown with tqdm.
    """
    from tqdm import tqdm

    commit = git_commit()  # recorded before training: the code that produced the weights
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    torch.manual_seed(train_cfg.seed)
    rng = np.random.default_rng(train_cfg.seed)
    graphs = graphs if graphs is not None else load_qm9_graphs(split_seed=train_cfg.split_seed)
    split = graphs.table["split"].to_numpy()
    rows = {s: np.flatnonzero(split == s) for s in ("train", "valid", "test")}
    if train_cfg.limit:
        rows = {s: r[:train_cfg.limit] for s, r in rows.items()}
    types, bonds, tiebreak = graph_tensors(graphs, rows["train"])
    model = GraphVAE(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(types) / train_cfg.batch_size))
    total = max(1, int(round(train_cfg.epochs * steps_per_epoch)))
    warm = max(1, int(train_cfg.kl_warmup * steps_per_epoch))
    history: list[dict] = []
    t0 = time.time()
    model.train()
    bar = tqdm(range(total), desc=f"train {name}", unit="step")
    stopped_early = False
    running = None
    for step, idx, lr in step_schedule(len(types), train_cfg.batch_size, total, train_cfg.lr, rng, bar):
        for group in opt.param_groups:
            group["lr"] = lr
        beta = model_cfg.beta * min(1.0, step / warm)
        loss, parts = elbo_loss(model, types[idx], bonds[idx], tiebreak[idx], beta=beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        parts["loss"] = float(loss.detach())
        running = parts if running is None else {k: 0.98 * running[k] + 0.02 * v for k, v in parts.items()}
        if step % 50 == 0 or step == total - 1:
            bar.set_postfix(loss=f"{running['loss']:.2f}", recon=f"{running['recon']:.2f}",
                            kl=f"{running['kl']:.2f}")
            history.append({"step": step, "epoch": step / steps_per_epoch, "lr": lr, "beta": beta,
                            **{k: round(v, 4) for k, v in running.items()}})
        if train_cfg.max_minutes and time.time() - t0 > 60 * train_cfg.max_minutes:
            stopped_early = True
            break
    bar.close()
    wall = time.time() - t0
    steps_done = step + 1
    model.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.pt"
    torch.save(model.state_dict(), weights)
    metrics = graph_vae_metrics(model, graphs, rows["test"], n_prior=n_prior, seed=train_cfg.seed,
                                progress=True)
    sidecar = {
        "name": name,
        "model": "graph_vae_qm9",
        "command": command if command is not None else " ".join(["python -m backend"] + sys.argv[1:]),
        "git_commit": commit,
        "seed": train_cfg.seed,
        "data": {
            "source": "qm9pack " + _version("qm9pack") + " bundled CSV",
            "n_molecules": int(len(graphs.table)),
            "split_seed": train_cfg.split_seed,
            "split_sizes": {s: int(len(r)) for s, r in rows.items()},
            "limit": train_cfg.limit,
        },
        "model_config": model_cfg.to_dict(),
        "train_config": asdict(train_cfg),
        "epochs_completed": steps_done / steps_per_epoch,
        "steps": steps_done,
        "stopped_early_by_max_minutes": stopped_early,
        "wall_time_s": round(wall, 1),
        "torch": torch.__version__,
        "weights_sha256": file_sha256(weights),
        "final_train_loss": history[-1] if history else None,
        "metrics_test": metrics,
        "history": history,
    }
    (out_dir / f"{name}.json").write_text(json.dumps(sidecar, indent=2))
    return sidecar


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"
