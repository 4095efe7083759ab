"""BigGAN-deep (Brock, Donahue & Simonyan 2019) at 128, 256 and 512 px, with the evolution
latent of the Ponce lab, loading the published weight files of the ``pytorch-pretrained-biggan``
package (huggingface/pytorch-pretrained-BigGAN, Apache-2.0) into a module of our own, so that
the package is not needed at run time (an optional test checks that both give the same images).

**Files.** ``biggan-deep-{128,256,512}-pytorch_model.bin`` are pickled state dicts of the
package's ``BigGAN`` module (``torch.save(model.state_dict())``, PyTorch's pre-1.6 format).
Every convolution and linear layer except the class embedding is spectral-normalised with
``torch.nn.utils.spectral_norm``, so it is stored as ``weight_orig`` (+ ``bias``) with the
singular-vector estimates ``weight_u`` / ``weight_v``; the weight used is ``weight_orig / sigma``
with ``sigma = u . (W v)`` (the hook's eval mode: no power iteration, so decoding is
deterministic). Conditional batch norms hold ``n_stats = 51`` rows of pre-computed means and
variances, one per truncation 0, 0.02, ..., 1. :func:`expected_shapes` derives every key and
shape from :data:`CONFIGS` (the files' ``config.json``, kept here as data); 50.4M / 55.9M /
56.2M parameters and 201 / 224 / 225 MiB files, as the package's README states (tested).

**Latent (Ponce lab).** A code is 256 numbers: 128 of noise and 128 of class embedding (a column
of ``embeddings.weight``, i.e. the embedding of a one-hot class), fed to the generator as its
conditioning vector. ``sample`` draws the noise as ``noise_std * N(0, 1)`` (0.7) and sets the class
half to zeros or, with ``init_class``, to that ImageNet class's embedding (zero noise plus that
embedding is then also :meth:`~BigGANDeep.initial_code`, the mean CMA-ES starts from).
``truncation`` (0.7) picks the batch-norm statistics. Output tanh in [-1, 1] -> [0, 1].
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xdream.errors import ConfigError, WeightsError
from xdream.generator import Generator
from xdream.weights import load_tensor_file, table_mismatch
from xdream.weights_manager import WeightsStore

# The package's config.json for each size. layers: (upsample?, in, out) as multiples of
# channel_width, one GenBlock each; self-attention goes before block attention_layer_position.
# 128: the package's BigGANConfig defaults (pytorch_pretrained_biggan/config.py), identical to the
# published biggan-deep-128-config.json (630 bytes, mirrored at huggingface.co/osanseviero/
# BigGAN-deep-128). 256 and 512: BigGAN256 and BigGAN512 in the package's
# pytorch_pretrained_biggan/convert_tf_to_pytorch.py, the script that wrote the published files.
_COMMON = {"z_dim": 128, "class_embed_dim": 128, "channel_width": 128, "num_classes": 1000,
           "attention_layer_position": 8, "eps": 1e-4, "n_stats": 51}
_LAYERS = {
    128: ((False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8),
          (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1)),
    256: ((False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8),
          (True, 8, 8), (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2),
          (True, 2, 1)),
    512: ((False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8),
          (True, 8, 8), (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2),
          (True, 2, 1), (False, 1, 1), (True, 1, 1)),
}
CONFIGS = {res: {"output_dim": res, **_COMMON, "layers": layers} for res, layers in _LAYERS.items()}
RESOLUTIONS = tuple(CONFIGS)


def expected_shapes(resolution: int) -> OrderedDict:
    """Key -> shape of the package's state dict for ``resolution``, in its order."""
    c = CONFIGS[resolution]
    ch, cond, n = c["channel_width"], c["z_dim"] + c["class_embed_dim"], c["n_stats"]
    table = OrderedDict()

    def spectral(prefix, shape, bias=True):
        if bias:
            table[f"{prefix}.bias"] = shape[:1]
        table[f"{prefix}.weight_orig"] = shape
        table[f"{prefix}.weight_u"] = shape[:1]
        table[f"{prefix}.weight_v"] = (math.prod(shape[1:]),)

    def batch_norm(prefix, channels):
        table[f"{prefix}.running_means"] = table[f"{prefix}.running_vars"] = (n, channels)
        spectral(f"{prefix}.scale", (channels, cond), bias=False)
        spectral(f"{prefix}.offset", (channels, cond), bias=False)

    table["embeddings.weight"] = (c["z_dim"], c["num_classes"])
    spectral("generator.gen_z", (4 * 4 * 16 * ch, cond))
    index = 0
    for i, (_up, a, b) in enumerate(c["layers"]):
        if i == c["attention_layer_position"]:
            p, C = f"generator.layers.{index}", ch * a
            table[f"{p}.gamma"] = (1,)
            for name, out, inn in (("theta", C // 8, C), ("phi", C // 8, C), ("g", C // 2, C), ("o_conv", C, C // 2)):
                spectral(f"{p}.snconv1x1_{name}", (out, inn, 1, 1), bias=False)
            index += 1
        p, cin, cout = f"generator.layers.{index}", ch * a, ch * b
        mid = cin // 4
        for j, (channels, shape) in enumerate(((cin, (mid, cin, 1, 1)), (mid, (mid, mid, 3, 3)),
                                               (mid, (mid, mid, 3, 3)), (mid, (cout, mid, 1, 1)))):
            batch_norm(f"{p}.bn_{j}", channels)
            spectral(f"{p}.conv_{j}", shape)
        index += 1
    table["generator.bn.weight"] = table["generator.bn.bias"] = (ch,)
    table["generator.bn.running_means"] = table["generator.bn.running_vars"] = (n, ch)
    spectral("generator.conv_to_rgb", (ch, ch, 3, 3))
    return table


# -- the network: module and buffer names are the package's, so its files load strictly --------

class _Spectral(nn.Module):
    """A spectral-normalised weight as torch's hook stores it, used as in its eval mode."""

    def __init__(self, shape: tuple, bias: bool):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(shape[0])) if bias else None
        self.weight_orig = nn.Parameter(torch.empty(shape))
        self.register_buffer("weight_u", torch.empty(shape[0]))
        self.register_buffer("weight_v", torch.empty(math.prod(shape[1:])))

        # the normalised weight once :meth:`freeze` has computed it; non-persistent, so it follows
        # ``.to(device)`` and stays out of the state dict
        self.register_buffer("frozen", None, persistent=False)

    def weight(self) -> torch.Tensor:
        if self.frozen is not None:
            return self.frozen
        w = self.weight_orig
        sigma = torch.dot(self.weight_u, torch.mv(w.reshape(w.shape[0], -1), self.weight_v))
        return w / sigma

    def freeze(self) -> None:
        """Compute the weight once, for a network that is not trained."""
        self.frozen = self.weight().detach()


class SNLinear(_Spectral):
    def forward(self, x):
        return F.linear(x, self.weight(), self.bias)


class SNConv2d(_Spectral):
    def forward(self, x):
        return F.conv2d(x, self.weight(), self.bias, padding=self.weight_orig.shape[-1] // 2)


class StatsBatchNorm(nn.Module):
    """Batch norm with stored statistics per truncation; class-conditional gain and bias from
    the conditioning vector when ``cond_dim`` is given, else a plain affine."""

    def __init__(self, channels: int, n_stats: int, eps: float, cond_dim: int | None = None):
        super().__init__()
        self.eps = eps
        if cond_dim is None:
            self.weight = nn.Parameter(torch.ones(channels))
            self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_means", torch.zeros(n_stats, channels))
        self.register_buffer("running_vars", torch.ones(n_stats, channels))
        self.conditional = cond_dim is not None
        if self.conditional:
            self.scale = SNLinear((channels, cond_dim), bias=False)
            self.offset = SNLinear((channels, cond_dim), bias=False)

    def statistics(self, truncation: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The package's rule, reproduced as it is so that images match it: with
        ``coef, i = modf(truncation / step)`` it weights row i by coef and row i+1 by 1 - coef."""
        coef, start = math.modf(truncation / (1.0 / (len(self.running_means) - 1)))
        i = int(start)
        if coef == 0.0:
            return self.running_means[i], self.running_vars[i]
        return (self.running_means[i] * coef + self.running_means[i + 1] * (1 - coef),
                self.running_vars[i] * coef + self.running_vars[i + 1] * (1 - coef))

    def forward(self, x, truncation: float, cond=None):
        mean, var = self.statistics(truncation)
        if not self.conditional:
            return F.batch_norm(x, mean, var, self.weight, self.bias, training=False, momentum=0.0, eps=self.eps)
        gain = 1 + self.scale(cond)[:, :, None, None]
        return (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + self.eps) * gain \
            + self.offset(cond)[:, :, None, None]


class GenBlock(nn.Module):
    """BigGAN-deep's bottleneck residual block: BN-ReLU-conv 1x1 / 3x3 / 3x3 / 1x1 at in/4
    channels, nearest 2x upsampling before the first 3x3; the skip keeps the first half of the
    channels where the width halves."""

    def __init__(self, cin: int, cout: int, upsample: bool, cond_dim: int, n_stats: int, eps: float):
        super().__init__()
        mid = cin // 4
        self.upsample, self.drop_channels = upsample, cin != cout
        self.bn_0 = StatsBatchNorm(cin, n_stats, eps, cond_dim)
        self.conv_0 = SNConv2d((mid, cin, 1, 1), bias=True)
        self.bn_1 = StatsBatchNorm(mid, n_stats, eps, cond_dim)
        self.conv_1 = SNConv2d((mid, mid, 3, 3), bias=True)
        self.bn_2 = StatsBatchNorm(mid, n_stats, eps, cond_dim)
        self.conv_2 = SNConv2d((mid, mid, 3, 3), bias=True)
        self.bn_3 = StatsBatchNorm(mid, n_stats, eps, cond_dim)
        self.conv_3 = SNConv2d((cout, mid, 1, 1), bias=True)

    def forward(self, x, cond, truncation: float):
        h = self.conv_0(F.relu(self.bn_0(x, truncation, cond)))
        h = F.relu(self.bn_1(h, truncation, cond))
        if self.upsample:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv_1(h)
        h = self.conv_2(F.relu(self.bn_2(h, truncation, cond)))
        h = self.conv_3(F.relu(self.bn_3(h, truncation, cond)))
        if self.drop_channels:
            x = x[:, : x.shape[1] // 2]
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return h + x


class SelfAttention(nn.Module):
    """SAGAN self-attention: keys and values 2x2 max-pooled, residual scaled by ``gamma``."""

    def __init__(self, channels: int):
        super().__init__()
        c = channels
        self.gamma = nn.Parameter(torch.zeros(1))
        self.snconv1x1_theta = SNConv2d((c // 8, c, 1, 1), bias=False)
        self.snconv1x1_phi = SNConv2d((c // 8, c, 1, 1), bias=False)
        self.snconv1x1_g = SNConv2d((c // 2, c, 1, 1), bias=False)
        self.snconv1x1_o_conv = SNConv2d((c, c // 2, 1, 1), bias=False)

    def forward(self, x):
        b, c, h, w = x.shape
        theta = self.snconv1x1_theta(x).view(b, c // 8, h * w)
        phi = F.max_pool2d(self.snconv1x1_phi(x), 2).view(b, c // 8, h * w // 4)
        attention = torch.softmax(torch.bmm(theta.transpose(1, 2), phi), dim=-1)
        g = F.max_pool2d(self.snconv1x1_g(x), 2).view(b, c // 2, h * w // 4)
        out = torch.bmm(g, attention.transpose(1, 2)).view(b, c // 2, h, w)
        return x + self.gamma * self.snconv1x1_o_conv(out)


class _Trunk(nn.Module):
    """Conditioning vector -> image in [-1, 1] (the package's ``BigGAN.generator``)."""

    def __init__(self, config: dict):
        super().__init__()
        ch, n, eps = config["channel_width"], config["n_stats"], config["eps"]
        cond = config["z_dim"] + config["class_embed_dim"]
        self.channel_width = ch
        self.gen_z = SNLinear((4 * 4 * 16 * ch, cond), bias=True)
        layers = []
        for i, (up, a, b) in enumerate(config["layers"]):
            if i == config["attention_layer_position"]:
                layers.append(SelfAttention(ch * a))
            layers.append(GenBlock(ch * a, ch * b, up, cond, n, eps))
        self.layers = nn.ModuleList(layers)
        self.bn = StatsBatchNorm(ch, n, eps)
        self.conv_to_rgb = SNConv2d((ch, ch, 3, 3), bias=True)

    def forward(self, cond, truncation: float):
        # the linear layer's output is laid out (4, 4, channels), TensorFlow style
        x = self.gen_z(cond).view(-1, 4, 4, 16 * self.channel_width).permute(0, 3, 1, 2).contiguous()
        for layer in self.layers:
            x = layer(x, cond, truncation) if isinstance(layer, GenBlock) else layer(x)
        x = self.conv_to_rgb(F.relu(self.bn(x, truncation)))
        return torch.tanh(x[:, :3])


class BigGANDeepNet(nn.Module):
    """``embeddings`` (one-hot class -> 128-d, no bias) and ``generator``, as in the package."""

    def __init__(self, config: dict):
        super().__init__()
        self.embeddings = nn.Linear(config["num_classes"], config["z_dim"], bias=False)
        self.generator = _Trunk(config)

    def forward(self, cond, truncation: float):
        return self.generator(cond, truncation)


# -- weights ------------------------------------------------------------------------------------

def read_state_dict(path: Path, resolution: int, what: str) -> OrderedDict:
    """Load a package weights file (tensors only) and check its keys and shapes exactly; a file
    of another size is named as such. Any problem is one :class:`WeightsError`."""
    state = OrderedDict((key, value.float()) for key, value in load_tensor_file(path, what).items())
    found = {key: tuple(value.shape) for key, value in state.items()}
    expected = expected_shapes(resolution)
    if found != dict(expected):
        others = [r for r in RESOLUTIONS if r != resolution and dict(expected_shapes(r)) == found]
        if others:
            raise WeightsError(f"{what}: {path} holds the weights of biggan-deep-{others[0]}, not of {what}")
        raise WeightsError(f"{what}: {path} does not match the BigGAN-deep {resolution} table: "
                           f"{table_mismatch(found, expected)}")
    return state


def init_state_dict(resolution: int, seed: int = 0, calibration_batch: int = 2) -> OrderedDict:
    """Random weights with the official keys and shapes, in the official order. Singular
    vectors come from power iteration and the batch-norm statistics from a forward pass (with
    small differences between the truncation rows), so images are well-scaled. For tests and
    benchmarks; the published weights come through :class:`BigGANDeep`."""
    g = torch.Generator().manual_seed(seed)
    net = BigGANDeepNet(CONFIGS[resolution])
    with torch.no_grad():
        for name, tensor in net.state_dict(keep_vars=True).items():
            kind = name.rsplit(".", 1)[-1]
            if name == "embeddings.weight":  # class embeddings about as large as the noise half
                tensor.copy_(0.5 * torch.randn(tensor.shape, generator=g))
            elif kind == "weight_orig":  # the scale is divided out by the spectral norm
                tensor.copy_(torch.randn(tensor.shape, generator=g))
            elif kind == "bias":
                tensor.copy_(0.02 * torch.randn(tensor.shape, generator=g))
            elif kind == "gamma":
                tensor.fill_(0.5)
            elif kind == "weight":
                tensor.copy_(1 + 0.1 * torch.randn(tensor.shape, generator=g))
        for module in net.modules():
            if isinstance(module, _Spectral):
                _power_iteration(module, g)
        _calibrate(net, resolution, g, calibration_batch)
    return OrderedDict((k, v.detach().clone()) for k, v in net.state_dict().items())


def _power_iteration(module: _Spectral, g: torch.Generator, steps: int = 10) -> None:
    w = module.weight_orig.reshape(module.weight_orig.shape[0], -1)
    u = F.normalize(torch.randn(w.shape[0], generator=g), dim=0)
    for _ in range(steps):
        v = F.normalize(torch.mv(w.t(), u), dim=0)
        u = F.normalize(torch.mv(w, v), dim=0)
    module.weight_u.copy_(u)
    module.weight_v.copy_(v)


def _calibrate(net: BigGANDeepNet, resolution: int, g: torch.Generator, batch: int) -> None:
    """Set every batch norm's statistics from one forward pass of random conditioning vectors."""

    def set_stats(module, args):
        x = args[0]
        mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3))
        n = len(module.running_means)
        module.running_means.copy_(mean + 0.02 * var.sqrt() * torch.randn(n, len(mean), generator=g))
        module.running_vars.copy_(var * torch.exp(0.05 * torch.randn(n, len(var), generator=g)))

    hooks = [m.register_forward_pre_hook(set_stats) for m in net.modules() if isinstance(m, StatsBatchNorm)]
    z_dim = CONFIGS[resolution]["z_dim"]
    classes = torch.randint(0, CONFIGS[resolution]["num_classes"], (batch,), generator=g)
    cond = torch.cat([0.7 * torch.randn(batch, z_dim, generator=g), net.embeddings.weight[:, classes].t()], 1)
    try:
        net(cond, 0.7)
    finally:
        for hook in hooks:
            hook.remove()


# -- the generator plugins ------------------------------------------------------------------------

class BigGANDeep(Generator):
    """BigGAN-deep with the Ponce-lab 256-d latent; subclasses fix ``resolution``.

    Options: ``weights`` (a local file instead of the cache), ``verify`` (check its SHA-256;
    default true), ``sha256`` (the hash to check instead of the catalogued one), ``truncation``
    (0.7: which batch-norm statistics are used, in (0, 1]), ``noise_std`` (0.7: the initial noise
    half's scale), ``init_class`` (an ImageNet class 0-999 whose embedding is the initial class
    half; default zeros)."""

    resolution: int = 256

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.name = f"biggan-deep-{cls.resolution}"
        config = CONFIGS[cls.resolution]
        cls.latent_shape = (config["z_dim"] + config["class_embed_dim"],)
        cls.image_size = cls.resolution

    def __init__(self, *, weights: str | None = None, verify: bool = True, sha256: str | None = None,
                 truncation: float = 0.7, noise_std: float = 0.7, init_class: int | None = None,
                 device: str = "cpu"):
        super().__init__(device=device)
        config = CONFIGS[self.resolution]
        if not 0 < truncation <= 1:
            raise ConfigError(f"{self.name}: truncation must be in (0, 1], got {truncation}")
        if noise_std < 0:
            raise ConfigError(f"{self.name}: noise_std must be >= 0, got {noise_std}")
        if init_class is not None and not 0 <= init_class < config["num_classes"]:
            raise ConfigError(f"{self.name}: init_class must be an ImageNet class 0-{config['num_classes'] - 1}, "
                              f"got {init_class}")
        self.truncation, self.noise_std, self.init_class = float(truncation), float(noise_std), init_class
        self.z_dim = config["z_dim"]
        store = WeightsStore.from_environment()
        self.weights_path = store.resolve(self.name, weights, verify=verify, sha256=sha256)
        state = read_state_dict(self.weights_path, self.resolution, self.name)
        with torch.device("meta"):
            net = BigGANDeepNet(config)
        net.load_state_dict(state, strict=True, assign=True)
        self.net = net.to(self.device).eval().requires_grad_(False)
        with torch.no_grad():
            for module in self.net.modules():
                if isinstance(module, _Spectral):
                    module.freeze()

    def class_embedding(self, index: int) -> np.ndarray:
        """The 128-d embedding of ImageNet class ``index`` (a column of ``embeddings.weight``)."""
        return self.net.embeddings.weight[:, index].cpu().numpy().astype(np.float32)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Noise half ``noise_std * N(0, 1)``; class half zeros, or ``init_class``'s embedding."""
        codes = np.zeros((n, self.latent_dim), dtype=np.float32)
        codes[:, : self.z_dim] = self.noise_std * rng.standard_normal((n, self.z_dim))
        if self.init_class is not None:
            codes[:, self.z_dim :] = self.class_embedding(self.init_class)
        return codes

    def initial_code(self) -> np.ndarray | None:
        """With ``init_class``: zero noise and the class's embedding (the mean of ``sample``), so
        that CMA-type optimisers, which start from a mean code, start in that class too."""
        if self.init_class is None:
            return None
        return np.concatenate([np.zeros(self.z_dim, np.float32), self.class_embedding(self.init_class)])

    def decode_tensor(self, codes: torch.Tensor) -> torch.Tensor:
        return ((self.net(codes, self.truncation) + 1) / 2).clamp(0.0, 1.0)


class BigGANDeep128(BigGANDeep):
    resolution = 128


class BigGANDeep256(BigGANDeep):
    resolution = 256


class BigGANDeep512(BigGANDeep):
    resolution = 512
