"""Training-step time of VGG-16-BN as PWT-L1 prunes and compacts it, against the MACs theory.

A freshly initialised VGG-16 (width 0.25 by default, 1x32x32 input, batch 128, Adam) is pruned to
``target * e / E`` after each "epoch" e and compacted; each row times a few training steps at that
size. Compare ``step / dense`` with (1 - p)^2 (what the conv MACs predict) and 1 - p (how
BatchNorm, ReLU, pooling and the first conv scale): where the measured ratio lies shows what a CPU
step is made of at that width. No data, no accuracy: shapes only.

    python benchmarks/compact_step_time.py [--width 0.25] [--epochs 15] [--target 0.8] [--threads 1] [--name NAME]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit  # noqa: E402

from intrain.compaction import compact  # noqa: E402
from intrain.methods import pwt  # noqa: E402
from intrain.models import create_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=15, help="pruning events from 0 to the target")
    parser.add_argument("--target", type=float, default=0.8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per size (after one warm-up)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="compact_step_time", help="results file benchmarks/results/NAME.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model("vgg16", width=args.width, in_channels=1, num_classes=10).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    method = pwt(target=args.target, epochs=args.epochs, criterion="l1").attach(model, optimizer)
    x, y = torch.randn(args.batch_size, 1, 32, 32), torch.randint(0, 10, (args.batch_size,))

    def seconds_per_step() -> float:
        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            method.on_step_end()

        step()  # warm-up (and, the first time, the structure trace)
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        return (time.perf_counter() - start) / args.steps

    rows = [{"pruned": 0.0, "step_seconds": seconds_per_step(), "compact_seconds": 0.0}]
    for event in range(1, args.epochs + 1):
        method.prune_to(args.target * event / args.epochs)
        result = compact(model, optimizer, example_inputs=torch.zeros(1, 1, 32, 32))
        method.reattach(optimizer, graph=result.graph)
        rows.append({"pruned": method.pruned_filter_fraction(), "step_seconds": seconds_per_step(),
                     "compact_seconds": result.seconds})
    dense = rows[0]["step_seconds"]
    table = [["pruned", "step ms", "step / dense", "(1-p)^2", "1-p", "compact s"]]
    for r in rows:
        p = r["pruned"]
        table.append([f"{100 * p:.1f}%", f"{1e3 * r['step_seconds']:.1f}", f"{r['step_seconds'] / dense:.3f}",
                      f"{(1 - p) ** 2:.3f}", f"{1 - p:.3f}", f"{r['compact_seconds']:.3f}"])
    emit(args.name, {"benchmark": "compact_step_time", "model": "vgg16", "width": args.width,
                               "batch_size": args.batch_size, "threads": args.threads, "rows": rows}, table)


if __name__ == "__main__":
    main()
