"""BigGAN-deep (Brock, Donahue & Simonyan 2019) at 128, 256 and 512 px, with the evolution
latent of the Ponce lab, loading the published weight files of the ``pytorch-pretrained-biggan``
package (huggingface/pytorch-pretrained-BigGAN, Apache-2.0) into a module of our own
(:mod:`generators.biggan_net`), so that the package is not needed at run time (an optional test checks that both give the same images).

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

from xdream.core.errors import ConfigError
from xdream.core.generator import Generator
from xdream.weights.cache import WeightsStore
from xdream.weights.entry import WeightsEntry, by_name
from xdream.weights.store import check_table, load_tensor_file

from .biggan_net import CONFIGS, RESOLUTIONS, BigGANDeepNet, StatsBatchNorm, SpectralWeight, expected_shapes

__all__ = ["CONFIGS", "RESOLUTIONS", "BigGANDeepNet", "StatsBatchNorm", "expected_shapes", "read_state_dict",
           "init_state_dict", "WEIGHTS", "BigGANDeep", "BigGANDeep128", "BigGANDeep256", "BigGANDeep512"]

# -- weights ------------------------------------------------------------------------------------

# The pytorch-pretrained-biggan package's files (Apache-2.0). Its own URLs are
# s3.amazonaws.com/models.huggingface.co/biggan/biggan-deep-{128,256,512}-pytorch_model.bin, for
# which no hash is published. The 128 file is also on the Hugging Face Hub (uploaded by HF staff
# with the package's 630-byte config.json), where its LFS SHA-256 is shown: the entry points at
# that copy, pinned to the commit whose file page shows the hash (af0640a), so that the hash
# belongs to the file downloaded. 256 and 512: no public record of a hash or an exact byte size was
# found (the package README gives 224 / 225 MiB; no Hub copy with an LFS pointer), and the object
# store has no revision to pin; those files are checked by their size (to the README's MiB, +-0.5)
# before loading and by their exact keys and shapes at load.
_S3 = "https://s3.amazonaws.com/models.huggingface.co/biggan/"
_HUB_128_COMMIT = "af0640a119a2486b24eed0985d6d54e734890bff"
_PUBLISHED = (
    (128, f"https://huggingface.co/osanseviero/BigGAN-deep-128/resolve/{_HUB_128_COMMIT}/pytorch_model.bin",
     "b86146a8cfcde4cda135adba4b2806f78b3abe2dac9d0fd090cc3ab318604ad9", 201),
    (256, f"{_S3}biggan-deep-256-pytorch_model.bin", None, 224),
    (512, f"{_S3}biggan-deep-512-pytorch_model.bin", None, 225),
)
# resolution -> its published file
WEIGHTS: dict[int, WeightsEntry] = {
    res: WeightsEntry(
        name=f"biggan-deep-{res}",
        url=url,
        file_name=f"biggan-deep-{res}-pytorch_model.bin",
        sha256=sha,
        size=None,
        licence="Apache-2.0",
        description=f"BigGAN-deep {res}px (Brock et al. 2019), weights of pytorch-pretrained-biggan",
        size_text=f"{mib} MiB",
        size_mib=mib,
        citation="Brock, Donahue & Simonyan (2019), Large scale GAN training for high fidelity natural image "
                 "synthesis, ICLR; files: github.com/huggingface/pytorch-pretrained-BigGAN",
    )
    for res, url, sha, mib in _PUBLISHED
}


def read_state_dict(path: Path, resolution: int, what: str) -> OrderedDict:
    """Load a package weights file (tensors only) and check its keys and shapes exactly; a file
    of another size is named as such. Any problem is one :class:`WeightsError`."""
    state = OrderedDict((key, value.float()) for key, value in load_tensor_file(path, what).items())
    others = {f"biggan-deep-{r}": expected_shapes(r) for r in RESOLUTIONS if r != resolution}
    check_table(state, expected_shapes(resolution), others, what=what, path=path, table=f"BigGAN-deep {resolution} table")
    return state


def init_state_dict(resolution: int, seed: int = 0, calibration_batch: int = 2,
                    config: dict | None = None) -> OrderedDict:
    """Random weights with the official keys and shapes, in the official order. Singular
    vectors come from power iteration and the batch-norm statistics from a forward pass (with
    small differences between the truncation rows), so images are well-scaled. ``config``
    replaces ``CONFIGS[resolution]`` (e.g. a reduced ``channel_width`` for a cheap test). For
    tests and benchmarks; the published weights come through :class:`BigGANDeep`."""
    g = torch.Generator().manual_seed(seed)
    config = CONFIGS[resolution] if config is None else config
    net = BigGANDeepNet(config)
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
            if isinstance(module, SpectralWeight):
                _power_iteration(module, g)
        _calibrate(net, config, g, calibration_batch)
    return OrderedDict((k, v.detach().clone()) for k, v in net.state_dict().items())


def _power_iteration(module: SpectralWeight, g: torch.Generator, steps: int = 10) -> None:
    w = module.weight_orig.reshape(module.weight_orig.shape[0], -1)
    u = F.normalize(torch.randn(w.shape[0], generator=g), dim=0)
    for _ in range(steps):
        v = F.normalize(torch.mv(w.t(), u), dim=0)
        u = F.normalize(torch.mv(w, v), dim=0)
    module.weight_u.copy_(u)
    module.weight_v.copy_(v)


def _calibrate(net: BigGANDeepNet, config: dict, g: torch.Generator, batch: int) -> None:
    """Set every batch norm's statistics from one forward pass of random conditioning vectors."""

    def set_stats(module, args):
        x = args[0]
        mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3))
        n = len(module.running_means)
        module.running_means.copy_(mean + 0.02 * var.sqrt() * torch.randn(n, len(mean), generator=g))
        module.running_vars.copy_(var * torch.exp(0.05 * torch.randn(n, len(var), generator=g)))

    hooks = [m.register_forward_pre_hook(set_stats) for m in net.modules() if isinstance(m, StatsBatchNorm)]
    z_dim = config["z_dim"]
    classes = torch.randint(0, config["num_classes"], (batch,), generator=g)
    cond = torch.cat([0.7 * torch.randn(batch, z_dim, generator=g), net.embeddings.weight[:, classes].t()], 1)
    try:
        net(cond, 0.7)
    finally:
        for hook in hooks:
            hook.remove()


