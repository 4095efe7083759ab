"""BigGAN-deep: the key/shape tables are the package's (config data, parameter counts and file
sizes as published), every size loads a file in the official format through the users' path
with its hash checked and decodes to [0, 1] at its resolution, the Ponce-lab latent, and every
bad file or option is one clear line. With the optional package installed, our module and the
package's give the same images from the same file."""

import importlib.util
import json
import math

import numpy as np
import pytest
import torch

from generators import biggan, biggan_net
from xdream.core import registry
from xdream.cli import build_parser, config_from_args
from xdream.core.errors import ConfigError, WeightsError
from xdream.weights.store import sha256_file
from xdream.weights.catalogue import registered

CATALOG = registered()

SIZES = [128, 256, 512]
BUFFERS = ("running_means", "running_vars", "weight_u", "weight_v")


def make(resolution, path, **options):
    return registry.create("generator", f"biggan-deep-{resolution}", {"weights": str(path), **options}, device="cpu")


def test_every_size_is_registered_and_catalogued():
    names = {f"biggan-deep-{r}" for r in SIZES}
    assert names <= set(registry.available("generator")) and names <= set(CATALOG)
    for r in SIZES:
        assert CATALOG[f"biggan-deep-{r}"].licence == "Apache-2.0"
    # the one hash found in public sources (the Hub copy of the 128 file, pinned to the commit whose
    # page shows it); none is invented. 256 and 512: the package's object-store URLs, no revision to pin
    assert CATALOG["biggan-deep-128"].sha256 == "b86146a8cfcde4cda135adba4b2806f78b3abe2dac9d0fd090cc3ab318604ad9"
    assert CATALOG["biggan-deep-128"].pinned and "/resolve/af0640a119a2486b24eed0985d6d54e734890bff/" in \
        CATALOG["biggan-deep-128"].url
    assert CATALOG["biggan-deep-256"].sha256 is None and CATALOG["biggan-deep-512"].sha256 is None
    assert not CATALOG["biggan-deep-256"].pinned and not CATALOG["biggan-deep-512"].pinned
    assert [CATALOG[f"biggan-deep-{r}"].size_mib for r in SIZES] == [201, 224, 225]


def test_128_config_is_the_published_config_json():
    """The package writes config.json as sorted, indented JSON; the published 128 file is 630 bytes."""
    text = json.dumps(biggan.CONFIGS[128], indent=2, sort_keys=True) + "\n"
    assert len(text) == 630


@pytest.mark.parametrize("resolution", SIZES)
def test_config_doubles_to_the_resolution(resolution):
    config = biggan.CONFIGS[resolution]
    assert 4 * 2 ** sum(up for up, _, _ in config["layers"]) == resolution
    assert config["layers"][-1][2] == 1 and config["attention_layer_position"] == 8


@pytest.mark.parametrize("resolution", SIZES)
def test_network_keys_and_shapes_are_the_table(resolution):
    with torch.device("meta"):
        state = biggan.BigGANDeepNet(biggan.CONFIGS[resolution]).state_dict()
    assert [(k, tuple(v.shape)) for k, v in state.items()] == list(biggan.expected_shapes(resolution).items())


@pytest.mark.parametrize("resolution, millions", [(128, 50.4), (256, 55.9), (512, 56.2)])
def test_parameter_counts_are_the_package_readme(resolution, millions):
    table = biggan.expected_shapes(resolution)
    parameters = sum(math.prod(s) for k, s in table.items() if not k.endswith(BUFFERS))
    assert round(parameters / 1e6, 1) == millions


@pytest.mark.parametrize("resolution, mib", [(128, 201), (256, 224), (512, 225)])
def test_table_accounts_for_the_published_file_sizes(resolution, mib, biggan_file):
    """Saved in the official format, our tables give files of the size the package's README
    states (MiB); the Hub copy of the 128 file is listed as 211 MB."""
    size = biggan_file(resolution)[0].stat().st_size
    assert round(size / 2**20) == mib
    if resolution == 128:
        assert round(size / 1e6) == 211


