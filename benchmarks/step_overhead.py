"""What a compacted model costs per step against a plain one, and PWT's epoch time beside Torch-Pruning's.

Two measurements, side by side in one run, reported as ratios (the machine may be busy: only times
taken side by side are compared, on the process's CPU clock):

1. **Step overhead.** VGG-16-BN (width 0.25, 1x32x32 inputs, batch 128, Adam) is pruned by PWT-L1
   to 64% of its filters and compacted, with the method still attached as in a training run. A plain
   model of the same shapes (a freshly built VGG-16 resized to the compacted shapes, no method, no
   masks) is timed against it: forward + backward + Adam step, ``--reps`` interleaved repetitions of
   ``--steps`` steps each, median per step. Goal: compacted / plain <= 1.05. The hooks left on the
   compacted model are counted too (forward, forward-pre and backward module hooks, gradient hooks
   on parameters, instance forwards, filter masks).
2. **Epoch time vs Torch-Pruning.** The same VGG-16-BN on a seeded subset of Fashion-MNIST (padded to
   32x32), the same recipe for every arm (intrain's Trainer, constant-rate Adam, the same data
   order, BatchNorm re-estimation after each prune and at the end): dense; intrain PWT-L1 0 -> 80%
   (the paper's linear schedule, layer scope) compacted after every epoch; Torch-Pruning's
   ``MagnitudePruner`` (L1 magnitude, per layer, conv filters only, ``iterative_steps`` = epochs,
   pruning ratio 0.8, its step at the end of every epoch, the optimizer re-created afterwards: its
   state is lost). The arms train epoch by epoch in turn, so that the machine's load falls on all of
   them alike; dense first, the two pruned arms' order alternating by epoch and mirrored by seed
   (:func:`arm_order`). Reported: each arm's total epoch time over dense's (training steps, pruning,
   compaction, the final BatchNorm re-estimation; evaluation excluded), measured in process CPU
   seconds (one thread: the time the run was on a core, which the machine's other jobs do not
   inflate as they do wall-clock time; the wall-clock ratio is kept beside it), and final test accuracy,
   each seed a full comparison, mean +- std over ``--seeds``, and the paired difference intrain minus
   Torch-Pruning. Goal: intrain's ratio <=
   Torch-Pruning's. The step measurement runs ``--step-runs`` times; the median ratio is reported.

    python benchmarks/step_overhead.py [--subset 2000] [--epochs 8] [--seeds 0,1,2] [--threads 1] [--data-dir ../shared/data]
    python benchmarks/step_overhead.py --smoke      # tiny settings on the bundled demo data (a test)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, emit  # noqa: E402

from intrain.compaction import compact, shrink_to_state_dict  # noqa: E402
from intrain.config import TrainConfig  # noqa: E402
from intrain.data import BatchLoader  # noqa: E402
from intrain.engine.build import build, make_optimizer  # noqa: E402
from intrain.engine.trainer import Trainer, TrainerOptions  # noqa: E402
from intrain.masks import FILTER_MASK  # noqa: E402
from intrain.methods import pwt  # noqa: E402
from intrain.methods.base import PruneEvent  # noqa: E402
from intrain.models import create_model  # noqa: E402

SHAPE = (1, 32, 32)


# ---------------------------------------------------------------------- 1. step overhead
def hooks_left(model: nn.Module) -> dict[str, int]:
    """Everything that could make a step of ``model`` cost more than a plain module's."""
    modules = list(model.modules())
    return {
        "forward_hooks": sum(len(m._forward_hooks) for m in modules),
        "forward_pre_hooks": sum(len(m._forward_pre_hooks) for m in modules),
        "backward_hooks": sum(len(m._backward_hooks) + len(getattr(m, "_backward_pre_hooks", {})) for m in modules),
        "gradient_hooks": sum(len(p._backward_hooks or {}) for p in model.parameters()),
        "instance_forwards": sum("forward" in vars(m) for m in modules),
        "filter_masks": sum(isinstance(getattr(m, FILTER_MASK, None), torch.Tensor) for m in modules),
    }


