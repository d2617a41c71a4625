"""Shared helpers of the benchmark scripts: where the data is, and how results are printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"


def finished(config: Any) -> dict[str, Any] | None:
    """The summary of a finished run directory of the same configuration (``out`` and ``data_dir``
    aside; defaults compared as the run resolved them), or ``None``: a benchmark reads it instead of
    training the run again."""
    from intrain.config import TrainConfig, read_yaml

    out = Path(config.out)
    if not (out / "summary.json").exists():
        return None
    saved = TrainConfig.from_dict(read_yaml(out / "config.yaml"), lenient=True)
    if saved.replace(out=None, data_dir=None).resolved() != config.replace(out=None, data_dir=None).resolved():
        return None
    return json.loads((out / "summary.json").read_text())


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