@pytest.mark.parametrize("resolution", SIZES)
def test_size_loads_official_format_and_decodes(resolution, biggan_file):
    path, sha = biggan_file(resolution)
    gen = make(resolution, path, sha256=sha)
    assert gen.weights_path == path and gen.latent_shape == (256,) and gen.image_size == resolution
    assert gen.name == f"biggan-deep-{resolution}" and gen.latent_dim == 256
    codes = gen.sample(2, np.random.default_rng(0))
    assert codes.shape == (2, 256) and codes.dtype == np.float32 and np.isfinite(codes).all()
    assert np.array_equal(codes, gen.sample(2, np.random.default_rng(0)))
    with torch.no_grad():
        images = gen.decode(codes)
    assert images.shape == (2, 3, resolution, resolution) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1 and images.std() > 0.01
    stored = torch.load(path, weights_only=True)["generator.conv_to_rgb.weight_orig"]
    assert torch.equal(gen.net.generator.conv_to_rgb.weight_orig, stored)  # loaded, not re-initialised
    assert not gen.net.generator.conv_to_rgb.weight_orig.requires_grad


def test_latent_is_noise_then_class_embedding(biggan_file):
    path, sha = biggan_file(128)
    plain = make(128, path, sha256=sha)
    codes = plain.sample(500, np.random.default_rng(1))
    assert codes.shape == (500, 256) and codes.dtype == np.float32
    assert np.all(codes[:, 128:] == 0) and abs(codes[:, :128].std() - 0.7) < 0.01
    embeddings = torch.load(path, weights_only=True)["embeddings.weight"]
    goldfish = make(128, path, sha256=sha, init_class=1, noise_std=0.5)
    started = goldfish.sample(3, np.random.default_rng(1))
    np.testing.assert_array_equal(started[:, 128:], np.tile(embeddings[:, 1].numpy(), (3, 1)))
    np.testing.assert_allclose(started[:, :128], codes[:3, :128] / 0.7 * 0.5, rtol=1e-6)


def test_truncation_picks_the_stored_statistics(biggan_file):
    path, sha = biggan_file(128)
    codes = make(128, path, sha256=sha).sample(1, np.random.default_rng(2))
    with torch.no_grad():
        a, b = (make(128, path, sha256=sha, truncation=t).decode(codes) for t in (0.7, 0.3))
    assert (a - b).abs().mean() > 1e-3
    bn = biggan.StatsBatchNorm(2, n_stats=51, eps=1e-4)
    bn.running_means.copy_(torch.arange(51.0)[:, None].expand(51, 2))
    assert torch.equal(bn.statistics(0.7)[0], torch.tensor([35.0, 35.0]))  # a grid point: that row
    # between rows the package weights row i by the fraction and row i+1 by its complement (sic)
    mean = bn.statistics(0.705)[0]
    coef, i = math.modf(0.705 / 0.02)
    torch.testing.assert_close(mean, torch.full((2,), i * coef + (i + 1) * (1 - coef)))


@pytest.mark.parametrize("options, message", [
    ({"truncation": 0.0}, "truncation must be in \\(0, 1\\], got 0.0"),
    ({"truncation": 1.5}, "truncation must be in \\(0, 1\\]"),
    ({"init_class": 1000}, "init_class must be an ImageNet class 0-999, got 1000"),
    ({"noise_std": -1.0}, "noise_std must be >= 0"),
    ({"noise_std": float("nan")}, "noise_std must be >= 0 and finite, got nan"),
    ({"noise_std": float("inf")}, "noise_std must be >= 0 and finite, got inf"),
])
def test_bad_options_are_one_line(options, message, biggan_file):
    path, sha = biggan_file(128)
    with pytest.raises(ConfigError, match=f"biggan-deep-128: {message}") as info:
        make(128, path, sha256=sha, **options)
    assert "\n" not in str(info.value)


def test_published_hash_is_checked_where_there_is_one(biggan_file):
    path, sha = biggan_file(128)
    with pytest.raises(WeightsError, match="expected b86146a8.*not the published one; to use weights of your own add --no-verify"):
        make(128, path)
    assert make(128, path, verify=False).weights_path == path
    path, _ = biggan_file(256)  # no published hash: keys and shapes are the check
    assert make(256, path).weights_path == path


def test_cached_file_under_xdream_home_is_used(biggan_file, tmp_path, monkeypatch):
    path, sha = biggan_file(128)
    monkeypatch.setenv("XDREAM_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="xdream weights download biggan-deep-128.*b86146a8"):
        registry.create("generator", "biggan-deep-128", {}, device="cpu")
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "biggan-deep-128-pytorch_model.bin").symlink_to(path)
    gen = registry.create("generator", "biggan-deep-128", {"sha256": sha}, device="cpu")
    assert gen.weights_path == tmp_path / "weights" / "biggan-deep-128-pytorch_model.bin"


