"""``xdream report RUN_DIR [--watch]``: the run's self-contained HTML page."""

from __future__ import annotations

import sys


def add_parser(commands) -> None:
    r = commands.add_parser("report", help="write RUN_DIR/report.html (self-contained) of an evolution, session, "
                                           "gradient, compare or characterise run (a characterisation's "
                                           "missing PNG figures drawn too)")
    r.set_defaults(handler=run)
    r.add_argument("run_dir", metavar="RUN_DIR")
    r.add_argument("--watch", action="store_true", help="keep the page current until the evolution or session ends")


def run(args) -> int:
    from pathlib import Path

    from xdream.report import watch, write_report
    from xdream.report.writer import LIVE, run_kind
    from xdream.runs.lock import RunLock

    if args.watch:
        print(f"watching {args.run_dir}; Ctrl-C to stop", file=sys.stderr)
        try:
            print(watch(args.run_dir))
        except KeyboardInterrupt:
            pass
        return 0
    if run_kind(Path(args.run_dir)) in LIVE:  # writes report.html only, beside a running writer
        print(write_report(args.run_dir))
        return 0
    with RunLock(args.run_dir):  # the figures of a gradient, compare or characterise run
        print(write_report(args.run_dir))
    return 0
