"""VGG-16-BN (width 0.25) on Fashion-MNIST padded to 32x32: dense vs PWT-L1 0->80% compacted after
every pruning epoch vs the same PWT masked only; same epochs, data and seed.

Reports final test accuracy (full 10k test set) and total training wall-clock (sum of the epochs'
training + pruning + compaction seconds, evaluation excluded) as ratios to dense, and the CPU
inference latency of the final compact network vs the dense one (batch 1 and 64, 1 thread).
Goals (issue 4): wall-clock ratio <= 0.45, accuracy within 1 point of dense, latency >= 10x.

PWT ranks filters per layer by default (``--scope layer``): every conv then has p of its filters
pruned, which is what the theory sum_e (1 - p_e)^2 ~ 0.41 of dense MACs assumes. With ``--scope
global`` the normalised L1 score prunes the wide deep layers first (small He-init weights), which hold
few of VGG's MACs: at 80% of the filters the forward MACs fall only ~2.5x instead of ~26x.

The three runs are trained epoch by epoch in turn (same results as one after the other), so that the
load of a shared machine falls on all three alike. Per-epoch evaluation uses the first ``--eval-subset`` test images only (it is not timed, but it
costs benchmark time); the final accuracy uses all of them. Default budget: about 15-20 minutes
on 2 busy cores (16 epochs of 4,000 training images, 1 intra-op thread).

    python benchmarks/compaction_vgg.py [--epochs 16] [--subset 4000] [--threads 1] [--data-dir ../shared/data]
        [--skip-masked] [--scratch] [--width 0.25] [--reach-epoch E] [--lr-schedule constant] [--name NAME]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, emit  # noqa: E402

from intrain.config import TrainConfig  # noqa: E402
from intrain.data import BatchLoader  # noqa: E402
from intrain.engine.build import build, make_model  # noqa: E402
from intrain.engine.trainer import Trainer, TrainerOptions  # noqa: E402
from intrain.compaction import compact, masked_layers  # noqa: E402
from intrain.export import compare_latency, forward_macs  # noqa: E402
from intrain.masks import FILTER_MASK  # noqa: E402
from intrain.methods import pwt as pwt_method  # noqa: E402
from intrain.models.init import init_weights  # noqa: E402



def first_images(loader: BatchLoader, count: int) -> BatchLoader:
    """A test loader over the first ``count`` examples of ``loader`` (already padded)."""
    count = min(count, loader.num_examples)
    return BatchLoader(loader.images[:count].cpu(), loader.labels[:count].cpu(), loader.spec,
                       batch_size=loader.batch_size, train=False, device=loader.device)


def scratch_architecture(parts, target: float) -> None:
    """Shrink ``parts``' freshly built dense model, in place, to the shapes PWT ends with (``layer``
    scope prunes ceil(target * filters) of every conv, whatever the scores), and draw new weights."""
    example = torch.zeros(1, *parts.test_loader.images.shape[1:])
    method = pwt_method(target=target, epochs=1, criterion="l1").attach(parts.model, parts.optimizer)
    method.prune_to(target)
    method.detach()
    compact(parts.model, parts.optimizer, example_inputs=example)
    for name in masked_layers(parts.model):
        del parts.model.get_submodule(name)._buffers[FILTER_MASK]
    init_weights(parts.model)
    parts.optimizer.state.clear()


def make_trainer(config: TrainConfig, eval_subset: int, scratch_target: float | None = None):
    """The library's trainer for one configuration (per-epoch evaluation on ``eval_subset`` images);
    with ``scratch_target``, the model is PWT's final compact architecture, freshly initialised."""
    parts = build(config)
    if scratch_target is not None:
        scratch_architecture(parts, scratch_target)
    trainer = Trainer(parts.model, parts.optimizer, parts.train_loader, first_images(parts.test_loader, eval_subset),
                      options=TrainerOptions(epochs=config.epochs, recalibrate_bn_batches=config.bn_recalibration_batches,
                                             progress=False, quiet=True, compact=config.compacts),
                      method=parts.method, scheduler=parts.scheduler)
    return parts, trainer


