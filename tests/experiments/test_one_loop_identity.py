"""experiments/one_loop_identity.py: its fixed set of jobs covers every built-in optimiser."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "one_loop_identity.py"


@pytest.fixture(scope="module")
def identity():
    spec = importlib.util.spec_from_file_location("one_loop_identity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_run_per_built_in_optimiser(identity):
    from importlib.metadata import entry_points

    built_in = {e.name for e in entry_points(group="xdream.optimizers") if e.value.startswith("xdream.optimizers.")}
    assert set(identity.OPTIMIZERS) == built_in

