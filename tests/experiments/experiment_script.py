"""A script under experiments/ loaded as a module (the scripts are not a package), for the tests
that call its functions at tiny sizes."""

import importlib.util
from pathlib import Path

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def load_script(relative: str, name: str):
    """``experiments/relative`` as the module ``name``."""
    spec = importlib.util.spec_from_file_location(name, EXPERIMENTS / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