def test_unhashed_sizes_are_checked_against_the_published_mib(biggan_file, tmp_path):
    """256/512 have no published hash: a file whose size is not the README's MiB is refused unread."""
    path, _ = biggan_file(256)
    short = tmp_path / "short.bin"
    with open(path, "rb") as f:
        short.write_bytes(f.read(2**20))
    with pytest.raises(WeightsError, match=r"has 1048576 bytes \(1.0 MiB\), expected 224 MiB as published") as info:
        make(256, short)
    assert "\n" not in str(info.value)


def test_wrong_size_is_named_and_nothing_is_overwritten(biggan_file):
    path, sha = biggan_file(256)
    with pytest.raises(WeightsError, match="holds the weights of biggan-deep-256, not of biggan-deep-512"):
        make(512, path, sha256=sha)
    with pytest.raises(WeightsError, match="holds the weights of biggan-deep-256, not of biggan-deep-128"):
        make(128, path, verify=False)
    assert sha256_file(path) == sha


def test_bad_state_dicts_are_one_line_errors(biggan_file, tmp_path):
    state = torch.load(biggan_file(128)[0], weights_only=True)
    cases = {
        "shape": ({**state, "generator.bn.bias": torch.zeros(64)}, "generator.bn.bias \\(64,\\) != \\(128,\\)"),
        "missing": ({k: v for k, v in state.items() if k != "generator.layers.8.gamma"},
                    "missing \\['generator.layers.8.gamma'\\]"),
        "extra": ({**state, "generator.gen_z.weight": state["generator.gen_z.weight_orig"]},
                  "unexpected \\['generator.gen_z.weight'\\]"),
        "not_tensors": ({**state, "generator.bn.bias": [0.0]}, "not a state dict of tensors"),
    }
    for label, (value, message) in cases.items():
        path = tmp_path / f"{label}.bin"
        torch.save(value, path)
        with pytest.raises(WeightsError, match=message) as info:
            make(128, path, verify=False)
        assert "\n" not in str(info.value) and str(path) in str(info.value) and "biggan-deep-128" in str(info.value)
        path.unlink()


def test_truncated_file_is_refused(biggan_file, tmp_path):
    path, sha = biggan_file(128)
    cut = tmp_path / "cut.bin"
    with open(path, "rb") as f:
        cut.write_bytes(f.read(1_000_000))
    with pytest.raises(WeightsError, match="has SHA-256 .* expected " + sha):
        make(128, cut, sha256=sha)
    with pytest.raises(WeightsError, match="cannot load .*cut.bin as a torch file"):
        make(128, cut, verify=False)


def test_init_class_flag_sets_the_generator_option():
    args = build_parser().parse_args(["evolve", "--generator", "biggan-deep-256", "--init-class", "207",
                                      "--generator-weights", "w.bin"])
    config = config_from_args(args)
    assert config.generator.options["init_class"] == 207 and config.generator.options["weights"] == "w.bin"


needs_package = pytest.mark.skipif(
    importlib.util.find_spec("pytorch_pretrained_biggan") is None,
    reason="the optional extra xdream[biggan] (pytorch-pretrained-biggan) is not installed")


def package_configs() -> dict:
    """The package's own published configs: ``BigGANConfig()``'s defaults (the 128 model, per its
    docstring) and ``BigGAN128/256/512`` of ``convert_tf_to_pytorch.py``, the script that wrote the
    published files (importing it needs no TensorFlow)."""
    from pytorch_pretrained_biggan import BigGANConfig
    from pytorch_pretrained_biggan.convert_tf_to_pytorch import BigGAN128, BigGAN256, BigGAN512

    assert BigGANConfig().to_dict() == BigGAN128.to_dict()
    return {128: BigGAN128, 256: BigGAN256, 512: BigGAN512}


def as_data(config: dict) -> dict:
    return {**config, "layers": [tuple(layer) for layer in config["layers"]]}


@needs_package
@pytest.mark.parametrize("resolution", SIZES)
def test_configs_are_the_package_published_configs(resolution):
    assert as_data(package_configs()[resolution].to_dict()) == as_data(biggan.CONFIGS[resolution])


