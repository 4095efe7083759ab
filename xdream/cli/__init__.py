"""The ``xdream`` command line: one module per command, wired together in :mod:`.main`;
the flags and the ``--set`` grammar that several commands share live in :mod:`.common`."""

from xdream.core.threads import quiet_thread_pools

quiet_thread_pools()  # before the command modules load torch's OpenMP runtime (xdream.core.threads)

from xdream.cli.common import parse_value  # noqa: E402
from xdream.cli.evolve import config_from_args  # noqa: E402
from xdream.cli.main import build_parser, main  # noqa: E402

__all__ = ["build_parser", "config_from_args", "main", "parse_value"]
