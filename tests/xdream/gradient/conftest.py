"""A small, fast, real target: EfficientNet-Lite0 (embedded weights) read at 64 px input."""

import pytest

from xdream.core import registry

UNIT = "efficientnet_lite0:_blocks.4:3"


@pytest.fixture(scope="session")
def lite_unit():
    return registry.create("responder", "torch-unit", {"target": UNIT, "input_size": 64})


@pytest.fixture(scope="session")
def lite_target(lite_unit):
    return lite_unit.feature_target()
