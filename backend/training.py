"""Training and evaluation of the QM9 graph VAE; weights + JSON sidecar on disk.

``python -m backend train qm9 ...`` calls :func:`train_graph_vae`. The weights
are a plain ``state_dict`` (``models/weights/<name>.pt``) and the sidecar
(``<name>.json``) records the command, seed, data, split, git commit, epochs,
wall time, model configuration and the test-split metrics of
:func:`graph_vae_metrics`. Weights are always read back with
``torch.load(..., weights_only=True)``.

Long runs: every ``checkpoint_minutes`` the full training state (model,
optimizer, step, epoch order, numpy and torch RNG states, loss and
validation history, accumulated training time) is written atomically to
``models/checkpoints/<name>.ckpt`` (temporary file, then ``os.replace``);
``--resume PATH`` continues such a run exactly where it stopped, and
``--max-minutes`` stops a run cleanly by wall clock (checkpoint, weights,
sidecar). The training step itself works on dense batched tensors only
(no per-molecule Python); evaluation runs under ``torch.inference_mode``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
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
CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "models" / "checkpoints"
CHECKPOINT_FORMAT = 1
# settings that may change when a run is resumed (run control, not the experiment)
RESUMABLE_OVERRIDES = ("epochs", "max_minutes", "threads", "checkpoint_minutes", "eval_minutes", "eval_size",
                       "log_every")


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
    max_minutes: float = 0.0  # stop once the run's wall time, summed over resumes, passes this (0 = no limit)
    threads: int = 0  # torch threads (0 = torch's default)
    edge_pos_weight: float = 1.0  # weight of bonded pairs in the edge-existence NLL (1 = plain ELBO)
    lr_schedule: str = "cosine"  # cosine over the planned steps | cosine_time: over max_minutes | constant
    warmup_steps: int = 0  # linear learning-rate warm-up from 0 over this many steps
    checkpoint_minutes: float = 0.0  # write a resumable checkpoint this often and at the end (0 = never)
    eval_minutes: float = 0.0  # validation metrics on `eval_size` molecules this often (0 = never)
    eval_size: int = 2000  # validation molecules for the periodic metrics
    log_every: int = 50  # record the running loss in the history every this many steps


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


def graph_vae_metrics(model: GraphVAE, graphs: QM9Graphs, rows: np.ndarray, n_prior: int = 10000,
                      seed: int = 0, batch_size: int = 1024, progress: bool = False) -> dict:
    """Reconstruction and validity metrics of a graph VAE on ``rows`` of ``graphs``.

    Codes are posterior means; decoding is :meth:`GraphVAE.decode`; runs under
    ``torch.inference_mode`` and leaves the model in eval mode.

    Parameters
    ----------
    model : the graph VAE; graphs : featurized QM9; rows : (M,) int row indices.
    n_prior : prior samples z ~ N(0, I) for ``validity_prior`` (0 = skip).
    seed : seed of the prior samples; batch_size : molecules per forward pass.

    Returns a dict with: ``node_existence_acc`` (over all slots),
    ``atom_type_acc`` (over true atoms), ``bond_acc`` (4-way none/single/
    double/triple over pairs of true atoms), ``edge_recall`` (true bonds
    decoded as bonded), ``edge_precision`` (decoded bonds among true atoms
    that are true bonds), ``missing_bonds_per_mol`` / ``extra_bonds_per_mol``,
    ``exact_reconstruction`` (decoded canonical SMILES equals the input's),
    ``validity_test_codes`` (argmax validity of the decoded codes) and
    ``validity_prior``, ``uniqueness_prior`` (distinct valid SMILES / valid),
    the validity definition, and counts.
    """
    with torch.inference_mode():
        return _graph_vae_metrics(model, graphs, rows, n_prior, seed, batch_size, progress)


def _graph_vae_metrics(model, graphs, rows, n_prior, seed, batch_size, progress) -> dict:
    model.eval()
    types, bonds, tiebreak = graph_tensors(graphs, rows)
    smiles_in = graphs.table["smiles"].to_numpy()[rows]
    n = types.shape[1]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    counts = dict(node=0, node_ok=0, atom=0, atom_ok=0, pair=0, pair_ok=0, exact=0, valid=0,
                  true_edges=0, found_edges=0, decoded_edges=0)
    from rdkit import Chem

    batches = range(0, len(types), batch_size)
    if progress:
        from tqdm import tqdm

        batches = tqdm(batches, desc="metrics", unit="batch")
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
        true_e, dec_e = (b > 0) & pairs, (pb > 0) & pairs
        counts["true_edges"] += int(true_e.sum())
        counts["decoded_edges"] += int(dec_e.sum())
        counts["found_edges"] += int((true_e & dec_e).sum())
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
        "edge_recall": counts["found_edges"] / max(counts["true_edges"], 1),
        "edge_precision": counts["found_edges"] / max(counts["decoded_edges"], 1),
        "missing_bonds_per_mol": (counts["true_edges"] - counts["found_edges"]) / max(m, 1),
        "extra_bonds_per_mol": (counts["decoded_edges"] - counts["found_edges"]) / max(m, 1),
        "exact_reconstruction": counts["exact"] / max(m, 1),
        "validity_test_codes": counts["valid"] / max(m, 1),
        "n_prior_samples": n_prior,
        "validity_prior": valid_prior / max(n_prior, 1),
        "uniqueness_prior": len(smiles_prior) / max(valid_prior, 1),
        "validity_definition": VALIDITY_DEFINITION,
    }


def learning_rate(step: int, total: int, cfg: TrainConfig, elapsed_seconds: float = 0.0) -> float:
    """Learning rate (float) of optimiser step ``step`` (0-based) out of ``total`` planned steps.

    ``cfg.lr_schedule``: ``"cosine"`` decays from ``cfg.lr`` to 2 % of it over
    the planned steps (the shipped model's schedule); ``"cosine_time"`` does
    the same over ``cfg.max_minutes`` of the run's wall time so far,
    ``elapsed_seconds`` (summed over resumes; so a run stopped by the clock
    ends annealed; needs ``max_minutes > 0``); ``"constant"`` keeps ``cfg.lr``. A linear warm-up
    over ``cfg.warmup_steps`` multiplies any of them. Raises ``ValueError`` for
    an unknown schedule.
    """
    if cfg.lr_schedule == "cosine":
        frac = step / max(total, 1)
    elif cfg.lr_schedule == "cosine_time":
        if cfg.max_minutes <= 0:
            raise ValueError("lr_schedule 'cosine_time' needs --max-minutes > 0")
        frac = min(1.0, max(step / max(total, 1), elapsed_seconds / (60.0 * cfg.max_minutes)))
    elif cfg.lr_schedule == "constant":
        frac = 0.0
    else:
        raise ValueError(f"unknown lr_schedule {cfg.lr_schedule!r} (cosine, cosine_time, constant)")
    lr = cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
    if cfg.warmup_steps and step < cfg.warmup_steps:
        lr *= (step + 1) / cfg.warmup_steps
    return lr


def save_checkpoint(path: Path, state: dict) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists and dicts only) atomically to ``path``.

    The file is first written as ``path.tmp`` in the same folder and then
    renamed over ``path`` (``os.replace``), so a reader or a crash never sees a
    half-written checkpoint. Readable with ``torch.load(path, weights_only=True)``.
    Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by :func:`train_graph_vae` (``weights_only=True``).

    Raises ``FileNotFoundError`` if missing and ``ValueError`` if the file is not
    a graph-VAE training checkpoint of a known format.
    """
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or "model" not in state:
        raise ValueError(f"{path} is not a graph-VAE training checkpoint (format {CHECKPOINT_FORMAT})")
    return state


def _rng_to_json(rng: np.random.Generator) -> str:
    return json.dumps(rng.bit_generator.state)


def _rng_from_json(text: str) -> np.random.Generator:
    state = json.loads(text)
    bitgen = getattr(np.random, state["bit_generator"])()
    bitgen.state = state
    return np.random.Generator(bitgen)


def train_graph_vae(model_cfg: GraphVAEConfig, train_cfg: TrainConfig, name: str,
                    out_dir: Path = WEIGHTS_DIR, graphs: QM9Graphs | None = None,
                    command: str | None = None, n_prior: int = 10000, resume: Path | None = None,
                    checkpoint_dir: Path = CHECKPOINT_DIR, overrides: dict | None = None) -> dict:
    """Train (or resume training) a :class:`GraphVAE` on QM9's training split; write weights and sidecar.

    Parameters
    ----------
    model_cfg, train_cfg : the model and optimisation settings (on resume both
        come from the checkpoint, except the run-control fields named in
        ``overrides``, see ``RESUMABLE_OVERRIDES``).
    name : file stem; writes ``out_dir/name.pt`` (a ``state_dict``) and
        ``out_dir/name.json`` (sidecar); checkpoints go to
        ``checkpoint_dir/name.ckpt`` when ``train_cfg.checkpoint_minutes > 0``.
    graphs : featurized QM9 (default: all of it, from :func:`load_qm9_graphs`).
    command : the command line to record (default: ``sys.argv``).
    n_prior : prior samples for the final ``validity_prior``.
    resume : a checkpoint to continue: model, optimizer, step counter, epoch
        order, numpy/torch RNG states, loss and validation history and the
        accumulated training time are restored, so the loss curve continues.
    overrides : on resume, ``TrainConfig`` fields to take from the caller
        rather than the checkpoint; a key outside ``RESUMABLE_OVERRIDES``
        raises ``ValueError``.

    Returns
    -------
    The sidecar dict (``metrics_valid`` and ``metrics_test``: see
    :func:`graph_vae_metrics`; throughput in molecules per second of training).
    Progress is shown with tqdm.
    """
    from tqdm import tqdm

    commit = git_commit()  # recorded before training: the code that produced the weights
    ckpt = None
    if resume is not None:
        ckpt = load_checkpoint(resume)
        bad = set(overrides or {}) - set(RESUMABLE_OVERRIDES)
        if bad:
            raise ValueError(f"cannot change {sorted(bad)} when resuming; only {RESUMABLE_OVERRIDES}")
        model_cfg = GraphVAEConfig(**ckpt["model_config"])
        train_cfg = TrainConfig(**{**ckpt["train_config"], **(overrides or {})})
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    learning_rate(0, 1, train_cfg)  # validate the schedule before any work
    graphs = graphs if graphs is not None else load_qm9_graphs(split_seed=train_cfg.split_seed)
    split = graphs.table["split"].to_numpy()
    rows = {s: np.flatnonzero(split == s) for s in ("train", "valid", "test")}
    if train_cfg.limit:
        rows = {s: r[:train_cfg.limit] for s, r in rows.items()}
    types, bonds, tiebreak = graph_tensors(graphs, rows["train"])
    # a seeded random sample: QM9's file order runs from small to large molecules, so the first
    # validation rows (mean 7.8 heavy atoms against 8.8) overstated exact reconstruction (60 % vs 45 %)
    eval_rows = np.sort(np.random.default_rng(train_cfg.split_seed).choice(
        rows["valid"], size=min(train_cfg.eval_size, len(rows["valid"])), replace=False))
    torch.manual_seed(train_cfg.seed)
    rng = np.random.default_rng(train_cfg.seed)
    model = GraphVAE(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(types) / train_cfg.batch_size))
    total = max(1, int(round(train_cfg.epochs * steps_per_epoch)))
    warm = max(1, int(train_cfg.kl_warmup * steps_per_epoch))
    history: list[dict] = []
    val_history: list[dict] = []
    step, train_seconds, prior_elapsed, running, order = 0, 0.0, 0.0, None, None
    runs = []
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step, train_seconds = int(ckpt["step"]), float(ckpt["train_seconds"])
        prior_elapsed = float(ckpt["elapsed_seconds"])
        history, val_history, runs = list(ckpt["history"]), list(ckpt["val_history"]), list(ckpt["runs"])
        running = dict(ckpt["running"]) if ckpt["running"] else None
        order = ckpt["order"].numpy().astype(np.int64)
        rng = _rng_from_json(ckpt["numpy_rng"])
        torch.set_rng_state(ckpt["torch_rng"])
    ckpt_path = Path(checkpoint_dir) / f"{name}.ckpt"
    run_start_step = step

    def checkpoint_state() -> dict:
        return {"format": CHECKPOINT_FORMAT, "name": name, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "step": step, "train_seconds": train_seconds,
                "elapsed_seconds": prior_elapsed + time.time() - t0,
                "history": history, "val_history": val_history, "running": running or {},
                "order": torch.from_numpy(order.astype(np.int32)), "numpy_rng": _rng_to_json(rng),
                "torch_rng": torch.get_rng_state(), "model_config": model_cfg.to_dict(),
                "train_config": asdict(train_cfg), "runs": runs + [this_run()], "git_commit": commit}

    def this_run() -> dict:
        return {"command": command if command is not None else " ".join(["python -m backend"] + sys.argv[1:]),
                "git_commit": commit, "start_step": run_start_step, "end_step": step,
                "wall_s": round(time.time() - t0, 1)}

    def evaluate_val() -> None:
        m = graph_vae_metrics(model, graphs, eval_rows, n_prior=0, seed=train_cfg.seed)
        keep = ("exact_reconstruction", "validity_test_codes", "bond_acc", "edge_recall", "edge_precision",
                "missing_bonds_per_mol", "extra_bonds_per_mol", "atom_type_acc")
        val_history.append({"step": step, "epoch": round(step / steps_per_epoch, 3),
                            "train_minutes": round(train_seconds / 60, 2), "n_molecules": len(eval_rows),
                            **{k: round(m[k], 4) for k in keep}})
        bar.write(f"[{name}] val@{step}: " + ", ".join(f"{k}={v}" for k, v in val_history[-1].items()))
        model.train()

    t0 = time.time()
    last_ckpt = last_eval = time.time()
    model.train()
    bar = tqdm(total=total, initial=step, desc=f"train {name}", unit="step")
    stopped_early = False
    steps_this_run = 0
    while step < total:
        if train_cfg.max_minutes and prior_elapsed + time.time() - t0 > 60 * train_cfg.max_minutes:
            stopped_early = True
            break
        if order is None or step % steps_per_epoch == 0:  # a new epoch (also right after a resume there)
            order = rng.permutation(len(types))
        pos = (step % steps_per_epoch) * train_cfg.batch_size
        idx = torch.from_numpy(order[pos:pos + train_cfg.batch_size])
        lr = learning_rate(step, total, train_cfg, prior_elapsed + time.time() - t0)
        for group in opt.param_groups:
            group["lr"] = lr
        beta = model_cfg.beta * min(1.0, step / warm)
        t_step = time.time()
        loss, parts = elbo_loss(model, types[idx], bonds[idx], tiebreak[idx], beta=beta,
                                edge_pos_weight=train_cfg.edge_pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        train_seconds += time.time() - t_step
        parts["loss"] = float(loss.detach())
        running = parts if running is None else {k: 0.98 * running[k] + 0.02 * v for k, v in parts.items()}
        if step % train_cfg.log_every == 0 or step == total - 1:
            bar.set_postfix(loss=f"{running['loss']:.2f}", recon=f"{running['recon']:.2f}",
                            kl=f"{running['kl']:.2f}")
            history.append({"step": step, "epoch": step / steps_per_epoch, "lr": lr, "beta": beta,
                            **{k: round(v, 4) for k, v in running.items()}})
        step += 1
        steps_this_run += 1
        bar.update(1)
        now = time.time()
        if train_cfg.eval_minutes and now - last_eval > 60 * train_cfg.eval_minutes:
            evaluate_val()
            last_eval = time.time()
        if train_cfg.checkpoint_minutes and now - last_ckpt > 60 * train_cfg.checkpoint_minutes:
            save_checkpoint(ckpt_path, checkpoint_state())
            last_ckpt = time.time()
    bar.close()
    wall = time.time() - t0
    if train_cfg.checkpoint_minutes:
        save_checkpoint(ckpt_path, checkpoint_state())
    model.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.pt"
    tmp = weights.with_name(weights.name + ".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, weights)
    metrics_valid = graph_vae_metrics(model, graphs, rows["valid"], n_prior=0, seed=train_cfg.seed,
                                      progress=True)
    metrics = graph_vae_metrics(model, graphs, rows["test"], n_prior=n_prior, seed=train_cfg.seed,
                                progress=True)
    sidecar = {
        "name": name,
        "model": "graph_vae_qm9",
        "command": this_run()["command"],
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
        "epochs_completed": step / steps_per_epoch,
        "steps": step,
        "resumed_from": str(resume) if resume is not None else None,
        "runs": runs + [this_run()],
        "checkpoint": str(ckpt_path) if train_cfg.checkpoint_minutes else None,
        "stopped_early_by_max_minutes": stopped_early,
        "wall_time_s": round(wall, 1),
        "train_time_s": round(train_seconds, 1),
        "elapsed_time_s": round(prior_elapsed + wall, 1),
        "throughput_mol_per_s": round(steps_this_run * train_cfg.batch_size / max(wall, 1e-9), 1),
        "step_throughput_mol_per_s": round(step * train_cfg.batch_size / max(train_seconds, 1e-9), 1),
        "torch": torch.__version__,
        "weights_sha256": file_sha256(weights),
        "final_train_loss": history[-1] if history else None,
        "metrics_valid": metrics_valid,
        "metrics_test": metrics,
        "val_history": val_history,
        "history": history,
    }
    tmp = out_dir / f"{name}.json.tmp"
    tmp.write_text(json.dumps(sidecar, indent=2))
    os.replace(tmp, out_dir / f"{name}.json")
    return sidecar


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"