def compacted_and_plain(width: float, fraction: float, batch: int) -> tuple[Any, Any]:
    """(model, optimizer, method) of a PWT-compacted VGG-16, and (model, optimizer) of a plain one of
    the same shapes; both have taken one Adam step (state allocated)."""
    torch.manual_seed(0)
    model = create_model("vgg16", width=width, in_channels=1, num_classes=10).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    example = torch.zeros(1, *SHAPE)
    method = pwt(target=fraction, epochs=1, criterion="l1").attach(model, optimizer, example_inputs=example)
    x, y = torch.randn(batch, *SHAPE), torch.randint(0, 10, (batch,))
    train_step(model, optimizer, x, y)
    method.prune_to(fraction)
    result = compact(model, optimizer, example_inputs=example)
    method.reattach(optimizer, graph=result.graph)
    train_step(model, optimizer, x, y)
    torch.manual_seed(1)
    plain = create_model("vgg16", width=width, in_channels=1, num_classes=10).train()
    shapes = {k: v for k, v in model.state_dict().items() if not k.endswith(FILTER_MASK)}
    shrink_to_state_dict(plain, shapes)
    for module in plain.modules():  # fresh values, not the uninitialised tensors of the resize
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    plain_optimizer = torch.optim.Adam(plain.parameters(), lr=1e-3)
    train_step(plain, plain_optimizer, x, y)
    assert [p.shape for p in plain.parameters()] == [p.shape for p in model.parameters()]
    return (model, optimizer, method), (plain, plain_optimizer)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    optimizer.step()


def step_overhead(width: float, fraction: float, batch: int, reps: int, steps: int) -> dict[str, Any]:
    (model, optimizer, method), (plain, plain_optimizer) = compacted_and_plain(width, fraction, batch)
    generator = torch.Generator().manual_seed(2)
    x, y = torch.randn(batch, *SHAPE, generator=generator), torch.randint(0, 10, (batch,), generator=generator)

    def timed(run) -> float:
        start = time.process_time()
        for _ in range(steps):
            run()
        return (time.process_time() - start) / steps

    arms = {"compacted": lambda: (train_step(model, optimizer, x, y), method.on_step_end()),
            "plain": lambda: train_step(plain, plain_optimizer, x, y)}
    times: dict[str, list[float]] = {name: [] for name in arms}
    for rep in range(reps):
        for name in (list(arms) if rep % 2 == 0 else list(arms)[::-1]):  # alternate who goes first
            times[name].append(timed(arms[name]))
    median = {name: statistics.median(t) for name, t in times.items()}
    return {"width": width, "pruned_filter_fraction": method.pruned_filter_fraction(), "batch_size": batch,
            "reps": reps, "steps_per_rep": steps, "median_step_seconds": median,
            "ratio": median["compacted"] / median["plain"], "goal_ratio_max": 1.05,
            "params": sum(p.numel() for p in plain.parameters()),
            "hooks_left": {"compacted": hooks_left(model), "plain": hooks_left(plain)}}


# ---------------------------------------------------------------------- 2. epoch time vs Torch-Pruning
class TorchPruningTrainer(Trainer):
    """intrain's loop with Torch-Pruning's ``MagnitudePruner`` as the pruning event: at the end of
    every epoch one of its iterative steps (linear to ``target``), then a new optimizer (Torch-Pruning
    replaces the parameters and carries no optimizer state)."""

    def __init__(self, *args: Any, config: TrainConfig, target: float, **kwargs: Any) -> None:
        import torch_pruning as tp

        super().__init__(*args, **kwargs)
        self.config = config
        self.original = self._filters()
        self.pruner = tp.pruner.MagnitudePruner(
            self.model, self.example_inputs, importance=tp.importance.MagnitudeImportance(p=1),
            iterative_steps=self.options.epochs, pruning_ratio=target,
            ignored_layers=[m for m in self.model.modules() if isinstance(m, nn.Linear)])  # filters of convs only

    def _filters(self) -> int:
        return sum(m.out_channels for m in self.model.modules() if isinstance(m, nn.Conv2d))

    def pruned_fraction(self) -> float:
        return 1.0 - self._filters() / self.original

    def prune(self, epoch: int) -> PruneEvent:
        self.method.on_epoch_end(epoch)  # the dense method: keeps the event order
        start = time.perf_counter()
        before = self._filters()
        self.pruner.step()
        self.optimizer = make_optimizer(self.config, self.model)
        self.compactor.wrapped = self.compactor.wrap(self.model)
        return PruneEvent(epoch, self.pruned_fraction(), before - self._filters(), time.perf_counter() - start)


