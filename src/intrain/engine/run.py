"""One training run from a config: the run directory and its files.

Run directory contract (users script against these names):

- ``config.yaml`` — the resolved configuration;
- ``history.jsonl`` — one JSON object per epoch (see :meth:`Trainer.run_epoch`);
- ``summary.json`` — the outcome (see :func:`summarize`);
- ``model.pt`` — the final weights (``{"model": state_dict}``, masks included as buffers).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig, write_yaml
from ..reporting.stats import layer_report, nonzero_parameters, parameter_count, sparsity
from .build import build, resolve_device
from .distributed import World, process_group, world_from_environment, wrap
from .trainer import Trainer, TrainerOptions

HISTORY, SUMMARY, CONFIG, MODEL = "history.jsonl", "summary.json", "config.yaml", "model.pt"


def default_run_dir(config: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.model}-{config.dataset}-{config.method}-{stamp}"


def train(config: TrainConfig, *, quiet: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train as ``config`` says, write the run directory, and return the summary.

    Under ``torchrun`` every rank trains; only rank 0 writes files and prints.
    """
    world = world_from_environment()
    with process_group(world, resolve_device(config.device, world)):
        return _train(config, world, quiet=quiet or not world.is_main, progress=progress)


def _train(config: TrainConfig, world: World, *, quiet: bool, progress: bool) -> dict[str, Any]:
    run_dir = Path(config.out) if config.out else default_run_dir(config)
    parts = build(config, world)
    params_dense = parameter_count(parts.model)
    history_file = run_dir / HISTORY
    if world.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_yaml(config, run_dir / CONFIG)
        history_file.write_text("")

    def append_history(trainer: Trainer, record: dict[str, Any]) -> None:
        if world.is_main:
            with history_file.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    trainer = Trainer(
        parts.model, parts.optimizer, parts.train_loader, parts.test_loader,
        options=TrainerOptions(epochs=config.epochs, recalibrate_bn_batches=config.bn_recalibration_batches,
                               progress=progress, quiet=quiet),
        method=parts.method, scheduler=parts.scheduler, callbacks=[append_history],
        wrapped=wrap(parts.model, parts.device),
    )
    if not quiet:
        ranks = f", {world.size} ranks" if world.distributed else ""
        print(f"intrain: {config.method} {config.model} on {config.dataset} "
              f"({len(parts.train_loader)} batches/epoch, device {parts.device}{ranks}) -> {run_dir}", flush=True)
    start = time.perf_counter()
    trainer.fit()
    train_seconds = time.perf_counter() - start
    summary = summarize(config, trainer, params_dense, train_seconds)
    if world.is_main:
        torch.save({"model": parts.model.state_dict()}, run_dir / MODEL)
        (run_dir / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    summary["run_dir"] = str(run_dir)
    return summary


def summarize(config: TrainConfig, trainer: Trainer, params_dense: int, train_seconds: float) -> dict[str, Any]:
    model, history = trainer.model, trainer.history
    params_final = nonzero_parameters(model)
    return {
        "method": config.method,
        "model": config.model,
        "dataset": config.dataset,
        "epochs": config.epochs,
        "criterion": config.criterion if config.method in ("pwt", "prt") else None,
        "target": config.target if config.method in ("pwt", "prt") else None,
        "final_test_accuracy": history[-1]["test_accuracy"],
        "best_test_accuracy": max(r["test_accuracy"] for r in history),
        "pruned_filter_fraction": trainer.method.pruned_filter_fraction(),
        "sparsity": sparsity(model),
        "params_dense": params_dense,
        "params_final": params_final,
        "compression": params_dense / max(params_final, 1),
        "train_seconds": train_seconds,
        "prune_seconds": sum(r["prune_seconds"] for r in history),
        "layers": layer_report(model, trainer.method.original_filters()),
    }
