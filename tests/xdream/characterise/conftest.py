"""Real characterisation runs shared by the start-from-characterisation and report tests:
one unit (with its tuning plot) and a whole layer (without unit plots), on a small protocol."""

import pytest

from characterise_runs import LAYER, SMALL, UNIT
from xdream.cli import main


@pytest.fixture(scope="session")
def unit_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("characterised") / "unit"
    assert main(["characterise", UNIT, "--output", str(path), *SMALL]) == 0
    return path


@pytest.fixture(scope="session")
def layer_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("characterised") / "layer"
    assert main(["characterise", LAYER, "--output", str(path), "--no-unit-plots", *SMALL]) == 0
    return path
