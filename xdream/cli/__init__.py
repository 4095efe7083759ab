"""The ``xdream`` command line: one module per command group, wired together in :mod:`.main`."""

from xdream.core.threads import quiet_thread_pools

quiet_thread_pools()  # before the command modules load torch's OpenMP runtime (xdream.core.threads)


from xdream.cli.common import parse_value  # noqa: E402
from xdream.cli.main import build_parser, config_from_args, main  # noqa: E402

__all__ = ["build_parser", "config_from_args", "main", "parse_value"]
