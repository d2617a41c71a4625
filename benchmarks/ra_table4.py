"""The RA paper's Table 4 on a CPU budget: ResNet-20 on Fashion-MNIST, Strategy 2 with δ factor
∞ / 0.5 / 0.4 / 0.3 → number of classes → accuracy (RA-1.8-0.1, the paper's setting).

The paper used ResNet-56 on CIFAR-10 for 64k iterations with SGD (lr 0.1, momentum 0.9, weight decay
1e-4, lr / 10 at 32k and 48k), a probe of 6.4k iterations, and classes extended at 10k and 20k. The
default ``--recipe paper`` keeps those proportions: lr / 10 at 50% and 75% of the iterations, the
probe ``--probe-fraction`` (0.1) of them, classes extended every 10/64 of them. ``--recipe cosine`` is
the earlier one (lr 0.05, weight decay 5e-4, cosine, classes extended every total / classes).
``--subset`` training images, a ``--width`` multiplier and a few ``--epochs`` keep it on a CPU budget.
A run directory that finished with the same configuration is read instead of trained again.

    python benchmarks/ra_table4.py [--subset 4000] [--width 0.5] [--epochs 4] [--seed 0] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, emit, train_or_resume  # noqa: E402

from intrain.config import TrainConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=float, nargs="+", default=[math.inf, 0.5, 0.4, 0.3])
    parser.add_argument("--subset", type=int, default=4000)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--range", type=float, default=1.8)
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recipe", choices=("paper", "cosine"), default="paper")
    parser.add_argument("--probe-fraction", type=float, default=0.1)
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--out", default="runs/bench-ra-table4")
    parser.add_argument("--dense", action=argparse.BooleanOptionalAction, default=True, help="a dense reference run")
    parser.add_argument("--name", default="ra_table4", help="results file benchmarks/results/NAME.json")
    parser.add_argument("--json", default=None, help="write the results here instead")
    args = parser.parse_args()
    base = TrainConfig.of(model="resnet20", dataset="fashion-mnist", data_dir=args.data_dir, subset=args.subset,
                       width=args.width, epochs=args.epochs, batch_size=64, optimizer="sgd", lr=0.05, momentum=0.9,
                       weight_decay=5e-4, lr_schedule="cosine", seed=args.seed, method="ra", range=args.range,
                       epsilon=args.epsilon, partition="sensitivity", probe_fraction=args.probe_fraction)
    if args.recipe == "paper":
        iterations = args.epochs * math.ceil(args.subset / 64)
        base = base.replace(lr=0.1, weight_decay=1e-4, lr_schedule="step",
                            lr_milestones=(iterations // 2, iterations * 3 // 4),
                            extending_interval=max(1, round(iterations * 10 / 64)))
    start = time.perf_counter()
    dense = train_or_resume(base.replace(method="dense", out=f"{args.out}/dense")) if args.dense else None
    if dense is not None:
        print(f"dense: {100 * dense['final_test_accuracy']:.2f}% in {dense['train_seconds']:.0f} s", flush=True)
    runs = {}
    for delta in args.deltas:
        s = train_or_resume(base.replace(delta=delta, out=f"{args.out}/delta-{delta:g}"))
        runs[f"{delta:g}"] = {"classes": len(s["ra"]["classes"]), "partition": s["ra"]["classes"],
                              "final_test_accuracy": s["final_test_accuracy"], "sparsity": s["sparsity"],
                              "probe_sensitivity": s["ra"]["probe"]["sensitivity"],
                              "probe_seconds": s["ra"]["probe"]["seconds"], "train_seconds": s["train_seconds"]}
        print(f"delta {delta:g}: {runs[f'{delta:g}']['classes']} classes, {100 * s['final_test_accuracy']:.2f}%, "
              f"sparsity {100 * s['sparsity']:.1f}%", flush=True)
    result = {"benchmark": "ra_table4", "recipe": args.recipe, "seed": args.seed,
              "probe_fraction": args.probe_fraction, "lr_milestones": base.lr_milestones,
              "extending_interval": base.method_config.extending_interval, "model": "resnet20", "dataset": "fashion-mnist", "subset": args.subset,
              "width": args.width, "epochs": args.epochs, "range": args.range, "epsilon": args.epsilon,
              "wall_seconds": time.perf_counter() - start,
              "dense": None if dense is None else {"final_test_accuracy": dense["final_test_accuracy"],
                                                   "train_seconds": dense["train_seconds"]},
              "runs": runs}
    table = [["delta factor", "classes", "final acc", "sparsity", "train s"]]
    if dense is not None:
        table.append(["dense", "-", f"{100 * dense['final_test_accuracy']:.2f}%", "0.0%", f"{dense['train_seconds']:.0f}"])
    table += [[d, r["classes"], f"{100 * r['final_test_accuracy']:.2f}%", f"{100 * r['sparsity']:.1f}%",
               f"{r['train_seconds']:.0f}"] for d, r in runs.items()]
    emit(args.name, result, table, path=args.json)


if __name__ == "__main__":
    main()
