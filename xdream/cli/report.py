"""``xdream report RUN_DIR [--watch]``: the run's self-contained HTML page."""

from __future__ import annotations

import sys


def add_parser(commands) -> None:
    r = commands.add_parser("report", help="write RUN_DIR/report.html (self-contained) and PNG figures of an "
                                           "evolution, gradient, compare or characterise run")
    r.set_defaults(handler=run)
    r.add_argument("run_dir", metavar="RUN_DIR")
    r.add_argument("--watch", action="store_true", help="keep the page current until the evolution ends")


def run(args) -> int:
    from xdream.report import watch, write_report

    if args.watch:
        print(f"watching {args.run_dir}; Ctrl-C to stop", file=sys.stderr)
        try:
            print(watch(args.run_dir))
        except KeyboardInterrupt:
            pass
        return 0
    print(write_report(args.run_dir))
    return 0
