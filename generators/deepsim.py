"""DeePSiM generators (Dosovitskiy & Brox 2016), all published variants, loading the files of
Binxu Wang's public PyTorch port (``binxu/DeePSim_DosovitskiyBrox2016`` on Hugging Face).

Each variant inverts one CaffeNet layer: ``norm1`` (96,27,27), ``norm2`` (256,13,13),
``conv3``/``conv4`` (384,13,13), ``pool5`` (256,6,6), ``fc6``/``fc6_eucl``/``fc7`` 4096,
``fc8`` 1000. :data:`LAYERS` below is the port's ``upconvGAN.G`` ``nn.Sequential`` written as
data: the files are pickled ``OrderedDict`` s whose keys are ``<layer>.weight`` and
``<layer>.bias`` in this order, with the shapes :func:`expected_shapes` derives (the port's
loader also strips a ``.1.`` segment from older keys; so does :func:`read_state_dict`). Every
layer has a bias; LeakyReLU(0.3) follows the layers marked so.

Output convention (all variants): the network emits Caffe BGR, mean-subtracted, on a 0..255
scale (the norm/conv variants through ``tanh * 255``); images are RGB = reversed channels +
[123, 117, 104], clamped to [0, 255], / 255. Each variant declares its published file in
``weights_files`` (:data:`WEIGHTS`); it is loaded from the weights cache
(:mod:`xdream.weights.cache`, ``xdream weights download deepsim-fc6``), verified by SHA-256
unless ``verify = false``; nothing is ever downloaded here.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from xdream.core.generator import Generator
from xdream.weights.cache import WeightsStore
from xdream.weights.entry import WeightsEntry, by_name
from xdream.weights.store import check_table, load_tensor_file

RGB_MEAN = (123.0, 117.0, 104.0)
SLOPE = 0.3

# (name, kind, in, out, kernel, stride, padding, LeakyReLU after); kind: linear | conv | tconv
_FC_DECONV = (
    ("deconv5", "tconv", 256, 256, 4, 2, 1, True),
    ("conv5_1", "tconv", 256, 512, 3, 1, 1, True),
    ("deconv4", "tconv", 512, 256, 4, 2, 1, True),
    ("conv4_1", "tconv", 256, 256, 3, 1, 1, True),
    ("deconv3", "tconv", 256, 128, 4, 2, 1, True),
    ("conv3_1", "tconv", 128, 128, 3, 1, 1, True),
    ("deconv2", "tconv", 128, 64, 4, 2, 1, True),
    ("deconv1", "tconv", 64, 32, 4, 2, 1, True),
    ("deconv0", "tconv", 32, 3, 4, 2, 1, False),
)


def _fc(code: int) -> tuple:
    return (
        ("defc7", "linear", code, 4096, 0, 0, 0, True),
        ("defc6", "linear", 4096, 4096, 0, 0, 0, True),
        ("defc5", "linear", 4096, 4096, 0, 0, 0, True),
        *_FC_DECONV,
    )


_CONV34 = (
    ("Rconv6", "conv", 384, 384, 3, 1, 0, True),
    ("Rconv7", "conv", 384, 512, 3, 1, 0, True),
    ("Rconv8", "conv", 512, 512, 2, 1, 0, True),
    ("deconv5", "tconv", 512, 256, 4, 2, 1, True),
    ("conv5_1", "tconv", 256, 256, 3, 1, 1, True),
    ("deconv4", "tconv", 256, 128, 4, 2, 1, True),
    ("conv4_1", "tconv", 128, 128, 3, 1, 1, True),
    ("deconv3", "tconv", 128, 128, 4, 2, 1, True),
    ("conv3_1", "tconv", 128, 128, 3, 1, 1, True),
    ("deconv2", "tconv", 128, 64, 4, 2, 1, True),
    ("conv2_1", "conv", 64, 32, 3, 1, 1, True),
    ("deconv1", "tconv", 32, 16, 4, 2, 1, True),
    ("conv1_1", "conv", 16, 3, 3, 1, 1, False),
)


def _norm(first: tuple) -> tuple:
    return (
        first,
        ("Rconv7", "conv", first[3], 128, 3, 1, 1, True),
        ("Rconv8", "conv", 128, 128, 3, 1, 1, True),
        ("deconv4", "tconv", 128, 128, 4, 2, 1, True),
        ("conv4_1", "conv", 128, 128, 3, 1, 1, True),
        ("deconv3", "tconv", 128, 64, 4, 2, 1, True),
        ("conv3_1", "conv", 64, 64, 3, 1, 1, True),
        ("deconv2", "tconv", 64, 32, 4, 2, 1, True),
        ("conv2_1", "conv", 32, 32, 3, 1, 1, True),
        ("deconv1", "tconv", 32, 16, 4, 2, 1, False),
        ("conv1_1", "conv", 16, 3, 3, 1, 1, False),
    )


LAYERS: dict[str, tuple] = {
    "norm1": _norm(("Rconv6", "conv", 96, 128, 3, 2, 2, True)),
    "norm2": _norm(("Rconv6", "conv", 256, 256, 3, 1, 2, True)),
    "conv3": _CONV34,
    "conv4": _CONV34,
    "pool5": (
        ("Rconv6", "conv", 256, 512, 3, 1, 1, True),
        ("Rconv7", "conv", 512, 512, 3, 1, 1, True),
        ("Rconv8", "conv", 512, 512, 3, 1, 0, True),
        ("deconv5", "tconv", 512, 256, 4, 2, 1, True),
        *_FC_DECONV[1:],
    ),
    "fc6": _fc(4096),
    "fc6_eucl": _fc(4096),
    "fc7": _fc(4096),
    "fc8": _fc(1000),
}
LATENT_SHAPES = {
    "norm1": (96, 27, 27), "norm2": (256, 13, 13), "conv3": (384, 13, 13), "conv4": (384, 13, 13),
    "pool5": (256, 6, 6), "fc6": (4096,), "fc6_eucl": (4096,), "fc7": (4096,), "fc8": (1000,),
}
TANH_OUTPUT = {"norm1", "norm2", "conv3", "conv4"}  # their last layer is tanh * 255
IMAGE_SIZES = {v: 240 if v.startswith("norm") else 256 for v in LAYERS}

# Pinned to commit a815407 of the host repository, the last of the nine upload commits (923c123 fc8,
# db8eea9 fc7, 74eb894 fc6, 231dffb fc6_eucl, bace46d pool5, e98a3c2 conv4, 1cae907 conv3, f8c8f96 norm2,
# a815407 norm1; each adds one file, none changes another), so every file is there as uploaded and
# its file page at a815407 shows the SHA-256 below; ``resolve/main`` would follow later changes.
UPLOAD_COMMIT = "a815407b56ac4c6643faff6a67ca25d60962991b"
_URL = f"https://huggingface.co/binxu/DeePSim_DosovitskiyBrox2016/resolve/{UPLOAD_COMMIT}/"
_PUBLISHED = (
    # variant, SHA-256 and exact size as published on the Hugging Face file / commit pages
    # (None: not found in public sources), and the size as the file page rounds it
    ("norm1", "c221ea2e0fd370dbd9942f13a606822269f34f176f841b1e89ee52c90c393d95", 4_144_419, "4.14 MB"),
    ("norm2", "02f595f8980224f4fddb25bb359e3988141b6868ecddbb73604cba90305fa469", 6_651_683, "6.65 MB"),
    ("conv3", "c99f69897e4911df63fbb353904f0039faef5eec5af671d6249bb4fcf8be850f", None, "32.3 MB"),
    ("conv4", "6650b46fb82f3c6d4b1cdbd25a211ca45696be6f7e1a33f95fbc5790c46250df", 32_304_279, "32.3 MB"),
    ("pool5", None, None, "?"),
    ("fc6", "d92b0897c56bf8d8d082dc9ea9f0a806490d3da064a7929e4ff813fa95623875", 224_398_749, "224 MB"),
    ("fc6_eucl", "068ee1ad67ce0a6c033bd4af704a01dbf8780f88ec919c526902b95a7f443179", None, "224 MB"),
    ("fc7", "b2c70c0ebfd060e13594556eb37d76c288a4c37431e3ec5307316758cf2b1ec2", None, "224 MB"),
    ("fc8", "b49d115d8252bdb2a20605e1491f380c3d6c4f1dd24113f2a9f6353069a40421", None, "174 MB"),
)
# variant -> its published file (Binxu Wang's port of the Caffe models, MIT)
WEIGHTS: dict[str, WeightsEntry] = {
    v: WeightsEntry(
        name=f"deepsim-{v.replace('_', '-')}",
        url=f"{_URL}upconvGAN_{v}.pt",
        file_name=f"upconvGAN_{v}.pt",
        sha256=sha,
        size=size,
        licence="MIT",
        description=f"DeePSiM {v} generator (Dosovitskiy & Brox 2016), PyTorch port by Binxu Wang",
        size_text=size_text,
        citation="Dosovitskiy & Brox (2016), Generating images with perceptual similarity metrics based on "
                 "deep networks, NeurIPS; port: huggingface.co/binxu/DeePSim_DosovitskiyBrox2016",
    )
    for v, sha, size, size_text in _PUBLISHED
}


def expected_shapes(variant: str) -> OrderedDict[str, tuple[int, ...]]:
    """The official state-dict keys of ``variant`` in file order, with their shapes."""
    shapes = OrderedDict()
    for name, kind, cin, cout, k, _s, _p, _act in LAYERS[variant]:
        weight = {"linear": (cout, cin), "conv": (cout, cin, k, k), "tconv": (cin, cout, k, k)}[kind]
        shapes[f"{name}.weight"] = weight
        shapes[f"{name}.bias"] = (cout,)
    return shapes


def build_network(variant: str) -> nn.Sequential:
    """The port's ``G`` as an ``nn.Sequential`` with the same child names (so the same keys)."""
    modules = OrderedDict()
    for name, kind, cin, cout, k, s, p, act in LAYERS[variant]:
        if kind == "linear":
            modules[name] = nn.Linear(cin, cout)
        elif kind == "conv":
            modules[name] = nn.Conv2d(cin, cout, k, stride=s, padding=p)
        else:
            modules[name] = nn.ConvTranspose2d(cin, cout, k, stride=s, padding=p)
        if act:
            modules[f"relu_{name}"] = nn.LeakyReLU(SLOPE)
        if name == "defc5":
            modules["reshape"] = nn.Unflatten(1, (256, 4, 4))
    if variant in TANH_OUTPUT:
        modules["tanh"] = nn.Tanh()
    return nn.Sequential(modules)


