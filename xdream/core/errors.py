"""One exception family for every error a user can cause.

The CLI catches :class:`XDreamError`, prints its message on one line and exits with 2.
Anything else is a bug and keeps its traceback.
"""


class XDreamError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class ConfigError(XDreamError):
    """A bad configuration value, key or type."""


class UnknownNameError(ConfigError):
    """A name (plugin, model, layer, ...) that is not among the valid choices."""


class PluginConflictError(XDreamError):
    """Two installed packages register the same plugin name."""


class PluginImportError(XDreamError):
    """An installed package's plugin entry point that cannot be imported (missing module or
    class, or an exception while its module is imported)."""


class WeightsError(XDreamError):
    """A weights file that is missing, unreadable or fails its checksum."""


class RunDirError(XDreamError):
    """A run directory that cannot be created, resumed or written."""


def choices_text(choices, limit: int = 30) -> str:
    """Format valid choices for an error message, shortening very long lists."""
    choices = list(choices)
    shown = ", ".join(str(c) for c in choices[:limit])
    if len(choices) > limit:
        shown += f", ... ({len(choices)} in all)"
    return shown
