"""TorchUnit and the embedded EfficientNet-Lite0: real weights, checked against manual forwards."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from responders.models import efficientnet_lite as lite
from responders.torch_unit import Target, TorchUnit, layer_names, list_layers, parse_target
from xdream.core import registry
from xdream.core.errors import ConfigError, UnknownNameError, WeightsError

skimage_data = pytest.importorskip("skimage.data")


def photo(name: str) -> torch.Tensor:
    """A scikit-image photo as [1, 3, H, W] in [0, 1]."""
    return torch.from_numpy(getattr(skimage_data, name)()).permute(2, 0, 1)[None].float() / 255


def normalise(images, mean, std, size=224):
    x = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def lite_trunk(model, x, n_blocks):
    """Stem and the first ``n_blocks`` blocks, called by hand."""
    h = F.relu6(model._bn0(model._conv_stem(x)))
    for block in model._blocks[:n_blocks]:
        h = block(h)
    return h


@pytest.fixture(scope="module")
def images():
    return torch.rand(5, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def unit():
    return registry.create("responder", "torch-unit", {"target": "efficientnet_lite0:_blocks.4:3"})


# ---------------------------------------------------------------- the embedded model


def test_state_dict_matches_the_shipped_file_exactly():
    shipped = torch.load(lite.weights_path(), map_location="cpu", weights_only=True)
    ours = lite.EfficientNetLite0().state_dict()
    assert len(shipped) == 296
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in shipped.items()}


@pytest.mark.parametrize(
    "mean,std", [(lite.MEAN, lite.STD), ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))], ids=["own", "imagenet"]
)
def test_embedded_model_classifies_photos(mean, std):
    model = lite.load_efficientnet_lite0()
    assert not model.training
    x = torch.cat([normalise(photo("chelsea"), mean, std), normalise(photo("coffee"), mean, std)])
    with torch.no_grad():
        probs = model(x).softmax(1)
    assert probs.argmax(1).tolist() == [285, 967]  # Egyptian cat, espresso
    assert (probs.max(1).values > 0.5).all()


def test_embedded_model_reproduces_tf_conventions():
    """TF SAME padding and inception-style inputs: the confidence pins both (symmetric padding
    gives p=0.65 for chelsea, ImageNet mean/std p=0.77)."""
    model = lite.load_efficientnet_lite0()
    with torch.no_grad():
        p = model(normalise(photo("chelsea"), lite.MEAN, lite.STD)).softmax(1)[0, 285].item()
    assert p == pytest.approx(0.789, abs=0.01)
    conv = lite.Conv2dSame(1, 1, 3, stride=2, bias=False)
    x = torch.randn(1, 1, 8, 8)
    with torch.no_grad():
        expected = F.conv2d(F.pad(x, [0, 1, 0, 1]), conv.weight, stride=2)  # TF: extra pixel bottom/right
        assert torch.equal(conv(x), expected)


def test_unit_on_logits_classifies_through_torch_unit():
    unit = TorchUnit("efficientnet_lite0:_fc:285")
    cat = photo("chelsea")
    with torch.no_grad():
        logits = unit.model(unit.preprocess(cat))
    assert logits.argmax().item() == 285
    np.testing.assert_allclose(unit.respond(cat), logits[:, 285].double().numpy(), rtol=1e-5)
    assert unit.unit is None and unit.layer_shape == (1000,)


# ---------------------------------------------------------------- reading the unit


@pytest.mark.parametrize(
    "target,readout,pick",
    [
        ("efficientnet_lite0:_blocks.4:3", "center", lambda h: h[:, 3, 14, 14]),
        ("efficientnet_lite0:_blocks.4:3:5:20", "center", lambda h: h[:, 3, 5, 20]),
        ("efficientnet_lite0:_blocks.4:7", "mean", lambda h: h[:, 7].mean((1, 2))),
    ],
)
def test_hooked_unit_equals_manual_forward(images, target, readout, pick):
    unit = registry.create("responder", "torch-unit", {"target": target, "readout": readout})
    with torch.no_grad():
        manual = pick(lite_trunk(unit.model, normalise(images, lite.MEAN, lite.STD), 5))
    scores = unit.respond(images)
    assert scores.dtype == np.float64 and scores.shape == (5,)
    assert np.ptp(scores) > 0  # different images, different responses
    np.testing.assert_allclose(scores, manual.double().numpy(), rtol=1e-5, atol=1e-5)


def test_inner_layer_and_fc_layer_equal_manual_forward(images):
    inner = TorchUnit("efficientnet_lite0:_blocks.2._bn1:10:3:4")
    fc = TorchUnit("efficientnet_lite0:_fc:967", input_size=96)
    with torch.no_grad():
        block = inner.model._blocks[2]
        h = lite_trunk(inner.model, normalise(images, lite.MEAN, lite.STD), 2)
        h = block._bn1(block._depthwise_conv(F.relu6(block._bn0(block._expand_conv(h)))))
        logits = fc.model(normalise(images, lite.MEAN, lite.STD, size=96))
    np.testing.assert_allclose(inner.respond(images), h[:, 10, 3, 4].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fc.respond(images), logits[:, 967].numpy(), rtol=1e-5, atol=1e-5)


def test_forward_stops_at_the_hooked_layer(unit, images):
    called = []
    handle = unit.model._blocks[5].register_forward_hook(lambda *a: called.append(1))
    try:
        unit.respond(images)
    finally:
        handle.remove()
    assert called == []


def test_batching_gives_the_same_scores(unit, images):
    small = TorchUnit("efficientnet_lite0:_blocks.4:3", batch_size=2)
    np.testing.assert_allclose(small.respond(images), unit.respond(images), rtol=1e-5, atol=1e-6)
    assert unit.respond(images[:0]).shape == (0,)


def test_activation_is_differentiable(unit, images):
    x = images.clone().requires_grad_(True)
    act = unit.activation(x)
    assert act.shape == (5,) and act.requires_grad
    act.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in unit.model.parameters())
    assert not unit.model.training


def test_from_module_shares_the_code_path(unit, images):
    own = TorchUnit.from_module(lite.load_efficientnet_lite0(), "_blocks.4", 3, mean=lite.MEAN, std=lite.STD)
    np.testing.assert_allclose(own.respond(images), unit.respond(images), rtol=1e-6)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 3))
    custom = TorchUnit.from_module(net, "0", 1, 2, 3, input_size=16, mean=(0, 0, 0), std=(1, 1, 1), name="tiny")
    with torch.no_grad():
        manual = net[0](F.interpolate(images, size=(16, 16), mode="bilinear", align_corners=False))[:, 1, 2, 3]
    np.testing.assert_allclose(custom.respond(images), manual.numpy(), rtol=1e-5, atol=1e-6)
    assert custom.describe()["target"] == "tiny:0:1:2:3"
    with pytest.raises(ConfigError, match="out of range"):
        TorchUnit.from_module(net, "2", 2, input_size=16)


def test_describe(unit):
    info = unit.describe()
    assert info["model"] == "efficientnet_lite0" and info["layer"] == "_blocks.4" and info["channel"] == 3
    assert info["unit"] == (14, 14) and info["layer_shape"] == [40, 28, 28] and info["input_size"] == 224


def test_list_layers_needs_no_weights():
    layers = dict(list_layers("efficientnet_lite0"))
    assert layers["_blocks.4"] == (40, 28, 28) and layers["_fc"] == (1000,)
    assert list(layers) == [n for n in layer_names(lite.EfficientNetLite0()) if n != "_blocks"]  # never called
    assert dict(TorchUnit.list_layers("efficientnet_lite0", input_size=64))["_blocks.4"] == (40, 8, 8)
    tv = dict(list_layers("squeezenet1_0"))
    assert tv["features.3"] == (128, 54, 54)


# ---------------------------------------------------------------- errors a user can cause


@pytest.mark.parametrize(
    "options,error,text",
    [
        ({"target": "efficientnet_lite0:_blocks.4"}, ConfigError, "MODEL:LAYER:CHANNEL"),
        ({"target": "efficientnet_lite0:_blocks.4:3:1"}, ConfigError, "MODEL:LAYER:CHANNEL"),
        ({"target": "efficientnet_lite0:_blocks.4:three"}, ConfigError, "got 'three'"),
        ({"target": "efficientnet_lite0:_blocks.4:3:a:2"}, ConfigError, "integers, got 'a'"),
        ({"target": "efficientnet_lit0:_blocks.4:3"}, UnknownNameError, "efficientnet_lit0"),
        ({"target": "efficientnet_lite0:_block.4:3"}, UnknownNameError, "_blocks.4"),
        ({"target": "efficientnet_lite0:_blocks.4:40"}, ConfigError, "channel 40 .*0..39"),
        ({"target": "efficientnet_lite0:_blocks.4:-1"}, ConfigError, "channel -1"),
        ({"target": "efficientnet_lite0:_blocks.4:3:28:0"}, ConfigError, "Y 28 .*0..27"),
        ({"target": "efficientnet_lite0:_blocks.4:3:0:99"}, ConfigError, "X 99 .*0..27"),
        ({"target": "efficientnet_lite0:_blocks.4:3:1:1", "readout": "mean"}, ConfigError, "mean"),
        ({"target": "efficientnet_lite0:_fc:3:0:0"}, ConfigError, "_fc"),
        ({"target": "efficientnet_lite0:_blocks:3"}, ConfigError, "not called"),
        ({"target": "efficientnet_lite0:_blocks.4:3", "readout": "max"}, ConfigError, "max"),
        ({"target": "efficientnet_lite0:_blocks.4:3", "batch_size": 0}, ConfigError, "batch_size"),
        ({"target": "efficientnet_lite0:_blocks.4:3", "device": "gpu0"}, ConfigError, "gpu0"),
    ],
)
def test_bad_options_raise_clear_errors(options, error, text):
    with pytest.raises(error, match=text) as info:
        registry.create("responder", "torch-unit", options)
    assert "\n" not in str(info.value)


def test_a_model_that_cannot_run_at_the_input_size_is_one_line():
    """input_size 227 (the Ponce lab's convention for every network) on a vision transformer,
    which asserts its own image size: one ConfigError naming the model and the size, from the
    Python API as from a sweep's check of its targets (architecture only)."""
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=16, num_layers=1, num_heads=2,
                                               hidden_dim=8, mlp_dim=8)
    with pytest.raises(ConfigError, match="VisionTransformer cannot run at input_size 48: .*32") as info:
        TorchUnit.from_module(vit, "encoder", 0, input_size=48)
    assert "\n" not in str(info.value)
    assert TorchUnit.from_module(vit, "conv_proj", 0, input_size=32).layer_shape == (8, 2, 2)
    with pytest.raises(ConfigError, match="vit_b_16 cannot run at input_size 227: .*224") as info:
        TorchUnit.check_targets(["vit_b_16:conv_proj:0"], {"input_size": 227})
    assert "\n" not in str(info.value)


