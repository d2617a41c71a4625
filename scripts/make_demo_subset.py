#!/usr/bin/env python
"""Build the packaged ``demo`` dataset: a seeded, class-balanced MNIST subset as IDX .gz files.

    python scripts/make_demo_subset.py [--source DIR] [--out DIR] [--seed 0]

Reads the original MNIST IDX files from ``--source`` (default ``../shared/data/mnist`` relative to
the repository root) and writes 600 training and 100 test images per class to ``--out`` (default
``src/intrain/data/demo``). Examples keep their original relative order; the gzip output uses
mtime 0 and no file name, so the same seed always gives byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from intrain.data.datasets import load_dataset  # noqa: E402
from intrain.data.idx import write_idx  # noqa: E402


def balanced_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``per_class`` randomly chosen examples of every class."""
    picks = [
        rng.choice(np.flatnonzero(labels == cls), size=per_class, replace=False)
        for cls in range(int(labels.max()) + 1)
    ]
    return np.sort(np.concatenate(picks))


def write_split(out: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Write one split as ``<prefix>-{images-idx3,labels-idx1}-ubyte.gz`` in ``out``."""
    write_idx(out / f"{prefix}-images-idx3-ubyte.gz", images)
    write_idx(out / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data" / "mnist")
    parser.add_argument("--out", type=Path, default=REPO / "src" / "intrain" / "data" / "demo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-per-class", type=int, default=600)
    parser.add_argument("--test-per-class", type=int, default=100)
    args = parser.parse_args(argv)

    mnist = load_dataset("mnist", args.source)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for prefix, images, labels, per_class in (
        ("train", mnist.train_images, mnist.train_labels, args.train_per_class),
        ("t10k", mnist.test_images, mnist.test_labels, args.test_per_class),
    ):
        labels = labels.numpy()
        keep = balanced_indices(labels, per_class, rng)
        write_split(args.out, prefix, images.numpy()[keep, 0], labels[keep])
        print(f"{prefix}: {keep.size} examples -> {args.out}")


if __name__ == "__main__":
    main()