class CpuTimed:
    """Mixin for a Trainer: each epoch's training work (its steps, its pruning and compaction, the
    final BatchNorm re-estimation; not evaluation) in process CPU seconds, ``cpu_seconds[epoch]``, and
    the pruning's alone, ``prune_cpu_seconds[epoch]``. With one thread this clock counts only the time
    the run was on a core, so other processes' load does not move it as it moves wall-clock time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cpu_seconds: dict[int, float] = {}
        self.prune_cpu_seconds: dict[int, float] = {}

    def _cpu(self, epoch: int, work, *args: Any) -> Any:
        start = time.process_time()
        try:
            return work(*args)
        finally:
            self.cpu_seconds[epoch] = self.cpu_seconds.get(epoch, 0.0) + time.process_time() - start

    def train_one_epoch(self, epoch: int):
        return self._cpu(epoch, super().train_one_epoch, epoch)

    def prune(self, epoch: int):
        before = self.cpu_seconds.get(epoch, 0.0)
        try:
            return self._cpu(epoch, super().prune, epoch)
        finally:
            self.prune_cpu_seconds[epoch] = self.cpu_seconds[epoch] - before

    def _recalibrate(self, epoch: int) -> None:
        if epoch + 1 == self.options.epochs:  # the final model's statistics: training work
            return self._cpu(epoch, super()._recalibrate, epoch)
        return super()._recalibrate(epoch)  # before an evaluation: evaluation work


class TimedTrainer(CpuTimed, Trainer):
    pass


class TimedTorchPruningTrainer(CpuTimed, TorchPruningTrainer):
    pass


def first_images(loader: BatchLoader, count: int) -> BatchLoader:
    return BatchLoader(loader.images[:count].cpu(), loader.labels[:count].cpu(), loader.spec,
                       batch_size=loader.batch_size, train=False, device=loader.device)


def arm_order(names: Sequence[str], epoch: int, mirrored: bool) -> list[str]:
    """The order the arms train epoch ``epoch`` in: dense first, then the two pruned arms, whose order
    alternates from epoch to epoch, mirrored on every other seed, so that over a pair of seeds each
    goes first and second equally often at every epoch (the per-epoch cost falls as the networks
    shrink, so a rotation over epochs would favour one of them)."""
    dense, *pruned = names
    return [dense, *(pruned[::-1] if (epoch % 2 == 1) != mirrored else pruned)]


def epoch_times(base: TrainConfig, target: float, eval_subset: int, mirrored: bool = False) -> dict[str, Any]:
    options = TrainerOptions(epochs=base.epochs, recalibrate_bn_batches=base.bn_recalibration_batches,
                             progress=False, quiet=True)
    runs: dict[str, tuple[Any, Trainer]] = {}
    for name, config in (("dense", base.replace(method="dense")),
                         ("intrain-pwt-compact", base.replace(method="pwt", recipe="paper", scope="layer", criterion="l1",
                                                              target=target, compact=True)),
                         ("torch-pruning", base.replace(method="dense"))):
        parts = build(config)
        test = first_images(parts.test_loader, eval_subset)
        common = dict(options=dataclasses.replace(options, compact=config.compacts), method=parts.method)
        if name == "torch-pruning":
            trainer = TimedTorchPruningTrainer(parts.model, parts.optimizer, parts.train_loader, test, config=config,
                                               target=target, **common)
        else:
            trainer = TimedTrainer(parts.model, parts.optimizer, parts.train_loader, test, **common)
        runs[name] = (parts, trainer)
    names = list(runs)
    for epoch in range(base.epochs):
        for name in arm_order(names, epoch, mirrored):
            trainer = runs[name][1]
            trainer.history.append(trainer.run_epoch(epoch))
            trainer.epoch += 1
        print(f"epoch {epoch + 1}/{base.epochs} (CPU seconds): " + "  ".join(
            f"{n} {t.cpu_seconds[epoch]:.2f}s" for n, (_, t) in runs.items()), flush=True)
    results: dict[str, Any] = {}
    for name, (parts, trainer) in runs.items():
        trainer.test_loader = parts.test_loader
        _, accuracy = trainer.evaluate()
        pruned = (trainer.pruned_fraction() if isinstance(trainer, TorchPruningTrainer)
                  else trainer.method.pruned_filter_fraction())
        cpu = [trainer.cpu_seconds[e] for e in range(base.epochs)]
        results[name] = {"final_test_accuracy": accuracy, "pruned_filter_fraction": pruned,
                         "params": sum(p.numel() for p in parts.model.parameters()),
                         "epoch_cpu_seconds": [round(c, 3) for c in cpu],
                         "prune_cpu_seconds": round(sum(trainer.prune_cpu_seconds.values()), 3),
                         "train_cpu_seconds": sum(cpu),
                         "epoch_wall_seconds": [round(r["epoch_seconds"], 3) for r in trainer.history],
                         "train_wall_seconds": sum(r["epoch_seconds"] for r in trainer.history)}
    dense = results["dense"]
    for r in results.values():
        r["epoch_time_ratio"] = r["train_cpu_seconds"] / dense["train_cpu_seconds"]
        r["wall_time_ratio"] = r["train_wall_seconds"] / dense["train_wall_seconds"]
    return results


def over_seeds(by_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Each arm's mean and sample std over the seeds' runs (ratios and accuracies); shapes are the same."""
    arms: dict[str, Any] = {}
    for name in next(iter(by_seed.values())):
        runs = [runs[name] for runs in by_seed.values()]
        ratios = [r["epoch_time_ratio"] for r in runs]
        arms[name] = {
            "epoch_time_ratio": statistics.mean(ratios),
            "epoch_time_ratio_std": statistics.stdev(ratios) if len(ratios) > 1 else 0.0,
            "epoch_time_ratios": ratios,
            "final_test_accuracy": statistics.mean(r["final_test_accuracy"] for r in runs),
            "pruned_filter_fraction": statistics.mean(r["pruned_filter_fraction"] for r in runs),
            "params": runs[0]["params"],
            "prune_cpu_seconds": statistics.mean(r["prune_cpu_seconds"] for r in runs),
            "wall_time_ratio": statistics.mean(r["wall_time_ratio"] for r in runs),
        }
    return arms


