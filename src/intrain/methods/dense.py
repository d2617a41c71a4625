"""Dense training: the baseline every report compares with (no pruning at all)."""

from __future__ import annotations

from dataclasses import dataclass

from .base import PruningMethod
from .registry import MethodConfig, MethodSpec, RunContext, register


def dense() -> PruningMethod:
    """No pruning at all."""
    return PruningMethod()


@dataclass(frozen=True)
class DenseConfig(MethodConfig):
    """Dense training has no settings."""


def _build(config: DenseConfig, run: RunContext) -> PruningMethod:
    return dense()


SPEC = register(MethodSpec("dense", DenseConfig, _build, "no pruning: the baseline", baseline=True,
                           prunes_while_training=False))
