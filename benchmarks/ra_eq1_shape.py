"""What Eq. 1 alone prunes of LeNet-5's layers, on the He-normal initial weights and on trained ones:
the fraction ``|w| < l`` from an all-kept mask at each range (no training here; the trained weights
are read from finished ``ra_lenet5_seeds.py`` run directories). It shows that range maps to sparsity
through the normal tail whatever training does.

    python benchmarks/ra_eq1_shape.py [--runs runs/ra-seeds] [--seed 0] [--ranges 2 2.7 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit  # noqa: E402

from intrain.engine.build import seed_everything  # noqa: E402
from intrain.methods.ra_eq1 import eq1_pruned_fraction  # noqa: E402
from intrain.models import create_model  # noqa: E402

LAYERS = ("conv1", "conv2", "fc1", "fc2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/ra-seeds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ranges", type=float, nargs="+", default=[2.0, 2.7, 3.0])
    parser.add_argument("--epsilon", type=float, default=0.1)
    args = parser.parse_args()
    seed_everything(args.seed)  # as the engine does before building the model: the runs' initial weights
    weights = {"init": create_model("lenet5").state_dict()}
    for label in ("dense", "ra-2-0.1"):
        path = Path(args.runs) / f"{label}-s{args.seed}" / "model.pt"
        if path.exists():
            weights[f"{label} trained (W, unmasked)"] = torch.load(path, weights_only=True)["model"]
    sizes = {name: weights["init"][f"{name}.weight"].numel() for name in LAYERS}
    result = {"benchmark": "ra_eq1_shape", "seed": args.seed, "epsilon": args.epsilon, "fractions": {}}
    table = [["weights", "range", *LAYERS, "all"]]
    for label, state in weights.items():
        for range_ in args.ranges:
            fractions = {n: eq1_pruned_fraction(state[f"{n}.weight"], range_, args.epsilon) for n in LAYERS}
            total = sum(fractions[n] * sizes[n] for n in LAYERS) / sum(sizes.values())
            result["fractions"][f"{label} @ {range_:g}"] = {**fractions, "all": total}
            table.append([label, f"{range_:g}", *(f"{100 * fractions[n]:.2f}%" for n in LAYERS), f"{100 * total:.2f}%"])
    emit("ra_eq1_shape", result, table)


if __name__ == "__main__":
    main()
