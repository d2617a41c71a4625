"""RA's classes of layers (Dong et al., Section 3.2): Strategy 1 by layer type, Strategy 2 (Algorithm 2)
by the sensitivity a probe phase measures, and the probe itself.

Stage-wise pruning (:class:`~intrain.methods.ra.RedundancyAwareTraining`) extends pruning one class
at a time; this module draws the classes and checks explicit ones.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from itertools import islice
from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from ..masks import mask_sparsity
from ..model_stats import prunable_weights


# ---------------------------------------------------------------------- partitions (Section 3.2)
def parse_classes(text: str) -> tuple[tuple[str, ...], ...]:
    """``--classes conv1,conv2;fc1,fc2``: classes separated by ';', layers by ','."""
    classes = [tuple(n.strip() for n in part.split(",") if n.strip()) for part in text.split(";")]
    if not classes or not all(classes):
        raise ConfigError(f"classes: expected classes like 'conv1,conv2;fc1,fc2', got '{text}'")
    return tuple(classes)


def check_class_names(classes: Any) -> None:
    """Explicit classes: a non-empty list of non-empty lists of layer names (the config's message)."""
    if isinstance(classes, str) or not isinstance(classes, Sequence) or not classes:
        raise ConfigError("classes: expected a list of classes, each a list of layer names")
    for item in classes:
        if isinstance(item, str) or not isinstance(item, Sequence) or not item or not all(isinstance(n, str) for n in item):
            raise ConfigError("classes: each class must be a non-empty list of layer names")


def checked_classes(classes: Sequence[Sequence[str]], names: Sequence[str], what: str = "classes") -> list[list[str]]:
    """Explicit classes must name conv/linear layers of the model, each at most once."""
    seen: set[str] = set()
    for layer in (n for c in classes for n in c):
        if layer not in names:
            hint = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            raise ConfigError(f"{what}: '{layer}' is not a conv or linear layer of the model (layers: {hint})")
        if layer in seen:
            raise ConfigError(f"{what}: layer '{layer}' appears in more than one class")
        seen.add(layer)
    return [list(c) for c in classes]


def partition_by_type(names: Sequence[str], kinds: Sequence[str]) -> list[list[str]]:
    """Strategy 1: consecutive layers of the same type form a class (conv class, then fc class)."""
    classes: list[list[str]] = []
    for i, (name, kind) in enumerate(zip(names, kinds)):
        if i == 0 or kind != kinds[i - 1]:
            classes.append([])
        classes[-1].append(name)
    return classes


def partition_by_sensitivity(sensitivity: Sequence[float], factor: float) -> list[list[int]]:
    """Strategy 2 (Algorithm 2) on layer indices: walk the layers in order and open a new class when
    ``|s[l] − s_avg| > δ`` with ``δ = factor · s_avg``, ``s_avg`` the mean sensitivity of the current
    class (updated after each layer joins). ``factor = inf`` gives one class."""
    classes = [[0]]
    for index in range(1, len(sensitivity)):
        current = classes[-1]
        average = sum(sensitivity[i] for i in current) / len(current)
        if abs(sensitivity[index] - average) > factor * average:
            classes.append([])
        classes[-1].append(index)
    return classes


def sensitivity_from_sparsity(sparsity: float, floor: float = 1e-6) -> float:
    """A layer's sensitivity to pruning: ``1 / sparsity`` (a layer left dense counts as ``1 / floor``)."""
    return 1.0 / max(sparsity, floor)


@dataclass
class ProbeResult:
    """Per-layer sparsity and sensitivity after the probe phase, and the partition drawn from them."""

    iterations: int
    seconds: float
    layers: list[str]
    sparsity: list[float]
    sensitivity: list[float]
    classes: list[list[str]]


def probe_partition(
    model: nn.Module,
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    iterations: int,
    *,
    pruner: Callable[[], Any],
    factor: float,
) -> ProbeResult:
    """The probe phase of Strategy 2: train a *copy* of ``model`` for ``iterations`` steps with every
    layer under pruning by the method ``pruner()`` builds (RA with one class: :func:`intrain.methods.ra.
    probe_sensitivity`), read each layer's sparsity, and partition by Algorithm 2.

    ``model`` itself is not touched, so training afterwards starts from its initial weights and a
    fresh optimizer: the paper's "re-initialise the network" with the same initial draw. The probe
    runs at the optimizer's initial learning rate.
    """
    start = time.perf_counter()
    probe_model = copy.deepcopy(model).train()
    optimizer = make_optimizer(probe_model)
    method = pruner()
    done = 0
    with method.attached(probe_model, optimizer):
        for x, y in islice(batches, iterations):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(probe_model(x), y).backward()
            optimizer.step()
            method.on_step_end()
            done += 1
    names = [name for name, _ in prunable_weights(probe_model)]
    sparsity = [mask_sparsity(module) for _, module in prunable_weights(probe_model)]
    sensitivity = [sensitivity_from_sparsity(s) for s in sparsity]
    classes = [[names[i] for i in c] for c in partition_by_sensitivity(sensitivity, factor)]
    return ProbeResult(done, time.perf_counter() - start, names, sparsity, sensitivity, classes)
