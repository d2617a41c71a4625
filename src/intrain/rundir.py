"""A run folder and its files: one place that knows their names, whether the run finished, and how to
read each. Imports nothing heavy (no torch), so every layer can use it.

A run folder holds (users script against these names):

- ``config.yaml`` — the resolved configuration (:meth:`intrain.config.TrainConfig.resolved`);
- ``history.jsonl`` — one JSON object per epoch, and ``history.csv``, the same as a table;
- ``checkpoint.pt`` — the state after the last completed epoch, from which
  ``intrain train --resume RUN_DIR`` continues;
- ``model.pt`` — the final weights (``{"model": state_dict, "data": ...}``);
- ``model_sparse.npz`` — weight-pruned methods (ra, scratch): the sparse form (:mod:`intrain.sparse`);
- ``summary.json`` — the outcome, written last: a folder with a summary holds a finished run;
- exports (``intrain export``): ``model_compact.pt``, ``model_compact.pt2``, ``model.onnx``.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError
from .yaml_file import read_yaml

CONFIG, HISTORY, HISTORY_CSV, SUMMARY = "config.yaml", "history.jsonl", "history.csv", "summary.json"
CHECKPOINT, MODEL, SPARSE_MODEL = "checkpoint.pt", "model.pt", "model_sparse.npz"
COMPACT_MODEL, PROGRAM, ONNX_MODEL = "model_compact.pt", "model_compact.pt2", "model.onnx"
TENSORBOARD = "tensorboard"  # a folder: --log tensorboard's event files

MARKERS = (CONFIG, CHECKPOINT, SUMMARY)  # any of these: the folder holds a run
ARTEFACTS = (CONFIG, HISTORY, HISTORY_CSV, CHECKPOINT, MODEL, SPARSE_MODEL, SUMMARY,
             COMPACT_MODEL, PROGRAM, ONNX_MODEL, TENSORBOARD)  # everything a run and its exports write
EXPORTS = {"compact": COMPACT_MODEL, "onnx": ONNX_MODEL, "sparse": SPARSE_MODEL}  # export's default files


class RunDir:
    """The run folder ``path`` (which need not exist yet)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # ------------------------------------------------------------------ the files
    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def history(self) -> Path:
        return self.path / HISTORY

    @property
    def history_csv(self) -> Path:
        return self.path / HISTORY_CSV

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def model(self) -> Path:
        return self.path / MODEL

    @property
    def sparse_model(self) -> Path:
        return self.path / SPARSE_MODEL

    # ------------------------------------------------------------------ what it holds
    def held_markers(self) -> list[str]:
        """The files among config.yaml, checkpoint.pt and summary.json that exist."""
        return [name for name in MARKERS if (self.path / name).exists()]

    def holds_run(self) -> bool:
        """Whether the folder holds a run, finished or not (or the start of one)."""
        return bool(self.held_markers())

    def has_checkpoint(self) -> bool:
        """Whether ``intrain train --resume`` can continue it."""
        return self.checkpoint.is_file()

    def finished(self) -> bool:
        """Whether the run finished: its summary is written last, after the model."""
        return self.summary.is_file()

    def finished_as(self, config: Any) -> bool:
        """Whether it holds a finished run of ``config`` (a :class:`~intrain.config.TrainConfig`): the
        same settings as the run resolved them, wherever the folder and the data were."""
        if not (self.finished() and self.config.is_file()):
            return False
        try:  # read as the given config's class: the run folder sits below the config layer
            saved = type(config).from_dict(self.read_config(), source=str(self.config), lenient=True)
            return (saved.replace(out=None, data_dir=None).resolved()
                    == config.replace(out=None, data_dir=None).resolved())
        except ConfigError:
            return False

    def artefacts(self) -> list[Path]:
        """The run's and its exports' files that exist."""
        return [self.path / name for name in ARTEFACTS if (self.path / name).exists()]

    def clear(self) -> None:
        """Remove every file of the run and its exports (``--overwrite``), or say in one line why not."""
        for path in self.artefacts():
            try:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            except OSError as exc:
                raise ConfigError(f"out: cannot replace {path}: {exc.strerror or type(exc).__name__}") from None

    # ------------------------------------------------------------------ reading
    def read_config(self) -> dict[str, Any]:
        """config.yaml as a flat mapping (a one-line error when missing or invalid)."""
        return read_yaml(self.config)

    def read_summary(self) -> dict[str, Any]:
        return json.loads(self.summary.read_text(encoding="utf-8"))

    def read_history(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.history.read_text(encoding="utf-8").splitlines() if line.strip()]


def history_csv_text(records: list[dict[str, Any]]) -> str:
    """The epochs' scalar values as CSV (one row per epoch; columns: every scalar key, in first-seen
    order; nested values such as per-layer lists are left out)."""
    columns: list[str] = []
    for record in records:
        columns += [k for k, v in record.items() if k not in columns and _scalar(v)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: record.get(k) for k in columns if _scalar(record.get(k))})
    return out.getvalue()


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (int, float, str, bool))


def own_folder(path: str | Path, *, what: str, owns: Callable[[str], bool], sign: str | None = None,
               flag: str = "--overwrite") -> None:
    """Refuse to write into ``path`` when it exists and was not made by ``what``: when it holds a run,
    or names ``owns`` does not accept (a report's figures, the demo's runs) and no ``sign`` file (a
    report.md) shows that ``what`` wrote there before."""
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise ConfigError(f"out: {path} is a file, not a folder")
    held = RunDir(path).held_markers()
    if held:
        raise ConfigError(f"out: {path} holds a run ({', '.join(held)}); choose another folder, "
                          f"or write into it anyway with {flag}")
    if sign is not None and (path / sign).is_file():
        return
    others = sorted(p.name for p in path.iterdir() if not owns(p.name) and not p.name.startswith("."))
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise ConfigError(f"out: {path} holds files that {what} did not write ({shown}); choose another folder, "
                          f"or write into it anyway with {flag}")
