"""Training and evaluation of the QM9 graph VAE: ``python -m backend train qm9``.

:func:`train_graph_vae` runs the shared loop of :mod:`backend.train.loop` with the graph VAE's
step (:func:`models.graph_vae.elbo_loss`, a KL warm-up on beta, gradient norm clipped at 10). The
weights are a plain ``state_dict`` (``models/weights/<name>.pt``) and the sidecar
(``<name>.json``) records the command, seed, data, split, git commit, epochs, wall time, model
configuration and the test-split metrics of :func:`graph_vae_metrics`. Weights are always read
back with ``torch.load(..., weights_only=True)``.

Long runs: every ``checkpoint_minutes`` the full training state (model, optimizer, step, epoch
order, numpy and torch RNG states, loss and validation history, accumulated training time) is
written atomically to ``models/checkpoints/<name>.ckpt``; ``--resume PATH`` continues such a run
exactly where it stopped, and ``--max-minutes`` stops a run cleanly by wall clock (checkpoint,
weights, sidecar). The training step itself works on dense batched tensors only (no per-molecule
Python); evaluation runs under ``torch.inference_mode``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from backend.data.qm9 import VALIDITY_DEFINITION, QM9Graphs, graph_to_molecule, load_qm9_graphs
from backend.provenance import file_sha256, git_commit, package_version
from backend.train import loop
from backend.train.loop import CHECKPOINT_DIR, WEIGHTS_DIR, learning_rate, load_checkpoint
from models.graph_vae import GraphVAE, GraphVAEConfig, elbo_loss

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
    Progress is shown with tqdm (:func:`backend.train.loop.run`).
    """
    commit = git_commit()  # recorded before training: the code that produced the weights
    command = loop.command_line(command)
    ckpt = None
    if resume is not None:
        ckpt = load_checkpoint(resume)
        train_cfg = loop.resumed_train_config(ckpt, TrainConfig, overrides, RESUMABLE_OVERRIDES)
        model_cfg = GraphVAEConfig(**ckpt["model_config"])
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
    state = loop.LoopState(rng=np.random.default_rng(train_cfg.seed))
    model = GraphVAE(model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    steps_per_epoch = max(1, -(-len(types) // train_cfg.batch_size))
    total = max(1, int(round(train_cfg.epochs * steps_per_epoch)))
    warm = max(1, int(train_cfg.kl_warmup * steps_per_epoch))
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        state = loop.LoopState.from_checkpoint(ckpt)
    ckpt_path = Path(checkpoint_dir) / f"{name}.ckpt"
    started: list[loop.LoopResult] = []

    def beta(step: int) -> float:
        return model_cfg.beta * min(1.0, step / warm)

    def step_fn(idx: torch.Tensor, step: int) -> dict:
        loss, parts = elbo_loss(model, types[idx], bonds[idx], tiebreak[idx], beta=beta(step),
                                edge_pos_weight=train_cfg.edge_pos_weight)
        return {**parts, "loss": loss}

    def this_run() -> dict:
        return loop.run_record(command, commit, started[0], state.step)

    def checkpoint(bar=None) -> None:
        loop.save_checkpoint(ckpt_path, loop.checkpoint_payload(
            name, model, opt, state, started[0].elapsed(state), model_cfg.to_dict(), asdict(train_cfg),
            this_run(), commit))

    def evaluate_val(bar) -> None:
        m = graph_vae_metrics(model, graphs, eval_rows, n_prior=0, seed=train_cfg.seed)
        keep = ("exact_reconstruction", "validity_test_codes", "bond_acc", "edge_recall", "edge_precision",
                "missing_bonds_per_mol", "extra_bonds_per_mol", "atom_type_acc")
        state.val_history.append({"step": state.step, "epoch": round(state.step / steps_per_epoch, 3),
                                  "train_minutes": round(state.train_seconds / 60, 2), "n_molecules": len(eval_rows),
                                  **{k: round(m[k], 4) for k in keep}})
        bar.write(f"[{name}] val@{state.step}: " + ", ".join(f"{k}={v}" for k, v in state.val_history[-1].items()))
        model.train()

    result = loop.run(
        model, opt, step_fn, state, name=name, n_items=len(types), batch_size=train_cfg.batch_size, total=total,
        lr_at=lambda step, elapsed: learning_rate(step, total, train_cfg, elapsed), log_every=train_cfg.log_every,
        ema=(0.98, 0.02), digits=4, postfix={"loss": ".2f", "recon": ".2f", "kl": ".2f"},
        max_minutes=train_cfg.max_minutes, clip_grad_norm=10.0, log_extra=lambda step: {"beta": beta(step)},
        every=(loop.Every(train_cfg.eval_minutes, evaluate_val), loop.Every(train_cfg.checkpoint_minutes, checkpoint)),
        on_start=started.append)
    if train_cfg.checkpoint_minutes:
        checkpoint()
    weights = loop.save_weights(model, out_dir, name)
    metrics_valid = graph_vae_metrics(model, graphs, rows["valid"], n_prior=0, seed=train_cfg.seed,
                                      progress=True)
    metrics = graph_vae_metrics(model, graphs, rows["test"], n_prior=n_prior, seed=train_cfg.seed,
                                progress=True)
    step, wall = state.step, result.wall_s
    data = {"source": "qm9pack " + package_version("qm9pack") + " bundled CSV",
            "n_molecules": int(len(graphs.table)), "split_seed": train_cfg.split_seed,
            "split_sizes": {s: int(len(r)) for s, r in rows.items()}, "limit": train_cfg.limit}
    sidecar = {
        **loop.base_sidecar(name, "graph_vae_qm9", command, commit, train_cfg.seed, data, model_cfg.to_dict(),
                            train_cfg),
        "epochs_completed": step / steps_per_epoch,
        "steps": step,
        "resumed_from": str(resume) if resume is not None else None,
        "runs": state.runs + [this_run()],
        "checkpoint": str(ckpt_path) if train_cfg.checkpoint_minutes else None,
        "stopped_early_by_max_minutes": result.stopped_early,
        "wall_time_s": round(wall, 1),
        "train_time_s": round(state.train_seconds, 1),
        "elapsed_time_s": round(state.prior_elapsed + wall, 1),
        "throughput_mol_per_s": round(result.steps_this_run * train_cfg.batch_size / max(wall, 1e-9), 1),
        "step_throughput_mol_per_s": round(step * train_cfg.batch_size / max(state.train_seconds, 1e-9), 1),
        "torch": torch.__version__,
        "weights_sha256": file_sha256(weights),
        "final_train_loss": state.history[-1] if state.history else None,
        "metrics_valid": metrics_valid,
        "metrics_test": metrics,
        "val_history": state.val_history,
        "history": state.history,
    }
    loop.write_sidecar(out_dir, name, sidecar)
    return sidecar
