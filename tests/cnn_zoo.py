"""Hand-built, tiny CNNs with the structures of torchvision's and timm's models (no downloads, no
torchvision/timm needed): what "any CNN" support in intrain is tested on.

- :class:`ResNet18Like` — BasicBlocks with 1x1-conv+BN downsample shortcuts (torchvision ResNet-18
  layout: conv1/bn1/relu/maxpool, layer1..4, avgpool, fc);
- :class:`MobileNetV2Like` — inverted residuals: expand 1x1, depthwise 3x3, project 1x1 (linear
  bottleneck), residual when the shape allows, ReLU6 (torchvision MobileNetV2 layout);
- :class:`EfficientNetLike` — MBConv blocks with squeeze-and-excitation (pool, 1x1 reduce, act,
  1x1 expand, gate, multiply): ``act="hardswish"`` gives MobileNetV3's blocks (hardsigmoid gate),
  ``act="silu"`` EfficientNet's (sigmoid gate);
- :class:`ConcatNet` — an Inception module (two branches concatenated) and a DenseNet layer
  (BN-ReLU-conv on the concatenation, its output concatenated again) and a BN-ReLU-1x1 transition;
- :class:`GroupedNet` — a grouped (ResNeXt-style) convolution, which filter pruning refuses.

All take 3-channel images (``INPUT``) and output 10 logits; widths are tiny so tests stay fast.
"""

from __future__ import annotations

import torch
from torch import nn

INPUT = (3, 32, 32)


def conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, act: type | None = nn.ReLU) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, act()) if act is not None else nn.Sequential(*layers)


# ---------------------------------------------------------------------- ResNet-18
class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = conv_bn(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18Like(nn.Module):
    def __init__(self, widths=(8, 8, 16, 16), blocks: int = 2, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = widths[0]
        for stage, width in enumerate(widths, start=1):
            stride = 1 if stage == 1 else 2
            layer = [BasicBlock(cin, width, stride)] + [BasicBlock(width, width, 1) for _ in range(blocks - 1)]
            setattr(self, f"layer{stage}", nn.Sequential(*layer))
            cin = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ---------------------------------------------------------------------- MobileNetV2
class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers = [conv_bn(cin, hidden, 1, act=nn.ReLU6)] if expand != 1 else []
        layers += [conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2Like(nn.Module):
    # (expand ratio, channels, blocks, stride), as torchvision's inverted_residual_setting
    SETTING = ((1, 8, 1, 1), (4, 12, 2, 2), (4, 16, 2, 2))

    def __init__(self, num_classes: int = 10, last: int = 32) -> None:
        super().__init__()
        features = [conv_bn(3, 8, 3, 2, act=nn.ReLU6)]
        cin = 8
        for expand, cout, blocks, stride in self.SETTING:
            for i in range(blocks):
                features.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        features.append(conv_bn(cin, last, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


# ---------------------------------------------------------------------- EfficientNet / MobileNetV3
class SqueezeExcitation(nn.Module):
    """torchvision's SqueezeExcitation: pool, fc1 (1x1 conv), act, fc2 (1x1 conv), gate, scale."""

    def __init__(self, channels: int, squeeze: int, gate: type) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, act: type, gate: type) -> None:
        super().__init__()
        hidden = cin * expand
        self.block = nn.Sequential(
            conv_bn(cin, hidden, 1, act=act),
            conv_bn(hidden, hidden, 3, stride, groups=hidden, act=act),
            SqueezeExcitation(hidden, max(1, cin // 4), gate),
            conv_bn(hidden, cout, 1, act=None),
        )
        self.use_res_connect = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.use_res_connect else out


class EfficientNetLike(nn.Module):
    def __init__(self, act: str = "silu", num_classes: int = 10) -> None:
        super().__init__()
        activation, gate = {"silu": (nn.SiLU, nn.Sigmoid), "hardswish": (nn.Hardswish, nn.Hardsigmoid)}[act]
        self.features = nn.Sequential(
            conv_bn(3, 8, 3, 2, act=activation),
            MBConv(8, 8, 1, 1, activation, gate),
            MBConv(8, 12, 2, 4, activation, gate),
            MBConv(12, 12, 1, 4, activation, gate),
            conv_bn(12, 24, 1, act=activation),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(24, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# ---------------------------------------------------------------------- concatenation
class ConcatNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8, 3, 2)
        self.branch1 = conv_bn(8, 4, 1)  # Inception: two branches, concatenated
        self.branch2 = conv_bn(8, 6, 3)
        self.norm1 = nn.BatchNorm2d(10)  # DenseNet layer: BN-ReLU-conv on the concatenation
        self.conv1 = nn.Conv2d(10, 4, 3, 1, 1, bias=False)
        self.transition = nn.Sequential(nn.BatchNorm2d(14), nn.ReLU(), nn.Conv2d(14, 8, 1, bias=False),
                                        nn.AvgPool2d(2))
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.cat([self.branch1(x), self.branch2(x)], dim=1)
        x = torch.cat([x, self.conv1(torch.relu(self.norm1(x)))], dim=1)
        x = self.transition(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class GroupedNet(nn.Module):
    def __init__(self, groups: int = 2) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(3, 8), conv_bn(8, 8, groups=groups), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.body(x), 1))


ZOO = {"resnet18": ResNet18Like, "mobilenet_v2": MobileNetV2Like, "efficientnet": EfficientNetLike,
       "mobilenet_v3": lambda: EfficientNetLike(act="hardswish"), "concat": ConcatNet}
