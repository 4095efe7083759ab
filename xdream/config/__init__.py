"""The validated experiment configuration and its TOML form.

- :mod:`.experiment`  :class:`ExperimentConfig` (one validated object for file, CLI and Python),
                      plugin tables, ``[reference]``, the ``KEY=VALUE`` override grammar
- :mod:`.toml`        reading a TOML file with one-line errors, writing a config back
"""

from xdream.config.experiment import (
    DEFAULT_TARGET, PLUGINS, PROVIDED, SCALARS, ExperimentConfig, PluginConfig, ReferenceConfig, set_dotted,
)
from xdream.config.toml import read_toml, to_toml

__all__ = ["DEFAULT_TARGET", "PLUGINS", "PROVIDED", "SCALARS", "ExperimentConfig", "PluginConfig",
           "ReferenceConfig", "read_toml", "set_dotted", "to_toml"]