def test_parse_target():
    assert parse_target("alexnet:features.8:0:6:7") == Target("alexnet", "features.8", 0, 6, 7)
    assert str(parse_target("efficientnet_lite0:_fc:3")) == "efficientnet_lite0:_fc:3"


def test_unknown_model_lists_valid_names():
    with pytest.raises(UnknownNameError, match="resnet18") as info:
        TorchUnit("resnet:fc:0")
    assert "efficientnet_lite0" in str(info.value)


# ---------------------------------------------------------------- torchvision models


def test_torchvision_model_without_cached_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="--target-weights FILE") as info:
        TorchUnit("squeezenet1_0:features.3:5")
    message = str(info.value)
    assert str(tmp_path) in message and "https://download.pytorch.org/models/squeezenet1_0" in message
    assert "\n" not in message
    assert not list(tmp_path.rglob("*.pth"))  # nothing downloaded


def test_torchvision_model_from_weights_file_and_cache(monkeypatch, tmp_path, images):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    net = torchvision.models.get_model("squeezenet1_0", weights=None).eval()
    path = tmp_path / "squeeze.pt"
    torch.save(net.state_dict(), path)
    unit = registry.create("responder", "torch-unit", {"target": "squeezenet1_0:features.3:5", "weights": str(path)})
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    with torch.no_grad():
        manual = net.features[:4](normalise(images, mean, std))[:, 5, 27, 27]
    np.testing.assert_allclose(unit.respond(images), manual.numpy(), rtol=1e-5, atol=1e-6)

    # the same file placed in the torch hub cache is found without the weights option
    cache = tmp_path / "home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / "squeezenet1_0-b66bff10.pth").write_bytes(path.read_bytes())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    cached = TorchUnit("squeezenet1_0:features.3:5")
    np.testing.assert_allclose(cached.respond(images), manual.numpy(), rtol=1e-5, atol=1e-6)


