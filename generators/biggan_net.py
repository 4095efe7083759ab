"""The BigGAN-deep generator network as the ``pytorch-pretrained-biggan`` package builds it
(its module, parameter and buffer names, so that its state dicts load strictly), written anew.

:data:`CONFIGS` holds each published size's ``config.json`` as data and :func:`expected_shapes`
derives the state dict's keys and shapes from it. Spectral-normalised layers keep torch's
``spectral_norm`` storage (``weight_orig``, ``weight_u``, ``weight_v``) and use it as that hook's
eval mode does: ``weight_orig / (u . W v)``, no power iteration.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

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


class SpectralWeight(nn.Module):
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


class SNLinear(SpectralWeight):
    def forward(self, x):
        return F.linear(x, self.weight(), self.bias)


class SNConv2d(SpectralWeight):
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
