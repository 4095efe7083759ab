"""The argument parser of the rig tools (``xdream rig simulate|keygen|check``): a usage error is
one line, a :class:`~xdream.core.errors.ConfigError` that the CLI prints and exits 2 with, like
the main ``xdream`` parser, instead of argparse's usage block."""

from __future__ import annotations

import argparse

from xdream.core.errors import ConfigError


class OneLineParser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # options are matched exactly: a typo never runs as another option
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise ConfigError(f"{self.prog}: {message} (see {self.prog} --help)")
