"""The validated run configuration and its TOML form.

- :mod:`.experiment`  :class:`ExperimentConfig` (one validated object for file, CLI and Python; with
                      ``[[thread]]`` tables a session of several threads), plugin tables,
                      ``[reference]``, the ``KEY=VALUE`` override grammar
- :mod:`.defaults`    the defaults table (``defaults.toml``): the plugins used when none is named
- :mod:`.presets`     the published setups (``presets.toml``, ``--preset``) as run configs
- :mod:`.toml`        reading a TOML file with one-line errors, writing a config back
"""

from xdream.config.experiment import (
    PLUGINS, PROVIDED, SCALARS, ExperimentConfig, PluginConfig, ReferenceConfig, ThreadConfig, is_session, set_dotted,
)
from xdream.config.defaults import defaults
from xdream.config.toml import read_toml, to_toml

__all__ = ["PLUGINS", "PROVIDED", "SCALARS", "ExperimentConfig", "PluginConfig",
           "ReferenceConfig", "ThreadConfig", "defaults", "is_session", "read_toml", "set_dotted", "to_toml"]
