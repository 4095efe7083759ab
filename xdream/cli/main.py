"""The ``xdream`` command line: the parser of every command, and :func:`main`.

    xdream evolve [CONFIG.toml] [flags] | --resume RUN_DIR     one evolution (cli/evolve.py)
    xdream sweep SWEEP.toml                                    a grid of runs (cli/sweep.py)
    xdream list | layers MODEL                                 plugins, a model's layers (cli/plugins.py)
    xdream weights list | download NAME... | verify | path     weight files (cli/weights.py)
    xdream gradient | compare | report RUN_DIR                 baselines, comparisons, pages
    xdream rig simulate | keygen | check ENDPOINT              rig-side tools, a rig's conformance (cli/rig.py)
    xdream characterise TARGET...                              tuning curves and opponency

User errors print one line and exit with status 2; nothing is written. A run stopped by
Ctrl-C (or any interrupt) exits with 130. Each command module
has an ``add_parser(commands)`` that names its handler with ``set_defaults(handler=...)``;
the flags several commands share are declared once, in :mod:`xdream.cli.common`.
"""

from __future__ import annotations

import argparse
import os
import sys

from xdream.cli import characterise, compare, evolve, gradient, plugins, report, rig, sweep, weights
from xdream.cli.startup import load_torch
from xdream.core.allocator import retain_freed_memory
from xdream.core.errors import XDreamError

COMMANDS = (evolve, sweep, plugins, weights, gradient, compare, report, rig, characterise)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line (exit 2) instead of usage + error, and
    matches options exactly: no prefixes, so a typo (``--generation 3``) is an error, never
    another option (``--generations``). Subcommands get this class too (``add_subparsers``
    makes their parsers of the parent's class)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        command = " ".join(self.prog.split()[1:])  # "xdream evolve" -> "evolve"; "xdream" -> ""
        self.exit(2, f"xdream: error: {message} (see xdream {command + ' ' if command else ''}--help)\n")


def build_parser() -> argparse.ArgumentParser:
    from xdream import __version__

    parser = _Parser(prog="xdream", description="Closed-loop stimulus evolution (XDREAM).")
    parser.add_argument("--version", action="version", version=f"xdream {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # usage errors (one line, code 2) and --help (0) as return codes
            return int(e.code or 0)
        if getattr(args, "loads_torch", True):  # after parsing: --help, usage errors stay fast (cli/startup.py)
            load_torch()
        retain_freed_memory()  # faster evolution loops on glibc (xdream.core.allocator; make bench, part d)
        code = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows up here rather than at interpreter exit
        return code
    except XDreamError as e:
        print(f"xdream: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before a command's own handler took over (loading, building)
        print("xdream: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into a reader that stopped early (`| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1


if __name__ == "__main__":
    sys.exit(main())
