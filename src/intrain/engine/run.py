"""One training run from a config: the run directory and its files.

The run directory's files and their names: :mod:`intrain.rundir` (users script against them).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig, write_yaml
from ..errors import CheckpointError, ConfigError
from ..costs import EpochCostMeter, measured_latency, run_cost_summary
from ..model_stats import empty_filter_notes, layer_report, nonzero_parameters, parameter_count, sparsity
from ..sparse import dense_file_bytes, save_sparse
from .build import apply_memory_format, build, resolve_device
from .checkpoint import (CHECKPOINT, Checkpointer, StopSignals, atomic_write, config_from_checkpoint,
                         fit_parts_to_checkpoint, load_checkpoint, resume_trainer, save_checkpoint)
from .distributed import World, process_group, world_from_environment, wrap
from .trainer import Trainer, TrainerOptions

from .tensorboard import epoch_logger, require_logger
from ..rundir import CONFIG, HISTORY, HISTORY_CSV, MODEL, SPARSE_MODEL, SUMMARY, RunDir, history_csv_text


def default_run_dir(config: TrainConfig) -> Path:
    """``runs/<model>-<dataset>-<method>-<time>``, with ``-2``, ``-3``, ... when that folder exists."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{config.model}-{config.dataset}-{config.method}-{stamp}"
    candidates = (base.with_name(f"{base.name}-{n}") if n > 1 else base for n in range(1, 10_000))
    return next(p for p in candidates if not p.exists())


def claim_run_dir(run_dir: Path, *, overwrite: bool) -> None:
    """Refuse a folder that already holds a run (config.yaml, checkpoint.pt or summary.json), naming
    ``--overwrite`` and, when it has a checkpoint to continue from, ``--resume``; with ``overwrite``
    remove every file of that run and its exports first (:meth:`RunDir.clear`)."""
    folder = RunDir(run_dir)
    held = folder.held_markers()
    if not held:
        return
    if not overwrite:
        if folder.finished():
            how = "it is finished; "
        elif folder.has_checkpoint():
            how = f"continue it with 'intrain train --resume {run_dir}' or "
        else:
            how = "it has no checkpoint to continue from; "
        raise ConfigError(f"out: {run_dir} already holds a run ({', '.join(held)}); {how}replace it with "
                          "--overwrite or choose another --out")
    folder.clear()


def train(config: TrainConfig, *, quiet: bool = False, progress: bool = True,
          overwrite: bool = False) -> dict[str, Any]:
    """Train as ``config`` says, write the run directory, and return the summary.

    A ``config.out`` that already holds a run is refused (:class:`~intrain.errors.ConfigError`)
    unless ``overwrite``, which replaces it. ``config.yaml`` gets :meth:`TrainConfig.resolved`.
    Under ``torchrun`` every rank trains; only rank 0 writes files and prints.
    """
    world = world_from_environment()
    run_dir = Path(config.out) if config.out else default_run_dir(config)
    if world.is_main:
        claim_run_dir(run_dir, overwrite=overwrite)
    config = config.replace(out=str(run_dir)).resolved()
    with process_group(world, resolve_device(config.device, world)):
        return _train(config, world, quiet=quiet or not world.is_main, progress=progress)


def resume(run_dir: str | Path, *, quiet: bool = False, progress: bool = True) -> dict[str, Any]:
    """Continue the run in ``run_dir`` from its checkpoint, with the configuration stored there.

    On CPU the result is bit-identical to a run that was never interrupted (timings aside).
    """
    run_dir = Path(run_dir)
    if RunDir(run_dir).holds_run() and not RunDir(run_dir).has_checkpoint():
        raise CheckpointError(f"run {run_dir} has no {CHECKPOINT} to continue from; start it again with "
                              f"'intrain train --config {run_dir / CONFIG} --overwrite'")
    state = load_checkpoint(run_dir / CHECKPOINT)
    config = config_from_checkpoint(state, run_dir).resolved()
    if state["epoch"] >= config.epochs and (run_dir / SUMMARY).is_file():
        raise CheckpointError(f"run {run_dir} already finished its {config.epochs} epochs; nothing to resume")
    world = world_from_environment()
    with process_group(world, resolve_device(config.device, world)):
        return _train(config, world, quiet=quiet or not world.is_main, progress=progress, checkpoint=state)


