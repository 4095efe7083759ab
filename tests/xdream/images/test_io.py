"""to_uint8: the CPU fast path gives the bytes of round(clamp(x, 0, 1) * 255) (half to even)."""

import numpy as np
import pytest
import torch

from xdream.images.io import to_uint8


def reference(image: torch.Tensor) -> np.ndarray:
    """The definition, computed in float64 on whole tensors (x * 255 in float32 first, as a
    float32 image is scaled)."""
    scaled = (image.float() * 255).double() if image.dtype == torch.float32 else image.double() * 255
    return scaled.clamp(0, 255).round().movedim(-3, -1).to(torch.uint8).numpy()


def test_ties_round_to_even_and_out_of_range_clamps():
    ties = torch.tensor([k + 0.5 for k in range(255)], dtype=torch.float32) / 255  # x * 255 lands near k + 0.5
    image = torch.cat([ties, torch.tensor([-1.0, -0.0, 0.0, 1.0, 2.0, 1 / 510, 3 / 510])]).reshape(1, 1, -1)
    image = image.expand(3, 1, -1).clone()
    assert np.array_equal(to_uint8(image), reference(image))
    assert to_uint8(torch.full((3, 1, 1), 1 / 510)).item(0) == round(255 / 510)  # 0.5 -> 0 (to even)


@pytest.mark.parametrize("shape", [(3, 5, 7), (4, 3, 16, 9), (2, 2, 3, 4, 4), (0, 3, 8, 8), (2, 1, 6, 6)])
def test_batch_shapes_and_layout(shape):
    image = torch.rand(shape, generator=torch.Generator().manual_seed(1)) * 1.4 - 0.2
    out = to_uint8(image)
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    assert out.shape == shape[:-3] + (shape[-2], shape[-1], shape[-3])
    assert np.array_equal(out, reference(image))


@pytest.mark.parametrize("make", [
    lambda x: x.permute(0, 1, 3, 2),  # a non-contiguous view
    lambda x: x.double(),  # not float32: the torch path
    lambda x: x.requires_grad_(),
])
def test_any_float_tensor(make):
    image = make(torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(2)))
    assert np.array_equal(to_uint8(image), reference(image.detach()))


def test_a_16_bit_greyscale_file_reads_as_it_looks(tmp_path):
    """A 16-bit greyscale PNG (a lab photo or stimulus; PIL mode I;16) as a reference image
    (``--reference DIR``), DeepDream's ``--image`` or an ``--init-image``: its grey levels
    scaled to 8 bits (65535 -> 255), not clipped at 255 into a nearly white image; the same
    picture saved at 8 bits reads the same."""
    from PIL import Image

    from xdream.images.io import load_image
    from xdream.images.natural import folder_images, read_image

    ramp = np.arange(256, dtype=np.uint16).repeat(4).reshape(32, 32)
    Image.fromarray(ramp * 257).save(tmp_path / "deep.png")  # 0, 257, ..., 65535
    Image.fromarray(ramp.astype(np.uint8)).save(tmp_path / "flat.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    expected = np.repeat(ramp.astype(np.uint8)[..., None], 3, axis=2)
    assert np.array_equal(read_image(tmp_path / "deep.png"), expected)
    assert np.array_equal(read_image(tmp_path / "flat.png"), expected)
    assert [name for name, _ in folder_images(tmp_path)] == ["deep.png", "flat.png"]
    assert torch.equal(load_image(tmp_path / "deep.png"), load_image(tmp_path / "flat.png"))


def test_16_bit_32_bit_and_float_greyscale_files_read_by_their_depth(tmp_path):
    """What Pillow opens them as: a 16-bit PNG/TIFF is mode I;16, a 16-bit PGM and every
    32-bit integer TIFF mode I, a float TIFF mode F. 16-bit files scale 65535 -> 255; a 32-bit
    file keeps 0..255 data as it is, reads 0..65535 data as 16-bit and wider data by its type's
    range (2**31 - 1 -> 255); float data in [0, 1] scales by 255, other float data is on 0..255."""
    from PIL import Image

    from xdream.images.natural import read_image

    ramp = np.arange(256).repeat(4).reshape(32, 32)
    files = {"16.png": ramp.astype(np.uint16) * 257, "16.tif": ramp.astype(np.uint16) * 257,
             "16.pgm": ramp.astype(np.uint16) * 257, "32-8.tif": ramp.astype(np.int32),
             "32-16.tif": ramp.astype(np.int32) * 257, "32.tif": ramp.astype(np.int32) * 8421504,
             "f1.tif": ramp.astype(np.float32) / 255, "f255.tif": ramp.astype(np.float32)}
    modes = {"16.png": "I;16", "16.tif": "I;16", "16.pgm": "I", "32-8.tif": "I", "32-16.tif": "I", "32.tif": "I",
             "f1.tif": "F", "f255.tif": "F"}
    expected = np.repeat(ramp.astype(np.uint8)[..., None], 3, axis=2)
    for name, array in files.items():
        Image.fromarray(array).save(tmp_path / name)
        assert Image.open(tmp_path / name).mode == modes[name], name
        assert np.array_equal(read_image(tmp_path / name), expected), name
