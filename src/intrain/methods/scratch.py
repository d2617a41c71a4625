"""Scratch-train, the RA paper's baseline (Table 2): the final masks of an RA run, fixed, on a freshly
initialised network trained for the same epochs.

"Freshly initialised" matters: a scratch run with the RA run's own seed starts from the RA run's own
initial weights and trains the masks' winning ticket. The engine therefore initialises scratch-train
from ``init_seed`` (default: the RA run's seed + 1, never the RA run's seed; ``scratch_init: fresh``);
``scratch_init: same`` is the same-initial-weights variant. Both are recorded in summary.json
(``scratch.init``, ``scratch.init_seed``, ``scratch.ra_seed``).

The masked forward is the RA one (``weight ⊙ weight_mask``) without the straight-through gradient:
pruned weights are zeroed when the method attaches and get zero gradient, so they stay exactly zero
(SGD weight decay and momentum of a zero weight with zero gradient are zero, Adam's too).
"""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import validation
from ..errors import ConfigError
from ..yaml_file import read_yaml
from ..masks import WEIGHT_MASK, ensure_weight_mask, mask_sparsity, masked_forward
from ..model_stats import prunable_weights
from ..rundir import CONFIG, MODEL
from .base import PruningMethod
from .registry import MethodConfig, MethodSpec, RunContext, register

SCRATCH_INITS = ("fresh", "same")



def load_masks(run_dir: str | Path) -> dict[str, torch.Tensor]:
    """The ``weight_mask`` buffers of a finished run's ``model.pt`` (read with ``weights_only=True``),
    keyed by layer name."""
    path = Path(run_dir) / MODEL
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConfigError(f"masks_from: {path} not found (expected a finished ra run directory)") from None
    except Exception as exc:  # unreadable or not a weights-only file
        raise ConfigError(f"masks_from: cannot read {path}: {exc.__class__.__name__}") from None
    state = saved.get("model", saved) if isinstance(saved, dict) else {}
    suffix = "." + WEIGHT_MASK
    masks = {key[: -len(suffix)]: value.bool() for key, value in state.items() if key.endswith(suffix)}
    if not masks:
        raise ConfigError(f"masks_from: {path} has no '{WEIGHT_MASK}' buffers (was it an ra run?)")
    return masks


class FixedMasks(PruningMethod):
    """Train with given per-weight masks that never change."""

    name = "scratch"

    def __init__(self, masks: dict[str, torch.Tensor], source: str | None = None) -> None:
        super().__init__()
        self.masks = masks
        self.source = source
        self.init: str | None = None  # "fresh" or "same" (set by the engine), with the seeds used
        self.init_seed: int | None = None
        self.ra_seed: int | None = None
        self._modules: dict[str, torch.nn.Module] = {}

    def _install(self, stack: ExitStack) -> None:
        self._modules = dict(prunable_weights(self.model))
        for name, mask in self.masks.items():
            module = self._modules.get(name)
            if module is None or module.weight.shape != mask.shape:
                raise ConfigError(f"masks_from: mask '{name}' {tuple(mask.shape)} does not match a layer of this "
                                  "model; use the same --model, --width and dataset as the ra run")
            ensure_weight_mask(module).copy_(mask)
            with torch.no_grad():
                module.weight.mul_(getattr(module, WEIGHT_MASK))
        masked = [self._modules[name] for name in self.masks]
        stack.enter_context(masked_forward(masked, straight_through=False))

    def summary_extras(self) -> dict[str, Any]:
        layers = {name: mask_sparsity(self._modules[name]) for name in self.masks if name in self._modules}
        return {"scratch": {"masks_from": self.source, "init": self.init, "init_seed": self.init_seed,
                            "ra_seed": self.ra_seed, "layers": layers}}


def scratch(masks_from: str | Path) -> FixedMasks:
    """The scratch-train baseline with the masks of the ra run in ``masks_from`` (read now: a folder
    without an ra run's masks is a :class:`~intrain.errors.ConfigError`, as in ``intrain train``)."""
    if not isinstance(masks_from, (str, Path)) or not str(masks_from):
        raise ConfigError(f"masks_from: expected the folder of a finished ra run, got {masks_from!r}")
    if "\x00" in str(masks_from):
        raise ConfigError("masks_from: a path cannot contain a NUL character")
    return FixedMasks(load_masks(masks_from), source=str(masks_from))


# ---------------------------------------------------------------------- the registry's entry
@dataclass(frozen=True)
class ScratchConfig(MethodConfig):
    masks_from: str | None = field(default=None, metadata={"help": "run directory of a finished RA run"})
    scratch_init: str = field(default="fresh", metadata={
        "help": "fresh (another seed, default) or same (the RA run's initial weights)"})
    init_seed: int | None = field(default=None, metadata={
        "help": "with scratch_init fresh: seed of the initial weights (default the RA run's seed + 1)"})

    def validate(self) -> None:
        validation.choice("scratch_init", self.scratch_init, SCRATCH_INITS)
        if not self.masks_from:
            raise ConfigError("masks_from: method scratch needs --masks-from RUN_DIR (a finished ra run)")
        if "\x00" in self.masks_from:
            raise ConfigError("masks_from: a path cannot contain a NUL character")
        if self.init_seed is not None:
            if not 0 <= self.init_seed <= validation.MAX_SEED:
                raise ConfigError(f"init_seed: must be in [0, {validation.MAX_SEED}], got {self.init_seed}")
            if self.scratch_init != "fresh":
                raise ConfigError("init_seed: only used with scratch_init fresh (same takes the ra run's weights)")


def scratch_init_seed(c: ScratchConfig, run_seed: int) -> tuple[int, int]:
    """``(init_seed, ra_seed)``: ``ra_seed`` is the seed of the ra run whose masks it trains (its
    config.yaml; ``run_seed`` if unreadable). ``scratch_init: fresh`` (the default, the paper's
    baseline) initialises from ``init_seed`` or else ``ra_seed + 1``, never ``ra_seed``; ``same``
    starts from the ra run's own initial weights (its seed)."""
    try:
        ra_seed = int(read_yaml(Path(c.masks_from) / CONFIG).get("seed", run_seed))
    except (ConfigError, TypeError, ValueError):
        ra_seed = run_seed
    if c.scratch_init == "same":
        return ra_seed, ra_seed
    seed = c.init_seed if c.init_seed is not None else (ra_seed + 1) % (validation.MAX_SEED + 1)
    if seed == ra_seed:
        raise ConfigError(f"init_seed: {seed} is the ra run's own seed; scratch_init fresh needs another "
                          "(use --scratch-init same for the same initial weights)")
    return seed, ra_seed


def _resolve(c: ScratchConfig, run) -> ScratchConfig:
    """The RA run's folder as an absolute path."""
    return dataclasses.replace(c, masks_from=str(Path(c.masks_from).expanduser().absolute()))


def _build(c: ScratchConfig, run: RunContext) -> FixedMasks:
    init_seed, ra_seed = scratch_init_seed(c, run.config.seed)
    method = scratch(c.masks_from)
    method.init, method.init_seed, method.ra_seed = c.scratch_init, init_seed, ra_seed
    return method


SPEC = register(MethodSpec(
    "scratch", ScratchConfig, _build, "scratch-train: an RA run's final masks, fixed, on a fresh network",
    cost_mode="nonzero", sparse_weights=True, resolve=_resolve, initial_seed=lambda c, run: scratch_init_seed(c, run.seed)[0]))
