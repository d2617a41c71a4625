"""The interface every pruning method implements, so that any loop can drive it.

A method is attached to a model and its optimizer, then told what happened through named events::

    method.attach(model, optimizer, example_inputs=x[:1])  # example_inputs: optional, see attach
    for epoch in range(epochs):
        method.on_epoch_begin(epoch)
        for batch in loader:
            ...; loss.backward()
            method.on_before_optimizer_step()  # gradients final (unscaled); a method may add to them
            optimizer.step()
            method.on_step_end()
        method.on_epoch_end(epoch)
    method.detach()

Epochs are 0-based in events. ``state_dict()`` / ``load_state_dict()`` hold everything needed to
resume the method (schedule position, accumulators); masks themselves live in the model's buffers.

Events called out of order raise :class:`~intrain.errors.IntrainError` naming the call and the one
expected instead: any event before ``attach``; ``on_epoch_begin`` while an epoch is open;
``on_epoch_end(e)`` while another epoch is open; an epoch begun or ended again, or counting down;
``on_step_end`` or ``on_before_optimizer_step`` after ``on_epoch_end(e)`` and before
``on_epoch_begin(e + 1)`` (a loop that begins its epochs must step inside them). A loop that never
calls ``on_epoch_begin`` may call the step events and ``on_epoch_end`` alone. Subclasses get these checks on their own event methods
(wrapped once per class by ``__init_subclass__``; ``super()`` calls inside them are not re-checked).
"""

from __future__ import annotations

import functools
import weakref
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

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


EVENTS = ("on_epoch_begin", "on_before_optimizer_step", "on_step_end", "on_epoch_end")
ATTACHED = "_intrain_method"  # attribute of an attached model: a weak reference to its method


def attached_method(model: nn.Module) -> "PruningMethod | None":
    """The pruning method attached to ``model``, or None."""
    ref = vars(model).get(ATTACHED)
    method = ref() if ref is not None else None
    return method if method is not None and method.model is model else None


def _ordered(event: Callable) -> Callable:
    """Wrap an event method: check the call order first, record the epoch position after it ran. Calls
    made from inside another event (``super().on_step_end()``) pass straight through."""
    if getattr(event, "_ordered", False):
        return event

    @functools.wraps(event)
    def checked(self: "PruningMethod", *args: Any, **kwargs: Any) -> Any:
        if getattr(self, "_in_event", False):
            return event(self, *args, **kwargs)
        epoch = kwargs.get("epoch", args[0] if args else None)
        self._check_order(event.__name__, epoch)
        self._in_event = True
        try:
            result = event(self, *args, **kwargs)
        finally:
            self._in_event = False
        if event.__name__ == "on_epoch_begin":
            self._epoch_open, self._epochs_begun = epoch, True
        elif event.__name__ == "on_epoch_end":
            self._epoch_open, self._epoch_ended = None, epoch
        return result

    checked._ordered = True  # type: ignore[attr-defined]
    return checked


