"""Lightning callback: a thin adapter that drives an intrain pruning method from Lightning's hooks.

No algorithm lives here: every decision is the method's. Usage::

    from intrain.methods import pwt
    from intrain.integrations.lightning import PruningCallback

    trainer = lightning.Trainer(max_epochs=10, callbacks=[PruningCallback(pwt(target=0.5, epochs=10, steps_per_epoch=len(loader)))])

The callback attaches the method to the LightningModule and its (single) optimizer when fitting
starts, reports every optimizer step (before it, the gradients being final; after it) and epoch end,
and saves the method's state in Lightning checkpoints.

With ``compact=True`` (the default) the pruned filters are removed as the method prunes them, by
the same :class:`~intrain.compactor.Compactor` as intrain's Trainer: the LightningModule's
parameters and the optimizer Lightning holds are replaced and remapped in place, so the module
trains smaller from the next step on. A checkpoint of such a run holds the smaller shapes: resuming
it (``trainer.fit(module, ckpt_path=...)``) shrinks the freshly built module to them before Lightning
loads the weights (a ``load_state_dict`` pre-hook installed in ``setup``). Compaction runs in a single
process (a multi-process strategy would have to rebuild its own wrapper): use ``compact=False`` there.
"""

from __future__ import annotations

from typing import Any

import torch

try:
    from lightning.pytorch.callbacks import Callback
except ImportError as exc:  # pragma: no cover - exercised only without lightning
    raise ImportError("intrain.integrations.lightning needs Lightning: pip install 'intrain[lightning]'") from exc

from ..compactor import DEFAULT_MIN_SHARE, Compactor
from ..errors import ConfigError
from ..methods.base import PruningMethod


class PruningCallback(Callback):
    """Drive ``method`` (PWT, PRT, RA, ...) from a Lightning ``Trainer``; with ``compact``, remove the
    pruned filters as it goes (``min_share``: see :class:`~intrain.compactor.Compactor`)."""

    def __init__(self, method: PruningMethod, *, compact: bool = True, min_share: float = DEFAULT_MIN_SHARE) -> None:
        if not isinstance(method, PruningMethod):
            raise ConfigError(
                f"PruningCallback needs an intrain pruning method (e.g. intrain.methods.pwt(...)), "
                f"got {type(method).__name__}"
            )
        self.method = method
        self.compact = compact
        self.min_share = min_share
        self.compactor: Compactor | None = None
        self.events: list[Any] = []
        self._hook = None  # the module's load_state_dict pre-hook, from setup to teardown

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.compact and trainer.world_size > 1:
            raise ConfigError(f"PruningCallback compacts in a single process, and this run has {trainer.world_size}; "
                              "use PruningCallback(method, compact=False)")
        if self._hook is None:
            self._hook = pl_module.register_load_state_dict_pre_hook(_fit_to_saved_shapes)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def on_fit_start(self, trainer, pl_module) -> None:
        optimizers = trainer.optimizers
        if len(optimizers) != 1:
            raise ConfigError(f"PruningCallback supports exactly one optimizer, the module configures {len(optimizers)}")
        if self.method.model is None:
            self.method.attach(pl_module, optimizers[0])
        self.compactor = Compactor(pl_module, optimizers[0], self.method, min_share=self.min_share,
                                   enabled=self.compact)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.method.on_epoch_begin(trainer.current_epoch)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.method.on_before_optimizer_step()  # after backward (and fp16 unscaling), before the step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.compactor.on_step_end()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        event = self.compactor.on_epoch_end(trainer.current_epoch)
        if event is not None:
            self.events.append(event)
            pl_module.log("pruned_filter_fraction", self.method.pruned_filter_fraction())

    def on_fit_end(self, trainer, pl_module) -> None:
        self.method.detach()

    def state_dict(self) -> dict[str, Any]:
        return self.method.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.method.load_state_dict(state_dict)


def _fit_to_saved_shapes(module, state_dict, prefix, *args) -> None:
    """Before a (root) ``load_state_dict``: give the module the shapes of a compacted run's weights and
    the mask buffers they hold, so that Lightning's strict load of a resumed checkpoint fits."""
    if prefix:
        return
    from ..compaction import shrink_to_state_dict
    from ..masks import FILTER_MASK

    shrink_to_state_dict(module, state_dict)
    modules = dict(module.named_modules())
    for key, value in state_dict.items():
        owner, _, name = key.rpartition(".")
        if name == FILTER_MASK and owner in modules and not hasattr(modules[owner], FILTER_MASK):
            modules[owner].register_buffer(FILTER_MASK, torch.ones_like(value))
