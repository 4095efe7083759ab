"""A start image that the generator cannot reproduce is warned about: its inversion's pixel MSE
above half the image's own pixel variance (xdream.evolve.start.FAILED_FRACTION) is a failed
inversion, said on the command line at the start, in init.json and on the run's page."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from xdream.cli import main
from xdream.evolve.start import FAILED_FRACTION, inversion_warning
from xdream.report import write_report

EVOLVE = ["--target", "efficientnet_lite0:_blocks.2:5", "--set", "responder.input_size=64", "--optimizer", "genetic",
          "--population", "4", "--generations", "1", "--quiet"]


def start(tmp_path, image: np.ndarray) -> str:
    path = tmp_path / "start.png"
    Image.fromarray(image).save(path)
    return str(path)


def test_a_checkerboard_through_a_low_frequency_generator_is_a_failed_inversion(tmp_path, capsys):
    checkerboard = (np.indices((16, 16)).sum(0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, 2)
    run = tmp_path / "run"
    assert main(["evolve", *EVOLVE, "--generator", "fourier", "--set", "generator.size=16",
                 "--set", "generator.max_frequency=1", "--init-image", start(tmp_path, checkerboard),
                 "--output", str(run)]) == 0
    init = json.loads((run / "init.json").read_text())
    assert init["inversion_failed"] is True and init["inversion_unexplained"] > FAILED_FRACTION
    assert init["inversion_unexplained"] == init["inversion_mse"] / init["image_variance"]
    warning = init["inversion_warning"]
    assert warning == inversion_warning(init) and f"warning: {warning}\n" in capsys.readouterr().err
    assert "the start image's inversion failed: pixel MSE" in warning and "below 50%" in warning
    assert warning in write_report(run).read_text().replace("&#x27;", "'")


def test_an_image_the_generator_can_make_is_not_warned_about(tmp_path, capsys):
    noise = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    run = tmp_path / "run"
    assert main(["evolve", *EVOLVE, "--generator", "pixel", "--set", "generator.size=16",
                 "--init-image", start(tmp_path, noise), "--output", str(run)]) == 0
    init = json.loads((run / "init.json").read_text())
    assert init["inversion_failed"] is False and init["inversion_unexplained"] < FAILED_FRACTION
    assert "warning" not in capsys.readouterr().err and init["inversion_warning"] is None
    assert "inversion failed" not in write_report(run).read_text()
