"""The GPU suite: training time of dense vs PWT with compaction, masked vs compacted, RA's per-step
overhead, and intrain's loop against a plain PyTorch loop, in one script of at most 8 minutes.

    python benchmarks/gpu_suite.py                 # on a GPU: the suite (about 8 minutes at most)
    python benchmarks/gpu_suite.py --smoke         # on the CPU: every path, tiny sizes, under a minute

Everything trains on CIFAR-shaped synthetic data (random uint8 images 3x32x32, 10 classes) held on
the device by intrain's own batch pipeline, so no files are needed and the data costs the same in
every run. Parts:

1. **schedule** — for full-width VGG-16-BN and ResNet-56, in fp32 and in bf16 autocast, channels-last:
   (``--smoke``: VGG-16 and ResNet-20 at width 1/16, 2 epochs of 1 step of 4 images; on the CPU contiguous)
   dense training and PWT-L1 to 80% over an 80-epoch-shaped schedule (PWT prunes 1% of the filters
   per epoch, as over the paper's 80 epochs), compressed to ``--steps`` training steps per epoch,
   with compaction after every prune; for VGG-16 also PWT masked only. Per epoch: the median step
   time at that epoch's size (``step_ms``) and the pruning + compaction time. ``measured_ratio`` is
   PWT's summed epoch time over dense's; ``projected_ratio`` puts each epoch's measured step time
   and pruning time into a full CIFAR epoch (391 steps of 128), since a compressed epoch overweights
   the per-prune cost 39-fold.
2. **ra_overhead** — RA's ``on_step_end`` (Eq. 1 thresholds and masks of every layer) as a share of
   a dense training step, VGG-16-BN and ResNet-56, each precision (blocks of steps between
   synchronisations, median over repeats).
3. **loop** — images per second of :class:`intrain.engine.trainer.Trainer` training dense VGG-16-BN
   against a plain loop (forward, loss, backward, step; no per-step synchronisation) over the same
   batches, alternated; ``ratio`` = intrain / plain. Goal at least 0.98.

It prints one JSON line and writes ``benchmarks/results/gpu_suite.json`` (``--smoke``:
``gpu_suite_smoke.json``; ``--out`` elsewhere), with the device's name. ``--budget-s`` (480) stops
starting new measurements once spent, and says which were skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS  # noqa: E402

from intrain.config import TrainConfig  # noqa: E402
from intrain.methods import registry  # noqa: E402
from intrain.data import BatchLoader, dataset_spec  # noqa: E402
from intrain.engine.build import LrSchedule, apply_memory_format, make_method, make_optimizer  # noqa: E402
from intrain.engine.run import step_wrapper  # noqa: E402
from intrain.engine.trainer import AMP_DTYPES, Trainer, TrainerOptions  # noqa: E402
from intrain.models import create_model  # noqa: E402

CIFAR_TRAIN_IMAGES = 50_000


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: every path in under a minute")
    parser.add_argument("--device", default=None, help="default: cuda when available (else cpu)")
    parser.add_argument("--models", default=None, help="default vgg16,resnet56 (smoke: vgg16,resnet20)")
    parser.add_argument("--precisions", default="fp32,bf16", help="fp32, bf16 (autocast)")
    parser.add_argument("--width", type=float, default=None, help="default 1.0 (smoke: 0.0625)")
    parser.add_argument("--epochs", type=int, default=None, help="schedule length (default 80; smoke: 3)")
    parser.add_argument("--steps", type=int, default=None, help="training steps per epoch (default 8; smoke: 2)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 128 (smoke: 8)")
    parser.add_argument("--target", type=float, default=0.8)
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    parser.add_argument("--budget-s", type=float, default=480.0, help="no new measurement after this many seconds")
    parser.add_argument("--out", default=None, help="result file (default benchmarks/results/gpu_suite[_smoke].json)")
    args = parser.parse_args(argv)
    smoke = args.smoke
    defaults = {"width": 0.0625 if smoke else 1.0, "epochs": 2 if smoke else 80, "steps": 1 if smoke else 8,
                "batch_size": 4 if smoke else 128, "models": "vgg16,resnet20" if smoke else "vgg16,resnet56"}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() and not smoke else "cpu"))
    if args.device.type == "cpu":
        # channels-last is what the GPU wants; on the CPU PyTorch 2.13's backward of a channels-last
        # stride-2 1x1 conv with 2-6 input channels (ResNet-20's shortcuts at width 1/16) corrupts
        # the heap on an AVX2 machine (abort or segfault; README.md, --channels-last)
        args.channels_last = False
    args.models = [m for m in args.models.split(",") if m]
    args.precisions = [p for p in args.precisions.split(",") if p]
    for p in args.precisions:
        if p not in ("fp32", "bf16"):
            parser.error(f"--precisions: unknown value {p!r} (fp32, bf16)")
    args.out = Path(args.out) if args.out else RESULTS / ("gpu_suite_smoke.json" if smoke else "gpu_suite.json")
    return args


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def amp_mode(precision: str) -> str:
    return "off" if precision == "fp32" else precision


def synthetic_loader(args, examples: int, train: bool = True) -> BatchLoader:
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (examples, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (examples,), generator=generator)
    return BatchLoader(images, labels, dataset_spec("cifar10"), batch_size=args.batch_size, train=train,
                       device=args.device, seed=0, drop_last=True)


def config_for(args, model: str, precision: str, method: str, compact: bool | None = None) -> TrainConfig:
    target = {"target": args.target} if "target" in registry.get(method).field_names else {}
    return TrainConfig.of(model=model, dataset="cifar10", width=args.width, method=method, **target, epochs=args.epochs,
                       batch_size=args.batch_size, optimizer="adam", amp=amp_mode(precision),
                       channels_last=args.channels_last, compact=compact, bn_recalibration_batches=2,
                       device=str(args.device), seed=0)


def make_trainer(args, config: TrainConfig) -> Trainer:
    train = synthetic_loader(args, args.steps * args.batch_size)
    test = synthetic_loader(args, args.batch_size, train=False)
    torch.manual_seed(0)
    model = apply_memory_format(create_model(config.model, num_classes=10, in_channels=3, width=config.width)
                                .to(args.device), config)
    optimizer = make_optimizer(config, model)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, LrSchedule(config, len(train)))
    method = make_method(config, len(train))
    options = TrainerOptions(epochs=config.epochs, recalibrate_bn_batches=config.bn_recalibration_batches,
                             progress=False, quiet=True, amp=config.amp, channels_last=config.channels_last,
                             compact=config.compacts)
    return Trainer(model, optimizer, train, test, options=options, method=method, scheduler=scheduler,
                   wrap=step_wrapper(config, args.device))


# ---------------------------------------------------------------------- 1. the schedule
def schedule_run(args, model: str, precision: str, method: str, compact: bool | None) -> dict[str, Any]:
    config = config_for(args, model, precision, method, compact)
    trainer = make_trainer(args, config)
    params_before = sum(p.numel() for p in trainer.model.parameters())
    history = trainer.fit()
    sync(args.device)
    steps = len(trainer.train_loader)
    step_ms = [1000 * (r["epoch_seconds"] - r["prune_seconds"]) / steps for r in history]
    prune_s = [r["prune_seconds"] for r in history]
    full_steps = math.ceil(CIFAR_TRAIN_IMAGES / args.batch_size)
    return {
        "model": model, "precision": precision, "method": method,
        "compact": bool(config.compacts) if method == "pwt" else None,
        "epoch_seconds_total": sum(r["epoch_seconds"] for r in history),
        "prune_seconds_total": sum(prune_s),
        "projected_seconds_total": sum(s / 1000 * full_steps + p for s, p in zip(step_ms, prune_s)),
        "epoch_seconds": [round(r["epoch_seconds"], 4) for r in history],
        "step_ms": [round(s, 3) for s in step_ms],
        "pruned_filter_fraction": history[-1]["pruned_filter_fraction"],
        "params_before": params_before, "params_after": sum(p.numel() for p in trainer.model.parameters()),
    }


def schedule_part(args, clock: Callable[[], bool], skipped: list[str]) -> list[dict[str, Any]]:
    results = []
    for model in args.models:
        for precision in args.precisions:
            runs = [("dense", None), ("pwt", True)] + ([("pwt", False)] if model == "vgg16" else [])
            group = {}
            for method, compact in runs:
                label = f"schedule {model} {precision} {method}{'' if compact is None else (' compact' if compact else ' masked')}"
                if not clock():
                    skipped.append(label)
                    continue
                group[(method, compact)] = schedule_run(args, model, precision, method, compact)
                print(f"gpu_suite: {label}: {group[(method, compact)]['epoch_seconds_total']:.1f} s", flush=True)
            dense = group.get(("dense", None))
            for (method, compact), run in group.items():
                if dense is not None and method == "pwt":
                    run["measured_ratio"] = run["epoch_seconds_total"] / dense["epoch_seconds_total"]
                    run["projected_ratio"] = run["projected_seconds_total"] / dense["projected_seconds_total"]
                    run["final_step_ratio"] = run["step_ms"][-1] / dense["step_ms"][-1]
                results.append(run)
    return results


# ---------------------------------------------------------------------- 2. RA's per-step overhead
def blocks(fn: Callable[[], None], device: torch.device, steps: int, repeats: int) -> float:
    """Median seconds per call of ``fn`` over ``repeats`` blocks of ``steps`` calls."""
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        sync(device)
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def ra_overhead(args, model_name: str, precision: str) -> dict[str, Any]:
    from intrain.methods import ra

    config = config_for(args, model_name, precision, "dense")
    torch.manual_seed(0)
    model = apply_memory_format(create_model(model_name, num_classes=10, in_channels=3, width=args.width)
                                .to(args.device), config).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x, y = next(iter(synthetic_loader(args, args.batch_size).epoch(0)))
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(args.device.type, dtype=AMP_DTYPES.get(precision, torch.float32),
                              enabled=precision != "fp32")

    def step() -> None:
        with autocast:
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    # --smoke's layers hold a few dozen weights, where Eq. 1 at range 2 can cover a whole layer (RA
    # refuses such a start): a lower range there, the paper's 2 otherwise
    method = ra(range_=1.0 if args.smoke else 2.0, epsilon=0.1, partition="none")
    steps, repeats = (1, 1) if args.smoke else (20, 7)
    with method.attached(model, optimizer):
        method.on_epoch_begin(0)
        for _ in range(3):  # warm-up: kernels, buffers, masks
            step()
            method.on_step_end()
        step_s, prune_s = [], []
        for _ in range(repeats):  # interleaved, so that a change in clocks hits both alike
            step_s.append(blocks(step, args.device, steps, 1))
            prune_s.append(blocks(method.on_step_end, args.device, steps, 1))
    step_median, prune_median = statistics.median(step_s), statistics.median(prune_s)
    return {"model": model_name, "precision": precision, "step_ms": 1000 * step_median,
            "ra_step_end_ms": 1000 * prune_median, "overhead": prune_median / step_median}


# ---------------------------------------------------------------------- 3. intrain's loop vs a plain one
def loop_comparison(args, precision: str) -> dict[str, Any]:
    config = config_for(args, "vgg16", precision, "dense")
    trainer = make_trainer(args, config)
    loader, model, optimizer = trainer.train_loader, trainer.model, trainer.optimizer
    autocast = torch.autocast(args.device.type, dtype=AMP_DTYPES.get(precision, torch.float32),
                              enabled=precision != "fp32")

    def plain_epoch(epoch: int) -> None:
        model.train()
        for x, y in loader.epoch(epoch):
            if args.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast:
                loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    def intrain_epoch(epoch: int) -> None:
        trainer.train_one_epoch(epoch)  # what Trainer.fit runs per epoch, less pruning and evaluation
        trainer.method.on_epoch_end(epoch)

    plain_epoch(0)  # warm-up both (the Trainer attached its method when it was built)
    intrain_epoch(0)
    plain, ours = [], []
    repeats = 1 if args.smoke else 5
    for r in range(repeats):
        for fn, sink in ((plain_epoch, plain), (intrain_epoch, ours)):
            sync(args.device)
            start = time.perf_counter()
            fn(r + 1)
            sync(args.device)
            sink.append(time.perf_counter() - start)
    images = len(loader) * args.batch_size
    plain_rate, our_rate = images / statistics.median(plain), images / statistics.median(ours)
    return {"model": "vgg16", "precision": precision, "plain_images_per_second": plain_rate,
            "intrain_images_per_second": our_rate, "ratio": our_rate / plain_rate}


# ---------------------------------------------------------------------- main
def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def run(args) -> dict[str, Any]:
    if args.smoke and args.device.type == "cpu":
        # tiny tensors: on a shared CPU a second OpenMP thread only waits (a 4-channel BatchNorm took
        # 15-100 ms with 2 threads on a loaded 2-core machine)
        torch.set_num_threads(1)
    if args.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    start = time.perf_counter()
    skipped: list[str] = []

    def clock() -> bool:
        return time.perf_counter() - start < args.budget_s

    result: dict[str, Any] = {
        "benchmark": "gpu_suite", "smoke": args.smoke, "device": device_name(args.device),
        "torch": torch.__version__, "settings": {"models": args.models, "precisions": args.precisions,
                                                 "width": args.width, "epochs": args.epochs,
                                                 "steps_per_epoch": args.steps, "batch_size": args.batch_size,
                                                 "target": args.target, "channels_last": args.channels_last},
    }
    result["schedule"] = schedule_part(args, clock, skipped)
    result["ra_overhead"] = []
    for model in args.models:
        for precision in args.precisions:
            if clock():
                result["ra_overhead"].append(ra_overhead(args, model, precision))
            else:
                skipped.append(f"ra_overhead {model} {precision}")
    result["loop"] = []
    for precision in args.precisions:
        if clock():
            result["loop"].append(loop_comparison(args, precision))
        else:
            skipped.append(f"loop vgg16 {precision}")
    result["skipped"] = skipped
    result["seconds"] = time.perf_counter() - start
    return result


def main(argv=None) -> dict[str, Any]:
    args = parse(argv)
    result = run(args)
    print(json.dumps(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for run_ in result["schedule"]:
        if "projected_ratio" in run_:
            print(f"{run_['model']:>9} {run_['precision']} pwt {'compact' if run_['compact'] else 'masked '}: "
                  f"measured {run_['measured_ratio']:.3f} of dense, projected to full epochs "
                  f"{run_['projected_ratio']:.3f}, last epoch's step {run_['final_step_ratio']:.3f}")
    for r in result["ra_overhead"]:
        print(f"{r['model']:>9} {r['precision']} RA step overhead {100 * r['overhead']:.2f}%")
    for r in result["loop"]:
        print(f"{r['model']:>9} {r['precision']} intrain loop / plain loop throughput {r['ratio']:.3f}")
    return result


if __name__ == "__main__":
    main()
