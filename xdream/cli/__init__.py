"""The ``xdream`` command line: one module per command group, wired together in :mod:`.main`."""

from xdream.cli.common import parse_value
from xdream.cli.main import build_parser, config_from_args, main

__all__ = ["build_parser", "config_from_args", "main", "parse_value"]
