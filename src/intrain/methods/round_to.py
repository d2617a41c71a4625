"""``round_to``: pruned layers keep a multiple of N filters (hardware-aligned widths).

Convolutions run fastest when their channel counts are multiples of the machine's vector or tensor-core
width: on a CPU measured by benchmarks/conv_channel_blocks.py, a conv with 9 channels took 0.050 s where
8 took 0.014 s. A ranking leaves whatever counts it leaves (13, 26, 51); with ``round_to=N`` each
pruned unit (a layer, or a group of coupled layers) keeps a multiple of N filters instead, at least N,
and units of at most N filters are not pruned. The schedule's fraction stays met over the network:
the counts are first rounded to the nearest multiple, then the units furthest above their unrounded
count give up N filters each until the network's pruned filters reach the fraction. A unit never
gets filters back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def rounded_kept(wanted: Sequence[float], current: Sequence[int], originals: Sequence[int], weights: Sequence[int],
                 round_to: int, required: int) -> list[int]:
    """The filters each unit keeps: ``wanted`` (its unrounded count) rounded to a multiple of
    ``round_to`` (at least ``round_to``, at most ``current``), units of at most ``round_to`` filters
    left at ``current``; then, while the pruned filters ``sum((originals - kept) * weights)`` are
    below ``required``, the unit furthest above its ``wanted`` count (the first on ties) with
    ``2 * round_to`` or more gives up ``round_to``."""
    kept = []
    for w, c, o in zip(wanted, current, originals):
        if o <= round_to:
            kept.append(c)
        else:
            kept.append(min(c, max(round_to, round_to * math.floor(w / round_to + 0.5))))

    def pruned() -> int:
        return sum((o - k) * n for o, k, n in zip(originals, kept, weights))

    while pruned() < required:
        candidates = [i for i, (k, o) in enumerate(zip(kept, originals)) if o > round_to and k >= 2 * round_to]
        if not candidates:
            break
        best = max(candidates, key=lambda i: (kept[i] - wanted[i], -i))
        kept[best] -= round_to
    return kept
