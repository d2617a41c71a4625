"""Lightning callback: a thin adapter that drives an intrain pruning method from Lightning's hooks.

No algorithm lives here: every decision is the method's. Usage::

    from intrain.methods import pwt
    from intrain.integrations.lightning import PruningCallback

    trainer = lightning.Trainer(max_epochs=10, callbacks=[PruningCallback(pwt(target=0.5, epochs=10, steps_per_epoch=len(loader)))])

The callback attaches the method to the LightningModule and its (single) optimizer when fitting
starts, reports every optimizer step and epoch end, and saves the method's state in Lightning
checkpoints.
"""

from __future__ import annotations

from typing import Any

try:
    from lightning.pytorch.callbacks import Callback
except ImportError as exc:  # pragma: no cover - exercised only without lightning
    raise ImportError("intrain.integrations.lightning needs Lightning: pip install 'intrain[lightning]'") from exc

from ..errors import ConfigError
from ..methods.base import PruningMethod


class PruningCallback(Callback):
    """Drive ``method`` (PWT, PRT, RA, ...) from a Lightning ``Trainer``."""

    def __init__(self, method: PruningMethod) -> None:
        if not isinstance(method, PruningMethod):
            raise ConfigError(
                f"PruningCallback needs an intrain pruning method (e.g. intrain.methods.pwt(...)), "
                f"got {type(method).__name__}"
            )
        self.method = method
        self.events: list[Any] = []

    def on_fit_start(self, trainer, pl_module) -> None:
        optimizers = trainer.optimizers
        if len(optimizers) != 1:
            raise ConfigError(f"PruningCallback supports exactly one optimizer, the module configures {len(optimizers)}")
        if self.method.model is None:
            self.method.attach(pl_module, optimizers[0])

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.method.on_epoch_begin(trainer.current_epoch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.method.on_step_end()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        event = self.method.on_epoch_end(trainer.current_epoch)
        if event is not None:
            self.events.append(event)
            pl_module.log("pruned_filter_fraction", self.method.pruned_filter_fraction())

    def on_fit_end(self, trainer, pl_module) -> None:
        self.method.detach()

    def state_dict(self) -> dict[str, Any]:
        return self.method.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.method.load_state_dict(state_dict)
