"""LeNet-5 on full MNIST, the RA paper's Table 2 row: dense, RA-range-ε (Strategy 1) and scratch-train.

The paper's Caffe recipe: SGD lr 0.01, momentum 0.9, weight decay 5e-4, "inv" policy (γ 1e-4, power
0.75), batch 64, 11 epochs. Paper: RA-2-0.1 reaches 97.7% sparsity (43.8x) at 99.1% with no loss;
scratch-train with the same masks loses 1.5 pt. Every RA setting in ``--ranges`` is run; scratch-train
uses the masks of the first one. The sparse file (:mod:`intrain.sparse`) is compared with the dense
fp32 file.

    python benchmarks/ra_lenet5.py [--ranges 2.0 2.7] [--epsilon 0.1] [--epochs 11] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import SHARED_DATA, emit  # noqa: E402

from intrain.config import TrainConfig, read_yaml  # noqa: E402
from intrain.engine.run import train  # noqa: E402


def caffe_recipe(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig.of(model="lenet5", dataset="mnist", data_dir=args.data_dir, epochs=args.epochs, batch_size=64,
                       optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, lr_schedule="inv",
                       inv_gamma=1e-4, inv_power=0.75, seed=args.seed)


def run(config: TrainConfig, reuse: bool) -> dict:
    """Train, or with ``reuse`` read the summary of a finished run of the very same config."""
    out = Path(config.out)
    if reuse and (out / "summary.json").exists() and read_yaml(out / "config.yaml") == config.resolved().to_dict():
        return json.loads((out / "summary.json").read_text())
    return train(config, quiet=True, overwrite=True)  # a benchmark owns its run folders


def ra_name(range_: float, epsilon: float) -> str:
    return f"ra-{range_:g}-{epsilon:g}"


def row(name: str, s: dict, dense_accuracy: float) -> list[str]:
    sparse = s.get("sparse_file") or {}
    return [name, f"{100 * s['final_test_accuracy']:.2f}%", f"{100 * (s['final_test_accuracy'] - dense_accuracy):+.2f}",
            f"{100 * s['sparsity']:.2f}%", f"{s['compression']:.1f}x",
            f"{sparse['ratio']:.1f}x" if sparse else "-", f"{s['train_seconds']:.0f}",
            f"{100 * s['prune_seconds'] / s['train_seconds']:.2f}%"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranges", type=float, nargs="+", default=[2.0, 2.7])
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=11)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=str(SHARED_DATA))
    parser.add_argument("--out", default="runs/bench-ra-lenet5")
    parser.add_argument("--name", default="ra_lenet5", help="result file benchmarks/results/NAME.json")
    parser.add_argument("--reuse", action="store_true", help="keep finished runs of the same config in --out")
    args = parser.parse_args()
    base = caffe_recipe(args)
    summaries = {"dense": run(base.replace(method="dense", out=f"{args.out}/dense"), args.reuse)}
    for range_ in args.ranges:
        name = ra_name(range_, args.epsilon)
        config = base.replace(method="ra", range=range_, epsilon=args.epsilon, partition="type", out=f"{args.out}/{name}")
        summaries[name] = run(config, args.reuse)
    first = ra_name(args.ranges[0], args.epsilon)
    summaries[f"scratch({first})"] = run(base.replace(method="scratch", masks_from=f"{args.out}/{first}",
                                                      out=f"{args.out}/scratch"), args.reuse)
    dense_accuracy = summaries["dense"]["final_test_accuracy"]
    result = {"benchmark": "ra_lenet5", "epochs": args.epochs, "epsilon": args.epsilon, "recipe": "caffe-sgd-inv",
              "runs": {name: {"final_test_accuracy": s["final_test_accuracy"],
                              "accuracy_change_pt": 100 * (s["final_test_accuracy"] - dense_accuracy),
                              "sparsity": s["sparsity"], "compression": s["compression"],
                              "layers": {layer["name"]: layer["sparsity"] for layer in s["layers"]},
                              "sparse_file": s.get("sparse_file"), "train_seconds": s["train_seconds"],
                              "prune_seconds": s["prune_seconds"]}
                       for name, s in summaries.items()}}
    table = [["run", "final acc", "change pt", "sparsity", "compression", "sparse file", "train s", "prune share"]]
    table += [row(name, s, dense_accuracy) for name, s in summaries.items()]
    emit(args.name, result, table)


if __name__ == "__main__":
    main()
