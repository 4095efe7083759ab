"""DeePSiM: the layer table is the public port's definition (every key and shape, against a table
transcribed from circuit_toolkit's ``upconvGAN``), every variant loads a file in the official
format through the users' path with its hash checked, decodes to RGB [0, 1] by the Caffe BGR convention, and every bad file is one
clear WeightsError."""


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


# The public definition, transcribed from circuit_toolkit/GAN_utils.py, class upconvGAN
# (PonceLab/circuit_toolkit, commit 2e0a2ce): each variant's ``self.G`` children with a weight, in
# order, as (name, module, in, out, kernel); L = nn.Linear, C = nn.Conv2d, T = nn.ConvTranspose2d.
# Every one has a bias. fc6, fc7 and fc6_eucl share one branch; conv3 and conv4 have identical ones.
_FC_TAIL = [("deconv5", "T", 256, 256, 4), ("conv5_1", "T", 256, 512, 3), ("deconv4", "T", 512, 256, 4),
            ("conv4_1", "T", 256, 256, 3), ("deconv3", "T", 256, 128, 4), ("conv3_1", "T", 128, 128, 3),
            ("deconv2", "T", 128, 64, 4), ("deconv1", "T", 64, 32, 4), ("deconv0", "T", 32, 3, 4)]
_FC = [("defc7", "L", 4096, 4096, 0), ("defc6", "L", 4096, 4096, 0), ("defc5", "L", 4096, 4096, 0), *_FC_TAIL]
_CONV34 = [("Rconv6", "C", 384, 384, 3), ("Rconv7", "C", 384, 512, 3), ("Rconv8", "C", 512, 512, 2),
           ("deconv5", "T", 512, 256, 4), ("conv5_1", "T", 256, 256, 3), ("deconv4", "T", 256, 128, 4),
           ("conv4_1", "T", 128, 128, 3), ("deconv3", "T", 128, 128, 4), ("conv3_1", "T", 128, 128, 3),
           ("deconv2", "T", 128, 64, 4), ("conv2_1", "C", 64, 32, 3), ("deconv1", "T", 32, 16, 4),
           ("conv1_1", "C", 16, 3, 3)]
_NORM_TAIL = [("deconv4", "T", 128, 128, 4), ("conv4_1", "C", 128, 128, 3), ("deconv3", "T", 128, 64, 4),
              ("conv3_1", "C", 64, 64, 3), ("deconv2", "T", 64, 32, 4), ("conv2_1", "C", 32, 32, 3),
              ("deconv1", "T", 32, 16, 4), ("conv1_1", "C", 16, 3, 3)]
PUBLIC_LAYERS = {
    "fc6": _FC, "fc7": _FC, "fc6_eucl": _FC,
    "fc8": [("defc7", "L", 1000, 4096, 0), *_FC[1:]],
    "pool5": [("Rconv6", "C", 256, 512, 3), ("Rconv7", "C", 512, 512, 3), ("Rconv8", "C", 512, 512, 3),
              ("deconv5", "T", 512, 256, 4), *_FC_TAIL[1:]],
    "conv4": _CONV34, "conv3": _CONV34,
    "norm2": [("Rconv6", "C", 256, 256, 3), ("Rconv7", "C", 256, 128, 3), ("Rconv8", "C", 128, 128, 3), *_NORM_TAIL],
    "norm1": [("Rconv6", "C", 96, 128, 3), ("Rconv7", "C", 128, 128, 3), ("Rconv8", "C", 128, 128, 3), *_NORM_TAIL],
}


def public_key_table(variant):
    """Key -> shape of the state dict of the public ``self.G``, by PyTorch's parameter layouts."""
    table = {}
    for name, module, cin, cout, k in PUBLIC_LAYERS[variant]:
        table[f"{name}.weight"] = {"L": (cout, cin), "C": (cout, cin, k, k), "T": (cin, cout, k, k)}[module]
        table[f"{name}.bias"] = (cout,)
    return list(table.items())


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_tensor_is_the_public_definitions(variant):
    """Each key, in order, with exactly the public definition's shape: a missing bias, an extra
    layer or a transposed kernel fails here (a file-size tolerance would let some through)."""
    assert list(deepsim.expected_shapes(variant).items()) == public_key_table(variant)


def test_published_sizes_are_the_tables_bytes():
    """The exact published sizes (norm1, norm2, conv4, fc6) are the tables' float32 bytes plus the
    few kB of pickle and zip records: a missing or extra layer would show here (a missing bias is
    too small for sizes: the key table above is the check for it)."""
    overheads = {v: CATALOG[NAMES[v]].size - 4 * sum(int(np.prod(s)) for _, s in public_key_table(v))
                 for v in ("norm1", "norm2", "conv4", "fc6")}
    assert all(0 < overhead < 8192 for overhead in overheads.values()), overheads


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
    with pytest.raises(WeightsError, match="not the published one; to use weights of your own add --no-verify to --generator-weights FILE"):
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
