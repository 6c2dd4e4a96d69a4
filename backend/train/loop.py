"""The one training loop both training commands run: schedule, logging, early stop, checkpoints, save.

A model's training module (:mod:`backend.train.qm9`, :mod:`backend.train.rotmnist`) builds the
model, the optimizer and a *step function* ``loss_fn(idx, step) -> dict`` (the batch's losses as
tensors, ``"loss"`` the one to minimise), then calls :func:`run`, which

* visits the training items in a fresh ``rng.permutation`` each epoch (``idx``: the batch's item
  indices, a ``torch.long`` tensor);
* sets the learning rate of every step from :func:`learning_rate` (cosine over the planned steps,
  cosine over the time budget, or constant; optional linear warm-up);
* takes the optimiser step (``zero_grad``, ``backward``, optional gradient-norm clipping);
* keeps an exponential moving average of the losses, shows it on a tqdm bar and records it in
  ``history`` every ``log_every`` steps;
* stops cleanly once the run's wall time, summed over resumes, passes ``max_minutes``;
* calls periodic hooks (validation metrics, checkpoints) every so many minutes.

Everything a resumed run needs lives in one :class:`LoopState` (step, epoch order, numpy RNG,
histories, accumulated times), written with the model and optimizer by :func:`save_checkpoint`
(atomic; read back with ``torch.load(..., weights_only=True)`` by :func:`load_checkpoint`).
:func:`save_weights` and :func:`write_sidecar` write the ``state_dict`` and the JSON sidecar
atomically; :func:`base_sidecar` holds the fields every sidecar starts with (name, model, command,
seed, data, git commit, configurations).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS_DIR = ROOT / "models" / "weights"
CHECKPOINT_DIR = ROOT / "models" / "checkpoints"
CHECKPOINT_FORMAT = 1


class TrainingRefused(ValueError):
    """A training run refused before any step: a resume that would change the experiment (a field
    outside the trainer's ``RESUMABLE_OVERRIDES``, another model kind, other extra digits) or
    extra digits that are held-out digits. The command line prints it as one line (exit code 2)."""


def learning_rate(step: int, total: int, cfg, elapsed_seconds: float = 0.0) -> float:
    """Learning rate (float) of optimiser step ``step`` (0-based) out of ``total`` planned steps.

    ``cfg`` has ``lr`` and optionally ``lr_schedule`` (default ``"cosine"``), ``warmup_steps``
    (default 0) and ``max_minutes``. ``"cosine"`` decays from ``cfg.lr`` to 2 % of it over the
    planned steps; ``"cosine_time"`` does the same over ``cfg.max_minutes`` of the run's wall time
    so far, ``elapsed_seconds`` (summed over resumes; so a run stopped by the clock ends annealed;
    needs ``max_minutes > 0``); ``"constant"`` keeps ``cfg.lr``. A linear warm-up over
    ``cfg.warmup_steps`` multiplies any of them.

    Raises
    ------
    ValueError
        For an unknown schedule, or ``"cosine_time"`` without ``max_minutes > 0``.
    """
    kind = getattr(cfg, "lr_schedule", "cosine")
    if kind == "cosine":
        angle = math.pi * step / max(total, 1)
    elif kind == "cosine_time":
        if getattr(cfg, "max_minutes", 0) <= 0:
            raise ValueError("lr_schedule 'cosine_time' needs --max-minutes > 0")
        angle = math.pi * min(1.0, max(step / max(total, 1), elapsed_seconds / (60.0 * cfg.max_minutes)))
    elif kind == "constant":
        angle = 0.0
    else:
        raise ValueError(f"unknown lr_schedule {kind!r} (cosine, cosine_time, constant)")
    lr = cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(angle)))
    warmup = getattr(cfg, "warmup_steps", 0)
    if warmup and step < warmup:
        lr *= (step + 1) / warmup
    return lr


def command_line(command: str | None = None) -> str:
    """``command``, or the running command line as ``python -m backend ...``."""
    return command if command is not None else " ".join(["python -m backend"] + sys.argv[1:])


@dataclass
class LoopState:
    """What a checkpoint keeps of a run besides the model and optimizer.

    ``step`` counts optimiser steps over the whole run (resumes included); ``order`` is the
    current epoch's item order and ``rng`` the generator that draws the next ones (and any other
    per-step randomness of the step function, e.g. augmentation angles); ``running`` is the moving
    average of the losses; ``prior_elapsed`` the wall time of earlier runs of this training.
    """

    rng: np.random.Generator
    step: int = 0
    train_seconds: float = 0.0
    prior_elapsed: float = 0.0
    history: list = field(default_factory=list)
    val_history: list = field(default_factory=list)
    runs: list = field(default_factory=list)
    running: dict | None = None
    order: np.ndarray | None = None

    def to_checkpoint(self, elapsed_seconds: float) -> dict:
        """The checkpoint fields of this state (tensors, numbers, strings, lists, dicts)."""
        return {"step": self.step, "train_seconds": self.train_seconds, "elapsed_seconds": elapsed_seconds,
                "history": self.history, "val_history": self.val_history, "running": self.running or {},
                "order": torch.from_numpy(self.order.astype(np.int32)),
                "numpy_rng": json.dumps(self.rng.bit_generator.state), "torch_rng": torch.get_rng_state()}

    @classmethod
    def from_checkpoint(cls, ckpt: dict) -> "LoopState":
        """The state saved by :meth:`to_checkpoint`; also restores torch's global RNG state."""
        rng_state = json.loads(ckpt["numpy_rng"])
        bitgen = getattr(np.random, rng_state["bit_generator"])()
        bitgen.state = rng_state
        torch.set_rng_state(ckpt["torch_rng"])
        return cls(rng=np.random.Generator(bitgen), step=int(ckpt["step"]),
                   train_seconds=float(ckpt["train_seconds"]), prior_elapsed=float(ckpt["elapsed_seconds"]),
                   history=list(ckpt["history"]), val_history=list(ckpt["val_history"]), runs=list(ckpt["runs"]),
                   running=dict(ckpt["running"]) if ckpt["running"] else None,
                   order=ckpt["order"].numpy().astype(np.int64))


