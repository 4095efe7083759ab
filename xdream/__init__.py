"""xdream: gradient-free closed-loop stimulus evolution (XDREAM) for CNN units and neurons.

Python API::

    from xdream import Experiment, ExperimentConfig
    config = ExperimentConfig.from_dict({"generations": 20, "optimizer": {"name": "cmaes"}})
    summary = Experiment(config).run()

    # several threads in one run: the same two types, with [[thread]] tables
    session = Experiment(ExperimentConfig.from_dict({"generations": 20, "thread": [
        {"name": "a", "target": "efficientnet_lite0:_blocks.10:27"},
        {"name": "b", "target": "efficientnet_lite0:_blocks.10:28"}]}))
"""

import importlib

from xdream.core.errors import ConfigError, RunDirError, UnknownNameError, WeightsError, XDreamError

# The API's heavy names (they import torch) load on first use, so `xdream --help` starts fast.
_LAZY = {
    "ExperimentConfig": "config", "PluginConfig": "config", "Experiment": "evolve.experiment",
    "Summary": "evolve.experiment", "Generator": "core.generator", "Optimizer": "core.optimizer",
    "NoiseModel": "core.responder", "NoisyResponder": "core.responder", "Responder": "core.responder",
}


#: Modules of the API under short names (``from xdream import registry``).
_MODULES = {"registry": "core.registry"}


def __getattr__(name):
    if name in _MODULES:
        return importlib.import_module(f".{_MODULES[name]}", __name__)
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__version__ = "0.1.0"
__all__ = [
    "ConfigError", "Experiment", "ExperimentConfig", "Generator", "NoiseModel", "NoisyResponder",
    "Optimizer", "PluginConfig", "Responder", "RunDirError", "registry", "Summary",
    "UnknownNameError",
    "WeightsError", "XDreamError",
]
