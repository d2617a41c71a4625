"""MobileNetV2 for 32x32 images (Sandler et al., "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018, arXiv:1801.04381), the depthwise-separable network of the zoo.

The ImageNet network's layers (Table 2 of the paper: a 3x3 conv with 32 channels, 17 inverted
residual blocks ``(t, c, n, s)``, a 1x1 conv with 1280 channels, global average pooling, a linear
classifier) with the usual CIFAR change: the first conv and the second stage keep stride 1, so a
32x32 input ends at 4x4 (ImageNet's 224 ends at 7x7). An inverted residual block expands with a 1x1
conv (t times), filters with a depthwise 3x3 conv, and projects with a linear 1x1 conv (no ReLU);
the input is added back when the shapes match. Every conv is followed by BatchNorm, ReLU6 after all
but the projection, and has no bias. Channel counts are scaled by ``width`` and rounded to a
multiple of 8 (at least 8), as MobileNet's own width multiplier does; the last conv keeps 1280
below width 1.
"""

from __future__ import annotations

import torch
from torch import nn

from intrain.models.registry import register_model

# (expansion t, channels c, blocks n, first stride s); the second row's stride is 1 for 32x32 inputs
CIFAR_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                  (6, 320, 1, 1))
STEM, LAST = 32, 1280


def divisible(channels: float, divisor: int = 8) -> int:
    """``channels`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), never more
    than 10% below it (MobileNet's ``_make_divisible``)."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU6())
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """Expand (1x1, unless t = 1), depthwise 3x3 with ``stride``, linear projection (1x1); the input is
    added when the stride is 1 and the channels match."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        layers = [conv_bn(cin, hidden, 1)] if expansion != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden), conv_bn(hidden, cout, 1, relu=False)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        channels = divisible(STEM * width)
        layers: list[nn.Module] = [conv_bn(in_channels, channels, 3)]
        for expansion, c, n, s in CIFAR_SETTINGS:
            out = divisible(c * width)
            for i in range(n):
                layers.append(InvertedResidual(channels, out, s if i == 0 else 1, expansion))
                channels = out
        last = divisible(LAST * width) if width > 1.0 else LAST
        layers.append(conv_bn(channels, last, 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(last, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


@register_model("mobilenetv2", input_size=32)
def mobilenetv2(*, num_classes: int = 10, in_channels: int = 3, width: float = 1.0) -> nn.Module:
    """MobileNetV2 for 32x32 inputs (28x28 images are zero-padded to 32 by the data pipeline)."""
    return MobileNetV2(num_classes=num_classes, in_channels=in_channels, width=width)
