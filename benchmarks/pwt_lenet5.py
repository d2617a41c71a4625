"""LeNet-5 on full MNIST: dense vs PWT-L1 to 50% of filters, same epochs and seed.

Reports each run's accuracy and the share of epoch time spent deciding and applying the pruning
(goal: at most 0.5% of the epoch).

    python benchmarks/pwt_lenet5.py [--epochs 5] [--data-dir ../shared/data] [--out runs/bench-pwt-lenet5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, emit  # noqa: E402

from intrain.config import TrainConfig  # noqa: E402
from intrain.engine.run import train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--target", type=float, default=0.5)
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--out", default="runs/bench-pwt-lenet5")
    args = parser.parse_args()
    base = TrainConfig.of(model="lenet5", dataset="mnist", data_dir=args.data_dir, epochs=args.epochs, seed=0)
    runs = {
        "dense": base.replace(method="dense", out=f"{args.out}/dense"),
        "pwt-l1": base.replace(method="pwt", criterion="l1", target=args.target, out=f"{args.out}/pwt-l1"),
        # the same target reached one epoch early, so the network trains an epoch after its last prune
        "pwt-l1-early": base.replace(method="pwt", criterion="l1", target=args.target,
                                     rate=args.target / max(args.epochs - 1, 1), out=f"{args.out}/pwt-l1-early"),
    }
    summaries = {name: train(config, quiet=True, overwrite=True) for name, config in runs.items()}
    pwt = summaries["pwt-l1"]
    prune_share = pwt["prune_seconds"] / pwt["train_seconds"]
    result = {
        "benchmark": "pwt_lenet5", "epochs": args.epochs, "target": args.target,
        "dense_accuracy": summaries["dense"]["final_test_accuracy"],
        "pwt_accuracy": pwt["final_test_accuracy"],
        "pwt_early_accuracy": summaries["pwt-l1-early"]["final_test_accuracy"],
        "pwt_pruned_filter_fraction": pwt["pruned_filter_fraction"],
        "prune_seconds": pwt["prune_seconds"], "train_seconds": pwt["train_seconds"],
        "prune_share_of_training": prune_share,
    }
    table = [["run", "final acc", "best acc", "pruned filters", "params", "train s", "prune s"]]
    for name, s in summaries.items():
        table.append([name, f"{100 * s['final_test_accuracy']:.2f}%", f"{100 * s['best_test_accuracy']:.2f}%",
                      f"{100 * s['pruned_filter_fraction']:.1f}%", f"{s['params_final']:,}",
                      f"{s['train_seconds']:.1f}", f"{s['prune_seconds']:.4f}"])
    emit("pwt_lenet5", result, table)
    print(f"pruning decisions: {100 * prune_share:.3f}% of PWT training time (goal <= 0.5%)")


if __name__ == "__main__":
    main()
