"""Natural reference images per generation: the fixed cycle, sizes, and one-line errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from xdream.config import ReferenceConfig
from xdream.core.errors import ConfigError
from xdream.images.natural import SKIMAGE_PHOTOS
from xdream.evolve.reference import ReferenceCycle


def photo_folder(path, n, seed=0):
    """``n`` random RGB photos of different sizes, named p0.png, p1.png, ... (and a non-image)."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (30 + 7 * i, 40, 3), dtype=np.uint8)).save(path / f"p{i}.png")
    (path / "notes.txt").write_text("not an image")
    return path


def test_cycle_is_a_fixed_order_that_shows_every_image_equally_often():
    cycle = ReferenceCycle([f"n{i}" for i in range(5)], torch.rand(5, 3, 8, 8), per_generation=2)
    assert [cycle.indices(g).tolist() for g in range(4)] == [[0, 1], [2, 3], [4, 0], [1, 2]]
    shown = np.concatenate([cycle.indices(g) for g in range(5)])  # 5 generations x 2 = 2 full cycles
    assert np.bincount(shown, minlength=5).tolist() == [2] * 5
    assert cycle.indices(1234).tolist() == [(1234 * 2) % 5, (1234 * 2 + 1) % 5]  # from the count alone


def test_batch_takes_the_evolved_images_size_device_and_dtype():
    images = torch.rand(3, 3, 8, 8)
    cycle = ReferenceCycle(["a", "b", "c"], images, per_generation=3)
    index, batch = cycle.batch(0, torch.zeros(2, 3, 8, 8))
    assert index.tolist() == [0, 1, 2] and torch.equal(batch, images)
    _, batch = cycle.batch(1, torch.zeros(2, 3, 12, 6, dtype=torch.float64))
    assert batch.shape == (3, 3, 12, 6) and batch.dtype == torch.float64


def test_folder_images_load_sorted_as_centre_squares(tmp_path):
    folder = photo_folder(tmp_path / "photos", 3)
    cycle = ReferenceCycle.load(ReferenceConfig(str(folder), 2), size=16)
    assert cycle.names == ["p0.png", "p1.png", "p2.png"]  # no corner crops, the text file skipped
    assert cycle.images.shape == (3, 3, 16, 16) and 0 <= float(cycle.images.min()) <= float(cycle.images.max()) <= 1
    assert ReferenceCycle.load(ReferenceConfig(str(folder), 0), size=16) is None


def test_default_is_scikit_images_photographs():
    cycle = ReferenceCycle.load(ReferenceConfig(), size=16)
    assert cycle.names == list(SKIMAGE_PHOTOS) and cycle.per_generation == 2


def test_more_per_generation_than_images_is_one_line(tmp_path):
    folder = photo_folder(tmp_path / "photos", 3)
    with pytest.raises(ConfigError) as e:
        ReferenceCycle.load(ReferenceConfig(str(folder), 4), size=16)
    assert str(e.value) == (f"reference.per_generation = 4 but reference folder {folder} has 3 images; "
                            "allowed: 0..3 (0: no reference images)")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="has no readable images"):
        ReferenceCycle.load(ReferenceConfig(str(tmp_path / "empty"), 1), size=16)
