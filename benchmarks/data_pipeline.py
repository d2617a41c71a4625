"""Is the data pipeline what an epoch waits on? Time one MNIST-sized epoch of batches (no model)
against one epoch of LeNet-5 training on the same batches, and print the ratio.

    python benchmarks/data_pipeline.py [--examples 60000] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from intrain.data import BatchLoader, dataset_spec
from intrain.models import create_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=60000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-batches", type=int, default=100, help="training batches timed (extrapolated)")
    args = parser.parse_args()
    spec = dataset_spec("mnist")
    images = torch.randint(0, 256, (args.examples, 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (args.examples,))
    loader = BatchLoader(images, labels, spec, batch_size=args.batch_size, train=True)

    start = time.perf_counter()
    batches = sum(1 for _ in loader.epoch(0))
    data_seconds = time.perf_counter() - start

    model = create_model("lenet5")
    optimizer = torch.optim.Adam(model.parameters())
    start = time.perf_counter()
    for i, (x, y) in enumerate(loader.epoch(1)):
        if i == args.train_batches:
            break
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    train_seconds = (time.perf_counter() - start) / args.train_batches * batches

    result = {"benchmark": "data_pipeline", "batches": batches, "data_epoch_seconds": round(data_seconds, 3),
              "lenet5_epoch_seconds_estimated": round(train_seconds, 2),
              "data_share_of_epoch": round(data_seconds / train_seconds, 4)}
    print(json.dumps(result))
    print(f"data pipeline: {data_seconds:.2f} s/epoch   LeNet-5 training: ~{train_seconds:.1f} s/epoch   "
          f"share: {100 * result['data_share_of_epoch']:.2f}%")


if __name__ == "__main__":
    main()
