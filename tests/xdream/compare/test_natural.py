"""Natural-image reference sets: scikit-image's bundled photos and user folders."""

import numpy as np
import pytest
from PIL import Image

from xdream.core.errors import ConfigError
from xdream.images.natural import SKIMAGE_PHOTOS, folder_images, load_reference, reference_set, skimage_photos


def test_skimage_photos_are_bundled_rgb():
    photos = skimage_photos()
    assert [n for n, _ in photos] == list(SKIMAGE_PHOTOS)
    for name, photo in photos:
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3, name
        assert photo.std() > 5, name  # a real picture, not a blank


def test_reference_set_crops_and_sizes():
    photo = np.zeros((60, 100, 3), np.uint8)
    photo[:30, :50] = 255  # top-left quadrant white
    names, images = reference_set([("p", photo)], size=24)
    assert names == ["p", "p@tl", "p@tr", "p@bl", "p@br"]
    assert images.shape == (5, 3, 24, 24)
    assert float(images[1].mean()) == pytest.approx(1.0)  # the top-left crop is all white
    assert float(images[4].mean()) == pytest.approx(0.0)
    assert reference_set([("p", photo)], size=24, crops=False)[1].shape == (1, 3, 24, 24)


def test_default_reference_is_all_crops_of_skimage():
    names, images = load_reference(None, size=32)
    assert len(names) == 5 * len(SKIMAGE_PHOTOS) and images.shape[1:] == (3, 32, 32)
    assert 0 <= float(images.min()) and float(images.max()) <= 1


def test_folder_reads_images_and_skips_others(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 255, (40, 40), dtype=np.uint8)).save(tmp_path / "b.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    photos = folder_images(tmp_path)
    assert [n for n, _ in photos] == ["a.png", "b.jpg"]
    assert photos[1][1].shape == (40, 40, 3)


@pytest.mark.parametrize("content", ["empty", "junk"])
def test_folder_without_readable_images_is_one_line(tmp_path, content):
    if content == "junk":
        (tmp_path / "x.png").write_text("nope")
    with pytest.raises(ConfigError, match=f"reference folder {tmp_path} has no readable images") as e:
        folder_images(tmp_path)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="does not exist"):
        folder_images(tmp_path / "missing")
