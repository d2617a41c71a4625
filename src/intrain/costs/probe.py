"""Probing a model: what each conv/linear call sees of its input (shapes, live channels, gradients).

How the pruning state is measured
---------------------------------
:func:`probe` runs the model once on a random probe batch (eval mode, ``torch.no_grad``)
with forward hooks on every conv and linear layer, recording the input and output shapes and
which input channels (conv) or features (linear) are identically zero over the whole probe
batch. Under the package's PWT convention a pruned filter has its conv weight and bias and the
following BatchNorm's weight and bias set to zero, so its channel is exactly zero downstream,
through ReLU, pooling and residual additions (a residual sum is zero only where *all* its
branches are pruned, which is right: that channel need not be read).

During that pass the clipping activations (ReLU, ReLU6, hardtanh, threshold; as modules or
functions) act as the identity. Otherwise a *live* channel whose pre-activation is negative for
every probe example -- common in freshly initialised deep nets, whose eval-mode BatchNorm
outputs are dominated by the bias -- would be zero too and be miscounted as pruned (a plain
probe saw 40 % of VGG-16's deepest input channels "pruned" at initialisation). Without clipping,
a live channel of a random input is exactly zero with probability zero, while a pruned channel
stays exactly zero because it is zero *before* the activation. A second, single-example pass with
gradients enabled records which layer inputs require grad. The hooks are removed and the modules'
train/eval flags restored afterwards, even on error, and the global RNG state is untouched.

Caveat: zeros are detected after the preceding ops, so a pruning convention that does not make
the channel exactly zero before the activation (e.g. a non-zero BatchNorm beta) is not seen as
input pruning; the layer's own pruned filters are still read from its ``filter_mask``
(:mod:`intrain.costs.counting`). Physically compacted models simply have smaller shapes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from intrain.errors import ConfigError

COUNTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass(frozen=True)
class Call:
    """What the probe saw of one call of a counted layer (per example)."""

    name: str
    module: nn.Module
    kind: str
    in_positions: int  # H_i W_i (conv) or leading positions (linear, usually 1)
    out_positions: int  # H_o W_o
    active_in: torch.Tensor  # bool [C_in]: input channel/feature not identically zero
    needs_input_grad: bool


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise ConfigError(f"input_shape must be a sequence of ints, got {input_shape!r}") from None
    if not shape or any(s <= 0 for s in shape):
        raise ConfigError(f"input_shape must be non-empty and positive, got {input_shape!r}")
    return shape


def as_model(model: nn.Module | Callable[[], nn.Module]) -> nn.Module:
    """``model`` itself, or what the zero-argument factory ``model`` builds."""
    if isinstance(model, nn.Module):
        return model
    if callable(model):
        built = model()
        if isinstance(built, nn.Module):
            return built
    raise ConfigError(f"expected an nn.Module or a factory returning one, got {model!r}")


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode for the probe; restores every module's own train/eval flag afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in flags:
            m.training = training


@contextmanager
def _hooks(model: nn.Module, hook: Callable) -> Iterator[None]:
    """Hooks ``hook(name, module, inputs, output)`` on every counted layer, removed afterwards."""
    handles = []
    try:
        for name, module in model.named_modules():
            if isinstance(module, COUNTED):
                handles.append(
                    module.register_forward_hook(
                        lambda m, i, o, _n=name: hook(_n, m, i, o)
                    )
                )
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def _preserved_rng(device: torch.device) -> Iterator[None]:
    """Restores the global torch RNG state (CPU, and ``device``'s if CUDA) after the block.

    The probe draws its input from a private generator and runs in eval mode, so it should not
    consume global random numbers; this guarantees it (a model with stochastic eval-time ops
    would otherwise shift a training run's random stream).
    """
    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    try:
        yield
    finally:
        torch.set_rng_state(cpu_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state(cuda_state, device)


_CLIPPING = frozenset(
    {
        F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_,
        F.relu6, F.hardtanh, F.hardtanh_, F.threshold, F.threshold_,
    }
)


class _NoClipping(TorchFunctionMode):
    """Makes the clipping activations return their input, so only structural zeros survive."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _CLIPPING:
            return args[0]
        return func(*args, **(kwargs or {}))


def probe(model: nn.Module, input_shape: Sequence[int], probe_batch: int) -> list[Call]:
    """One :class:`Call` per conv/linear call of ``model`` on ``probe_batch`` random examples of
    ``input_shape``, in execution order; a layer called twice gets a second row ``name[1]``."""
    shape = _check_input_shape(input_shape)
    if probe_batch < 1:
        raise ConfigError(f"probe_batch must be >= 1, got {probe_batch}")
    ref = next((p for p in model.parameters() if p.is_floating_point()), None)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None else torch.get_default_dtype()

    seen: list[tuple[str, nn.Module, tuple[int, ...], tuple[int, ...], torch.Tensor]] = []

    def record(name, module, inputs, output):
        x = inputs[0].detach()
        if isinstance(module, nn.Linear):
            active = x.reshape(-1, x.shape[-1]).ne(0).any(dim=0)
        else:
            active = x.transpose(0, 1).reshape(x.shape[1], -1).ne(0).any(dim=1)
        seen.append((name, module, tuple(x.shape), tuple(output.shape), active.cpu()))

    grads: list[bool] = []

    def record_grad(name, module, inputs, output):
        grads.append(bool(inputs[0].requires_grad))

    gen = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn((probe_batch, *shape), generator=gen).to(device=device, dtype=dtype)
    with _eval_mode(model), _preserved_rng(device):
        with _hooks(model, record), torch.no_grad(), _NoClipping():
            model(x)
        with _hooks(model, record_grad), torch.enable_grad():
            model(x[:1])
    if len(grads) != len(seen):
        raise ConfigError("the model's forward pass is not deterministic in its layer calls")

    calls = []
    counts: dict[str, int] = {}
    for (name, module, in_shape, out_shape, active), needs_grad in zip(seen, grads):
        n = counts.get(name, 0)
        counts[name] = n + 1
        label = name if n == 0 else f"{name}[{n}]"
        if isinstance(module, nn.Linear):
            kind = "linear"
            in_pos = math.prod(in_shape[1:-1])
            out_pos = math.prod(out_shape[1:-1])
        else:
            kind = "conv"
            in_pos = math.prod(in_shape[2:])
            out_pos = math.prod(out_shape[2:])
        calls.append(Call(label, module, kind, in_pos, out_pos, active, needs_grad))
    return calls