# -- the generator plugins ------------------------------------------------------------------------

class BigGANDeep(Generator):
    """BigGAN-deep with the Ponce-lab 256-d latent; subclasses fix ``resolution``.

    Options: ``weights`` (a local file instead of the cache), ``verify`` (check the published SHA-256;
    default true), ``sha256`` (the hash to check instead of the published one, even with
    ``verify = false``), ``truncation``
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
        cls.weights_files = (WEIGHTS[cls.resolution],)

    def __init__(self, *, weights: str | None = None, verify: bool = True, sha256: str | None = None,
                 truncation: float = 0.7, noise_std: float = 0.7, init_class: int | None = None,
                 device: str = "cpu"):
        super().__init__(device=device)
        config = CONFIGS[self.resolution]
        if not 0 < truncation <= 1:
            raise ConfigError(f"{self.name}: truncation must be in (0, 1], got {truncation}")
        if not 0 <= noise_std < math.inf:  # NaN fails too
            raise ConfigError(f"{self.name}: noise_std must be >= 0 and finite, got {noise_std}")
        if init_class is not None and not 0 <= init_class < config["num_classes"]:
            raise ConfigError(f"{self.name}: init_class must be an ImageNet class 0-{config['num_classes'] - 1}, "
                              f"got {init_class}")
        self.truncation, self.noise_std, self.init_class = float(truncation), float(noise_std), init_class
        self.z_dim = config["z_dim"]
        store = WeightsStore.from_environment(catalog=by_name(self.weights_files))
        self.weights_path = store.resolve(self.name, weights, verify=verify, sha256=sha256)
        state = read_state_dict(self.weights_path, self.resolution, self.name)
        with torch.device("meta"):
            net = BigGANDeepNet(config)
        net.load_state_dict(state, strict=True, assign=True)
        self.net = net.to(self.device).eval().requires_grad_(False)
        with torch.no_grad():
            for module in self.net.modules():
                if isinstance(module, SpectralWeight):
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
