"""``intrain demo``: LeNet-5 on the bundled MNIST subset, dense vs PWT-L1, a table and two figures."""

from __future__ import annotations

from pathlib import Path

from .config import TrainConfig
from .engine.run import train
from .reporting.figures import accuracy_figure, params_figure
from .reporting.tables import runs_table


def run_demo(out: str | Path = "runs/demo", epochs: int = 6, quiet: bool = False) -> list[dict]:
    """Dense and PWT-L1 (60% of filters, reached two epochs before the end so the network can adapt)."""
    out = Path(out)
    base = TrainConfig(model="lenet5", dataset="demo", epochs=epochs, batch_size=64, seed=0)
    configs = {
        "dense": base.replace(method="dense", out=str(out / "dense")),
        "pwt-l1": base.replace(method="pwt", criterion="l1", target=0.6,
                               rate=0.6 / max(epochs - 2, 1), out=str(out / "pwt-l1")),
    }
    summaries = []
    for label, config in configs.items():
        if not quiet:
            print(f"\n== {label} ==", flush=True)
        summaries.append(train(config, quiet=quiet, overwrite=True))  # the demo's own folders
    histories = [(label, _history(Path(s["run_dir"]))) for label, s in zip(configs, summaries)]
    figures = [accuracy_figure(histories, out / "accuracy.png"), params_figure(histories, out / "params.png")]
    print()
    print(runs_table(list(configs), summaries))
    print("\nfigures: " + ", ".join(str(f) for f in figures))
    return summaries


def _history(run_dir: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines() if line.strip()]
