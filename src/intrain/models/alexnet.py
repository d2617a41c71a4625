"""AlexNet as the redundancy-aware (RA) paper trains it on ImageNet (Caffe's ``bvlc_alexnet``).

Layout (``models/bvlc_alexnet/train_val.prototxt``)::

    conv1 96@11x11 stride 4 -> ReLU -> maxpool 3/2
    conv2 256@5x5 pad 2     -> ReLU -> maxpool 3/2
    conv3 384@3x3 pad 1 -> ReLU -> conv4 384@3x3 pad 1 -> ReLU -> conv5 256@3x3 pad 1 -> ReLU -> maxpool 3/2
    -> flatten 256x6x6 -> fc6 4096 -> ReLU -> dropout 0.5 -> fc7 4096 -> ReLU -> dropout 0.5 -> fc8 classes

Two departures from Caffe's file, both so that filter pruning and compaction stay exact:

* no local response normalisation after conv1 and conv2: LRN mixes neighbouring channels, so
  removing a pruned channel would change what its neighbours compute (later work found LRN adds
  nothing measurable; torchvision's AlexNet drops it too);
* conv2, conv4 and conv5 are not split into two groups (the two-GPU layout of 2012): grouped
  convolutions other than depthwise are refused by PWT's compaction.

So it has 62,378,344 parameters at 1,000 classes instead of Caffe's 60,965,224. A 227x227 input
reaches pool5 at 6x6; an adaptive average pool makes that 6x6 for other sizes (224 gives 5x5).
"""

from __future__ import annotations

import torch
from torch import nn

from intrain.models.registry import register_model, scale_channels


class AlexNet(nn.Module):
    """Caffe AlexNet without LRN and groups (see the module docstring)."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        c1, c2, c3, c4, c5, hidden = (scale_channels(c, width) for c in (96, 256, 384, 384, 256, 4096))
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=11, stride=4), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(c1, c2, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(c2, c3, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Linear(c5 * 6 * 6, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


@register_model("alexnet")
def alexnet(*, num_classes: int = 1000, in_channels: int = 3, width: float = 1.0) -> AlexNet:
    """AlexNet (Caffe's bvlc_alexnet without LRN and groups) for ImageNet-sized images (227x227)."""
    return AlexNet(num_classes=num_classes, in_channels=in_channels, width=width)
