"""Time of one 3x3 convolution (forward + backward) as its channel count falls, against the MACs.

Compaction makes a conv with C channels into one with fewer; the MACs fall as (C_kept / C)^2, but a
CPU's convolution kernels (oneDNN, behind ``aten::mkldnn_convolution``) work on blocks of channels,
so the time can stay flat between block boundaries. Each row times a conv with ``c`` input and ``c``
output channels on a batch of ``--batch-size`` images of ``--size`` x ``--size``, in PyTorch's
default (contiguous) and channels-last memory formats, as a ratio to the widest. This is what limits
``compaction_vgg.py``'s wall-clock at width 0.25, where VGG-16's first stages have 16 and 32 channels.

    python benchmarks/conv_channel_blocks.py [--channels 16] [--size 32] [--batch-size 128] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit  # noqa: E402


def seconds(channels: int, size: int, batch: int, channels_last: bool, repeats: int) -> float:
    """Median seconds of one forward + backward pass of a 3x3 conv, ``channels`` in and out."""
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
    x = torch.randn(batch, channels, size, size)
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()

    def step() -> None:
        y = conv(x)
        y.backward(torch.ones_like(y))

    step()
    times = []
    for _ in range(repeats):
        tick = time.perf_counter()
        step()
        times.append(time.perf_counter() - tick)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=16, help="the widest conv; rows go down to 1 channel")
    parser.add_argument("--size", type=int, default=32, help="feature map height and width")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="conv_channel_blocks", help="results file benchmarks/results/NAME.json")
    args = parser.parse_args()
    if args.channels < 1 or args.size < 1 or args.batch_size < 1 or args.repeats < 1:
        parser.error("--channels, --size, --batch-size and --repeats must be at least 1")
    torch.set_num_threads(args.threads)
    rows = [{"channels": c,
             "contiguous_seconds": seconds(c, args.size, args.batch_size, False, args.repeats),
             "channels_last_seconds": seconds(c, args.size, args.batch_size, True, args.repeats)}
            for c in range(args.channels, 0, -1)]
    widest = rows[0]
    table = [["channels", "MACs ratio", "contiguous ms", "ratio", "channels-last ms", "ratio"]]
    for r in rows:
        table.append([r["channels"], f"{(r['channels'] / args.channels) ** 2:.3f}",
                      f"{1e3 * r['contiguous_seconds']:.1f}", f"{r['contiguous_seconds'] / widest['contiguous_seconds']:.3f}",
                      f"{1e3 * r['channels_last_seconds']:.1f}",
                      f"{r['channels_last_seconds'] / widest['channels_last_seconds']:.3f}"])
    emit(args.name, {"benchmark": "conv_channel_blocks", "size": args.size, "batch_size": args.batch_size,
                     "threads": args.threads, "torch": torch.__version__, "rows": rows}, table)


if __name__ == "__main__":
    main()
