"""CaffeNet, the Caffe reference AlexNet that XDREAM's in-silico experiments score (Ponce et al.
2019, Cell; Xiao & Kreiman 2020, PLOS Comput Biol), loading the published PyTorch file
``caffenet.pt`` of Binxu Wang's DeePSiM port (``binxu/DeePSim_DosovitskiyBrox2016`` on Hugging
Face, beside the ``upconvGAN_*.pt`` generator files).

**Definition.** :data:`LAYERS` is the ``Caffenet`` class of circuit_toolkit's
``circuit_toolkit/GAN_utils.py`` (PonceLab/circuit_toolkit, commit 2e0a2ce) written as data: an
``nn.Sequential`` whose children are named ``conv1 relu1 pool1 norm1 conv2 ... fc8``, so the
file's keys are ``conv1.weight`` ... ``fc8.bias`` and a target names a layer by that name
(``caffenet:conv5:12``, ``caffenet:fc8:1``). It differs from torchvision's ``alexnet``:

- 96/256/384/384/256 channels (torchvision: 64/192/384/256/256), 11x11 stride-4 ``conv1`` without
  padding on 227 px images;
- local response normalisation after pool1 and pool2 (``norm1``/``norm2``: size 5, alpha 1e-4,
  beta 0.75, k 1; Caffe's and PyTorch's LRN both divide alpha by the size);
- grouped convolutions (``groups=2``) in conv2, conv4 and conv5, as AlexNet's two-GPU split;
- max pooling that rounds up (Caffe's ``ceil_mode``); no dropout at inference.

Caffe's ReLUs work in place (``bottom: "conv5" top: "conv5"``; the public module's
``ReLU(inplace=True)`` does the same to a stored output), so a Caffe blob ``conv1`` ... ``conv5``,
``fc6``, ``fc7`` -- the units XDREAM-era code names -- holds *rectified* values. Here every
module's output is kept: ``conv5`` is the convolution's output and ``relu5`` its rectified value,
so the Caffe unit ``conv5`` channel 12 is ``caffenet:relu5:12`` (``fc8`` has no ReLU: the same).

**Input (Caffe's convention, as the public code preprocesses).** 227x227 px, BGR channel order,
0..255 scale minus the mean pixel RGB (123, 117, 104) = BGR (104, 117, 123), no division by a
standard deviation. This is the mean circuit_toolkit's ``Caffenet.forward(preproc=True)`` and
the port's model card subtract: the per-channel average of Caffe's ``ilsvrc_2012_mean.npy``
(BGR 104.0, 116.7, 122.7 in Caffe's ``examples/00-classification.ipynb``), rounded. The responder's preprocessing gives images in [0, 1] as
``(x - MEAN) / STD`` with :data:`MEAN` = RGB mean / 255 and :data:`STD` = 1/255, i.e.
``255 x - mean``; the module itself reverses the channels to BGR before ``conv1``, so every
image the framework passes stays RGB.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from xdream.weights.cache import WeightsStore
from xdream.weights.entry import WeightsEntry, by_name
from xdream.weights.store import check_table, load_tensor_file

NAME = "caffenet"
INPUT_SIZE = 227
RGB_MEAN = (123.0, 117.0, 104.0)
MEAN = tuple(m / 255.0 for m in RGB_MEAN)  # on images in [0, 1]: (x - MEAN) / STD = 255 x - RGB_MEAN
STD = (1.0 / 255.0,) * 3

# (name, kind, in, out, kernel, stride, padding, groups); kind: conv | linear | relu | pool | lrn | flatten
LAYERS: tuple[tuple, ...] = (
    ("conv1", "conv", 3, 96, 11, 4, 0, 1),
    ("relu1", "relu"), ("pool1", "pool"), ("norm1", "lrn"),
    ("conv2", "conv", 96, 256, 5, 1, 2, 2),
    ("relu2", "relu"), ("pool2", "pool"), ("norm2", "lrn"),
    ("conv3", "conv", 256, 384, 3, 1, 1, 1),
    ("relu3", "relu"),
    ("conv4", "conv", 384, 384, 3, 1, 1, 2),
    ("relu4", "relu"),
    ("conv5", "conv", 384, 256, 3, 1, 1, 2),
    ("relu5", "relu"), ("pool5", "pool"),
    ("flatten", "flatten"),
    ("fc6", "linear", 256 * 6 * 6, 4096),
    ("relu6", "relu"),
    ("fc7", "linear", 4096, 4096),
    ("relu7", "relu"),
    ("fc8", "linear", 4096, 1000),
)
LRN = {"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0}
POOL = {"kernel_size": 3, "stride": 2, "ceil_mode": True}

# The published file: LFS SHA-256 and exact size as the upload commit shows them
# (huggingface.co/binxu/DeePSim_DosovitskiyBrox2016/commit/c16cf26e1c78ca34a6cd406512de6a4d12d455d7),
# downloaded from that commit, not from the moving ``main`` branch.
UPLOAD_COMMIT = "c16cf26e1c78ca34a6cd406512de6a4d12d455d7"
WEIGHTS = WeightsEntry(
    name=NAME,
    url=f"https://huggingface.co/binxu/DeePSim_DosovitskiyBrox2016/resolve/{UPLOAD_COMMIT}/caffenet.pt",
    file_name="caffenet.pt",
    sha256="23c9fbeea9b1c44b698f2519e35231150dd78a39df0f61f65644350c7f9ac015",
    size=243_865_653,
    licence="MIT",  # the host repository's licence; the weights are BVLC's reference CaffeNet
    description="CaffeNet (Caffe reference AlexNet: LRN, grouped convs, 227 px BGR), XDREAM's in-silico target",
    size_text="244 MB",
    citation="Jia et al. (2014), Caffe (BVLC reference CaffeNet, released for unrestricted use); PyTorch file: "
             "huggingface.co/binxu/DeePSim_DosovitskiyBrox2016, definition: PonceLab/circuit_toolkit GAN_utils.py",
)


class CaffeNet(nn.Sequential):
    """The public ``Caffenet.net`` with the same child names (so the same keys). ``forward``
    takes RGB images on Caffe's scale (0..255 minus :data:`RGB_MEAN`) and reverses them to BGR,
    the order the network was trained on."""

    def __init__(self):
        modules = OrderedDict()
        for row in LAYERS:
            name, kind = row[:2]
            if kind == "conv":
                _, _, cin, cout, k, s, p, g = row
                modules[name] = nn.Conv2d(cin, cout, k, stride=s, padding=p, groups=g)
            elif kind == "linear":
                modules[name] = nn.Linear(row[2], row[3])
            elif kind == "relu":
                modules[name] = nn.ReLU()
            elif kind == "pool":
                modules[name] = nn.MaxPool2d(**POOL)
            elif kind == "lrn":
                modules[name] = nn.LocalResponseNorm(**LRN)
            else:
                modules[name] = nn.Flatten()
        super().__init__(modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flip(1))


def expected_shapes() -> OrderedDict[str, tuple[int, ...]]:
    """The file's keys in order, with their shapes, derived from :data:`LAYERS`."""
    shapes = OrderedDict()
    for row in LAYERS:
        name, kind = row[:2]
        if kind == "conv":
            _, _, cin, cout, k, _s, _p, g = row
            shapes[f"{name}.weight"] = (cout, cin // g, k, k)
        elif kind == "linear":
            shapes[f"{name}.weight"] = (row[3], row[2])
        else:
            continue
        shapes[f"{name}.bias"] = (shapes[f"{name}.weight"][0],)
    return shapes


def init_state_dict(seed: int = 0) -> OrderedDict:
    """Random weights with the file's keys and shapes (He-normal, small random biases) so that
    activations keep their scale through the layers. For tests and benchmarks; the published
    weights come from :func:`load_caffenet`."""
    g = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    for key, shape in expected_shapes().items():
        if key.endswith(".weight"):
            fan_in = math.prod(shape[1:])
            state[key] = torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in)
        else:
            state[key] = 0.1 * torch.randn(shape, generator=g)
    return state


def read_state_dict(path: str | Path) -> OrderedDict:
    """A port file (tensors only, no code runs) with its keys and shapes checked exactly; as
    the public loader does, a ``.1.`` segment of older keys is dropped. Problems: WeightsError."""
    state = load_tensor_file(path, NAME)
    state = OrderedDict((key.replace(".1.", "."), value.float()) for key, value in state.items())
    check_table(state, expected_shapes(), {}, what=NAME, path=path, table="CaffeNet layer table")
    return state


def load_caffenet(weights: str | Path | None = None) -> CaffeNet:
    """CaffeNet with the published weights from the weights cache (verified by SHA-256 and
    size; ``xdream weights download caffenet``), or from a local ``weights`` file (keys and shapes
    checked). Nothing is downloaded here."""
    if weights is None:
        weights = WeightsStore.from_environment(catalog=by_name((WEIGHTS,))).resolve(NAME, option="--target-weights")
    state = read_state_dict(weights)
    with torch.device("meta"):
        model = CaffeNet()
    model.load_state_dict(state, strict=True, assign=True)
    return model