@needs_package
@pytest.mark.parametrize("resolution, truncation", [(128, 0.7), (128, 0.43), (256, 0.55)])
def test_same_images_as_the_package(resolution, truncation, biggan_file):
    """The package's own module, built from its own published config and loading the same file
    strictly, makes the same images: from our codes through its generator, and from (noise,
    one-hot class) through its full model."""
    from pytorch_pretrained_biggan import BigGAN

    path, sha = biggan_file(resolution)
    theirs = BigGAN(package_configs()[resolution])
    theirs.load_state_dict(torch.load(path, weights_only=True), strict=True)
    theirs.eval()
    ours = make(resolution, path, sha256=sha, truncation=truncation, init_class=207)
    codes = ours.sample(2, np.random.default_rng(3))
    with torch.no_grad():
        mine = ours.decode(codes)
        torch.testing.assert_close(mine, (theirs.generator(torch.from_numpy(codes), truncation) + 1) / 2,
                                   rtol=0, atol=1e-6)
        if resolution == 128:
            one_hot = torch.zeros(2, 1000)
            one_hot[:, 207] = 1
            via_model = (theirs(torch.from_numpy(codes[:, :128]), one_hot, truncation) + 1) / 2
            torch.testing.assert_close(mine, via_model, rtol=0, atol=1e-5)


@needs_package
def test_512_architecture_matches_the_package_at_reduced_width():
    """512 (14 blocks, two more 1x-width blocks than 256) from the package's published config with
    only ``channel_width`` reduced 128 -> 8, which the config allows: the package's module with
    random weights and statistics (calibrated), loading the same state dict strictly as ours, gives
    the same 512 px image."""
    from pytorch_pretrained_biggan import BigGAN, BigGANConfig

    config = BigGANConfig.from_dict({**package_configs()[512].to_dict(), "channel_width": 8})
    state = biggan.init_state_dict(512, seed=5, calibration_batch=1, config=config.to_dict())
    theirs = BigGAN(config).eval()
    theirs.load_state_dict(state, strict=True)
    ours = biggan.BigGANDeepNet(config.to_dict()).eval()
    ours.load_state_dict(state, strict=True)
    for module in ours.modules():
        if isinstance(module, biggan_net.SpectralWeight):
            module.freeze()
    g = torch.Generator().manual_seed(6)
    cond = torch.cat([0.7 * torch.randn(1, 128, generator=g), state["embeddings.weight"][:, [207]].t()], 1)
    with torch.no_grad():
        theirs_image, our_image = theirs.generator(cond, 0.6), ours(cond, 0.6)
    assert our_image.shape == (1, 3, 512, 512) and our_image.std() > 1e-3
    torch.testing.assert_close(our_image, theirs_image, rtol=0, atol=1e-5)


def test_init_class_starts_every_optimiser_in_that_class(biggan_file, tmp_path):
    """CMA-ES starts from a mean code: the generator's initial code (zero noise, the class
    embedding) is that mean; the genetic algorithm's first population holds it too."""
    from xdream import Experiment, ExperimentConfig

    path, sha = biggan_file(128)
    embedding = torch.load(path, weights_only=True)["embeddings.weight"][:, 207].numpy()
    for optimizer in ("cmaes", "genetic"):
        config = ExperimentConfig.from_dict({
            "generations": 1, "seed": 0,
            "generator": {"name": "biggan-deep-128", "weights": str(path), "sha256": sha, "init_class": 207},
            "responder": {"name": "torch-unit", "target": "efficientnet_lite0:_blocks.2:5", "input_size": 64},
            "optimizer": {"name": optimizer, "population": 4},
        })
        experiment = Experiment(config, run_dir=tmp_path / optimizer)
        np.testing.assert_array_equal(experiment.optimizer.init, np.concatenate([np.zeros(128), embedding])[None])
        experiment.close()
    codes = experiment.optimizer.ask()  # the genetic algorithm: the start code, then samples of the class
    np.testing.assert_array_equal(codes[:, 128:], np.tile(embedding, (4, 1)))
    assert np.all(codes[0, :128] == 0) and np.all(codes[1:, :128] != 0)


def test_evolve_with_biggan_weights_file(biggan_file, tmp_path, capsys):
    from PIL import Image

    from xdream.cli import main

    path, sha = biggan_file(128)
    out = tmp_path / "run"
    code = main(["evolve", "--generator", "biggan-deep-128", "--generator-weights", str(path), "--set",
                 f'generator.sha256="{sha}"', "--init-class", "1", "--optimizer", "cmaes", "--set",
                 "optimizer.sigma0=0.3", "--target", "efficientnet_lite0:_blocks.2:5", "--set",
                 "responder.input_size=64", "--population", "4", "--generations", "2", "--output", str(out),
                 "--quiet"])
    assert code == 0, capsys.readouterr().err
    with Image.open(out / "best.png") as best:
        assert best.size == (128, 128)
    config = (out / "config.toml").read_text()
    assert 'name = "biggan-deep-128"' in config and "init_class = 1" in config
