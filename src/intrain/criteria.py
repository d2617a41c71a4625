"""Filter-importance criteria of the PWT paper (Section III-A): one score per output filter.

Every criterion is a pure function (the objects of :mod:`intrain.importance` apply them to a
method's layers) returning a 1-D tensor with one score per output filter (or
output neuron of a linear layer); a lower score means less important, pruned first.

- ``l1``: the paper's normalised L1 norm, the mean absolute weight of the filter,
  ``sum(|w|) / n_weights``. Dividing by the filter size makes scores of layers with different
  kernel sizes and fan-in comparable, which a global ranking across layers needs.
- ``l2``: the filter's L2 norm, Soft Filter Pruning's criterion (He et al.).
- ``mean-activation``: the mean post-ReLU activation of each feature map over the training epoch
  (:class:`ActivationMeans` accumulates it through forward hooks during training, no extra pass).
- ``random``: uniform scores from a seeded generator, so that pruning the lowest ones removes filters
  uniformly at random among the unpruned ones.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from .collectives import sum_across_ranks


def l1(weight: torch.Tensor) -> torch.Tensor:
    """Mean |w| of each output filter: ``weight`` is [out, ...] (conv or linear)."""
    return weight.detach().abs().flatten(1).mean(dim=1)


def l2(weight: torch.Tensor) -> torch.Tensor:
    """The L2 norm of each output filter (Soft Filter Pruning's criterion): ``weight`` is [out, ...]."""
    return weight.detach().flatten(1).norm(dim=1)


def random_scores(num_filters: int, generator: torch.Generator) -> torch.Tensor:
    """Independent uniform scores; the lowest ``k`` are a uniformly random choice of ``k`` filters."""
    return torch.rand(num_filters, generator=generator)


class ActivationMeans:
    """Accumulates each filter's mean post-ReLU activation over an epoch through forward hooks.

    The hook sits on the module whose output is the filter's feature map after normalisation (the
    BatchNorm that follows the conv, or the conv itself when there is none) and adds
    ``max(0, x)`` summed over batch and space, so the mean equals the mean activation after the ReLU
    that follows. Only forward passes in training mode count: evaluation does not pollute the
    statistics. Hooks live only inside :meth:`recording`.
    """

    def __init__(self, sites: Sequence[nn.Module]):
        self.sites = list(sites)
        self.sums = [torch.zeros(0) for _ in self.sites]
        self.counts = [0 for _ in self.sites]

    def reset(self) -> None:
        self.sums = [torch.zeros(0) for _ in self.sites]
        self.counts = [0 for _ in self.sites]

    def _hook(self, index: int) -> Callable:
        def hook(module: nn.Module, inputs, output: torch.Tensor) -> None:
            if not module.training:
                return
            with torch.no_grad():
                y = output.detach().clamp_min(0)
                dims = [d for d in range(y.dim()) if d != 1]
                total = y.sum(dim=dims).float()
                if self.sums[index].numel() != total.numel():
                    self.sums[index] = torch.zeros_like(total)
                    self.counts[index] = 0
                self.sums[index] += total
                self.counts[index] += y.numel() // y.shape[1]

        return hook

    @contextmanager
    def recording(self) -> Iterator["ActivationMeans"]:
        handles = [site.register_forward_hook(self._hook(i)) for i, site in enumerate(self.sites)]
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def means(self) -> list[torch.Tensor]:
        """Mean activation per filter for each site (empty tensor where nothing was recorded).

        Under DistributedDataParallel the sums and counts are added over all ranks first, so every
        rank ranks the same statistics of the whole epoch.
        """

        result = []
        for total, count in zip(self.sums, self.counts):
            if total.numel() == 0:
                result.append(total)
                continue
            packed = sum_across_ranks(torch.cat([total, total.new_tensor([float(count)])]))
            result.append(packed[:-1] / packed[-1] if packed[-1] > 0 else packed[:-1])
        return result

    def state_dict(self) -> dict:
        return {"sums": [s.cpu() for s in self.sums], "counts": list(self.counts)}

    def load_state_dict(self, state: dict) -> None:
        self.sums = [s.clone() for s in state["sums"]]
        self.counts = list(state["counts"])
