"""VGG-16 for 32x32 images, the network of the pruning-while-training (PWT) paper.

The paper uses "13 convolutional layers and 3 fully connected layers" with "Batch
Normalization ... after every layer". Here:

* ``features``: 13 conv3x3 (padding 1), each followed by BatchNorm2d and ReLU, with a
  2x2 max-pool after each of the 5 stages (config ``VGG16_CONFIG``); 32x32 -> 1x1.
* ``classifier``: Linear 512 -> 512 -> 512 -> num_classes, the first two followed by
  BatchNorm1d and ReLU.

Hidden widths scale with ``width``; the last layer always outputs ``num_classes``.
Layers followed by BatchNorm have no bias (the BatchNorm shift makes it redundant).
The plain ``nn.Sequential`` layout is the one Torch-Pruning's dependency graph handles
out of the box.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import nn

from intrain.models.registry import register_model, scale_channels

#: Output channels of each conv, ``"M"`` = 2x2 max-pool.
VGG16_CONFIG: tuple[Union[int, str], ...] = (
    64, 64, "M",
    128, 128, "M",
    256, 256, 256, "M",
    512, 512, 512, "M",
    512, 512, 512, "M",
)  # fmt: skip


class VGG(nn.Module):
    """VGG with BatchNorm after every layer, for 32x32 inputs.

    Args:
        config: conv output channels and ``"M"`` for max-pool, e.g. :data:`VGG16_CONFIG`.
        num_classes: output logits.
        in_channels: input image channels.
        width: multiplier for conv channels and hidden fc units.
        hidden: hidden units of the two first fully connected layers (before ``width``).
    """

    def __init__(
        self,
        config: Sequence[Union[int, str]] = VGG16_CONFIG,
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1.0,
        hidden: int = 512,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                out = scale_channels(int(item), width)
                layers += [nn.Conv2d(channels, out, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
                channels = out
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()  # 32x32 input -> 1x1 after five pools
        units = scale_channels(hidden, width)
        self.classifier = nn.Sequential(
            nn.Linear(channels, units, bias=False),
            nn.BatchNorm1d(units),
            nn.ReLU(),
            nn.Linear(units, units, bias=False),
            nn.BatchNorm1d(units),
            nn.ReLU(),
            nn.Linear(units, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.features(x)))


class VGG224(nn.Module):
    """VGG-16 for 224x224 ImageNet images (the PWT paper's Fig. 7), BatchNorm after every layer.

    The 13 convs of :data:`VGG16_CONFIG` with BatchNorm2d and ReLU (224 -> 7x7 after five pools),
    an adaptive average pool to 7x7 (other sizes), then the original VGG classifier
    512x7x7 -> 4096 -> 4096 -> ``num_classes`` with BatchNorm1d, ReLU and dropout 0.5 after each
    hidden layer. 138.4 M parameters at 1,000 classes.
    """

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width: float = 1.0, hidden: int = 4096):
        super().__init__()
        self.features = VGG(VGG16_CONFIG, num_classes=num_classes, in_channels=in_channels, width=width).features
        channels = scale_channels(512, width)
        units = scale_channels(hidden, width)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(channels * 7 * 7, units, bias=False), nn.BatchNorm1d(units), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(units, units, bias=False), nn.BatchNorm1d(units), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(units, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


@register_model("vgg16-224")
def vgg16_224(*, num_classes: int = 1000, in_channels: int = 3, width: float = 1.0) -> VGG224:
    """VGG-16 with BatchNorm after every layer (13 conv + 3 fc) for 224x224 images (PWT Fig. 7)."""
    return VGG224(num_classes=num_classes, in_channels=in_channels, width=width)


@register_model("vgg16", input_size=32)
def vgg16(*, num_classes: int = 10, in_channels: int = 1, width: float = 1.0) -> VGG:
    """VGG-16 with BatchNorm after every layer (13 conv + 3 fc), for 32x32 images."""
    return VGG(VGG16_CONFIG, num_classes=num_classes, in_channels=in_channels, width=width)