@dataclass
class Every:
    """A hook ``fn(bar)`` that :func:`run` calls after a step once ``minutes`` have passed since the
    last call (or the start); ``minutes <= 0`` never calls it."""

    minutes: float
    fn: Callable


@dataclass
class LoopResult:
    """How a call of :func:`run` ended: ``stopped_early`` (by ``max_minutes``), its wall time, its steps."""

    stopped_early: bool
    wall_s: float
    steps_this_run: int
    start_step: int
    t0: float

    def elapsed(self, state: LoopState) -> float:
        """The training's wall time so far, resumes included."""
        return state.prior_elapsed + time.time() - self.t0


def run(model: torch.nn.Module, opt: torch.optim.Optimizer, loss_fn: Callable[[torch.Tensor, int], dict],
        state: LoopState, *, name: str, n_items: int, batch_size: int, total: int,
        lr_at: Callable[[int, float], float], log_every: int = 50, ema: tuple[float, float] = (0.98, 0.02),
        digits: int = 4, postfix: dict[str, str] | None = None, max_minutes: float = 0.0,
        clip_grad_norm: float | None = None, log_extra: Callable[[int], dict] | None = None,
        every: tuple[Every, ...] = (), on_start: Callable[[LoopResult], None] | None = None) -> LoopResult:
    """Train ``model`` from ``state.step`` up to ``total`` optimiser steps; ``state`` is updated in place.

    Parameters
    ----------
    loss_fn : ``loss_fn(idx, step) -> dict`` of the batch's losses (tensors or floats); ``"loss"``
        (a tensor) is minimised; every entry is averaged into ``state.running``.
    n_items, batch_size : training items and batch size (the last batch of an epoch may be smaller).
    lr_at : ``lr_at(step, elapsed_seconds)`` -> learning rate (e.g. :func:`learning_rate`).
    log_every : record ``{"step", "epoch", "lr", **log_extra(step), **running}`` in ``state.history``
        at every ``log_every``-th step and the last one; values rounded to ``digits``.
    ema : weights ``(a, b)`` of the moving average ``running = a * running + b * new``.
    postfix : loss key -> format spec for the tqdm bar, e.g. ``{"loss": ".3f"}``.
    max_minutes : stop before a step once the training's wall time (``state.prior_elapsed`` plus
        this call's) passes it; 0 = no limit.
    clip_grad_norm : clip the gradient norm to this value (None: no clipping).
    every : hooks called every so many minutes after a step (validation, checkpoints).
    on_start : called with the result object before the first step (to reach ``elapsed``).

    Returns
    -------
    LoopResult
    """
    from tqdm import tqdm

    steps_per_epoch = max(1, math.ceil(n_items / batch_size))
    result = LoopResult(False, 0.0, 0, state.step, time.time())
    if on_start is not None:
        on_start(result)
    last = [result.t0] * len(every)
    model.train()
    bar = tqdm(total=total, initial=state.step, desc=f"train {name}", unit="step")
    while state.step < total:
        if max_minutes and result.elapsed(state) > 60 * max_minutes:
            result.stopped_early = True
            break
        step = state.step
        if state.order is None or step % steps_per_epoch == 0:  # a new epoch (also right after a resume there)
            state.order = state.rng.permutation(n_items)
        pos = (step % steps_per_epoch) * batch_size
        idx = torch.from_numpy(state.order[pos:pos + batch_size])
        lr = lr_at(step, result.elapsed(state))
        for group in opt.param_groups:
            group["lr"] = lr
        extra = log_extra(step) if log_extra is not None else {}
        t_step = time.time()
        parts = loss_fn(idx, step)
        opt.zero_grad(set_to_none=True)
        parts["loss"].backward()
        if clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        opt.step()
        state.train_seconds += time.time() - t_step
        parts = {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in parts.items()}
        a, b = ema
        state.running = parts if state.running is None else {k: a * state.running[k] + b * v
                                                             for k, v in parts.items()}
        if step % log_every == 0 or step == total - 1:
            if postfix:
                bar.set_postfix(**{k: f"{state.running[k]:{spec}}" for k, spec in postfix.items()})
            state.history.append({"step": step, "epoch": step / steps_per_epoch, "lr": lr, **extra,
                                  **{k: round(v, digits) for k, v in state.running.items()}})
        state.step += 1
        result.steps_this_run += 1
        bar.update(1)
        now = time.time()
        for i, hook in enumerate(every):
            if hook.minutes and now - last[i] > 60 * hook.minutes:
                hook.fn(bar)
                last[i] = time.time()
    bar.close()
    result.wall_s = time.time() - result.t0
    return result


