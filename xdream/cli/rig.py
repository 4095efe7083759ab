"""``xdream rig NAME ARGS``: rig-side tools registered under ``xdream.rig`` (the simulator, keygen, check)."""

from __future__ import annotations

import argparse

from xdream.core import registry


def add_parser(commands) -> None:
    rig = commands.add_parser("rig", help="rig-side tools: `xdream rig simulate --help`")
    rig.set_defaults(handler=run)
    rig.add_argument("name", help="rig command (xdream list: rigs)")
    rig.add_argument("args", nargs=argparse.REMAINDER, help="the rig command's own arguments")


def run(args) -> int:
    return registry.load("rig", args.name)(args.args)
