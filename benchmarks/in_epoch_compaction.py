"""When to compact: the recommended PWT recipe (cubic, target after 60% of the epochs, a prune every 6
steps) with its pruned filters removed at epoch ends only (``min_share`` 1, intrain before issue 26)
or during the epoch, after every prune (``min_share`` 0) or once the removable filters reach a share
of those held, against dense training: the same data, seed and epochs, trained epoch by epoch in turn
so that the load of a shared machine falls on every arm alike.

Reports each arm's summed epoch time (training + pruning + compaction, evaluation excluded), as
wall-clock and as process CPU seconds (one thread: the time the run was on a core, which other
processes' load moves far less; ``step_overhead.CpuTimed``), and summed training MACs (``train_macs``: each state weighed by the steps it trained) as ratios to dense,
and the final test accuracy (all 10,000 test images).

    python benchmarks/in_epoch_compaction.py [--subset 10000] [--epochs 8] [--width 0.25] [--threads 1]
        [--min-shares 1,0,0.05] [--round-to 1] [--every-steps 6,1] [--name in_epoch_compaction]

``--every-steps K1,K2`` replaces the min-share arms by the recipe pruning every K optimizer steps
(``--prune-every-steps K``, compacted as the trainer's default does): what pruning at every step costs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, emit  # noqa: E402

import intrain  # noqa: E402
from intrain.config import TrainConfig  # noqa: E402
from intrain.engine.build import build  # noqa: E402
from intrain.engine.run import cost_meter  # noqa: E402
from intrain.engine.trainer import TrainerOptions  # noqa: E402
from step_overhead import TimedTrainer  # noqa: E402


def make_trainer(config: TrainConfig, min_share: float) -> tuple:
    parts = build(config)
    options = TrainerOptions(epochs=config.epochs, recalibrate_bn_batches=config.bn_recalibration_batches,
                             progress=False, quiet=True, compact=config.compacts, compact_min_share=min_share)
    return parts, TimedTrainer(parts.model, parts.optimizer, parts.train_loader, parts.test_loader, options=options,
                          method=parts.method, scheduler=parts.scheduler, epoch_cost=cost_meter(config, parts))


def run_config(config: TrainConfig, min_share: float) -> dict:
    """What a run record carries: its resolved configuration (the data folder aside), the compaction
    threshold the arm used and intrain's version."""
    resolved = {k: v for k, v in config.resolved().to_dict().items() if k not in ("out", "data_dir")}
    return {**resolved, "compact_min_share": min_share, "intrain_version": intrain.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--subset", type=int, default=10000)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--target", type=float, default=0.8)
    parser.add_argument("--min-shares", default="1,0", help="comma-separated min_share of the recipe's arms")
    parser.add_argument("--round-to", type=int, default=1, help="the recipe's --round-to")
    parser.add_argument("--every-steps", default="", help="comma-separated --prune-every-steps of the recipe's arms "
                        "(instead of the min-share arms)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--name", default="in_epoch_compaction")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = TrainConfig.of(model="vgg16", width=args.width, dataset="fashion-mnist", data_dir=args.data_dir,
                          subset=args.subset, epochs=args.epochs, seed=args.seed, device="cpu",
                          batch_size=args.batch_size)
    recipe = base.replace(method="pwt", target=args.target, round_to=args.round_to) if args.round_to > 1 else \
        base.replace(method="pwt", target=args.target)
    arms = {"dense": (base.replace(method="dense"), 1.0)}
    for share in (float(s) for s in args.min_shares.split(",")) if not args.every_steps else ():
        arms[f"recipe-min-share-{share:g}"] = (recipe, share)
    for k in (int(s) for s in args.every_steps.split(",")) if args.every_steps else ():
        arms[f"recipe-every-{k}-steps"] = (recipe.replace(prune_every_steps=k), TrainerOptions.compact_min_share)
    runs = {name: make_trainer(config, share) for name, (config, share) in arms.items()}
    for epoch in range(args.epochs):
        for _, trainer in runs.values():
            record = trainer.run_epoch(epoch)
            trainer.epoch += 1
            trainer.history.append(record)
        print(f"epoch {epoch + 1}/{args.epochs}: " + "  ".join(
            f"{n} {100 * t.history[-1]['test_accuracy']:.1f}% {t.history[-1]['epoch_seconds']:.1f}s "
            f"({t.cpu_seconds[epoch]:.1f} CPU s)"
            for n, (_, t) in runs.items()), flush=True)
    results = {}
    for name, (parts, trainer) in runs.items():
        h = trainer.history
        results[name] = {"config": run_config(*arms[name]), "final_test_accuracy": h[-1]["test_accuracy"],
                         "pruned_filter_fraction": parts.method.pruned_filter_fraction(),
                         "train_seconds": sum(r["epoch_seconds"] for r in h),
                         "train_cpu_seconds": sum(trainer.cpu_seconds.values()),
                         "prune_seconds": sum(r["prune_seconds"] for r in h),
                         "steps": len(parts.train_loader) * len(h),
                         "train_macs": sum(r["train_macs"] for r in h),
                         "compactions": trainer.compactor.compactions,
                         "epoch_seconds": [round(r["epoch_seconds"], 3) for r in h]}
    dense = results["dense"]
    for r in results.values():
        r["time_ratio"] = r["train_seconds"] / dense["train_seconds"]
        r["cpu_time_ratio"] = r["train_cpu_seconds"] / dense["train_cpu_seconds"]
        r["mac_ratio"] = r["train_macs"] / dense["train_macs"]
    result = {"benchmark": "in_epoch_compaction", "model": "vgg16", "width": args.width,
              "dataset": "fashion-mnist (32x32)", "subset": args.subset, "epochs": args.epochs,
              "batch_size": args.batch_size, "target": args.target, "round_to": args.round_to, "seed": args.seed,
              "threads": args.threads, "note": "measured on a shared 2-core CPU under load",
              "runs": [{"arm": name, **r} for name, r in results.items()]}
    table = [["arm", "final acc", "pruned", "compactions", "train s", "time ratio", "CPU-time ratio", "MAC ratio"]]
    for name, r in results.items():
        table.append([name, f"{100 * r['final_test_accuracy']:.2f}%", f"{100 * r['pruned_filter_fraction']:.0f}%",
                      str(r["compactions"]), f"{r['train_seconds']:.1f}", f"{r['time_ratio']:.3f}",
                      f"{r['cpu_time_ratio']:.3f}",
                      f"{r['mac_ratio']:.3f}"])
    emit(args.name, result, table)


if __name__ == "__main__":
    main()
