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
               train: Callable[..., dict[str, Any]] | None = None, log: Callable[[str], None] = print,
               progress: bool = False) -> Path:
    """Train the preset's runs in order (reusing finished ones) and write the report; returns report.md.

    ``log`` gets a line as each run starts and ends (``[i/N]``, the time the reproduction has taken and
    an estimate of what is left); with ``progress`` a tqdm bar over the runs (on stderr) too."""
    if train is None:
        from ..engine.run import train
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        _train_runs(preset, out, quiet=quiet, train=train, log=log, progress=progress)
    except BaseException:
        if created and not any(out.iterdir()):  # a failed start leaves no empty folder behind
            out.rmdir()
        raise
    records = [load_run(out / run.label, run.label) for run in preset.runs]
    notes = [f"Preset `{preset.name}` at `{preset.scale}` scale "
             f"(`intrain reproduce {preset.name} --scale {preset.scale}`).", *preset.notes]
    return write_report(records, out, title=preset.title, notes=notes)


def clock(seconds: float) -> str:
    """``H:MM:SS`` of a duration."""
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def _train_runs(preset: Preset, out: Path, *, quiet: bool, train: Callable[..., dict[str, Any]],
                log: Callable[[str], None], progress: bool) -> None:
    """Train the preset's runs that are not finished yet; an unfinished folder is started afresh."""
    total, began = len(preset.runs), time.perf_counter()
    epochs_left = sum(run.config.epochs for run in preset.runs)
    trained_epochs, trained_seconds = 0, 0.0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="run", dynamic_ncols=True)
        write = log

        def log(line: str) -> None:  # the lines above the bar
            with tqdm.external_write_mode():
                write(line)
    try:
        for i, run in enumerate(preset.runs, 1):
            config = resolve_run(run, out)
            epochs_left -= config.epochs
            if bar is not None:
                bar.set_description(run.label)
            if finished(config):
                log(f"[{i}/{total}] {run.label}: already done, reused")
            else:
                start = time.perf_counter()
                log(f"[{i}/{total}] {run.label}: {config.method} {config.model} on {config.dataset}, "
                    f"{config.epochs} epochs")
                summary = train(config, quiet=quiet, overwrite=True)
                seconds = time.perf_counter() - start
                trained_epochs, trained_seconds = trained_epochs + config.epochs, trained_seconds + seconds
                left = f", about {clock(trained_seconds / trained_epochs * epochs_left)} left" if epochs_left else ""
                log(f"[{i}/{total}] {run.label}: final test accuracy {100 * summary['final_test_accuracy']:.2f}% "
                    f"in {seconds:.0f} s (elapsed {clock(time.perf_counter() - began)}{left})")
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