def run_record(command: str, commit: str, result: LoopResult, end_step: int) -> dict:
    """One entry of a sidecar's / checkpoint's ``runs``: this call's command, commit and steps."""
    return {"command": command, "git_commit": commit, "start_step": result.start_step, "end_step": end_step,
            "wall_s": round(time.time() - result.t0, 1)}


def save_checkpoint(path: Path, state: dict) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists and dicts only) atomically to ``path``.

    The file is first written as ``path.tmp`` in the same folder and then renamed over ``path``
    (``os.replace``), so a reader or a crash never sees a half-written checkpoint. Readable with
    ``torch.load(path, weights_only=True)``. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: Path) -> dict:
    """Read a training checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Raises
    ------
    FileNotFoundError
        If missing.
    ValueError
        If the file is not a training checkpoint of a known format.
    """
    state = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT or "model" not in state:
        raise TrainingRefused(f"{path} is not a training checkpoint of this project (format {CHECKPOINT_FORMAT})")
    return state


def resumed_train_config(ckpt: dict, config_cls, overrides: dict | None, allowed: tuple[str, ...]):
    """The training config of a resumed run: the checkpoint's, with the run-control ``overrides``.

    Parameters
    ----------
    ckpt : a checkpoint read by :func:`load_checkpoint` (its ``train_config`` dict).
    config_cls : the trainer's config dataclass (called with the merged fields).
    overrides : fields to take from the caller rather than the checkpoint (None: none).
    allowed : the field names a resume may change (the trainer's ``RESUMABLE_OVERRIDES``).

    Raises
    ------
    ValueError
        If ``overrides`` names a field outside ``allowed`` (the experiment itself may not change).
    """
    bad = set(overrides or {}) - set(allowed)
    if bad:
        raise TrainingRefused(f"cannot change {sorted(bad)} when resuming; only {allowed}")
    return config_cls(**{**ckpt["train_config"], **(overrides or {})})


def checkpoint_payload(name: str, model: torch.nn.Module, opt: torch.optim.Optimizer, state: LoopState,
                       elapsed_seconds: float, model_config: dict, train_config: dict, this_run: dict,
                       commit: str, **extra) -> dict:
    """The dict a trainer passes to :func:`save_checkpoint`: everything ``--resume`` needs.

    Holds the model's and optimizer's ``state_dict``, the loop state (step, RNG states, order,
    histories: :meth:`LoopState.to_checkpoint`), both configs, the earlier runs plus ``this_run``
    (:func:`run_record`), the git commit and any trainer-specific ``extra`` fields (tensors,
    numbers, strings, lists, dicts or None).
    """
    return {"format": CHECKPOINT_FORMAT, "name": name, "model": model.state_dict(), "optimizer": opt.state_dict(),
            **state.to_checkpoint(elapsed_seconds), "model_config": model_config, "train_config": train_config,
            "runs": state.runs + [this_run], "git_commit": commit, **extra}


def save_weights(model: torch.nn.Module, out_dir: Path, name: str) -> Path:
    """Switch ``model`` to eval mode and write its ``state_dict`` atomically to ``out_dir/name.pt``.

    Eval mode first: an e2cnn network builds its filter buffers then, and its weights load
    strictly only in the mode they were saved in (:func:`models.rot_mnist.load_rot_mnist`).
    """
    model.eval()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.pt"
    tmp = weights.with_name(weights.name + ".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, weights)
    return weights


def base_sidecar(name: str, model: str, command: str, commit: str, seed: int, data: dict,
                 model_config: dict, train_config) -> dict:
    """The fields every sidecar starts with, in order: name, model, command, git commit, seed, data,
    model and training configuration (a dataclass)."""
    return {"name": name, "model": model, "command": command, "git_commit": commit, "seed": seed, "data": data,
            "model_config": model_config, "train_config": asdict(train_config)}


def write_sidecar(out_dir: Path, name: str, sidecar: dict) -> Path:
    """Write ``sidecar`` as indented JSON to ``out_dir/name.json``, atomically. Returns the path."""
    path = Path(out_dir) / f"{name}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(sidecar, indent=2))
    os.replace(tmp, path)
    return path
