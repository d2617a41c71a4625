"""RA's Eq. 1 and its mask update with hysteresis (Dong et al., Section 3.1), on many layers at once.

The arithmetic of one pruning step, apart from the method that schedules it
(:class:`~intrain.methods.ra.RedundancyAwareTraining`): the thresholds ``(l, u)`` of every layer from
its weights (:func:`thresholds`), the in-place update of the 0/1 ``weight_mask`` buffers
(:class:`MaskUpdate`; the buffers themselves are :mod:`intrain.masks.weights`), and the fraction of a
layer one step would prune (:func:`eq1_pruned_fraction`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch


# ---------------------------------------------------------------------- Eq. 1 and the mask update
def thresholds(
    magnitudes: Sequence[torch.Tensor],
    range_: float | Sequence[float] | torch.Tensor,
    epsilon: float,
    *,
    counts: torch.Tensor | None = None,
    factors: torch.Tensor | None = None,
    sums: Sequence[torch.Tensor] | None = None,
    relative: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 1 for every layer at once, from each layer's weight magnitudes ``|K|``: ``(l, u)``, two
    1-D tensors with one entry per layer. ``μ = Σ|k| / n`` and ``σ² = Σ|k|² / n − μ²`` are the mean
    and population variance of ``|K|``; the arithmetic runs once on stacked per-layer sums (no
    host synchronisation, few kernels whatever the number of layers). ``counts`` (the ``n`` of each
    layer, float32) and ``factors`` (``[[range − ε], [range + ε]]``, float32) may be passed
    precomputed, as :class:`MaskUpdate` does. ``sums`` replaces ``Σ|k|`` by another first moment:
    ``Σk`` gives the mean and standard deviation of ``K`` itself (``moments="signed"``), since
    ``Σ|k|² = Σk²``.

    ``relative=True`` is Dynamic Network Surgery's hysteresis (its Caffe ``CCMaskCalc``): one threshold
    ``t = max(μ + range·σ, 0)`` and the band ``l = (1 − ε)·t``, ``u = (1 + ε)·t`` (DNS: ε = 0.1), where
    Eq. 1's band is ``±ε·σ`` around ``μ + range·σ``. ``range_`` may give one range per layer: a
    sequence, or a 1-D float32 tensor when ``factors`` is passed too (as :class:`MaskUpdate` does)."""
    if counts is None:
        counts = torch.tensor([m.numel() for m in magnitudes], dtype=torch.float32, device=magnitudes[0].device)
    if factors is None:
        factors = _factors(range_, epsilon, magnitudes[0].device)
    first = sums if sums is not None else [m.sum() for m in magnitudes]
    mean = torch.stack(list(first)).float().div_(counts)
    std = torch.stack(torch._foreach_norm(list(magnitudes), 2)).float().square_().div_(counts)
    std = std.sub_(mean * mean).clamp_min_(0).sqrt_()
    if relative:
        if isinstance(range_, (list, tuple)):  # one per layer
            range_ = torch.tensor(range_, dtype=torch.float32, device=std.device)  # type: ignore[assignment]
        centre = torch.mul(std, range_).add_(mean).clamp_min_(0)
        return centre * (1 - epsilon), centre * (1 + epsilon)
    lower, upper = torch.mul(std, factors).add_(mean).clamp_min_(0).unbind()  # (l, u) = max(μ + σ·factor, 0)
    return lower, upper


def _factors(range_: float | Sequence[float], epsilon: float, device: torch.device) -> torch.Tensor:
    """``[[range − ε], [range + ε]]`` in float32: σ times it is what ``σ * (range ∓ ε)`` computes on a
    float32 tensor (the Python scalar is rounded to float32 too). A sequence of ranges (one per
    layer) gives one column per layer, each rounded as its scalar would be."""
    ranges = list(range_) if isinstance(range_, (list, tuple)) else [range_]
    return torch.tensor([[r - epsilon for r in ranges], [r + epsilon for r in ranges]], dtype=torch.float32,
                        device=device)


