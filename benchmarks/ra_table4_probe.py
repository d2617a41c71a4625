"""RA Table 4's probe, alone: can a probe of the paper's length separate ResNet-20's layers?

Strategy 2 partitions the layers by the sensitivity the probe measures (``1 / sparsity`` after the
probe, every layer pruned with RA's Eq. 1), so the number of classes a δ factor gives is a function
of the probe alone: one probe per seed answers "which δ give 1, 2-3 and 5 classes" without the full
training runs. The probe follows the paper: SGD, lr 0.1, momentum 0.9, weight decay 1e-4, batch 128,
``--iterations`` steps (the paper: 6,400 of 64,000 on ResNet-56 / CIFAR-10; ours: ResNet-20 on the
full Fashion-MNIST training set), RA-1.8-0.1.

    python benchmarks/ra_table4_probe.py [--iterations 6400] [--width 0.5] [--seeds 0,1] [--data-dir ../shared/data]
    python benchmarks/ra_table4_probe.py --smoke      # tiny settings on the bundled demo data (a test)
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, emit  # noqa: E402

from intrain.config import TrainConfig  # noqa: E402
from intrain.engine.build import build, make_optimizer  # noqa: E402
from intrain.methods.ra import partition_by_sensitivity, probe_sensitivity  # noqa: E402

# δ factors tried on every probe: inf (one class) down to 0.001
FACTORS = (math.inf, 1.0, 0.7, 0.5, 0.4, 0.3, 0.2, 0.15, 0.1, 0.07, 0.05, 0.03, 0.02, 0.01, 0.005, 0.002, 0.001)


def probe(config: TrainConfig, iterations: int, range_: float, epsilon: float) -> dict:
    parts = build(config)
    batches = itertools.chain.from_iterable(parts.train_loader.epoch(e) for e in itertools.count())
    result = probe_sensitivity(parts.model, lambda m: make_optimizer(config, m), batches, iterations,
                               range_=range_, epsilon=epsilon, factor=math.inf)
    classes = {f"{f:g}": len(partition_by_sensitivity(result.sensitivity, f)) for f in FACTORS}
    return {"seed": config.seed, "iterations": result.iterations, "seconds": result.seconds,
            "layers": result.layers, "sparsity": result.sparsity, "sensitivity": result.sensitivity,
            "classes_by_factor": classes}


def factors_giving(runs: list[dict], low: int, high: int) -> list[str]:
    """The δ factors that give between ``low`` and ``high`` classes on every seed."""
    return [f"{f:g}" for f in FACTORS if all(low <= r["classes_by_factor"][f"{f:g}"] <= high for r in runs)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=6400)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--range", type=float, default=1.8)
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--name", default="ra_table4_probe", help="results file benchmarks/results/NAME.json")
    parser.add_argument("--smoke", action="store_true", help="tiny settings on the bundled demo data (a test)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    base = TrainConfig(model="resnet20", width=args.width, dataset="fashion-mnist", data_dir=args.data_dir,
                       batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, epochs=1)
    iterations = args.iterations
    if args.smoke:
        base = base.replace(dataset="demo", data_dir=None, subset=256, width=0.25, batch_size=32)
        iterations = 4
    start = time.perf_counter()
    runs: list[dict] = []
    for seed in seeds:
        runs.append(probe(base.replace(seed=seed), iterations, args.range, args.epsilon))
        r = runs[-1]
        print(f"seed {seed}: {r['iterations']} iterations in {r['seconds']:.0f} s; sensitivity "
              f"{min(r['sensitivity']):.3f}-{max(r['sensitivity']):.3f}", flush=True)
        # written after every seed: a long probe that is stopped keeps the seeds it finished
        emit(args.name, results(args, base, iterations, seeds, runs, start), table(runs))
    return 0


def results(args: argparse.Namespace, base: TrainConfig, iterations: int, seeds: list[int], runs: list[dict],
            start: float) -> dict:
    return {
        "benchmark": args.name, "model": "resnet20", "width": base.width, "dataset": base.dataset,
        "recipe": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4,
                   "batch_size": base.batch_size},
        "range": args.range, "epsilon": args.epsilon, "iterations": iterations, "seeds": seeds,
        "seeds_done": [r["seed"] for r in runs], "wall_seconds": time.perf_counter() - start, "runs": runs,
        "factors_for_1_class": factors_giving(runs, 1, 1),
        "factors_for_2_to_3_classes": factors_giving(runs, 2, 3),
        "factors_for_5_classes": factors_giving(runs, 5, 5),
    }


def table(runs: list[dict]) -> list[list[str]]:
    rows = [["δ factor", *[f"classes s{r['seed']}" for r in runs]]]
    return rows + [[f"{f:g}", *[str(r["classes_by_factor"][f"{f:g}"]) for r in runs]] for f in FACTORS]


if __name__ == "__main__":
    sys.exit(main())
