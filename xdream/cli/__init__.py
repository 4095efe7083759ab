"""The ``xdream`` command line: one module per command, wired together in :mod:`.main`;
the flags and the ``--set`` grammar that several commands share live in :mod:`.common`."""

from xdream.cli.common import parse_value
from xdream.cli.evolve import config_from_args
from xdream.cli.main import build_parser, main

__all__ = ["build_parser", "config_from_args", "main", "parse_value"]