class PruningMethod:
    """Base class: a method that does nothing (dense training). Subclasses override events."""

    name = "dense"

    def __init__(self) -> None:
        self.model: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self._stack: ExitStack | None = None
        self.example_inputs: torch.Tensor | None = None  # a batch the model accepts (see attach)
        self.iteration = 0
        self._reset_order()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in EVENTS:
            if name in vars(cls):
                setattr(cls, name, _ordered(vars(cls)[name]))

    # ------------------------------------------------------------------ lifecycle
    def attach(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, *,
               example_inputs: torch.Tensor | None = None) -> "PruningMethod":
        """Bind to ``model`` and its ``optimizer``; hooks are installed until :meth:`detach`.

        ``example_inputs`` (a batch the model accepts; only its shape, dtype and device matter) lets a
        method that needs the model's channel structure (filter pruning) trace it now, once; without
        it such a method traces on the model's first training forward pass. It is kept for
        :meth:`reattach`.
        """
        if self.model is not None:
            raise IntrainError(f"{type(self).__name__} is already attached; call detach() first")
        if not isinstance(model, nn.Module):
            raise IntrainError(f"{type(self).__name__}.attach needs a torch.nn.Module, got {type(model).__name__}")
        owner = attached_method(model)
        if owner is not None:
            raise IntrainError(f"the model already has {type(owner).__name__} attached; detach it before attaching "
                               f"{type(self).__name__} (one pruning method per model)")
        # a weak reference: deepcopy(model) shares it (weakrefs copy atomically), and a copy is not the
        # model its method is attached to (see attached_method)
        vars(model)[ATTACHED] = weakref.ref(self)
        self.model, self.optimizer = model, optimizer
        if example_inputs is not None:
            self.example_inputs = example_inputs
        self._reset_order()
        self._stack = ExitStack()
        try:
            self._install(self._stack)
        except BaseException:
            self.detach()
            raise
        return self

    def detach(self) -> None:
        if self._stack is not None:
            self._stack.close()
        if self.model is not None and attached_method(self.model) is self:
            del vars(self.model)[ATTACHED]
        self.model, self.optimizer, self._stack = None, None, None

    @contextmanager
    def attached(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> Iterator["PruningMethod"]:
        self.attach(model, optimizer)
        try:
            yield self
        finally:
            self.detach()

    def reattach(self, optimizer: torch.optim.Optimizer | None = None, *, graph: Any = None) -> None:
        """Reinstall hooks after the model's parameters were replaced (compaction): hooks and
        per-parameter references held the old ones. Loading a state (weights, masks, a method state)
        into the same tensors needs no re-attach.

        ``graph`` is the model's Torch-Pruning dependency graph after the change when the caller has
        one (:attr:`intrain.compaction.CompactionResult.graph`): a method that reads the channel
        structure overrides this to read it from there instead of tracing again; here it is unused.
        """
        model = self._require_model()
        position = self._epoch_open, self._epoch_ended, self._epochs_begun
        self.detach()
        self.attach(model, optimizer)
        self._epoch_open, self._epoch_ended, self._epochs_begun = position  # training goes on

    def channel_groups(self) -> list[list[str]] | None:
        """The names of the layers whose filters are removed together (tied by residual additions), when
        this method has read them from the model's channel structure; ``None`` otherwise.
        :func:`intrain.compaction.compact` takes them instead of reading them again."""
        return None

    def channel_graph(self) -> Any:
        """The model's Torch-Pruning dependency graph as this method last traced or was handed it (valid
        until the model's shapes change: a compaction returns the next one), or ``None``.
        :func:`intrain.compaction.compact` takes it instead of tracing again."""
        return None

    def _install(self, stack: ExitStack) -> None:
        """Install hooks (each as a context manager on ``stack``). Override in subclasses."""

    def _require_model(self) -> nn.Module:
        if self.model is None:
            raise IntrainError(f"{type(self).__name__}: call attach(model, optimizer) before driving its events")
        return self.model

    def _reset_order(self) -> None:
        """Forget the epoch position (a fresh attach starts a new run)."""
        self._epoch_open: int | None = None  # begun and not yet ended
        self._epoch_ended: int | None = None  # the last epoch ended
        self._epochs_begun = False  # the loop calls on_epoch_begin
        self._in_event = False

    def _check_order(self, event: str, epoch: int | None) -> None:
        """Raise if ``event`` (with ``epoch``) is out of order; see the module docstring."""
        self._require_model()
        who, open_, ended = type(self).__name__, self._epoch_open, self._epoch_ended
        if event == "on_epoch_begin":
            if open_ is not None:
                raise IntrainError(f"{who}: on_epoch_begin({epoch}) while epoch {open_} is still open; "
                                   f"call on_epoch_end({open_}) first")
            if ended is not None and epoch <= ended:
                raise IntrainError(f"{who}: on_epoch_begin({epoch}) after on_epoch_end({ended}); epochs count up "
                                   f"(0-based): the next one is {ended + 1}")
        elif event == "on_epoch_end":
            if open_ is not None and epoch != open_:
                raise IntrainError(f"{who}: on_epoch_end({epoch}) while epoch {open_} is open; "
                                   f"call on_epoch_end({open_})")
            if open_ is None and ended is not None and epoch <= ended:
                raise IntrainError(f"{who}: on_epoch_end({epoch}) after on_epoch_end({ended}); "
                                   f"each epoch ends once and epochs count up (0-based)")
        elif event in ("on_step_end", "on_before_optimizer_step") and open_ is None and self._epochs_begun:
            when = "after" if event == "on_step_end" else "before"
            raise IntrainError(f"{who}: {event}() after on_epoch_end({ended}) and before on_epoch_begin("
                               f"{ended + 1}); call {event}() {when} each optimizer.step() inside an epoch")

    # ------------------------------------------------------------------ events
    def on_epoch_begin(self, epoch: int) -> None:
        self._require_model()

    def on_before_optimizer_step(self) -> None:
        """Call after every ``loss.backward()`` and before its ``optimizer.step()``, the gradients final
        (unscaled under fp16, all-reduced under DDP): a method may change them (Network Slimming adds
        its penalty's subgradient). Nothing here."""
        self._require_model()

    def on_step_end(self) -> PruneEvent | None:
        """Call after every ``optimizer.step()``. Returns the pruning event when this step pruned
        filters (a loop may compact then: :class:`~intrain.compactor.Compactor`), else None."""
        self._require_model()
        self.iteration += 1
        return None

    def on_epoch_end(self, epoch: int) -> PruneEvent | None:
        """Call after the last step of epoch ``epoch`` (0-based). Returns the pruning event, if any."""
        self._require_model()
        return None

    # the base class's own events are checked too (subclasses' are wrapped by __init_subclass__)
    on_epoch_begin = _ordered(on_epoch_begin)
    on_before_optimizer_step = _ordered(on_before_optimizer_step)
    on_step_end = _ordered(on_step_end)
    on_epoch_end = _ordered(on_epoch_end)

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
