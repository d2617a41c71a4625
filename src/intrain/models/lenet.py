"""LeNet-5 as in Caffe's MNIST example, the network of the redundancy-aware (RA) paper.

Layout (``examples/mnist/lenet_train_test.prototxt``)::

    conv1 20@5x5 -> maxpool 2 -> conv2 50@5x5 -> maxpool 2 -> flatten
    -> fc1 500 -> ReLU -> fc2 num_classes

Caffe's version has no ReLU after the convolutions, and neither does this one. On a
28x28x1 input the flattened features are 50*4*4 = 800, so the network has
430,500 weights + 580 biases = 431,080 parameters.

The network expects 28x28 inputs (the flatten size is computed for that size).
"""

from __future__ import annotations

import torch
from torch import nn

from intrain.models.registry import register_model, scale_channels


class LeNet5(nn.Module):
    """Caffe LeNet-5.

    Args:
        num_classes: output logits.
        in_channels: input image channels.
        width: multiplier for the hidden channel/unit counts (20, 50, 500).
        input_size: square input size in pixels; 28 for MNIST.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: float = 1.0, input_size: int = 28):
        super().__init__()
        c1, c2, hidden = (scale_channels(c, width) for c in (20, 50, 500))
        spatial = ((input_size - 4) // 2 - 4) // 2  # two (5x5 valid conv, 2x2 pool) stages
        if spatial < 1:
            raise ValueError(f"LeNet5 needs inputs of at least 16x16, got {input_size}")

        self.conv1 = nn.Conv2d(in_channels, c1, kernel_size=5)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size=5)
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(c2 * spatial * spatial, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(x))
        x = self.relu(self.fc1(self.flatten(x)))
        return self.fc2(x)


@register_model("lenet5", input_size=28)
def lenet5(*, num_classes: int = 10, in_channels: int = 1, width: float = 1.0) -> LeNet5:
    """Caffe LeNet-5 for 28x28 images (431,080 parameters at width 1 for 1-channel input, 10 classes)."""
    return LeNet5(num_classes=num_classes, in_channels=in_channels, width=width, input_size=28)
