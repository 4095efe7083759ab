"""DeePSiM: the layer table matches the public port's files (keys, shapes, and the published
file sizes), every variant loads a file in the official format through the users' path with
its hash checked, decodes to RGB [0, 1] by the Caffe BGR convention, and every bad file is one
clear WeightsError."""

import io

import numpy as np
import pytest
import torch

from generators import deepsim
from xdream.core import registry
from xdream.core.errors import WeightsError
from xdream.weights.catalogue import registered

CATALOG = registered()

VARIANTS = list(deepsim.LAYERS)
NAMES = {v: "deepsim-" + v.replace("_", "-") for v in VARIANTS}


def test_every_variant_is_registered_and_catalogued():
    assert set(NAMES.values()) <= set(registry.available("generator"))
    assert set(NAMES.values()) <= set(CATALOG)
    assert len(VARIANTS) == 9  # the eight CaffeNet layers, fc6 in both of its published trainings


@pytest.mark.parametrize("variant", VARIANTS)
def test_network_keys_and_shapes_are_the_table(variant):
    state = deepsim.build_network(variant).state_dict()
    assert [(k, tuple(v.shape)) for k, v in state.items()] == list(deepsim.expected_shapes(variant).items())


def test_fc6_table_matches_the_reference_description():
    shapes = deepsim.expected_shapes("fc6")
    assert shapes["defc7.weight"] == (4096, 4096) and shapes["deconv5.weight"] == (256, 256, 4, 4)
    assert shapes["conv5_1.weight"] == (256, 512, 3, 3) and shapes["deconv0.weight"] == (32, 3, 4, 4)
    assert sum(int(np.prod(s)) for s in shapes.values()) == 56_097_891  # ~56.1M parameters


@pytest.mark.parametrize("variant", ["norm1", "norm2", "conv4", "fc6"])
def test_table_accounts_for_every_byte_of_the_published_files(variant, deepsim_file):
    """Saved in the official format, our tables give files the size of the published ones
    (to under 1 kB of zip headers): no tensor is missing, extra or mis-shaped."""
    if variant == "fc6":
        size = deepsim_file("fc6")[0].stat().st_size  # the session's 224 MB file, not a second one
    else:
        buffer = io.BytesIO()
        torch.save(deepsim.init_state_dict(variant), buffer)
        size = len(buffer.getvalue())
    published = CATALOG[NAMES[variant]].size
    assert abs(size - published) < 1000  # zip headers vary with the archive name; tensors are exact


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_loads_official_format_and_decodes(variant, deepsim_file):
    path, sha = deepsim_file(variant)
    gen = registry.create("generator", NAMES[variant], {"weights": str(path), "sha256": sha}, device="cpu")
    assert gen.weights_path == path and gen.latent_shape == deepsim.LATENT_SHAPES[variant]
    size = 240 if variant.startswith("norm") else 256
    with torch.no_grad():
        images = gen.decode(gen.sample(2, np.random.default_rng(0)))
    assert images.shape == (2, 3, size, size) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1 and images.std() > 0.01
    last = list(deepsim.expected_shapes(variant))[-2]  # the output layer's weight: loaded, not re-initialised
    module = getattr(gen.net, last.split(".")[0])
    assert module.weight.abs().sum() > 0 and not module.weight.requires_grad


