"""How fast does the image-folder loader deliver training images? Decode + random-resized crop +
flip + normalisation of 64x64 PNGs, no model, images per second.

    python benchmarks/folder_loader.py [--workers 2] [--images 4000] [--epochs 2] [--batch-size 128]

Writes a generated folder (10 classes of random 64x64 PNGs) to a temporary directory, then times
whole training epochs of :class:`intrain.data.folder.FolderLoader` (worker start-up included; the
first epoch is timed too, after a warm-up of the file cache by the generation itself).
Goal: at least 1,000 images/s with ``--workers 2`` on the CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit  # noqa: E402

from intrain.data.folder import FolderLoader, scan_folder  # noqa: E402


def write_images(root: Path, count: int, classes: int = 10, size: int = 64) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", count), ("val", classes)):
        for c in range(classes):
            folder = root / split / f"class{c:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n // classes):
                # smooth noise compresses like a photograph more than white noise does
                small = rng.integers(0, 256, (size // 4, size // 4, 3), dtype=np.uint8)
                Image.fromarray(small).resize((size, size), Image.BILINEAR).save(folder / f"{i:05d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--name", default="folder_loader", help="results/NAME.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_images(Path(tmp), args.images)
        data = scan_folder(tmp, image_size=64)
        loader = FolderLoader(data.train_files, data.train_labels, data.spec, batch_size=args.batch_size,
                              train=True, workers=args.workers)
        rates = []
        for epoch in range(args.epochs):
            start = time.perf_counter()
            seen = sum(y.numel() for _, y in loader.epoch(epoch))
            rates.append(seen / (time.perf_counter() - start))
    result = {"benchmark": "folder_loader", "images": args.images, "image_size": 64, "format": "png",
              "workers": args.workers, "batch_size": args.batch_size, "epochs": args.epochs,
              "images_per_second": [round(r, 1) for r in rates], "best_images_per_second": round(max(rates), 1),
              "goal_images_per_second": 1000, "cpu_count": os.cpu_count(), "platform": platform.platform(),
              "load_average": [round(x, 2) for x in os.getloadavg()]}
    emit(args.name, result, [("epoch", "images/s")] + [(str(i + 1), f"{r:.0f}") for i, r in enumerate(rates)])


if __name__ == "__main__":
    main()
