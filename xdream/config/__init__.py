"""The validated experiment configuration and its TOML form.

- :mod:`.experiment`  :class:`ExperimentConfig` (one validated object for file, CLI and Python),
                      plugin tables, ``[reference]``, the ``KEY=VALUE`` override grammar
- :mod:`.session`     :class:`SessionConfig`: several evolution threads (``[[thread]]``) in one run
- :mod:`.defaults`    the defaults table (``defaults.toml``): the plugins used when none is named
- :mod:`.toml`        reading a TOML file with one-line errors, writing a config back
"""

from xdream.config.experiment import (
    PLUGINS, PROVIDED, SCALARS, ExperimentConfig, PluginConfig, ReferenceConfig, set_dotted,
)
from xdream.config.defaults import defaults
from xdream.config.session import SessionConfig, ThreadConfig, is_session
from xdream.config.toml import read_toml, to_toml

__all__ = ["PLUGINS", "PROVIDED", "SCALARS", "ExperimentConfig", "PluginConfig",
           "ReferenceConfig", "SessionConfig", "ThreadConfig", "defaults", "is_session", "read_toml", "set_dotted", "to_toml"]