def _train(config: TrainConfig, world: World, *, quiet: bool, progress: bool,
           checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
    run_dir = Path(config.out)
    require_logger(config.log)
    parts = build(config, world, saved_method_state=checkpoint["method"] if checkpoint is not None else None,
                  progress=progress and not quiet)
    params_dense = parameter_count(parts.model)
    meter = cost_meter(config, parts)
    dense_epoch_cost = meter.dense(parts.model)  # on the freshly built, dense model
    if checkpoint is not None:
        fit_parts_to_checkpoint(checkpoint, parts, config, run_dir / CHECKPOINT)
        apply_memory_format(parts.model, config)  # a shrunk model has new tensors
    history_file = run_dir / HISTORY
    checkpointer = Checkpointer(run_dir / CHECKPOINT, config.to_dict(), enabled=world.is_main,
                                train_seconds=checkpoint.get("train_seconds", 0.0) if checkpoint is not None else 0.0)

    def append_history(trainer: Trainer, record: dict[str, Any]) -> None:
        if world.is_main:
            with history_file.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            write_history_csv(run_dir, trainer.history)

    trainer = Trainer(
        parts.model, parts.optimizer, parts.train_loader, parts.test_loader,
        options=TrainerOptions(epochs=config.epochs, recalibrate_bn_batches=config.bn_recalibration_batches,
                               progress=progress, quiet=quiet, amp=config.amp, channels_last=config.channels_last,
                               compact=config.compacts),
        method=parts.method, scheduler=parts.scheduler, callbacks=[checkpointer, append_history],
        wrap=step_wrapper(config, parts.device), epoch_cost=meter, val_loader=parts.val_loader,
    )  # attaches the method: its settings that need the model (e.g. RA's layer names) are checked here
    if world.is_main:  # the folder is made once every setting is known to work
        make_run_dir(run_dir)
        write_yaml(config, run_dir / CONFIG)
        write_history(history_file, checkpoint["history"] if checkpoint is not None else [])
    if not quiet:
        ranks = f", {world.size} ranks" if world.distributed else ""
        print(f"intrain: {config.method} {config.model} on {config.dataset} "
              f"({len(parts.train_loader)} batches/epoch, device {parts.device}{ranks}) -> {run_dir}", flush=True)
        for note in (*parts.notes, *config.advisories()):
            print(f"intrain: note: {note}", file=sys.stderr, flush=True)
    if checkpoint is not None:
        resume_trainer(trainer, checkpoint, run_dir / CHECKPOINT)
        if not quiet:
            print(f"intrain: resuming after epoch {trainer.epoch}/{config.epochs}", flush=True)
    else:
        checkpointer.save(trainer)  # a run killed during its first epoch can resume too
    with StopSignals(run_dir / CHECKPOINT, enabled=not world.distributed) as signals, \
            epoch_logger(config.log, run_dir, enabled=world.is_main, fresh=checkpoint is None) as log_epoch:
        trainer.stop_check = signals.check
        trainer.callbacks.append(log_epoch)
        trainer.fit()
    train_seconds = checkpointer.train_seconds()
    summary = summarize(config, trainer, params_dense, train_seconds)
    summary["device"] = str(parts.device)  # the device used (config.yaml keeps what was asked, e.g. auto)
    if parts.skipped_images is not None:  # dataset folder: images left out as undecodable
        summary["skipped_images"] = parts.skipped_images
    summary.update(cost_summary(trainer, meter, dense_epoch_cost, len(parts.train_loader)))
    if world.is_main:
        # atomically, summary last: a run directory with a summary holds a complete model
        save_checkpoint({"model": parts.model.state_dict(), "data": data_facts(parts)}, run_dir / MODEL)
        if config.spec.sparse_weights:
            summary["sparse_file"] = write_sparse_model(parts.model, run_dir)
        text = json.dumps(summary, indent=2) + "\n"
        atomic_write(run_dir / SUMMARY, lambda handle: handle.write(text.encode("utf-8")))
    summary["run_dir"] = str(run_dir)
    if world.is_main and not quiet:
        for name, note in empty_filter_notes(summary["layers"]).items():
            ranged = hasattr(config.method_config, "layer_ranges")  # a method with per-layer ranges (RA)
            hint = f"; a lower range keeps them (--layer-ranges {name}=R)" if ranged else ""
            print(f"intrain: note: {note}{hint}", file=sys.stderr, flush=True)
    return summary


def make_run_dir(run_dir: Path) -> None:
    """Create the run directory, or say in one line why it cannot be."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"out: cannot create the run directory {run_dir}: {reason}") from None


def write_history(path: Path, records: list[dict[str, Any]]) -> None:
    """(Re)write ``history.jsonl`` atomically with ``records`` (empty for a new run)."""
    text = "".join(json.dumps(record) + "\n" for record in records)
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def write_history_csv(run_dir: Path, records: list[dict[str, Any]]) -> None:
    """``history.csv``: ``history.jsonl``'s scalar values as a table, rewritten after every epoch."""
    text = history_csv_text(records)
    atomic_write(run_dir / HISTORY_CSV, lambda handle: handle.write(text.encode("utf-8")))


def summarize(config: TrainConfig, trainer: Trainer, params_dense: int, train_seconds: float) -> dict[str, Any]:
    model, history = trainer.model, trainer.history
    params_final = nonzero_parameters(model)
    return {
        "method": config.method,
        "model": config.model,
        "dataset": config.dataset,
        "epochs": config.epochs,
        # the method's filter criterion and target, where it has them
        "criterion": getattr(config.method_config, "criterion", None),
        "target": getattr(config.method_config, "target", None),
        # each setting that departs from the method's paper (empty: as written there)
        "departures": list(config.spec.departures(config.method_config, config)),
        "final_test_accuracy": history[-1]["test_accuracy"],
        "best_test_accuracy": max(r["test_accuracy"] for r in history),
        "pruned_filter_fraction": trainer.method.pruned_filter_fraction(),
        "sparsity": sparsity(model),
        "params_dense": params_dense,
        "params_final": params_final,
        "compression": params_dense / max(params_final, 1),
        "train_seconds": train_seconds,
        "prune_seconds": sum(r["prune_seconds"] for r in history),
        **validation_summary(history, trainer.val_loader),
        "layers": layer_report(model, trainer.method.original_filters()),
        **getattr(trainer.method, "summary_extras", dict)(),  # e.g. RA's partition, probe, sparsity trace
    }


def validation_summary(history: list[dict[str, Any]], val_loader) -> dict[str, Any]:
    """With a validation split: its size, the final and best validation accuracy, the epoch chosen on it
    (the best; the earliest of ties) and that epoch's test accuracy, the one to report for a choice of
    epoch. Empty without one."""
    if val_loader is None:
        return {}
    best = max(history, key=lambda r: r["val_accuracy"])  # max keeps the first of equal values
    return {"val_examples": val_loader.num_examples, "final_val_accuracy": history[-1]["val_accuracy"],
            "best_val_accuracy": best["val_accuracy"], "best_val_epoch": best["epoch"],
            "test_accuracy_at_best_val": best["test_accuracy"]}


def data_facts(parts) -> dict[str, Any]:
    """What a model built for this run needs to know about its data (``model.pt``'s ``data``, read by
    :mod:`intrain.export`): a folder dataset's class count and image size live in no static spec, and
    the preprocessing of the inputs (raw images of ``image_size``, zero-padded to ``input_shape``, then
    ``(x / 255 - mean) / std``) travels with the exported model."""
    spec, shape = parts.spec, list(parts.train_loader.input_shape)
    return {"num_classes": spec.num_classes, "in_channels": spec.in_channels, "input_shape": shape,
            "image_size": spec.image_size, "pad_to": shape[-1] if shape[-1] != spec.image_size else None,
            "mean": list(spec.mean), "std": list(spec.std)}


def step_wrapper(config: TrainConfig, device: torch.device):
    """The trainer's ``wrap``: what the training step calls, built from the model at the start and
    after every compaction (which makes new tensors): the model in the run's memory format, wrapped
    in DistributedDataParallel when distributed."""
    return lambda model: wrap(apply_memory_format(model, config), device)


def cost_meter(config: TrainConfig, parts) -> EpochCostMeter:
    """Counts each epoch's training MACs and memory accesses (:mod:`intrain.costs`) at its pruning
    state, as the method's registry entry says (``cost_mode``): by filters for filter pruning, as
    non-zero MACs for weight pruning, at full size for a model that trains at full size."""
    loader = parts.train_loader
    return EpochCostMeter(tuple(loader.input_shape), loader.num_examples, config.spec.cost_mode)


def cost_summary(trainer: Trainer, meter: EpochCostMeter, dense_epoch: dict[str, float],
                 batches_per_epoch: int) -> dict[str, Any]:
    """Training-cost totals and savings (:func:`~intrain.costs.run_cost_summary`) and Section V's
    latency model with this run's measured times (:func:`~intrain.costs.measured_latency`)."""
    final_epoch = meter(trainer.model)  # one more epoch at the final state: the PRT reference's retraining
    return {**run_cost_summary(trainer.history, dense_epoch, final_epoch, mode=meter.mode),
            "latency_model": measured_latency(trainer.history, batches_per_epoch)}


def write_sparse_model(model: torch.nn.Module, run_dir: Path) -> dict[str, Any]:
    """Weight-pruned runs also keep the sparse form of the final model (:mod:`intrain.sparse`)."""
    sparse_bytes, dense_bytes = save_sparse(model, run_dir / SPARSE_MODEL), dense_file_bytes(model)
    return {"path": SPARSE_MODEL, "bytes": sparse_bytes, "dense_fp32_bytes": dense_bytes,
            "ratio": dense_bytes / sparse_bytes}
