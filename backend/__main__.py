"""Command line: ``python -m backend {train,encode,metrics} ...`` (run from the repository root).

Examples
--------
python -m backend train qm9 --epochs 6 --name graph_vae_qm9
python -m backend train qm9 --limit 300 --epochs 2 --name tiny --out /tmp/w
python -m backend train qm9 --name graph_vae_qm9 --resume models/checkpoints/graph_vae_qm9.ckpt --max-minutes 200
python -m backend train rotmnist --epochs 30 --name rot_mnist_c8
python -m backend train augcnn --epochs 30 --augment 1 --name rot_mnist_cnn_aug
python -m backend encode qm9
python -m backend encode rotmnist
python -m backend metrics qm9
python -m backend metrics rotmnist
python -m backend evaluate all            # probes, distortion, paths -> models/results/
python -m backend evaluate rotmnist --quick --out /tmp/results
python -m backend report                  # README "Results" section from the results files
python -m backend check                   # health check: weights + sidecars intact (exit 1 if not)
python -m backend benchmark --quick --skip-browser --out /tmp/BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path


def model_commands(report_only: bool = False) -> dict[str, str]:
    """Command-line names of the registered models (their specs' ``EvaluationPlan.command``) -> model id.

    Shipped: ``qm9``, ``rotmnist``, ``augcnn``; a plugin's model appears under its own name.
    ``report_only`` keeps the models whose plan puts them in the README Results (``evaluate all``).
    """
    from backend import registry

    return {s.evaluation.command: s.id for s in registry.specs()
            if s.evaluation is not None and (s.evaluation.in_report or not report_only)}


def _add_dataclass_args(parser: argparse.ArgumentParser, cls, skip=()) -> None:
    for f in fields(cls):
        if f.name in skip:
            continue
        parser.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default,
                            help=f"(default: {f.default})")


def _add_resume_args(parser: argparse.ArgumentParser, name: str) -> None:
    """``--resume`` and ``--checkpoint-dir`` of a rotated-MNIST training command."""
    parser.add_argument("--resume", default=None, metavar="PATH",
                        help="continue the run of this checkpoint (written with --checkpoint-minutes; model, "
                             "optimizer, schedule, RNG, history); its settings win except --epochs/--max-minutes/"
                             "--threads/--checkpoint-minutes given here, which count the whole run")
    parser.add_argument("--checkpoint-dir", default=None,
                        help=f"folder of <name>.ckpt (default: models/checkpoints), e.g. {name}.ckpt")


def _resume_overrides(args: argparse.Namespace, argv_list: list[str], resumable: tuple[str, ...]) -> dict | None:
    """The settings a ``--resume`` run takes from its own command line (those of ``resumable`` given
    there), or None without ``--resume``; also takes the run's name from the checkpoint unless
    ``--name`` was given (never the shipped model's default name)."""
    if not args.resume:
        return None
    from backend.train.loop import load_checkpoint

    given = {a.split("=")[0] for a in argv_list if a.startswith("--")}
    if "--name" not in given:
        args.name = load_checkpoint(args.resume)["name"]
    return {k: getattr(args, k) for k in resumable if "--" + k.replace("_", "-") in given}


def _train_and_report(train, *args, **kwargs) -> int:
    """Run a training function; print its test metrics (exit code 0), or a refused run
    (:class:`backend.train.loop.TrainingRefused`: a wrong ``--extra-digits`` file, a resume that
    would change the experiment, held-out digits among the extra ones) as one line (exit code 2)."""
    from backend.train.loop import TrainingRefused

    try:
        sidecar = train(*args, **kwargs)
    except TrainingRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(sidecar["metrics_test"], indent=2))
    return 0


def _pick(ns: argparse.Namespace, cls):
    return cls(**{f.name: getattr(ns, f.name) for f in fields(cls)})


def check_models(model_ids: list[str] | None = None, out=None) -> int:
    """Check that each model's weights and JSON sidecar are present and intact.

    For every model: both files exist, the sidecar parses as a JSON object with a
    ``model_config``, the weights' SHA-256 equals the sidecar's ``weights_sha256``
    (when recorded), and the weights load with ``torch.load(weights_only=True)``
    as a dict of tensors. One line per model goes to ``out``: ``ok <id>`` or
    ``FAIL <id>: <reason>`` (the reason names the file and what to do).

    Parameters
    ----------
    model_ids : list of str, optional
        Registry ids; default every registered model.
    out : file-like, optional
        Where the lines go (default ``sys.stdout``).

    Returns
    -------
    int
        0 when every model passes, 1 when one fails, 2 for an unknown model id.
    """
    import hashlib

    import torch

    from backend import registry

    out = out or sys.stdout
    status = 0
    for model_id in model_ids or list(registry.MODELS):
        try:
            entry = registry.get(model_id)
        except registry.UnknownModelError as exc:
            print(f"FAIL {model_id}: {exc.args[0]}", file=out)
            status = max(status, 2)
            continue
        if not getattr(entry, "has_weights", True):  # e.g. synthetic codes: nothing to check
            print(f"ok {model_id} (no weights: {type(entry).__name__})", file=out)
            continue
        if (not model_ids and registry.is_optional(model_id) and not entry.weights_path.exists()
                and not entry.sidecar_path.exists()):
            continue  # an optional extra model this weights folder does not have
        entry.__dict__.pop("sidecar", None)  # read the file as it is now, not a cached copy
        try:
            card = entry.sidecar
            digest = hashlib.sha256()
            with open(entry.weights_path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            recorded = card.get("weights_sha256")
            if recorded and recorded != digest.hexdigest():
                raise ValueError(f"the weights {entry.weights_path} do not match the SHA-256 recorded in "
                                 f"{entry.sidecar_path.name} (file changed or damaged); restore both files "
                                 f"from the release or retrain with `{entry.train_hint}`")
            try:
                state = torch.load(entry.weights_path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise ValueError(f"the weights {entry.weights_path} do not load ({type(exc).__name__}: "
                                 f"{exc}); restore them from the release or retrain with "
                                 f"`{entry.train_hint}`") from None
            if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
                raise ValueError(f"the weights {entry.weights_path} are not a state_dict of tensors")
        except (OSError, ValueError) as exc:  # WeightsNotFoundError and SidecarError are OSErrors
            print(f"FAIL {model_id}: {exc}", file=out)
            status = max(status, 1)
        else:
            print(f"ok {model_id}: {entry.weights_path.name} + {entry.sidecar_path.name}", file=out)
    for name, reason in ([] if model_ids else list(registry.PLUGIN_ERRORS.items())):
        print(f"FAIL plugin {name}: {reason}", file=out)
        status = max(status, 1)
    return status


def _family(model_id: str) -> str:
    """The domain family of a registered model (``molecules``, ``images``, ...)."""
    from backend import registry

    return registry.get(model_id).family


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    from backend.train.qm9 import TrainConfig
    from backend.train.rotmnist import RotTrainConfig
    from models.graph_vae import GraphVAEConfig
    from models.aug_cnn import AugCNNConfig
    from models.rot_mnist import RotMNISTConfig

    commands = model_commands()  # from the registered specs' evaluation plans (plugins included)
    parser = argparse.ArgumentParser(prog="python -m backend", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)

    p_train = sub.add_parser("train", help="train a model; writes weights + JSON sidecar")
    p_data = p_train.add_subparsers(dest="dataset", required=True)
    p_qm9 = p_data.add_parser("qm9", help="permutation-equivariant graph VAE on QM9")
    p_qm9.add_argument("--name", default="graph_vae_qm9", help="weights file stem")
    p_qm9.add_argument("--out", default=None, help="output folder (default: models/weights)")
    p_qm9.add_argument("--n-prior", type=int, default=10000, help="prior samples for validity")
    p_qm9.add_argument("--resume", default=None, metavar="PATH",
                       help="continue the run of this checkpoint (model, optimizer, schedule, RNG, "
                            "history); its settings win except --epochs/--max-minutes/--threads/"
                            "--checkpoint-minutes/--eval-minutes/--eval-size/--log-every given here; "
                            "--epochs and --max-minutes count the whole run, resumes included")
    p_qm9.add_argument("--checkpoint-dir", default=None,
                       help="folder of <name>.ckpt (default: models/checkpoints)")
    _add_dataclass_args(p_qm9, GraphVAEConfig, skip=("symmetric",))
    p_qm9.add_argument("--symmetric", type=int, choices=(0, 1), default=0,
                       help="1 = tied layers for symmetric pair tensors (half the cost) (default: 0)")
    _add_dataclass_args(p_qm9, TrainConfig)
    p_rot = p_data.add_parser("rotmnist", help="C_N-equivariant e2cnn autoencoder-classifier on rotated MNIST")
    p_rot.add_argument("--name", default="rot_mnist_c8", help="weights file stem")
    p_rot.add_argument("--out", default=None, help="output folder (default: models/weights)")
    _add_dataclass_args(p_rot, RotMNISTConfig, skip=("widths", "decoder_widths"))
    p_rot.add_argument("--widths", type=int, nargs=4, default=list(RotMNISTConfig().widths),
                       help="regular fields per encoder layer (default: %(default)s)")
    p_rot.add_argument("--decoder-widths", type=int, nargs=4, default=None,
                       help="regular fields per decoder layer (default: the encoder's widths)")
    _add_dataclass_args(p_rot, RotTrainConfig)
    _add_resume_args(p_rot, "rot_mnist_c8")
    p_aug = p_data.add_parser("augcnn", help="plain CNN autoencoder-classifier trained with rotation "
                                             "augmentation on rotated MNIST (use --augment 1)")
    p_aug.add_argument("--name", default="rot_mnist_cnn_aug", help="weights file stem")
    p_aug.add_argument("--out", default=None, help="output folder (default: models/weights)")
    _add_dataclass_args(p_aug, AugCNNConfig, skip=("widths",))
    p_aug.add_argument("--widths", type=int, nargs=4, default=list(AugCNNConfig().widths),
                       help="channels per encoder layer (default: %(default)s)")
    _add_dataclass_args(p_aug, RotTrainConfig)
    _add_resume_args(p_aug, "rot_mnist_cnn_aug")

    p_enc = sub.add_parser("encode", help="encode all of a data set with shipped weights (cached)")
    p_enc.add_argument("dataset", choices=list(commands))
    p_enc.add_argument("--model", default=None, help="registry model id (default: the shipped one)")
    p_enc.add_argument("--node-order-seed", type=int, default=0,
                       help="seed of the random node orders / extra rotations")

    p_met = sub.add_parser("metrics", help="recompute a model's test metrics and compare to its sidecar")
    p_met.add_argument("dataset", choices=list(commands))
    p_met.add_argument("--model", default=None, help="registry model id (default: the shipped one)")
    p_met.add_argument("--n-prior", type=int, default=10000)
    p_met.add_argument("--constrained", type=int, default=0,
                       help="qm9: also compare the argmax and the constrained (MILP) decode on this many "
                            "test molecules (-1 = the whole test split, 0 = skip)")
    p_met.add_argument("--write", action="store_true",
                       help="qm9: store the constrained-decode comparison in the model's sidecar "
                            "(metrics_test_constrained); rotmnist / augcnn: store the recomputed test "
                            "metrics (metrics_test, with metrics_test_recomputed_by)")

    p_ev = sub.add_parser("evaluate", help="probes, distortion and interpolation quality -> results files")
    p_ev.add_argument("dataset", choices=[*commands, "all"],
                      help="a model's name, or all = the models of the README Results")
    p_ev.add_argument("--quick", action="store_true", help="small sizes: every step, not the reported numbers")
    p_ev.add_argument("--seeds", type=int, default=None, help="seeds per probe (default 5; quick 2)")
    p_ev.add_argument("--out", default=None, help="results folder (default: models/results)")

    p_rep = sub.add_parser("report", help="write the README's Results section (and Markdown copies of the "
                                          "summary tables) from the results files")
    p_rep.add_argument("--check", action="store_true", help="exit 1 if the README is out of date")

    p_chk = sub.add_parser("check", help="health check: exit 1 if a model's weights or sidecar are "
                                         "missing or corrupt (for a container HEALTHCHECK)")
    p_chk.add_argument("--model", action="append", default=None,
                       help="registry model id to check (repeatable; default: every registered model)")

    p_bench = sub.add_parser("benchmark", help="one table of speed and memory figures -> BENCHMARKS.md")
    from backend.benchmark import add_arguments as _bench_arguments
    _bench_arguments(p_bench)

    args = parser.parse_args(argv)
    if args.cmd == "benchmark":
        from backend.benchmark import run as run_benchmark

        return run_benchmark(args, sys.argv[2:] if argv is None else argv[1:])
    if args.cmd == "check":
        return check_models(args.model)
    if args.cmd == "evaluate":
        from tqdm import tqdm

        from backend import registry
        from backend.evaluate import RESULTS_DIR, EvalConfig, evaluate

        cfg = EvalConfig.quick_config() if args.quick else EvalConfig()
        if args.seeds:
            cfg.seeds = args.seeds
        argv_list = sys.argv[1:] if argv is None else argv
        names = list(model_commands(report_only=True)) if args.dataset == "all" else [args.dataset]
        for name in names:
            entry = registry.get(commands[name])
            out = (Path(args.out) if args.out else RESULTS_DIR) / entry.id
            with tqdm(total=1000, desc=f"evaluate {entry.id}", unit="‰") as bar:
                def progress(frac, msg, bar=bar):
                    bar.n = int(1000 * frac)
                    bar.set_postfix_str(msg[:60])
                    bar.refresh()
                tables = evaluate(entry, cfg, out, command="python -m backend " + " ".join(argv_list),
                                  progress=progress)
            print(tables["probes_summary"].to_string(index=False, max_rows=40))
            print(f"wrote {out}")
        return 0
    if args.cmd == "report":
        from backend.report import update_readme, write_markdown_tables

        changed = update_readme(check=args.check)
        if not args.check:
            print(f"wrote {len(write_markdown_tables())} Markdown tables under models/results/")
        print("README Results section " + ("is out of date" if (changed and args.check) else
                                          "updated" if changed else "is up to date"))
        return 1 if (changed and args.check) else 0
    if getattr(args, "model", "x") is None:
        args.model = commands[args.dataset]
    if args.cmd == "train" and args.dataset in ("rotmnist", "augcnn"):
        from backend.train.loop import CHECKPOINT_DIR, WEIGHTS_DIR
        from backend.train.rotmnist import RESUMABLE_OVERRIDES as ROT_RESUMABLE, train_rot_mnist

        argv_list = sys.argv[1:] if argv is None else argv
        model_cfg = _pick(args, RotMNISTConfig if args.dataset == "rotmnist" else AugCNNConfig)
        model_cfg.widths = tuple(args.widths)
        if getattr(args, "decoder_widths", None):
            model_cfg.decoder_widths = tuple(args.decoder_widths)
        overrides = _resume_overrides(args, argv_list, ROT_RESUMABLE)
        return _train_and_report(train_rot_mnist, model_cfg, _pick(args, RotTrainConfig), args.name,
                                 out_dir=Path(args.out) if args.out else WEIGHTS_DIR,
                                 command="python -m backend " + " ".join(argv_list),
                                 resume=Path(args.resume) if args.resume else None,
                                 checkpoint_dir=Path(args.checkpoint_dir) if args.checkpoint_dir else CHECKPOINT_DIR,
                                 overrides=overrides)
    if args.cmd == "train":
        from backend.train.loop import CHECKPOINT_DIR, WEIGHTS_DIR
        from backend.train.qm9 import RESUMABLE_OVERRIDES, train_graph_vae

        argv_list = sys.argv[1:] if argv is None else argv
        args.symmetric = bool(args.symmetric)
        overrides = _resume_overrides(args, argv_list, RESUMABLE_OVERRIDES)
        return _train_and_report(
            train_graph_vae, _pick(args, GraphVAEConfig), _pick(args, TrainConfig), args.name,
            out_dir=Path(args.out) if args.out else WEIGHTS_DIR, n_prior=args.n_prior,
            command="python -m backend " + " ".join(argv_list),
            resume=Path(args.resume) if args.resume else None,
            checkpoint_dir=Path(args.checkpoint_dir) if args.checkpoint_dir else CHECKPOINT_DIR,
            overrides=overrides)
    if args.cmd == "encode":
        from backend import registry

        entry = registry.get(args.model)
        codes = entry.encode_dataset(node_order_seed=args.node_order_seed, progress=True)
        print(f"encoded {len(codes.table)} {entry.item_noun}s -> {codes.cache_path}")
        return 0
    if args.cmd == "metrics" and _family(args.model) == "images":
        from backend import registry
        from backend.train.rotmnist import rot_mnist_metrics

        entry = registry.get(args.model)
        data = entry.dataset().data
        metrics = rot_mnist_metrics(entry.model(), data, data.rows("test"))
        print(json.dumps({"recomputed": metrics, "sidecar": entry.sidecar.get("metrics_test")}, indent=2))
        if args.write:
            from backend.provenance import git_commit

            _write_sidecar(entry, metrics_test=metrics,
                           metrics_test_recomputed_by={"command": "python -m backend " + " ".join(sys.argv[1:]),
                                                       "git_commit": git_commit()})
        return 0
    if args.cmd == "metrics":
        from backend import registry
        from backend.train.qm9 import graph_vae_metrics

        entry = registry.get(args.model)
        graphs = entry.dataset()
        rows = (graphs.table["split"] == "test").to_numpy().nonzero()[0]
        out = {"sidecar": entry.sidecar.get("metrics_test")}
        if args.n_prior >= 0:
            out["recomputed"] = graph_vae_metrics(entry.model(), graphs, rows, n_prior=args.n_prior,
                                                  progress=True)
        if args.constrained:
            import numpy as np
            import torch

            from backend.decoding.molecule import compare_decodes
            from backend.train.qm9 import graph_tensors

            usable = rows[graphs.table["representable"].to_numpy()[rows]]
            if 0 < args.constrained < len(usable):
                usable = np.sort(np.random.default_rng(0).choice(usable, args.constrained, replace=False))
            torch.set_num_threads(1)
            cmp = compare_decodes(entry.model(), *graph_tensors(graphs, usable),
                                  graphs.table["canonical_smiles"].to_numpy()[usable], progress=True)
            cmp["rows"] = "whole test split" if len(usable) == len(rows) else \
                f"{len(usable)} test molecules drawn with seed 0"
            out["constrained"] = cmp
            if args.write:
                _write_sidecar(entry, metrics_test_constrained=cmp)
        print(json.dumps(out, indent=2))
        return 0
    return 2


def _write_sidecar(entry, **fields) -> None:
    """Set ``fields`` in ``entry``'s JSON sidecar (atomic replace; the weights are not touched)."""
    card = dict(entry.sidecar)
    card.update(fields)
    tmp = entry.sidecar_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    tmp.replace(entry.sidecar_path)
    print(f"wrote {', '.join(fields)} to {entry.sidecar_path}")


if __name__ == "__main__":
    raise SystemExit(main())
