"""``xdream rig NAME ARGS``: rig-side tools registered under ``xdream.rig`` (the simulator, keygen, check)."""

from __future__ import annotations

import argparse

from xdream.cli.startup import load_torch
from xdream.core import registry

#: Rig tools that never load torch: their argument errors and their work stay fast.
WITHOUT_TORCH = ("check", "keygen")


def add_parser(commands) -> None:
    rig = commands.add_parser("rig", help="rig-side tools: `xdream rig simulate --help`")
    rig.set_defaults(handler=run, loads_torch=False)  # run() loads it for the tools that need it
    rig.add_argument("name", help="rig command (xdream list: rigs)")
    rig.add_argument("args", nargs=argparse.REMAINDER, help="the rig command's own arguments")


def run(args) -> int:
    if args.name not in WITHOUT_TORCH:
        load_torch()
    return registry.load("rig", args.name)(args.args)
