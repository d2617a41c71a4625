"""``intrain reproduce``: train every run of a preset (:mod:`intrain.presets`), then write the report.

Runs go to ``OUT/<label>``; the report (figures and ``report.md``) to ``OUT``. A run whose folder
already holds a ``summary.json`` written for the very same configuration is reused, so an
interrupted reproduction continues where it stopped.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from ..config import TrainConfig
from ..presets import Preset, PresetRun
from ..rundir import RunDir
from .report import load_run, write_report


def resolve_run(run: PresetRun, out: Path) -> TrainConfig:
    """The run's configuration with its folder set and ``masks_from="@label"`` pointing into ``out``."""
    config = run.config.replace(out=str(out / run.label))
    masks_from = getattr(config.method_config, "masks_from", None)
    if masks_from and masks_from.startswith("@"):
        config = config.replace(masks_from=str(out / masks_from[1:]))
    return config


def finished(config: TrainConfig) -> bool:
    """Whether ``config.out`` holds a finished run of ``config`` (:meth:`RunDir.finished_as`)."""
    return RunDir(config.out).finished_as(config)


def run_preset(preset: Preset, out: str | Path, *, quiet: bool = True,
               train: Callable[..., dict[str, Any]] | None = None, log: Callable[[str], None] = print) -> Path:
    """Train the preset's runs in order (reusing finished ones) and write the report; returns report.md."""
    if train is None:
        from ..engine.run import train
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        _train_runs(preset, out, quiet=quiet, train=train, log=log)
    except BaseException:
        if created and not any(out.iterdir()):  # a failed start leaves no empty folder behind
            out.rmdir()
        raise
    records = [load_run(out / run.label, run.label) for run in preset.runs]
    notes = [f"Preset `{preset.name}` at `{preset.scale}` scale "
             f"(`intrain reproduce {preset.name} --scale {preset.scale}`).", *preset.notes]
    return write_report(records, out, title=preset.title, notes=notes)


def _train_runs(preset: Preset, out: Path, *, quiet: bool, train: Callable[..., dict[str, Any]],
                log: Callable[[str], None]) -> None:
    """Train the preset's runs that are not finished yet; an unfinished folder is started afresh."""
    for i, run in enumerate(preset.runs, 1):
        config = resolve_run(run, out)
        if finished(config):
            log(f"[{i}/{len(preset.runs)}] {run.label}: already done, reused")
            continue
        start = time.perf_counter()
        log(f"[{i}/{len(preset.runs)}] {run.label}: {config.method} {config.model} on {config.dataset}, "
            f"{config.epochs} epochs")
        summary = train(config, quiet=quiet, overwrite=True)
        log(f"[{i}/{len(preset.runs)}] {run.label}: final test accuracy {100 * summary['final_test_accuracy']:.2f}% "
            f"in {time.perf_counter() - start:.0f} s")
