"""TorchLayer: every channel of a layer from one forward pass, equal to the TorchUnits."""

import pytest
import torch
from torch import nn

from responders.torch_layer import TorchLayer
from responders.torch_unit import TorchUnit
from xdream.core import registry
from xdream.core.errors import ConfigError


def test_layer_reads_every_channel_like_the_single_units():
    layer = registry.create("responder", "torch-layer", {"target": "efficientnet_lite0:_blocks.0", "input_size": 64}, device="cpu")
    images = torch.rand(5, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    all_units = layer.respond_units(images)
    assert all_units.shape == (5, 16) and all_units.dtype == "float64"
    assert layer.unit_labels()[3] == "efficientnet_lite0:_blocks.0:3"
    for channel in (0, 7, 15):
        unit = TorchUnit(f"efficientnet_lite0:_blocks.0:{channel}", input_size=64)
        assert torch.allclose(torch.from_numpy(unit.respond(images)), torch.from_numpy(all_units[:, channel]), atol=1e-6)
    assert layer.respond(images) == pytest.approx(all_units.mean(axis=1))
    assert layer.describe()["channels"] == 16 and "channel" not in layer.describe()


def test_layer_at_a_position_and_from_module():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 2))
    layer = TorchLayer.from_module(net, "1", 2, 5, input_size=8)
    images = torch.rand(3, 3, 8, 8)
    expected = net[1](net[0]((images - layer._mean) / layer._std))[:, :, 2, 5]
    assert torch.allclose(torch.from_numpy(layer.respond_units(images)).float(), expected, atol=1e-6)
    assert layer.unit_labels() == [f"Sequential:1:{c}:2:5" for c in range(4)]


@pytest.mark.parametrize("make, message", [
    (lambda: registry.create("responder", "torch-layer", {"target": "efficientnet_lite0:_fc"}, device="cpu"),
     "layer '_fc' outputs [1000] per image, no spatial map for the centre-unit read-out"),
    (lambda: TorchLayer.from_module(nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2)), "1", input_size=4),
     "no spatial map"),
    (lambda: TorchLayer("efficientnet_lite0:_blocks.0:3"), "layer target 'efficientnet_lite0:_blocks.0:3' is malformed"),
    (lambda: TorchLayer("efficientnet_lite0:_blocks.0:99:0", input_size=64), "Y 99 out of range"),
])
def test_bad_layer_targets_one_line(make, message):
    with pytest.raises(ConfigError) as info:
        make()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_sweep_checks_torch_layer_targets_as_construction_does(fast_job):
    """A sweep checks every target before any run (``check_targets``): torch-layer's own
    ``MODEL:LAYER[:Y:X]`` targets pass and a bad one is refused on one line naming it as given;
    a session's unit targets (recorded through ``for_units`` by torch-units) are checked as units."""
    from xdream.sweep.grid import check_values, expand

    TorchLayer.check_targets(["efficientnet_lite0:_blocks.0", "efficientnet_lite0:_blocks.1:2:2"], {"input_size": 64})
    for specs, message in ((["efficientnet_lite0:_blocks.0", "efficientnet_lite0:_blocks.0:99:0"],
                            "efficientnet_lite0:_blocks.0:99:0: Y 99 out of range"),
                           (["efficientnet_lite0:_fc"], "layer '_fc' outputs [1000] per image, no spatial map")):
        with pytest.raises(ConfigError) as info:
            TorchLayer.check_targets(specs, {"input_size": 64})
        assert message in str(info.value) and "\n" not in str(info.value)
    TorchLayer.check_targets(["efficientnet_lite0:_blocks.0:3", "efficientnet_lite0:_fc:7"], {"input_size": 64})
    base = {k: v for k, v in fast_job.items() if k != "seed"}
    base["responder"] = {"name": "torch-layer", "target": "efficientnet_lite0:_blocks.2", "input_size": 64}
    check_values(expand({"base": base, "grid": {"seed": [0, 1]}}))
