"""The ``xdream`` command line: one module per command, wired together in :mod:`.main`;
the flags and the ``--set`` grammar that several commands share live in :mod:`.common`.

:func:`main` here imports the commands (and with them torch) inside its own guard, so a
Ctrl-C in the first seconds ends with one line and exit 130, never a traceback.
"""

import importlib
import sys

_LAZY = {"build_parser": "xdream.cli.main", "config_from_args": "xdream.cli.evolve", "parse_value": "xdream.cli.common"}


def main(argv: list[str] | None = None) -> int:
    """The ``xdream`` command (entry point)."""
    try:
        from xdream.cli.main import main as run
    except KeyboardInterrupt:
        print("xdream: interrupted", file=sys.stderr)
        return 130
    return run(argv)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["build_parser", "config_from_args", "main", "parse_value"]
