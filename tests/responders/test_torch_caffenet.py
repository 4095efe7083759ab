"""CaffeNet (the Caffe reference AlexNet XDREAM scores) as a target model, shown equivalent to the
public definition the way the DeePSiM port's files were: a weights file is written with the
public definition's exact keys and shapes (:data:`PUBLIC_TABLE`, transcribed from the source),
loaded through the users' path, and every layer's output is compared with an independent
implementation of that definition written here with ``torch.nn.functional`` ops (grouped
convolutions as separate halves, LRN from Caffe's formula, Caffe's BGR 0..255 mean-subtracted
input at 227 px)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from responders.models import caffenet
from responders.torch_unit import TorchUnit, find_layers, layer_outputs
from xdream.core import registry
from xdream.core.errors import ConfigError, WeightsError
from xdream.weights.catalogue import registered

# circuit_toolkit/GAN_utils.py, class Caffenet (PonceLab/circuit_toolkit, commit 2e0a2ce): its
# ``self.net`` children, so the state dict the file holds. Conv weights are (out, in / groups, k, k):
# conv1 3->96 k11 s4; conv2 96->256 k5 p2 groups 2; conv3 256->384 k3 p1; conv4 384->384 k3 p1 groups 2;
# conv5 384->256 k3 p1 groups 2; fc6 9216->4096; fc7 4096->4096; fc8 4096->1000; every layer with a bias.
PUBLIC_TABLE = {
    "conv1.weight": (96, 3, 11, 11), "conv1.bias": (96,),
    "conv2.weight": (256, 48, 5, 5), "conv2.bias": (256,),
    "conv3.weight": (384, 256, 3, 3), "conv3.bias": (384,),
    "conv4.weight": (384, 192, 3, 3), "conv4.bias": (384,),
    "conv5.weight": (256, 192, 3, 3), "conv5.bias": (256,),
    "fc6.weight": (4096, 9216), "fc6.bias": (4096,),
    "fc7.weight": (4096, 4096), "fc7.bias": (4096,),
    "fc8.weight": (1000, 4096), "fc8.bias": (1000,),
}
PUBLISHED_SIZE = 243_865_653  # caffenet.pt's LFS pointer at its upload commit c16cf26


def reference_forward(state: dict, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """The public definition, computed directly: the Caffe input (227 px, RGB -> BGR, x 255 minus
    the mean pixel RGB 123, 117, 104), then the layers with ``torch.nn.functional``."""
    x = F.interpolate(images, size=(227, 227), mode="bilinear", align_corners=False, antialias=False)
    x = (x * 255.0 - torch.tensor([123.0, 117.0, 104.0]).view(1, 3, 1, 1))[:, [2, 1, 0]]

    def conv(h, name, stride=1, padding=0, groups=1):  # groups as separate convolutions on channel halves
        parts = zip(h.chunk(groups, 1), state[f"{name}.weight"].chunk(groups, 0), state[f"{name}.bias"].chunk(groups, 0))
        return torch.cat([F.conv2d(hi, w, b, stride=stride, padding=padding) for hi, w, b in parts], 1)

    def lrn(h, n=5, alpha=1e-4, beta=0.75, k=1.0):  # Caffe ACROSS_CHANNELS: h / (k + alpha/n sum_window h^2)^beta
        squares = F.pad(h.pow(2), (0, 0, 0, 0, n // 2, n // 2))
        window = sum(squares[:, i : i + h.shape[1]] for i in range(n))
        return h / (k + alpha / n * window) ** beta

    def pool(h):  # 3x3 stride 2, Caffe's output size ceil((H - 3) / 2) + 1
        return F.max_pool2d(h, 3, 2, ceil_mode=True)

    out = {}
    out["conv1"] = h = conv(x, "conv1", stride=4)
    out["norm1"] = h = lrn(pool(F.relu(h)))
    out["conv2"] = h = conv(h, "conv2", padding=2, groups=2)
    out["norm2"] = h = lrn(pool(F.relu(h)))
    out["conv3"] = h = conv(h, "conv3", padding=1)
    out["conv4"] = h = conv(F.relu(h), "conv4", padding=1, groups=2)
    out["conv5"] = h = conv(F.relu(h), "conv5", padding=1, groups=2)
    out["pool5"] = h = pool(F.relu(h))
    out["fc6"] = h = F.linear(h.flatten(1), state["fc6.weight"], state["fc6.bias"])
    out["fc7"] = h = F.linear(F.relu(h), state["fc7.weight"], state["fc7.bias"])
    out["fc8"] = F.linear(F.relu(h), state["fc8.weight"], state["fc8.bias"])
    return out


@pytest.fixture(scope="module")
def caffenet_file(tmp_path_factory):
    """(path, state) of a random-weights file with the public keys and shapes (244 MB, deleted after)."""
    path = tmp_path_factory.mktemp("caffenet") / "caffenet.pt"
    state = caffenet.init_state_dict(seed=3)
    torch.save(state, path)
    yield path, state
    path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, 256, 256, generator=torch.Generator().manual_seed(0))


def test_key_table_is_the_public_definition():
    assert list(caffenet.expected_shapes().items()) == list(PUBLIC_TABLE.items())
    assert [(k, tuple(v.shape)) for k, v in caffenet.CaffeNet().state_dict().items()] == list(PUBLIC_TABLE.items())


def test_table_accounts_for_the_published_file():
    """60,965,224 float32 numbers: the published file is their bytes plus under 8 kB of pickle and zip."""
    numbers = sum(math.prod(shape) for shape in PUBLIC_TABLE.values())
    assert numbers == 60_965_224
    assert 0 < PUBLISHED_SIZE - 4 * numbers < 8192


def test_published_file_is_catalogued_pinned_and_hashed():
    entry = registered()["caffenet"]
    assert entry == caffenet.WEIGHTS and entry.size == PUBLISHED_SIZE and entry.licence == "MIT"
    assert entry.url.endswith("/resolve/c16cf26e1c78ca34a6cd406512de6a4d12d455d7/caffenet.pt")
    assert entry.sha256 == "23c9fbeea9b1c44b698f2519e35231150dd78a39df0f61f65644350c7f9ac015"


def test_every_layer_equals_the_independent_implementation(caffenet_file, images):
    path, state = caffenet_file
    unit = TorchUnit("caffenet:fc8:1", weights=str(path))
    assert unit.input_size == 227 and unit.describe()["weights"] == f"file {path}"
    expected = reference_forward(state, images)
    with torch.no_grad():
        ours = layer_outputs(unit.model, find_layers(unit.model, "caffenet", list(expected)),
                             unit.preprocess(images), "caffenet")
    for name, value in expected.items():
        assert ours[name].shape == value.shape, name
        scale = value.abs().max().item()
        assert scale > 1e-3, name  # the comparison is not between zeros
        torch.testing.assert_close(ours[name], value, rtol=1e-4, atol=1e-4 * scale, msg=name)
    np.testing.assert_allclose(unit.respond(images), expected["fc8"][:, 1].double().numpy(), rtol=1e-4,
                               atol=1e-4 * expected["fc8"].abs().max().item())
    conv5 = TorchUnit("caffenet:conv5:12:3:4", weights=str(path))
    np.testing.assert_allclose(conv5.respond(images), expected["conv5"][:, 12, 3, 4].double().numpy(), rtol=1e-4,
                               atol=1e-4 * expected["conv5"].abs().max().item())


def test_layers_listing_names_the_caffe_layers(capsys):
    from xdream.cli import main

    assert main(["layers", "caffenet"]) == 0
    out = capsys.readouterr().out
    for layer, shape in (("conv1", "96, 55, 55"), ("norm1", "96, 27, 27"), ("conv2", "256, 27, 27"),
                         ("conv5", "256, 13, 13"), ("pool5", "256, 6, 6"), ("fc6", "4096"), ("fc8", "1000")):
        line = next(line for line in out.splitlines() if line.split()[:1] == [layer])
        assert shape in line, line


def test_published_file_comes_from_the_cache_verified(caffenet_file, tmp_path, monkeypatch):
    monkeypatch.setenv("XDREAM_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="xdream weights download caffenet") as info:
        TorchUnit("caffenet:fc8:1")
    assert caffenet.WEIGHTS.url in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "caffenet.pt").symlink_to(caffenet_file[0])
    with pytest.raises(WeightsError, match="expected 243865653.*not the published one"):
        TorchUnit("caffenet:fc8:1")  # a file that is not the published one is never loaded


def test_bad_files_and_options_are_one_line(caffenet_file, tmp_path):
    state = caffenet_file[1]
    torchvision_like = {k.replace("conv2", "conv2x"): v for k, v in state.items()}
    path = tmp_path / "bad.pt"
    torch.save(torchvision_like, path)
    with pytest.raises(WeightsError, match="missing \\['conv2.weight', 'conv2.bias'\\]") as info:
        TorchUnit("caffenet:fc8:1", weights=str(path))
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="caffenet has one published set of weights"):
        TorchUnit("caffenet:fc8:1", weights_variant="IMAGENET1K_V1")
    with pytest.raises(ConfigError, match="channel 1000 out of range; layer fc8 has 1000 channels"):
        TorchUnit("caffenet:fc8:1000", weights=str(caffenet_file[0]))


def test_caffenet_unit_evolves_offline(caffenet_file, tmp_path, capsys):
    """XDREAM's in-silico target from a local file: one short run, recorded in config.toml."""
    from xdream.cli import main

    path, _ = caffenet_file
    out = tmp_path / "run"
    code = main(["evolve", "--generator", "fourier", "--target", "caffenet:conv5:12", "--set",
                 f'responder.weights="{path}"', "--population", "4", "--generations", "2", "--seed", "1",
                 "--output", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    config = (out / "config.toml").read_text()
    assert 'target = "caffenet:conv5:12"' in config and str(path) in config
    assert (out / "best.png").is_file()


def test_registered_responders_build_caffenet(caffenet_file):
    layer = registry.create("responder", "torch-layer", {"target": "caffenet:conv4:2:2", "weights": str(caffenet_file[0])})
    assert layer.layer_shape == (384, 13, 13)
