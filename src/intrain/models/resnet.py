"""CIFAR ResNets (He et al., "Deep Residual Learning for Image Recognition", 2016, sec. 4.2).

A 3x3 conv with 16 channels (+BN+ReLU), then three stages of ``n`` basic blocks with
16, 32 and 64 channels (times ``width``), the last two stages starting with stride 2,
then global average pooling and a fully connected layer: ``6n + 2`` weighted layers,
so ``n = 3`` gives ResNet-20 and ``n = 9`` ResNet-56. Inputs are 32x32.

Shortcuts: identity where the shape is unchanged; where it changes (the first block of
stages 2 and 3), a 1x1 conv with stride 2 + BatchNorm projection -- the paper's
option B. The paper's CIFAR models use option A (subsample and zero-pad the channels),
but that is a parameter-free lambda, not a module: Torch-Pruning cannot trace it into
its dependency graph, so channels coupled through it could not be pruned consistently.
Option B adds 2,752 parameters to ResNet-20.

Convs are followed by BatchNorm and have no bias.
"""

from __future__ import annotations

import torch
from torch import nn

from intrain.models.registry import register_model, scale_channels


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU.

    ``shortcut`` is ``nn.Identity`` when input and output shapes match, otherwise a
    1x1 conv (with ``stride``) + BatchNorm projection.
    """

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = nn.ReLU()
        if stride != 1 or in_channels != channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 images.

    Args:
        blocks_per_stage: ``n``, the number of basic blocks in each of the 3 stages.
        num_classes: output logits.
        in_channels: input image channels.
        width: multiplier for the stage widths 16/32/64.
    """

    def __init__(self, blocks_per_stage: int, num_classes: int = 10, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        c1, c2, c3 = (scale_channels(c, width) for c in (16, 32, 64))
        self.conv1 = conv3x3(in_channels, c1)
        self.bn1 = nn.BatchNorm2d(c1)
        self.relu = nn.ReLU()
        self.layer1 = self._stage(c1, c1, blocks_per_stage, stride=1)
        self.layer2 = self._stage(c1, c2, blocks_per_stage, stride=2)
        self.layer3 = self._stage(c2, c3, blocks_per_stage, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c3, num_classes)

    @staticmethod
    def _stage(in_channels: int, channels: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [BasicBlock(in_channels, channels, stride)]
        layers += [BasicBlock(channels, channels) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.avgpool(x)))


@register_model("resnet20", input_size=32)
def resnet20(*, num_classes: int = 10, in_channels: int = 1, width: float = 1.0) -> CifarResNet:
    """CIFAR ResNet-20 (3 blocks per stage), projection shortcuts."""
    return CifarResNet(3, num_classes=num_classes, in_channels=in_channels, width=width)


@register_model("resnet56", input_size=32)
def resnet56(*, num_classes: int = 10, in_channels: int = 1, width: float = 1.0) -> CifarResNet:
    """CIFAR ResNet-56 (9 blocks per stage), projection shortcuts."""
    return CifarResNet(9, num_classes=num_classes, in_channels=in_channels, width=width)
