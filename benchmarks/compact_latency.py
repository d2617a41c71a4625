"""CPU inference latency of VGG-16-BN dense vs 80%-filter-pruned and compacted, by width.

Latency depends on the architecture, not on the trained values, so the models here are freshly
initialised, pruned by PWT-L1 per layer (``prune_to``) and compacted: the compact network has the
same shapes as the one a real 80% PWT run ends with (``compaction_vgg.py`` trains one at width 0.25).
At small widths a forward pass is dominated by per-layer overheads that do not shrink with the
channels; this shows how the speedup grows with the width.

    python benchmarks/compact_latency.py [--widths 0.25 0.5 1.0] [--target 0.8] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit  # noqa: E402

from intrain.compaction import compact  # noqa: E402
from intrain.export import compare_latency, forward_macs  # noqa: E402
from intrain.methods import pwt  # noqa: E402
from intrain.models import create_model  # noqa: E402

SHAPE = (3, 32, 32)


def pruned_and_compacted(width: float, target: float) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    dense = create_model("vgg16", width=width, in_channels=SHAPE[0], num_classes=10).eval()
    model = create_model("vgg16", width=width, in_channels=SHAPE[0], num_classes=10)
    model.load_state_dict(dense.state_dict())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    method = pwt(target=target, epochs=1, criterion="l1").attach(model, optimizer)
    model.train()(torch.zeros(2, *SHAPE))  # the first training-mode pass traces the channel structure
    method.prune_to(target)
    method.reattach(optimizer, graph=compact(model, optimizer, example_inputs=torch.zeros(1, *SHAPE)).graph)
    method.detach()
    return dense, model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--target", type=float, default=0.8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    rows = {}
    for width in args.widths:
        dense, small = pruned_and_compacted(width, args.target)
        rows[f"{width:g}"] = {
            "params": [sum(p.numel() for p in m.parameters()) for m in (dense, small)],
            "forward_macs": [forward_macs(m, SHAPE) for m in (dense, small)],
            "latency": compare_latency(dense, small, SHAPE, repeats=args.repeats, threads=args.threads),
        }
        print(f"width {width:g} done", flush=True)
    table = [["width", "params", "-> compact", "MACs ratio", "batch 1 ms", "-> compact", "x", "batch 64 ms",
              "-> compact", "x"]]
    for width, r in rows.items():
        b1, b64 = r["latency"]["batch_1"], r["latency"]["batch_64"]
        table.append([width, f"{r['params'][0]:,}", f"{r['params'][1]:,}",
                      f"{r['forward_macs'][1] / r['forward_macs'][0]:.3f}",
                      f"{b1['dense_ms']:.2f}", f"{b1['compact_ms']:.2f}", f"{b1['speedup']:.1f}",
                      f"{b64['dense_ms']:.1f}", f"{b64['compact_ms']:.1f}", f"{b64['speedup']:.1f}"])
    emit("compact_latency", {"benchmark": "compact_latency", "model": "vgg16", "input": list(SHAPE),
                             "target": args.target, "scope": "layer", "threads": args.threads,
                             "device": "cpu", "widths": rows}, table)


if __name__ == "__main__":
    main()
