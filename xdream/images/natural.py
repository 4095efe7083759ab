"""Natural-image reference sets: the photographs a unit's best evolved image is compared with.

By default the photographs bundled with scikit-image (read from its own data folder, no
download); or any folder of images. Each photo gives its centre square and, with
``crops=True``, its four corner squares of half the side, all resized to ``size`` px, so a
unit tuned to a small object can find it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from xdream.core.errors import ConfigError
from xdream.images.io import rgb_array

#: scikit-image photographs that ship inside the package (no pooch download).
SKIMAGE_PHOTOS = (
    "astronaut", "brick", "camera", "cell", "chelsea", "coffee", "coins", "grass", "gravel",
    "hubble_deep_field", "immunohistochemistry", "moon", "retina", "rocket",
)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}


def _rgb(array: np.ndarray) -> np.ndarray:
    """Any greyscale / RGB / RGBA / bool array -> uint8 [H, W, 3]."""
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    return np.ascontiguousarray(array[..., :3].astype(np.uint8))


def skimage_photos() -> list[tuple[str, np.ndarray]]:
    """The bundled scikit-image photographs as (name, uint8 [H, W, 3])."""
    try:
        import skimage.data as data
    except ImportError:
        raise ConfigError("the default natural images need scikit-image (pip install scikit-image), or give --reference DIR") from None
    return [(name, _rgb(getattr(data, name)())) for name in SKIMAGE_PHOTOS]


def read_image(path: str | Path) -> np.ndarray | None:
    """uint8 [H, W, 3] of an image file, or None when it is not a readable image."""
    try:
        with Image.open(path) as im:
            return rgb_array(im)
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def folder_images(folder: str | Path) -> list[tuple[str, np.ndarray]]:
    """Every readable image file directly in ``folder``; ConfigError if there is none."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"reference folder {folder} does not exist or is not a folder")
    photos, tried = [], 0
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        tried += 1
        photo = read_image(path)
        if photo is not None:
            photos.append((path.name, photo))
    if not photos:
        raise ConfigError(
            f"reference folder {folder} has no readable images ({tried} files tried); "
            f"give a folder of {', '.join(sorted(s.lstrip('.') for s in IMAGE_SUFFIXES))} files"
        )
    return photos


def crops_of(photo: np.ndarray, crops: bool) -> list[tuple[str, np.ndarray]]:
    """Centre square, and with ``crops`` the four corner squares of half the side."""
    h, w = photo.shape[:2]
    s = min(h, w)
    out = [("", photo[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s])]
    if crops and s >= 32:
        half = s // 2
        for tag, (y, x) in {"tl": (0, 0), "tr": (0, w - half), "bl": (h - half, 0), "br": (h - half, w - half)}.items():
            out.append((f"@{tag}", photo[y : y + half, x : x + half]))
    return out


def reference_set(photos: list[tuple[str, np.ndarray]], size: int = 224, crops: bool = True) -> tuple[list[str], torch.Tensor]:
    """Names and images float32 ``[N, 3, size, size]`` in [0, 1] (area-resized)."""
    names, images = [], []
    for name, photo in photos:
        for tag, crop in crops_of(photo, crops):
            t = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None].float() / 255
            images.append(F.interpolate(t, size=(size, size), mode="area") if t.shape[-1] >= size
                          else F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False))
            names.append(name + tag)
    return names, torch.cat(images)


def load_reference(folder: str | Path | None, size: int = 224, crops: bool = True) -> tuple[list[str], torch.Tensor]:
    """The reference set from ``folder``, or scikit-image's photographs when it is None."""
    photos = skimage_photos() if folder is None else folder_images(folder)
    return reference_set(photos, size, crops)