def run_interleaved(configs: dict[str, TrainConfig], epochs: int, eval_subset: int,
                    scratch_target: float | None = None) -> dict[str, dict]:
    """Train the configurations epoch by epoch in turn, so that the load of a shared machine falls on
    all of them alike (each run has its own seeded data order and model: results do not change).
    The run named ``compact-scratch`` gets PWT's final architecture (:func:`scratch_architecture`)."""
    runs = {name: make_trainer(config, eval_subset, scratch_target if name == "compact-scratch" else None)
            for name, config in configs.items()}
    for epoch in range(epochs):
        for name, (_, trainer) in runs.items():
            record = trainer.run_epoch(epoch)
            trainer.epoch += 1
            trainer.history.append(record)
        print(f"epoch {epoch + 1}/{epochs}: " + "  ".join(
            f"{n} {100 * t.history[-1]['test_accuracy']:.1f}% {t.history[-1]['epoch_seconds']:.1f}s"
            for n, (_, t) in runs.items()), flush=True)
    results = {}
    for name, (parts, trainer) in runs.items():
        history = trainer.history
        trainer.test_loader = parts.test_loader
        _, accuracy = trainer.evaluate()
        results[name] = {
            "model": parts.model, "spec": parts.spec, "input_shape": tuple(parts.test_loader.images.shape[1:]),
            "final_test_accuracy": accuracy,
            "pruned_filter_fraction": parts.method.pruned_filter_fraction(),
            "params": sum(p.numel() for p in parts.model.parameters()),
            "train_seconds": sum(r["epoch_seconds"] for r in history),
            "prune_seconds": sum(r["prune_seconds"] for r in history),
            "epoch_seconds": [round(r["epoch_seconds"], 3) for r in history],
            "eval_subset_accuracy": [r["test_accuracy"] for r in history],
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--subset", type=int, default=4000, help="training examples (stratified, seeded)")
    parser.add_argument("--eval-subset", type=int, default=1000, help="test images evaluated after each epoch")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--target", type=float, default=0.8)
    parser.add_argument("--reach-epoch", type=int, default=None,
                        help="the epoch after which the target is reached (rate target/EPOCH; default: the "
                             "next-to-last, so the last epoch trains at the target)")
    parser.add_argument("--scope", default="layer",
                        help="PWT ranking: layer (every conv pruned to p, the (1-p)^2 theory) or global")
    parser.add_argument("--lr-schedule", default="constant", help="constant, step, cosine or inv (all three runs)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--skip-masked", action="store_true",
                        help="train dense and compacted only (the masked run costs as much as dense: ratio ~1)")
    parser.add_argument("--scratch", action="store_true",
                        help="also train PWT's final compact architecture from scratch (a capacity reference)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is steadier on a busy machine)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--name", default="compaction_vgg", help="results file benchmarks/results/NAME.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = TrainConfig.of(model="vgg16", width=args.width, dataset="fashion-mnist", data_dir=args.data_dir,
                       subset=args.subset, epochs=args.epochs, seed=0, device=args.device,
                       lr_schedule=args.lr_schedule, batch_size=args.batch_size)
    reach = args.reach_epoch if args.reach_epoch is not None else args.epochs - 1
    if not 1 <= reach <= args.epochs:
        parser.error(f"--reach-epoch must be between 1 and --epochs ({args.epochs})")
    rate = args.target / reach
    pwt = base.replace(method="pwt", criterion="l1", target=args.target, scope=args.scope, rate=rate)
    configs = {"dense": base.replace(method="dense"), "pwt-compact": pwt.replace(compact=True),
               "pwt-masked": pwt.replace(compact=False)}
    if args.skip_masked:
        del configs["pwt-masked"]
    if args.scratch:
        configs["compact-scratch"] = base.replace(method="dense")
    results = run_interleaved(configs, args.epochs, args.eval_subset, args.target)
    dense, compacted = results["dense"], results["pwt-compact"]
    latency = compare_latency(make_model(base, dense["spec"]).eval(), compacted["model"].eval(), dense["input_shape"],
                              repeats=20)
    macs = {name: forward_macs(r["model"], r["input_shape"]) for name, r in results.items()}
    result = {
        "benchmark": "compaction_vgg", "model": "vgg16", "width": args.width, "dataset": "fashion-mnist (32x32)",
        "epochs": args.epochs, "subset": args.subset, "eval_subset": args.eval_subset, "target": args.target,
        "scope": args.scope, "rate": rate, "reach_epoch": reach,
        "lr_schedule": args.lr_schedule, "batch_size": args.batch_size,
        "threads": args.threads, "device": args.device,
        "runs": {name: {k: v for k, v in r.items() if k not in ("model", "spec", "input_shape")} | {"forward_macs": macs[name]}
                 for name, r in results.items()},
        "ratios_to_dense": {name: {"train_seconds": r["train_seconds"] / dense["train_seconds"],
                                   "accuracy_points": 100 * (r["final_test_accuracy"] - dense["final_test_accuracy"])}
                            for name, r in results.items()},
        "inference_latency": latency,
        "goals": {"wall_clock_ratio_max": 0.45, "accuracy_points_min": -1.0, "latency_speedup_min": 10.0},
    }
    table = [["run", "final acc", "vs dense", "pruned", "params", "fwd MACs", "train s", "ratio"]]
    for name, r in results.items():
        ratio = result["ratios_to_dense"][name]
        table.append([name, f"{100 * r['final_test_accuracy']:.2f}%", f"{ratio['accuracy_points']:+.2f} pt",
                      f"{100 * r['pruned_filter_fraction']:.0f}%", f"{r['params']:,}", f"{macs[name]:,.0f}",
                      f"{r['train_seconds']:.1f}", f"{ratio['train_seconds']:.3f}"])
    emit(args.name, result, table)
    for key, row in latency.items():
        print(f"inference {key.replace('_', ' ')}: dense {row['dense_ms']:.2f} ms, compact {row['compact_ms']:.2f} ms, "
              f"{row['speedup']:.1f}x")


if __name__ == "__main__":
    main()