# ---------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--fraction", type=float, default=0.64, help="pruned filters of the step-overhead model")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--steps", type=int, default=4, help="steps per repetition")
    parser.add_argument("--step-runs", type=int, default=3, help="step measurements (the median ratio is reported)")
    parser.add_argument("--step-batch", type=int, default=128)
    parser.add_argument("--subset", type=int, default=2000, help="Fashion-MNIST training images (seeded)")
    parser.add_argument("--eval-subset", type=int, default=1000, help="test images evaluated after each epoch")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--target", type=float, default=0.8)
    parser.add_argument("--seeds", default="0,1,2,3", help="comma-separated seeds of the epoch-time comparison "
                        "(an even count balances the arms' order, see arm_order)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (the CPU clock adds up every thread's time: keep 1 for the ratios)")
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--smoke", action="store_true", help="tiny settings on the bundled demo data (a test)")
    parser.add_argument("--name", default="step_overhead", help="results file benchmarks/results/NAME.json")
    parser.add_argument("--json", default=None, help="write the results here instead (the smoke test does)")
    parser.add_argument("--only-step", action="store_true", help="the step measurement only (print, no file)")
    args = parser.parse_args()
    try:
        seeds = list(dict.fromkeys(int(s) for s in args.seeds.split(",")))
    except ValueError:
        parser.error(f"--seeds: comma-separated integers, got {args.seeds!r}")
    torch.set_num_threads(args.threads)
    if args.smoke:
        args.width, args.reps, args.steps, args.step_batch, args.epochs, args.step_runs = 0.125, 3, 1, 16, 2, 1
        args.subset, args.eval_subset, args.batch_size = 64, 64, 32
        seeds = seeds[:1]
    measured = [step_overhead(args.width, args.fraction, args.step_batch, args.reps, args.steps)
                for _ in range(args.step_runs)]
    steps = sorted(measured, key=lambda m: m["ratio"])[len(measured) // 2]  # the median run
    steps["ratios_of_runs"] = [m["ratio"] for m in measured]
    if args.only_step:
        print(json.dumps(steps))
        return
    dataset = dict(dataset="demo") if args.smoke else dict(dataset="fashion-mnist", data_dir=args.data_dir)
    base = TrainConfig(model="vgg16", width=args.width, subset=args.subset, epochs=args.epochs, seed=0,
                       device="cpu", batch_size=args.batch_size, bn_recalibration_batches=2 if args.smoke else 50,
                       **dataset)
    by_seed = {seed: epoch_times(base.replace(seed=seed), args.target, args.eval_subset, mirrored=i % 2 == 1)
               for i, seed in enumerate(seeds)}
    epochs = over_seeds(by_seed)
    ours, theirs = epochs["intrain-pwt-compact"], epochs["torch-pruning"]
    differences = [a - b for a, b in zip(ours["epoch_time_ratios"], theirs["epoch_time_ratios"])]
    paired = {"mean": statistics.mean(differences),
              "std": statistics.stdev(differences) if len(differences) > 1 else 0.0, "by_seed": differences}
    result = {
        "benchmark": "step_overhead", "smoke": args.smoke, "threads": args.threads, "seeds": seeds,
        "step": steps,
        "epochs": {"model": "vgg16", "width": args.width, "dataset": base.dataset, "subset": args.subset,
                   "epochs": args.epochs, "batch_size": args.batch_size, "target": args.target,
                   "optimizer": base.optimizer, "lr": base.learning_rate, "runs": epochs,
                   "by_seed": {str(seed): runs for seed, runs in by_seed.items()},
                   "intrain_minus_torch_pruning": paired},
        "goals": {"step_ratio_max": 1.05, "intrain_epoch_ratio_at_most_torch_pruning": True},
        "met": {"step": steps["ratio"] <= 1.05, "epochs": ours["epoch_time_ratio"] <= theirs["epoch_time_ratio"]},
    }
    table = [["measurement", "ratio", "final acc", "pruned", "params"]]
    table.append([f"step: compacted / plain ({100 * steps['pruned_filter_fraction']:.0f}% pruned; median of "
                  f"{len(measured)}: {', '.join(f'{r:.3f}' for r in steps['ratios_of_runs'])})",
                  f"{steps['ratio']:.3f}", "", "", f"{steps['params']:,}"])
    for name, r in epochs.items():
        table.append([f"epoch time / dense: {name} (prune {r['prune_cpu_seconds']:.2f} s; {len(seeds)} seeds)",
                      f"{r['epoch_time_ratio']:.3f} ± {r['epoch_time_ratio_std']:.3f}",
                      f"{100 * r['final_test_accuracy']:.2f}%", f"{100 * r['pruned_filter_fraction']:.0f}%",
                      f"{r['params']:,}"])
    table.append(["epoch time / dense: intrain minus Torch-Pruning, paired by seed",
                  f"{paired['mean']:+.3f} ± {paired['std']:.3f}", "", "", ""])
    emit(args.name, result, table, path=args.json)


if __name__ == "__main__":
    main()
