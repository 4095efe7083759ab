"""TorchUnits: several units of one model from one forward pass, each equal to its TorchUnit."""

import numpy as np
import pytest
import torch

from responders.torch_layer import TorchLayer
from responders.torch_unit import TorchUnit
from responders.torch_units import TorchUnits
from xdream.core import registry
from xdream.core.errors import ConfigError, UnknownNameError

# three layers, listed out of depth order; one unit at a given position
TARGETS = ["efficientnet_lite0:_blocks.4:3", "efficientnet_lite0:_blocks.1:10:2:5", "efficientnet_lite0:_blocks.2:0",
           "efficientnet_lite0:_blocks.4:39"]


@pytest.fixture(scope="module")
def images():
    return torch.rand(5, 3, 48, 48, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def units():
    return registry.create("responder", "torch-units", {"targets": TARGETS, "input_size": 64}, device="cpu")


@pytest.mark.parametrize("readout", ["center", "mean"])
def test_each_column_equals_the_single_unit(images, readout):
    targets = TARGETS if readout == "center" else [t for t in TARGETS if t.count(":") == 2] + ["efficientnet_lite0:_fc:7"]
    units = TorchUnits(targets, readout=readout, input_size=64, batch_size=2)
    table = units.respond_units(images)
    assert table.dtype == np.float64 and table.shape == (5, len(targets))
    for column, target in enumerate(targets):
        single = TorchUnit(target, readout=readout, input_size=64, batch_size=2).respond(images)
        assert np.ptp(single) > 0  # different images, different responses: the comparison can fail
        np.testing.assert_allclose(table[:, column], single, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(units.respond(images), table.mean(axis=1))
    assert units.respond_units(images[:0]).shape == (0, len(targets))


def test_the_forward_pass_stops_after_the_deepest_layer_read(units, images):
    calls = {"_blocks.4": 0, "_blocks.5": 0}
    hooks = [units.model.get_submodule(name).register_forward_hook(
        lambda *a, name=name: calls.__setitem__(name, calls[name] + 1)) for name in calls]
    try:
        units.respond_units(images)
    finally:
        for hook in hooks:
            hook.remove()
    assert calls == {"_blocks.4": 1, "_blocks.5": 0}  # reached the deepest target layer, then stopped


def test_labels_are_the_targets_as_given_and_describe(units):
    assert units.unit_labels() == TARGETS and units.unit_noun == "unit"
    info = units.describe()
    assert info["targets"] == TARGETS and info["model"] == "efficientnet_lite0" and info["input_size"] == 64
    assert info["units"][:2] == [(4, 4), (2, 5)]  # the centre of an 8x8 map; the given position
    assert info["layer_shapes"]["_blocks.1"] == [24, 16, 16] and set(info["layer_shapes"]) == {
        "_blocks.1", "_blocks.2", "_blocks.4"}


@pytest.mark.parametrize("cls, options", [
    (TorchUnit, {"target": "efficientnet_lite0:_blocks.0:0", "input_size": 64, "readout": "mean"}),
    (TorchLayer, {"target": "efficientnet_lite0:_blocks.0", "input_size": 64}),
])
def test_for_units_builds_one_torch_units_with_the_users_options(cls, options, images):
    asked = ["efficientnet_lite0:_blocks.2:1", "efficientnet_lite0:_blocks.0:4"]
    several = cls.for_units(asked, options, "cpu")
    assert isinstance(several, TorchUnits) and several.unit_labels() == asked
    assert several.input_size == 64 and several.readout == options.get("readout", "center")
    expected = TorchUnit(asked[1], readout=several.readout, input_size=64).respond(images)
    np.testing.assert_allclose(several.respond_units(images)[:, 1], expected, rtol=1e-5, atol=1e-7)


def test_for_units_refuses_an_option_torch_units_lacks():
    with pytest.raises(ConfigError, match="unknown option 'colour' for responder 'torch-units'"):
        TorchUnit.for_units(["efficientnet_lite0:_blocks.0:0"], {"colour": 1}, "cpu")


@pytest.mark.parametrize("targets, error, text", [
    ([], ConfigError, "torch-units needs a non-empty list of targets, got []"),
    (["efficientnet_lite0:_blocks.0:0", "alexnet:features.3:1"], ConfigError,
     "targets name 2 models (efficientnet_lite0, alexnet); torch-units records units of one model"),
    (["efficientnet_lite0:_blocks.10:999"], ConfigError,
     "efficientnet_lite0:_blocks.10:999: channel 999 out of range; layer _blocks.10 has 112 channels (0..111)"),
    (["efficientnet_lite0:_blocks.0:0", "efficientnet_lite0:_blocks.0:x"], ConfigError, "got 'x'"),
    (["efficientnet_lite0:_blocks.0"], ConfigError, "'efficientnet_lite0:_blocks.0' is malformed"),
    (["efficientnet_lite0:_blocks.0:1", "efficientnet_lite0:_blocks.0:01"], ConfigError,
     "target 'efficientnet_lite0:_blocks.0:01' is given twice in targets (as 'efficientnet_lite0:_blocks.0:1' and"),
    (["efficientnet_lite0:_blocks.0:1:0:99"], ConfigError, "X 99 out of range; layer _blocks.0's feature map is 32x32"),
    (["efficientnet_lite0:_blocks.0:1", "efficientnet_lite0:_block.9:1"], UnknownNameError, "unknown layer '_block.9'"),
])
def test_bad_targets_one_line(targets, error, text):
    with pytest.raises(error) as info:
        TorchUnits(targets, input_size=64)
    assert text in str(info.value) and "\n" not in str(info.value)
