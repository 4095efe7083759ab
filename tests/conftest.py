"""Shared fixtures: a tiny but real evolution job that runs in about a second."""

import sys

import pytest

# A real pretrained unit read early in EfficientNet-Lite0 (the forward pass stops at the
# hooked layer, so this is cheap) and a small weight-free generator.
FAST_JOB = {
    "seed": 3,
    "generations": 6,
    "generator": {"name": "pixel", "size": 16},
    "responder": {"name": "torch-unit", "target": "efficientnet_lite0:_blocks.2:5", "input_size": 64},
    "optimizer": {"name": "genetic", "population": 8},
}


@pytest.fixture
def fast_job():
    import copy

    return copy.deepcopy(FAST_JOB)


@pytest.fixture
def xdream_cmd():
    """The CLI as a real subprocess command line."""
    return [sys.executable, "-m", "xdream.cli"]


def pytest_configure(config):
    """The suite runs with malloc set as the ``xdream`` command sets it (xdream.core.allocator)."""
    from xdream.core.allocator import retain_freed_memory

    retain_freed_memory()
