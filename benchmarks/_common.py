"""Shared helpers of the benchmark scripts: where the data is, and how results are printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"


def _same_run(config: Any) -> bool:
    """Whether ``config.out`` holds a run of the same configuration (``out`` and ``data_dir`` aside;
    defaults compared as the run resolved them), finished or not."""
    from intrain.config import TrainConfig
    from intrain.rundir import RunDir

    folder = RunDir(config.out)
    if not folder.config.exists():
        return False
    saved = TrainConfig.from_dict(folder.read_config(), lenient=True)
    return saved.replace(out=None, data_dir=None).resolved() == config.replace(out=None, data_dir=None).resolved()


def finished(config: Any) -> dict[str, Any] | None:
    """The summary of a finished run directory of the same configuration (the check ``intrain
    reproduce`` makes: :meth:`RunDir.finished_as`), or ``None``: a benchmark reads it instead of
    training the run again."""
    from intrain.rundir import RunDir

    folder = RunDir(config.out)
    return folder.read_summary() if folder.finished_as(config) else None


def train_or_resume(config: Any) -> dict[str, Any]:
    """The run's summary: read from a finished run directory of the same configuration, continued
    from its checkpoint when it was interrupted, otherwise trained afresh (replacing whatever else
    ``config.out`` holds)."""
    from intrain.engine.run import resume, train
    from intrain.rundir import RunDir

    done = finished(config)
    if done is not None:
        return done
    if RunDir(config.out).has_checkpoint() and _same_run(config):
        return resume(config.out, quiet=True)
    return train(config, quiet=True, overwrite=True)


def emit(name: str, result: dict[str, Any], table: Sequence[Sequence[str]], path: str | Path | None = None) -> Path:
    """Print one JSON line and an aligned table, and keep the JSON in benchmarks/results/NAME.json
    (or ``path``)."""
    print(json.dumps(result))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(table[0]))]
    for n, row in enumerate(table):
        print("  ".join(str(cell).rjust(w) for cell, w in zip(row, widths)))
        if n == 0:
            print("  ".join("-" * w for w in widths))
    path = Path(path) if path is not None else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
