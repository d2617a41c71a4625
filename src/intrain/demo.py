"""``intrain demo``: LeNet-5 on the bundled MNIST subset, dense vs PWT-L1, a table and two figures."""

from __future__ import annotations

from pathlib import Path

from .config import TrainConfig
from .engine.run import train
from .reporting.figures import accuracy_figure, params_figure
from .reporting.tables import runs_table
from .rundir import RunDir, own_folder

RUNS, FIGURES = ("dense", "pwt-l1"), ("accuracy.png", "params.png")  # what the demo writes into its folder


def run_demo(out: str | Path = "runs/demo", epochs: int = 6, quiet: bool = False, overwrite: bool = False) -> list[dict]:
    """Dense and PWT-L1 (60% of filters, reached two epochs before the end so the network can adapt).
    An ``out`` holding anything the demo does not write is refused unless ``overwrite``; the demo's own
    runs there are replaced."""
    out = Path(out)
    if not overwrite:
        own_folder(out, what="intrain demo", owns=lambda name: name in RUNS + FIGURES)
    base = TrainConfig(model="lenet5", dataset="demo", epochs=epochs, batch_size=64, seed=0)
    configs = {
        RUNS[0]: base.replace(method="dense", out=str(out / RUNS[0])),
        RUNS[1]: base.replace(method="pwt", criterion="l1", target=0.6,
                               rate=0.6 / max(epochs - 2, 1), out=str(out / RUNS[1])),
    }
    summaries = []
    for label, config in configs.items():
        if not quiet:
            print(f"\n== {label} ==", flush=True)
        summaries.append(train(config, quiet=quiet, overwrite=True))  # the demo's own folders
    histories = [(label, RunDir(s["run_dir"]).read_history()) for label, s in zip(configs, summaries)]
    figures = [accuracy_figure(histories, out / FIGURES[0]), params_figure(histories, out / FIGURES[1])]
    print()
    print(runs_table(list(configs), summaries))
    print("\nfigures: " + ", ".join(str(f) for f in figures))
    return summaries

