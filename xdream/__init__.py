"""xdream: gradient-free closed-loop stimulus evolution (XDREAM) for CNN units and neurons.

Python API::

    from xdream import Experiment, ExperimentConfig
    config = ExperimentConfig.from_dict({"generations": 20, "optimizer": {"name": "cmaes"}})
    summary = Experiment(config).run()
"""

from .config import ExperimentConfig, PluginConfig
from .errors import ConfigError, RunDirError, UnknownNameError, WeightsError, XDreamError
from .experiment import Experiment, Summary
from .generator import Generator
from .optimizer import Optimizer
from .responder import NoiseModel, NoisyResponder, Responder

__version__ = "0.1.0"
__all__ = [
    "ConfigError", "Experiment", "ExperimentConfig", "Generator", "NoiseModel", "NoisyResponder",
    "Optimizer", "PluginConfig", "Responder", "RunDirError", "Summary", "UnknownNameError",
    "WeightsError", "XDreamError",
]
