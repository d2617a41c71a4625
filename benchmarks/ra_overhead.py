"""RA's per-iteration cost: the pruning step (Eq. 1 thresholds and mask update of every layer) against
one dense training step (forward, backward, SGD step) of LeNet-5 and VGG-16. Goal: at most 3%.

Both are timed interleaved in the same process (median of ``--repeats``), so a busy machine slows
both alike.

    python benchmarks/ra_overhead.py [--repeats 20] [--vgg-width 1.0] [--batch-size 64] [--device cpu] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit  # noqa: E402

from intrain.methods import ra  # noqa: E402
from intrain.models import create_model  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def measure(model_name: str, size: int, channels: int, args: argparse.Namespace, width: float) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=10, in_channels=channels, width=width).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(args.batch_size, channels, size, size, device=device)
    y = torch.randint(0, 10, (args.batch_size,), device=device)
    method = ra(range_=2.0, epsilon=0.1, partition="none")

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    with method.attached(model, optimizer):
        for _ in range(3):  # warm-up
            train_step()
            method.on_step_end()
        steps, prunes = [], []
        for _ in range(args.repeats):
            steps.append(timed(train_step, device))
            prunes.append(timed(method.on_step_end, device))
    step, prune = statistics.median(steps), statistics.median(prunes)
    return {"model": model_name, "width": width, "batch_size": args.batch_size, "train_step_ms": 1e3 * step,
            "prune_step_ms": 1e3 * prune, "prune_share": prune / step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--vgg-width", type=float, default=1.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [measure("lenet5", 28, 1, args, 1.0), measure("vgg16", 32, 3, args, args.vgg_width)]
    result = {"benchmark": "ra_overhead", "device": args.device, "threads": torch.get_num_threads(),
              "load_average_1min": os.getloadavg()[0], "rows": rows}
    table = [["model", "width", "train step ms", "prune step ms", "share"]]
    table += [[r["model"], f"{r['width']:g}", f"{r['train_step_ms']:.2f}", f"{r['prune_step_ms']:.3f}",
               f"{100 * r['prune_share']:.2f}%"] for r in rows]
    emit(f"ra_overhead_{torch.device(args.device).type}", result, table)


if __name__ == "__main__":
    main()
