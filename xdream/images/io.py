"""Image I/O helpers: tensors in [0, 1] to PNG files and montages."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.utils import make_grid

from xdream.core.errors import ConfigError
from xdream.runs.rundir import atomic_write


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[..., C, H, W] float in [0, 1] -> [..., H, W, C] uint8 = round(clamp(x, 0, 1) * 255)
    (half to even), C-contiguous, so a batch's rows can be sent without another copy.

    A float32 CPU batch is converted one image at a time through a scratch plane that stays in
    cache (scale, clamp, round and cast in place, then the channels interleaved), on one thread:
    several times faster than whole-batch passes over memory, and steady on a loaded machine
    where a two-thread op waits for its slower thread (``experiments/bench_rig.py``). Other
    dtypes and devices convert with torch on their device; both paths give the same bytes."""
    image = image.detach()
    if image.device.type != "cpu" or image.dtype != torch.float32:
        scaled = image.mul(255)
        scaled.clamp_(0, 255).round_()  # = clamp(0, 1) * 255, rounded: bit-identical, in place
        scaled = scaled.movedim(-3, -1)
        out = torch.empty(scaled.shape, dtype=torch.uint8, device=scaled.device)
        out.copy_(scaled)  # the cast and the move to channels-last in one pass
        return out.cpu().numpy()
    *lead, c, h, w = image.shape
    planes = image.numpy().reshape(-1, c, h, w)
    out = np.empty((len(planes), h, w, c), dtype=np.uint8)
    scratch, cast = np.empty((c, h, w), dtype=np.float32), np.empty((c, h, w), dtype=np.uint8)
    with np.errstate(invalid="ignore"):  # NaN casts to 0 silently, as torch's cast does
        for plane, dest in zip(planes, out):
            np.multiply(plane, 255, out=scratch)
            np.clip(scratch, 0, 255, out=scratch)
            np.rint(scratch, out=scratch)
            cast[...] = scratch
            for k in range(c):
                dest[:, :, k] = cast[k]
    return out.reshape(*lead, h, w, c)


def png_bytes(image: torch.Tensor) -> bytes:
    """PNG at zlib level 1: a generation's montage encodes several times faster than at PIL's
    default 6 for slightly larger files (measured in docs/generators.md)."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def save_png(image: torch.Tensor, path: str | Path) -> None:
    """Save one [3, H, W] image atomically."""
    atomic_write(path, png_bytes(image))


def montage(images: torch.Tensor, tile: int = 128, padding: int = 2) -> torch.Tensor:
    """All images of a batch in a near-square grid, each resized to at most ``tile`` px, on the
    images' own device: a CUDA batch is tiled there and only the montage (then, through
    :func:`to_uint8`, its uint8 bytes) crosses to the host, not the whole float batch."""
    images = images.detach().float()
    if images.shape[-1] > tile:
        images = F.interpolate(images, size=(tile, tile), mode="bilinear", antialias=True, align_corners=False)
    nrow = math.ceil(math.sqrt(len(images)))
    return make_grid(images, nrow=nrow, padding=padding, pad_value=1.0)


def rgb_array(image: Image.Image) -> np.ndarray:
    """uint8 ``[H, W, 3]`` of an open image. Greyscale deeper than 8 bits is scaled to 8 bits by
    its depth (PIL's ``convert("RGB")`` clips those values at 255, which turns such a picture
    nearly white): 16-bit files (PIL modes ``I;16*``, and ``I`` as 16-bit PGM files open) by
    65535 -> 255; 32-bit integer TIFFs (mode ``I``, TIFF BitsPerSample 32) keep data within
    0..255 as it is, read data within 0..65535 as 16-bit, and scale wider data by mode ``I``'s
    range, 2**31 - 1 -> 255; float files (mode ``F``) with data within [0, 1] by 1 -> 255, other
    float data as on 0..255. Negative values and NaN read 0, values above the range 255."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        values = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0)
        top = values.max(initial=0.0)
        full = 65535
        if image.mode == "F":
            full = 1 if top <= 1 else 255
        elif image.mode == "I" and getattr(image, "tag_v2", {}).get(258, (16,))[0] > 16:
            full = 255 if top <= 255 else 65535 if top <= 65535 else 2**31 - 1
        grey = np.rint(np.clip(values, 0, full) * 255 / full).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.array(image.convert("RGB"))  # a writable copy (torch.from_numpy warns otherwise)


def load_image(path: str | Path) -> torch.Tensor:
    """An image file as float32 ``[3, H, W]`` RGB in [0, 1]; unreadable -> ConfigError."""
    try:
        with Image.open(path) as image:
            array = rgb_array(image).astype(np.float32) / 255.0
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read image {path}: {e}") from None
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()