@pytest.mark.parametrize("variant", ["norm1", "pool5"])
def test_output_is_rgb_from_caffe_bgr(variant, deepsim_file):
    path, sha = deepsim_file(variant)
    gen = registry.load("generator", NAMES[variant])(weights=str(path), sha256=sha)
    reference = deepsim.build_network(variant)
    reference.load_state_dict(torch.load(path, weights_only=True))
    codes = torch.randn(2, gen.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        raw = reference(codes.reshape(2, *gen.latent_shape))
        if variant in deepsim.TANH_OUTPUT:
            raw = raw * 255
        bgr_to_rgb = raw[:, [2, 1, 0]] + torch.tensor([123.0, 117.0, 104.0]).view(1, 3, 1, 1)
        torch.testing.assert_close(gen.decode(codes), bgr_to_rgb.clamp(0, 255) / 255)


def test_published_hash_is_checked_by_default(deepsim_file):
    path, _ = deepsim_file("norm1")
    with pytest.raises(WeightsError, match="not the published one; pass --no-verify"):
        registry.create("generator", "deepsim-norm1", {"weights": str(path)}, device="cpu")
    gen = registry.create("generator", "deepsim-norm1", {"weights": str(path), "verify": False}, device="cpu")
    assert gen.weights_path == path


def test_cached_file_under_xdream_home_is_used(deepsim_file, tmp_path, monkeypatch):
    path, sha = deepsim_file("norm2")
    monkeypatch.setenv("XDREAM_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="xdream weights download deepsim-norm2"):
        registry.create("generator", "deepsim-norm2", {}, device="cpu")
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "upconvGAN_norm2.pt").symlink_to(path)
    gen = registry.create("generator", "deepsim-norm2", {"sha256": sha}, device="cpu")
    assert gen.weights_path == tmp_path / "weights" / "upconvGAN_norm2.pt"


def test_wrong_variant_is_named(deepsim_file):
    path, sha = deepsim_file("norm2")
    with pytest.raises(WeightsError, match="holds the weights of deepsim-norm2, not of deepsim-norm1"):
        registry.create("generator", "deepsim-norm1", {"weights": str(path), "sha256": sha}, device="cpu")
    path, sha = deepsim_file("conv3")  # conv3 and conv4 share a table; only the hash tells them apart
    with pytest.raises(WeightsError, match="deepsim-conv3 or deepsim-conv4, not of deepsim-pool5"):
        registry.create("generator", "deepsim-pool5", {"weights": str(path), "sha256": sha}, device="cpu")


def test_truncated_file_is_refused(deepsim_file, tmp_path):
    path, sha = deepsim_file("norm1")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(WeightsError, match="has SHA-256 .* expected " + sha):
        registry.create("generator", "deepsim-norm1", {"weights": str(cut), "sha256": sha}, device="cpu")
    with pytest.raises(WeightsError, match="cannot load .*cut.pt as a torch file"):
        registry.create("generator", "deepsim-norm1", {"weights": str(cut), "verify": False}, device="cpu")


def test_bad_state_dicts_are_one_line_errors(tmp_path):
    state = deepsim.init_state_dict("norm1")
    cases = {
        "missing": {k: v for k, v in list(state.items())[:-1]},
        "shape": {**state, "conv1_1.bias": torch.zeros(4)},
        "not_tensors": {**state, "conv1_1.bias": [0.0, 0.0, 0.0]},
    }
    for label, value in cases.items():
        path = tmp_path / f"{label}.pt"
        torch.save(value, path)
        with pytest.raises(WeightsError) as info:
            deepsim.DeePSiMNorm1(weights=str(path), verify=False)
        assert "\n" not in str(info.value) and str(path) in str(info.value), label


def test_port_key_prefix_segment_is_normalised_like_the_port(tmp_path):
    """The port's loader strips '.1.' from keys of older files; ours accepts those files too."""
    state = deepsim.init_state_dict("norm1")
    old = {k.replace(".", ".1.", 1): v for k, v in state.items()}
    path = tmp_path / "old.pt"
    torch.save(old, path)
    gen = deepsim.DeePSiMNorm1(weights=str(path), verify=False)
    torch.testing.assert_close(gen.net.conv1_1.weight, state["conv1_1.weight"])


def test_double_precision_file_is_used_as_float32(tmp_path):
    state = deepsim.init_state_dict("norm1")
    path = tmp_path / "double.pt"
    torch.save({k: v.double() for k, v in state.items()}, path)
    gen = deepsim.DeePSiMNorm1(weights=str(path), verify=False)
    assert gen.net.conv1_1.weight.dtype == torch.float32
    with torch.no_grad():
        assert gen.decode(gen.sample(1, np.random.default_rng(0))).dtype == torch.float32
