"""Training-step time of VGG-16-BN pruned with ``round_to`` N = 1, 4, 8, 16, at several pruned fractions.

For each fraction p, four copies of a freshly initialised VGG-16 (1x32x32 input, Adam) are pruned to
p by PWT-L1 (layer scope) with ``round_to`` N and compacted; their training steps are then timed in
turn, round after round, so that the load of a shared machine falls on all of them alike. The mean
over the fractions stands for an epoch's time along a pruning schedule. Reports each N's step time
as a ratio to N = 1 and its forward MACs (rounding keeps the fraction met, so the MACs barely move:
what changes is how fast the hardware runs the widths). No data, no accuracy: shapes only.

    python benchmarks/round_to_step_time.py [--width 0.25] [--fractions 0.2,0.5,0.8] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit  # noqa: E402

from intrain.compaction import compact  # noqa: E402
from intrain.export import forward_macs  # noqa: E402
from intrain.methods import pwt  # noqa: E402
from intrain.models import create_model  # noqa: E402

ROUND_TO = (1, 4, 8, 16)


def pruned_network(width: float, fraction: float, round_to: int, x: torch.Tensor):
    torch.manual_seed(0)
    model = create_model("vgg16", width=width, in_channels=1, num_classes=10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    if fraction > 0:
        method = pwt(target=fraction, epochs=1, round_to=round_to).attach(model, optimizer, example_inputs=x[:1])
        method.prune_to(fraction)
        method.detach()
        compact(model, optimizer, example_inputs=x[:1])
    widths = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    return model, optimizer, widths


def step_seconds(model, optimizer, x, y, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--fractions", default="0.2,0.5,0.8")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per network and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default=None, help="results file benchmarks/results/NAME.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = torch.randn(args.batch_size, 1, 32, 32), torch.randint(0, 10, (args.batch_size,))
    rows = {}
    for fraction in (float(f) for f in args.fractions.split(",")):
        nets = {n: pruned_network(args.width, fraction, n, x) for n in ROUND_TO}
        times = {n: [] for n in ROUND_TO}
        for net in nets.values():
            step_seconds(net[0], net[1], x, y, 1)  # warm-up
        for _ in range(args.rounds):
            for n, (model, optimizer, _) in nets.items():
                times[n].append(step_seconds(model, optimizer, x, y, args.steps))
        for n, (model, _, widths) in nets.items():
            rows[f"p{fraction:g}-n{n}"] = {"fraction": fraction, "round_to": n, "widths": widths,
                                           "step_seconds": statistics.median(times[n]),
                                           "forward_macs": forward_macs(model, tuple(x.shape[1:]))}
        print(f"p={fraction:g}: " + "  ".join(f"N={n} {statistics.median(times[n]):.3f}s" for n in ROUND_TO), flush=True)
    mean = {n: statistics.mean(r["step_seconds"] for r in rows.values() if r["round_to"] == n) for n in ROUND_TO}
    macs = {n: sum(r["forward_macs"] for r in rows.values() if r["round_to"] == n) for n in ROUND_TO}
    result = {"benchmark": "round_to_step_time", "model": "vgg16", "width": args.width, "batch_size": args.batch_size,
              "fractions": args.fractions, "threads": args.threads,
              "note": "measured on a shared 2-core CPU under load: ratios only", "rows": rows,
              "mean_step_ratio_to_n1": {n: mean[n] / mean[1] for n in ROUND_TO},
              "macs_ratio_to_n1": {n: macs[n] / macs[1] for n in ROUND_TO}}
    table = [["round_to", "mean step / N=1", "fwd MACs / N=1"]]
    for n in ROUND_TO:
        table.append([str(n), f"{mean[n] / mean[1]:.3f}", f"{macs[n] / macs[1]:.3f}"])
    emit(args.name or f"round_to_step_time_w{args.width:g}", result, table)


if __name__ == "__main__":
    main()
