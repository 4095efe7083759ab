"""``python -m xdream`` and the ``xdream`` command's entry point.

:func:`run` imports the command line (and with it torch) inside its own guard, so a Ctrl-C in
the first seconds ends with one line and exit 130, never a traceback.
"""

import sys


def run() -> int:
    try:
        from xdream.cli.main import main
    except KeyboardInterrupt:
        print("xdream: interrupted", file=sys.stderr)
        return 130
    return main()


if __name__ == "__main__":
    sys.exit(run())
