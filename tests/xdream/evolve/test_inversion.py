"""encode(): gradient inversion recovers codes of images a generator can make, and
``--init-image`` starts the optimiser from the code of an image file."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from xdream import Experiment, ExperimentConfig
from xdream.core import registry
from xdream.cli import main
from xdream.core.errors import ConfigError
from xdream.images.io import load_image
from xdream.evolve.inversion import encode, fit_to_generator
from xdream.report import write_report


def test_pixel_code_is_recovered():
    gen = registry.create("generator", "pixel", {"size": 12}, device="cpu")
    truth = gen.sample(1, np.random.default_rng(0))
    with torch.no_grad():
        target = gen.decode(truth)[0]
    result = encode(gen, target, np.random.default_rng(5), steps=300, lr=0.1)
    assert result.code.shape == (gen.latent_dim,) and result.code.dtype == np.float32
    assert result.losses[-1] < 1e-3 < result.losses[0]
    with torch.no_grad():
        torch.testing.assert_close(gen.decode(result.code[None])[0], target, atol=0.05, rtol=0)
    assert np.corrcoef(result.code, truth[0])[0, 1] > 0.9


def test_pretrained_generator_image_is_approached():
    gen = registry.create("generator", "dcgan-faces", {}, device="cpu")
    with torch.no_grad():
        target = gen.decode(gen.sample(1, np.random.default_rng(1)))[0]
    result = encode(gen, target, np.random.default_rng(5), steps=60)
    assert min(result.losses) < 0.5 * result.losses[0]
    assert result.image.shape == (3, 64, 64)
    again = encode(gen, target, np.random.default_rng(5), steps=60)
    assert np.array_equal(again.code, result.code)  # deterministic


def test_fit_to_generator_crops_the_centre_square():
    image = torch.zeros(3, 20, 40)
    image[:, :, 10:30] = 1.0  # the centre 20x20 is white, the sides black
    fitted = fit_to_generator(image, 8)
    assert fitted.shape == (3, 8, 8) and fitted.min() > 0.99


def test_load_image_and_its_errors(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.full((5, 7, 3), 255, np.uint8)).save(path)
    image = load_image(path)
    assert image.shape == (3, 5, 7) and image.dtype == torch.float32 and float(image.min()) == 1.0
    (tmp_path / "b.png").write_text("not an image")
    for bad in (tmp_path / "b.png", tmp_path / "missing.png"):
        with pytest.raises(ConfigError, match=str(bad.name)):
            load_image(bad)


def test_init_image_starts_the_optimiser_from_its_code(tmp_path, fast_job):
    image = (np.random.default_rng(2).random((16, 16, 3)) * 255).astype(np.uint8)
    Image.fromarray(image).save(tmp_path / "start.png")
    config = ExperimentConfig.from_dict({**fast_job, "generations": 1, "init_image": str(tmp_path / "start.png")})
    experiment = Experiment(config, run_dir=tmp_path / "run")
    experiment.step()
    first = experiment.run_dir.load_arrays(0)["codes"][0]
    np.testing.assert_array_equal(first, experiment.inversion.code)
    assert (tmp_path / "run" / "init_reconstruction.png").is_file()
    assert 'init_image = "' in (tmp_path / "run" / "config.toml").read_text()
    experiment.close()
    # the target as inverted (resized to the generator's 16 px) and the record of the start
    assert np.array_equal(np.asarray(Image.open(tmp_path / "run" / "init_target.png")), image)
    init = json.loads((tmp_path / "run" / "init.json").read_text())
    assert init["source"] == "image" and init["path"] == str(tmp_path / "start.png")
    assert init["inversion_mse"] == min(experiment.inversion.losses)
    page = write_report(tmp_path / "run").read_text()
    assert f"From the code of the image {tmp_path / 'start.png'}" in page


def test_cli_init_image_bad_file_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.png").write_text("nope")
    assert main(["evolve", "--generator", "pixel", "--init-image", "x.png", "--output", "out"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read image x.png" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]
