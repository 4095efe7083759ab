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


@pytest.fixture
def layout_copy(tmp_path):
    """``layout_copy(name)``: a copy in tmp_path of the committed run folder
    ``tests/fixtures/layouts/NAME`` (run, session, units, sweep; see its README): a finished
    run for tests that read one, without running an evolution first."""
    import shutil
    from pathlib import Path

    def copy(name):
        return Path(shutil.copytree(Path(__file__).parent / "fixtures" / "layouts" / name, tmp_path / name))

    return copy


def pytest_configure(config):
    """The suite runs with malloc set as the ``xdream`` command sets it (xdream.core.allocator)."""
    from xdream.core.allocator import retain_freed_memory

    retain_freed_memory()
