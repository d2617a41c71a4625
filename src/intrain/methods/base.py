"""The interface every pruning method implements, so that any loop can drive it.

A method is attached to a model and its optimizer, then told what happened through named events::

    method.attach(model, optimizer)
    for epoch in range(epochs):
        method.on_epoch_begin(epoch)
        for batch in loader:
            ...; loss.backward(); optimizer.step()
            method.on_step_end()
        method.on_epoch_end(epoch)
    method.detach()

Epochs are 0-based in events. ``state_dict()`` / ``load_state_dict()`` hold everything needed to
resume the method (schedule position, accumulators); masks themselves live in the model's buffers.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

from ..errors import IntrainError


@dataclass
class PruneEvent:
    """What one pruning event did."""

    epoch: int
    fraction: float  # pruned fraction of all prunable filters after the event
    filters_pruned: int  # filters newly pruned by this event
    seconds: float  # time spent deciding and applying the pruning
    details: dict[str, Any] = field(default_factory=dict)


class PruningMethod:
    """Base class: a method that does nothing (dense training). Subclasses override events."""

    name = "dense"

    def __init__(self) -> None:
        self.model: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._stack: ExitStack | None = None
        self.iteration = 0

    # ------------------------------------------------------------------ lifecycle
    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> "PruningMethod":
        """Bind to ``model`` and its ``optimizer``; hooks are installed until :meth:`detach`."""
        if self.model is not None:
            raise IntrainError(f"{type(self).__name__} is already attached; call detach() first")
        self.model, self.optimizer = model, optimizer
        self._stack = ExitStack()
        self._install(self._stack)
        return self

    def detach(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self.model, self.optimizer, self._stack = None, None, None

    @contextmanager
    def attached(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> Iterator["PruningMethod"]:
        self.attach(model, optimizer)
        try:
            yield self
        finally:
            self.detach()

    def reattach(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Reinstall hooks after the model's parameters were replaced (compaction) or re-created."""
        model = self._require_model()
        self.detach()
        self.attach(model, optimizer)

    def _install(self, stack: ExitStack) -> None:
        """Install hooks (each as a context manager on ``stack``). Override in subclasses."""

    def _require_model(self) -> nn.Module:
        if self.model is None:
            raise IntrainError(f"{type(self).__name__}: call attach(model, optimizer) before driving its events")
        return self.model

    # ------------------------------------------------------------------ events
    def on_epoch_begin(self, epoch: int) -> None:
        self._require_model()

    def on_step_end(self) -> None:
        """Call after every ``optimizer.step()``."""
        self._require_model()
        self.iteration += 1

    def on_epoch_end(self, epoch: int) -> PruneEvent | None:
        """Call after the last step of epoch ``epoch`` (0-based). Returns the pruning event, if any."""
        self._require_model()
        return None

    # ------------------------------------------------------------------ reporting and state
    def pruned_filter_fraction(self) -> float:
        return 0.0

    def original_filters(self) -> dict[str, int]:
        """Filters each prunable layer had before any pruning (for reports after compaction)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"iteration": self.iteration}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.iteration = int(state.get("iteration", 0))