def test_googlenet_weights_file_without_aux_heads(tmp_path, images):
    """torchvision's pretrained googlenet has no aux1/aux2 (aux_logits=False): its saved state dict
    loads (the heads never take part in a response); a file missing a real key is still refused."""
    net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=False).eval()
    path = tmp_path / "googlenet.pt"
    torch.save(net.state_dict(), path)
    unit = registry.create("responder", "torch-unit", {"target": "googlenet:inception3a:5", "weights": str(path)})
    assert "aux1" not in layer_names(unit.model)
    net.transform_input = True  # as torchvision's pretrained googlenet
    seen = []
    net.inception3a.register_forward_hook(lambda module, args, output: seen.append(output))
    with torch.no_grad():
        net(normalise(images, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)))
    np.testing.assert_allclose(unit.respond(images), seen[0][:, 5, 14, 14].numpy(), rtol=1e-5, atol=1e-6)
    state = net.state_dict()
    del state["conv1.conv.weight"]
    torch.save(state, path)
    with pytest.raises(WeightsError, match="1 missing keys .e.g. conv1.conv.weight.$"):
        TorchUnit("googlenet:inception3a:5", weights=str(path))


def test_weights_variant_names_which_published_weights(monkeypatch, tmp_path, images, capsys):
    """mobilenet_v2 has two published sets (DEFAULT: IMAGENET1K_V2); weights_variant picks V1 --
    what ``pretrained=True`` meant -- from the hub cache, and the run records it."""
    from xdream.cli import main

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    v1 = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1
    net = torchvision.models.get_model("mobilenet_v2", weights=None).eval()
    cache = tmp_path / "home" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(net.state_dict(), cache / v1.url.rsplit("/", 1)[-1])
    with pytest.raises(WeightsError, match="mobilenet_v2-7ebf99e0.pth"):  # DEFAULT is V2: not cached, not fetched
        TorchUnit("mobilenet_v2:features.2:3")
    unit = registry.create("responder", "torch-unit",
                           {"target": "mobilenet_v2:features.2:3", "weights_variant": "IMAGENET1K_V1"})
    assert unit.describe()["weights"] == "MobileNet_V2_Weights.IMAGENET1K_V1"
    torch.testing.assert_close(unit.model.features[2].conv[0][0].weight, net.features[2].conv[0][0].weight)
    with pytest.raises(ConfigError, match=r"'IMAGENET1K_V3' is not one of mobilenet_v2's published weights; "
                                          r"valid: IMAGENET1K_V1, IMAGENET1K_V2 \(DEFAULT is IMAGENET1K_V2\)"):
        TorchUnit("mobilenet_v2:features.2:3", weights_variant="IMAGENET1K_V3")
    with pytest.raises(ConfigError, match="not both"):
        TorchUnit("mobilenet_v2:features.2:3", weights="w.pth", weights_variant="IMAGENET1K_V1")
    out = tmp_path / "run"
    code = main(["evolve", "--generator", "fourier", "--target", "mobilenet_v2:features.2:3", "--set",
                 'responder.weights_variant="IMAGENET1K_V1"', "--set", "responder.input_size=64",
                 "--population", "4", "--generations", "1", "--output", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert 'weights_variant = "IMAGENET1K_V1"' in (out / "config.toml").read_text()


def test_wrong_weights_files(tmp_path):
    wrong = tmp_path / "lite.pt"
    torch.save(lite.EfficientNetLite0().state_dict(), wrong)
    with pytest.raises(WeightsError, match="does not fit.*missing keys.*unexpected keys"):
        TorchUnit("squeezenet1_0:features.3:5", weights=str(wrong))
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        TorchUnit("squeezenet1_0:features.3:5", weights=str(garbage))
    with pytest.raises(WeightsError, match="missing.pt"):
        TorchUnit("efficientnet_lite0:_fc:1", weights=str(tmp_path / "missing.pt"))