def init_state_dict(variant: str, seed: int = 0, output_std: float = 40.0) -> OrderedDict:
    """Fresh weights with the official keys and shapes: He-normal for LeakyReLU(0.3) (fan-in
    per output value, so activations keep their scale), zero biases, and a last layer scaled
    so raw outputs have std ~``output_std`` on the 0..255 scale. For tests, benchmarks and
    training from scratch; the published weights come from :class:`DeePSiM`."""
    g = torch.Generator().manual_seed(seed)
    gain = math.sqrt(2.0 / (1.0 + SLOPE**2))
    layers = LAYERS[variant]
    state = OrderedDict()
    for i, (name, kind, cin, _cout, k, s, _p, _act) in enumerate(layers):
        shape = expected_shapes(variant)[f"{name}.weight"]
        fan_in = cin * (k * k if kind != "linear" else 1) / (s * s if kind == "tconv" else 1)
        std = gain / math.sqrt(fan_in)
        if i == len(layers) - 1:  # the output layer sets the image contrast
            std = (0.25 if variant in TANH_OUTPUT else output_std) / math.sqrt(fan_in)
        state[f"{name}.weight"] = torch.randn(shape, generator=g) * std
        state[f"{name}.bias"] = torch.zeros(shape[1] if kind == "tconv" else shape[0])
    return state


