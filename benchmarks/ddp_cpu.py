"""2 CPU ranks (torchrun, gloo) vs 1 process with the same global batch: accuracy, pruned filters,
wall-clock per epoch.

    python benchmarks/ddp_cpu.py [--subset 12000] [--epochs 3] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, emit  # noqa: E402


def run(command: list[str], out: Path, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    subprocess.run(command + ["--out", str(out)], check=True, env=env)
    summary = json.loads((out / "summary.json").read_text())
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    summary["epoch_seconds"] = sum(r["epoch_seconds"] for r in history) / len(history)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=12000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--out", default="runs/bench-ddp")
    args = parser.parse_args()
    train = ["train", "--model", "lenet5", "--dataset", "mnist", "--data-dir", args.data_dir, "--subset",
             str(args.subset), "--method", "pwt", "--criterion", "l1", "--target", "0.5", "--rate",
             str(0.5 / max(args.epochs - 1, 1)), "--epochs", str(args.epochs), "--batch-size",
             str(args.batch_size), "--device", "cpu", "--quiet"]
    one = run([sys.executable, "-m", "intrain"] + train, Path(args.out) / "one", threads=2)
    two = run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "intrain"] + train,
              Path(args.out) / "two", threads=1)
    result = {"benchmark": "ddp_cpu", "subset": args.subset, "epochs": args.epochs, "global_batch": args.batch_size,
              "one_process": {k: one[k] for k in ("final_test_accuracy", "pruned_filter_fraction", "epoch_seconds")},
              "two_ranks": {k: two[k] for k in ("final_test_accuracy", "pruned_filter_fraction", "epoch_seconds")}}
    table = [["run", "final acc", "pruned filters", "s/epoch"]]
    for name, s in (("1 process (2 threads)", one), ("2 ranks (1 thread each)", two)):
        table.append([name, f"{100 * s['final_test_accuracy']:.2f}%", f"{100 * s['pruned_filter_fraction']:.1f}%",
                      f"{s['epoch_seconds']:.1f}"])
    emit("ddp_cpu", result, table)


if __name__ == "__main__":
    main()
