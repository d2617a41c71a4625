"""Weight initialisation shared by all models.

Why Gaussian: the redundancy-aware (RA) method prunes a weight when its magnitude falls
below a threshold of the form ``mean + k * std`` computed over the layer. That rule
assumes bell-shaped weights, where only a tail lies beyond a few standard deviations.
PyTorch's default initialisation is *uniform* (Kaiming-uniform with ``a=sqrt(5)``): its
mass is spread evenly up to a hard edge at about 1.73 std, so a threshold of a couple of
std already covers every weight and the whole layer is pruned at once. He (Kaiming)
*normal* initialisation gives the Gaussian shape the method expects, and the right scale
for ReLU networks (He et al., 2015).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@torch.no_grad()
def _fill(model: nn.Module, fill: Callable[[torch.Tensor], object]) -> nn.Module:
    """Apply ``fill`` to every conv/linear weight and zero their biases (other modules as built)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fill(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def _fan_in(weight: torch.Tensor) -> int:
    return weight[0].numel()


def init_weights(model: nn.Module) -> nn.Module:
    """Initialise ``model`` in place and return it.

    * ``Conv2d`` and ``Linear`` weights: He normal,
      ``kaiming_normal_(w, mode="fan_in", nonlinearity="relu")``, i.e. ``N(0, 2 / fan_in)``.
    * their biases: zero.
    * BatchNorm (1d/2d/3d) with affine parameters: weight 1, bias 0.

    Other modules keep their current parameters. The random draws come from torch's
    global generator, so the same ``torch.manual_seed`` gives the same weights.
    """
    _fill(model, lambda w: nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu"))
    for module in model.modules():
        if isinstance(module, _BatchNorm) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def gaussian_init(model: nn.Module, std: float = 0.01) -> nn.Module:
    """Conv/linear weights ``N(0, std²)`` (Caffe's ``gaussian`` filler), biases zero."""
    return _fill(model, lambda w: nn.init.normal_(w, 0.0, std))


def lecun_normal_init(model: nn.Module, std: float | None = None) -> nn.Module:
    """Conv/linear weights ``N(0, 1 / fan_in)``, biases zero; ``std`` unused.

    The variance of Caffe's ``xavier`` filler in the Gaussian shape RA's Eq. 1 expects: half He-normal's,
    which doubles the signal's variance at every layer without a ReLU after it (LeNet-5's convolutions).
    """
    return _fill(model, lambda w: nn.init.normal_(w, 0.0, _fan_in(w) ** -0.5))


def caffe_xavier_init(model: nn.Module, std: float | None = None) -> nn.Module:
    """Caffe's ``xavier`` filler (LeNet-5's in Caffe): weights uniform on ``±sqrt(3 / fan_in)``, biases
    zero; ``std`` unused. Uniform: RA's Eq. 1 refuses it (see ``reinit``)."""
    return _fill(model, lambda w: nn.init.uniform_(w, -(3.0 / _fan_in(w)) ** 0.5, (3.0 / _fan_in(w)) ** 0.5))


# the ``init`` names besides he-normal (applied by create_model) and pytorch (the layers as built)
FILLERS: dict[str, Callable[..., nn.Module]] = {
    "lecun-normal": lecun_normal_init, "gaussian": gaussian_init, "xavier": caffe_xavier_init}