@dataclass
class MaskUpdate:
    """The tensors one pruning step touches: weights, their 0/1 masks, and preallocated scratch
    (one magnitude buffer per layer, views of one flat buffer, and one comparison buffer shared by
    all), the per-layer element counts, and the Eq. 1 factors of each ``(range, ε)`` used."""

    weights: list[torch.Tensor]
    masks: list[torch.Tensor]
    magnitudes: list[torch.Tensor]
    tests: list[torch.Tensor]
    counts: torch.Tensor
    factor_cache: dict[tuple[Any, Any], torch.Tensor] = field(default_factory=dict)  # also the per-layer ranges
    signed: bool = False  # μ, σ of K instead of |K|
    kept: bool = False  # μ, σ over the kept weights (T = 1) instead of all
    relative: bool = False  # DNS's band (1 ∓ ε)·t instead of Eq. 1's ±ε·σ (see :func:`thresholds`)
    ranges: tuple[float, ...] | None = None  # a range per layer, used instead of the step's range_

    @classmethod
    def allocate(cls, weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor]) -> "MaskUpdate":
        sizes = [w.numel() for w in weights]
        magnitude = weights[0].new_empty(sum(sizes)) if weights else torch.empty(0)
        test = weights[0].new_empty(max(sizes)) if weights else torch.empty(0)
        magnitudes = [m.view(w.shape) for m, w in zip(magnitude.split(sizes), weights)]
        tests = [test[:n].view(w.shape) for n, w in zip(sizes, weights)]
        counts = torch.tensor(sizes, dtype=torch.float32, device=magnitude.device)
        return cls(list(weights), list(masks), magnitudes, tests, counts)

    def first(self, layers: int) -> "MaskUpdate":
        """The step restricted to the first ``layers`` layers (same buffers)."""
        return MaskUpdate(self.weights[:layers], self.masks[:layers], self.magnitudes[:layers], self.tests[:layers],
                          self.counts[:layers], signed=self.signed, kept=self.kept, relative=self.relative,
                          ranges=None if self.ranges is None else self.ranges[:layers])

    @torch.no_grad()
    def lower_and_upper(self, range_: float, epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 1's ``(l, u)`` of every layer now (same moments as an update)."""
        return self._thresholds(range_, epsilon)

    @torch.no_grad()
    def lower_thresholds(self, range_: float, epsilon: float) -> torch.Tensor:
        """Eq. 1's ``l`` of every layer now, as the next update would compute it (same moments)."""
        return self._thresholds(range_, epsilon)[0]

    def _thresholds(self, range_: float, epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
        key = (self.ranges if self.ranges is not None else range_, epsilon)
        factors = self.factor_cache.get(key)  # type: ignore[arg-type]
        if factors is None:
            factors = self.factor_cache[key] = _factors(key[0], epsilon, self.counts.device)  # type: ignore[index]
        if self.ranges is not None:  # as a tensor, made once (this runs at every training step)
            range_ = self.factor_cache.get((self.ranges, None))  # type: ignore[assignment]
            if range_ is None:
                range_ = self.factor_cache[(self.ranges, None)] = torch.tensor(  # type: ignore[index]
                    self.ranges, dtype=torch.float32, device=self.counts.device)
        for weight, magnitude in zip(self.weights, self.magnitudes):
            torch.abs(weight, out=magnitude)
        if not (self.signed or self.kept):
            return thresholds(self.magnitudes, range_, epsilon, counts=self.counts, factors=factors,
                              relative=self.relative)
        counts, magnitudes, sums = self.counts, self.magnitudes, None
        if self.kept:
            magnitudes = [m * t for m, t in zip(self.magnitudes, self.masks)]
            counts = torch.stack([t.sum() for t in self.masks]).float().clamp_min_(1)
        if self.signed:
            sums = [(w * t).sum() if self.kept else w.sum() for w, t in zip(self.weights, self.masks)]
        return thresholds(magnitudes, range_, epsilon, counts=counts, factors=factors, sums=sums,
                          relative=self.relative)

    @torch.no_grad()
    def __call__(self, range_: float, epsilon: float,
                 bounds: tuple[torch.Tensor, torch.Tensor] | None = None, scale: torch.Tensor | None = None) -> None:
        """One pruning step (Section 3.1) of every layer, in place on the 0/1 masks::

            T ← max(|w| > u, min(T, |w| ≥ l))     i.e. |w| < l → 0, |w| > u → 1, otherwise T unchanged.

        As ``l ≤ u``, ``(|w| > u) ≤ (|w| ≥ l)`` and the update is one ``clamp(T, min=|w| > u,
        max=|w| ≥ l)``. Float compares into preallocated buffers (``|w| ≥ l`` overwrites ``|w|``,
        read for the last time): on CPU these vectorise, where bool compares and bool/float mixing
        run several times slower. Per layer, 6 kernels on its weights and none on the host; the
        thresholds of all layers take a fixed handful. ``scale`` (one factor per layer) multiplies both
        thresholds of each layer: a class ramping its thresholds up (``ramp_iterations``).
        """
        if not self.weights:
            return
        if bounds is None:
            lower, upper = self._thresholds(range_, epsilon)
        else:  # thresholds fixed earlier (moments_at="start"): only |w| is needed
            for weight, magnitude in zip(self.weights, self.magnitudes):
                torch.abs(weight, out=magnitude)
            lower, upper = bounds[0][: len(self.weights)], bounds[1][: len(self.weights)]
        if scale is not None:
            lower, upper = lower * scale, upper * scale
        for magnitude, mask, above, low, up in zip(self.magnitudes, self.masks, self.tests, lower.unbind(), upper.unbind()):
            torch.clamp(mask, min=torch.gt(magnitude, up, out=above), max=torch.ge(magnitude, low, out=magnitude),
                        out=mask)


def update_masks(weights: Sequence[torch.Tensor], masks: Sequence[torch.Tensor], range_: float, epsilon: float) -> None:
    """One pruning step on ``(weight, mask)`` pairs (see :class:`MaskUpdate`; it allocates here)."""
    MaskUpdate.allocate(weights, masks)(range_, epsilon)


# ---------------------------------------------------------------------- a layer that Eq. 1 would kill
def eq1_pruned_fraction(weight: torch.Tensor, range_: float, epsilon: float, *, moments: str = "magnitude",
                        hysteresis: str = "sigma") -> float:
    """The fraction of ``weight`` that one Eq. 1 step prunes from an all-kept mask (``|w| < l``).

    On PyTorch's default (Kaiming-uniform) initialisation this is 1.0 from range ≈ 1.8 up (|K| is
    uniform on [0, b]: ``μ + 1.9 σ = 1.05 b``); on a Gaussian it is the normal tail, 94.8% at range 2.
    """
    mask = torch.ones_like(weight)
    step = MaskUpdate.allocate([weight.detach()], [mask])
    step.signed, step.relative = moments == "signed", hysteresis == "relative"
    lower = step.lower_thresholds(range_, epsilon)[0]
    return float((weight.detach().abs() < lower).float().mean())


def update_probability(iteration: int, gamma: float, power: float) -> float:
    """Dynamic Network Surgery's probability of updating the masks at 0-based ``iteration``:
    ``(1 + γ·iteration)^(−power)`` (its LeNet-5 example: γ = 1e-4, power 1); ``γ = 0``: every step,
    as the RA paper."""
    return 1.0 if gamma == 0 else (1.0 + gamma * iteration) ** -power


def draws_update(iteration: int, gamma: float, power: float) -> bool:
    """Whether the mask update runs at ``iteration``: a uniform draw below :func:`update_probability`.
    The draw is a pure function of the iteration (its own ``random.Random``), so a resumed run
    makes the draws an uninterrupted one would, with no generator state to save."""
    if gamma == 0:
        return True
    return random.Random(_DRAW_SALT + iteration).random() < update_probability(iteration, gamma, power)


_DRAW_SALT = 0x5EED_D25  # keeps these draws apart from other Random(iteration) users