def read_state_dict(path: Path, variant: str, what: str) -> OrderedDict:
    """Load a port file (tensors only, no code runs) and check keys and shapes exactly; a file
    of another variant is named as such. Any problem is one :class:`WeightsError`."""
    state = load_tensor_file(path, what)
    # the port's loader strips '.1.' from older nested keys; values are used as float32
    state = OrderedDict((key.replace(".1.", "."), value.float()) for key, value in state.items())
    others = {f"deepsim-{v.replace('_', '-')}": expected_shapes(v) for v in LAYERS if v != variant}
    check_table(state, expected_shapes(variant), others, what=what, path=path, table=f"{variant} layer table")
    return state


class DeePSiM(Generator):
    """A DeePSiM generator; subclasses fix ``variant``. Options: ``weights`` (a local file
    instead of the cache), ``verify`` (check the published SHA-256; default true), ``sha256`` (the hash
    to check instead of the published one, for weights of your own, even with ``verify = false``). Initial codes are
    N(0, 1), as XDREAM starts every DeePSiM space (the base class's ``sample``)."""

    variant: str = "fc6"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.name = f"deepsim-{cls.variant.replace('_', '-')}"
        cls.latent_shape = LATENT_SHAPES[cls.variant]
        cls.image_size = IMAGE_SIZES[cls.variant]
        cls.weights_files = (WEIGHTS[cls.variant],)

    def __init__(self, *, weights: str | None = None, verify: bool = True, sha256: str | None = None,
                 device: str = "cpu"):
        super().__init__(device=device)
        store = WeightsStore.from_environment(catalog=by_name(self.weights_files))
        self.weights_path = store.resolve(self.name, weights, verify=verify, sha256=sha256)
        state = read_state_dict(self.weights_path, self.variant, self.name)
        with torch.device("meta"):
            net = build_network(self.variant)
        net.load_state_dict(state, strict=True, assign=True)
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.rgb_mean = torch.tensor(RGB_MEAN, device=self.device).view(1, 3, 1, 1)

    def decode_tensor(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes -> Caffe BGR (0..255, mean-subtracted) -> RGB in [0, 1]."""
        raw = self.net(codes.reshape(len(codes), *self.latent_shape))
        if self.variant in TANH_OUTPUT:
            raw = raw * 255.0
        rgb = raw.flip(1) + self.rgb_mean
        return rgb.clamp(0.0, 255.0) / 255.0


class DeePSiMNorm1(DeePSiM):
    variant = "norm1"


class DeePSiMNorm2(DeePSiM):
    variant = "norm2"


class DeePSiMConv3(DeePSiM):
    variant = "conv3"


class DeePSiMConv4(DeePSiM):
    variant = "conv4"


class DeePSiMPool5(DeePSiM):
    variant = "pool5"


class DeePSiMFc6(DeePSiM):
    variant = "fc6"


class DeePSiMFc6Eucl(DeePSiM):
    variant = "fc6_eucl"


class DeePSiMFc7(DeePSiM):
    variant = "fc7"


class DeePSiMFc8(DeePSiM):
    variant = "fc8"
