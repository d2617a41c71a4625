"""PWT-L1 at 50% (per layer) and compaction on CNNs intrain did not define: parameters and forward
MACs per image before and after, and the largest difference between the compacted and the masked
model's outputs (eval mode).

Models: the hand-built ResNet-18 (torchvision's widths 64-512), MobileNetV2-like, EfficientNet-like
(squeeze-and-excitation) and concatenation nets of ``tests/cnn_zoo.py``, and torchvision's
``resnet18``, ``mobilenet_v2``, ``mobilenet_v3_small``, ``efficientnet_b0`` and ``densenet121``
(``weights=None``, 10 classes) when torchvision is installed. Inputs are random
3x32x32 images; two Adam steps before pruning (PWT traces the model on its first forward pass), no
training otherwise: this measures structure, not accuracy. MACs come from :mod:`intrain.costs`.

    python benchmarks/any_cnn.py [--fraction 0.5] [--threads 1]
"""

from __future__ import annotations

import argparse
import importlib
import copy
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import emit  # noqa: E402
from cnn_zoo import ConcatNet, EfficientNetLike, MobileNetV2Like, ResNet18Like  # noqa: E402

from intrain.compaction import compact  # noqa: E402
from intrain.costs import layer_costs  # noqa: E402
from intrain.methods import pwt  # noqa: E402

SHAPE = (3, 32, 32)


def models() -> dict[str, callable]:
    found = {
        "resnet18-like (64-512)": lambda: ResNet18Like(widths=(64, 128, 256, 512)),
        "mobilenet_v2-like": MobileNetV2Like,
        "efficientnet-like (SE)": EfficientNetLike,
        "concat (inception+dense)": ConcatNet,
    }
    try:
        from torchvision import models as tv
    except ImportError:
        return found
    for name in ("resnet18", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "densenet121"):
        found[f"torchvision {name}"] = lambda name=name: getattr(tv, name)(weights=None, num_classes=10)
    try:
        import timm
    except ImportError:
        return found
    for name in ("resnet18", "mobilenetv3_small_100", "efficientnet_b0"):
        found[f"timm {name}"] = lambda name=name: timm.create_model(name, pretrained=False, num_classes=10)
    return found


def forward_macs(model: nn.Module) -> float:
    return float(sum(row.fp_macs for row in layer_costs(model, SHAPE)))


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def run(make, fraction: float) -> dict:
    torch.manual_seed(0)
    model = make()
    before = {"params": params(model), "forward_macs": forward_macs(model)}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    method = pwt(target=fraction, epochs=1, criterion="l1").attach(model, optimizer)
    generator = torch.Generator().manual_seed(1)
    for _ in range(2):
        x, y = torch.randn(8, *SHAPE, generator=generator), torch.randint(0, 10, (8,), generator=generator)
        model.train()
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    method.prune_to(fraction)
    masked = copy.deepcopy(model).eval()
    start = time.perf_counter()
    result = compact(model, optimizer, example_inputs=torch.zeros(1, *SHAPE))
    method.reattach(optimizer, graph=result.graph)
    seconds = time.perf_counter() - start
    x = torch.randn(4, *SHAPE, generator=generator)
    with torch.no_grad():
        difference = float((model.eval()(x) - masked(x)).abs().max())
    after = {"params": params(model), "forward_macs": forward_macs(model)}
    return {"before": before, "after": after, "pruned_filter_fraction": method.pruned_filter_fraction(),
            "filters_removed": result.filters_removed, "followers": len(method.followers),
            "coupled_groups": sum(len(g) > 1 for g in method.coupled_layers()),
            "compaction_seconds": seconds, "max_output_difference": difference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=0.5, help="pruned fraction of every layer's filters")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="any_cnn", help="results file benchmarks/results/NAME.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {name: run(make, args.fraction) for name, make in models().items()}
    table = [["model", "params", "-> compact", "fwd MACs", "-> compact", "MACs ratio", "followers", "max |diff|"]]
    for name, r in results.items():
        b, a = r["before"], r["after"]
        table.append([name, f"{b['params']:,}", f"{a['params']:,}", f"{b['forward_macs']:,.0f}",
                      f"{a['forward_macs']:,.0f}", f"{a['forward_macs'] / b['forward_macs']:.3f}",
                      str(r["followers"]), f"{r['max_output_difference']:.1e}"])
    emit(args.name, {"benchmark": "any_cnn", "fraction": args.fraction, "scope": "layer", "criterion": "l1",
                     "input": list(SHAPE), "threads": args.threads, "torch": torch.__version__,
                     "torchvision": version_of("torchvision"), "timm": version_of("timm"), "models": results},
         table)


def version_of(package: str) -> str | None:
    try:
        return importlib.import_module(package).__version__
    except ImportError:
        return None


if __name__ == "__main__":
    main()
