"""CPU time of the ``xdream`` command's answers that need no computation, measured in one run.

``xdream --help``, ``xdream --version``, a mistyped flag and a command's argument error are
answered by the parser alone and must not import torch (issue 25: they cost 2-3 s of CPU each on
a 2-core machine, a minute on a busy rig PC, before the parser answered). Each is run
``--repeats`` times as a fresh process; the script prints the median user+system CPU seconds
(``wait4``'s rusage) of each and its ratio to the CPU time of ``python -c "import torch"``
(how much of a torch import the answer costs). Goal: every ratio well below 1 (about 0.1).

    python experiments/bench_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

XDREAM = [sys.executable, "-m", "xdream"]
ANSWERS = {"--help": ["--help"], "--version": ["--version"], "bad flag": ["--bogus"],
           "evolve argument error": ["evolve", "--generation", "3"]}


def cpu_seconds(cmd: list[str]) -> float:
    """User + system CPU seconds of one command run to completion (its exit status is not checked:
    an argument error exits 2 on purpose)."""
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(process.pid, 0)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.chdir(Path(__file__).resolve().parents[1])
    torch = statistics.median(cpu_seconds([sys.executable, "-c", "import torch"]) for _ in range(args.repeats))
    print(f"python -c 'import torch': {torch:.2f} s CPU (median of {args.repeats})")
    for name, argv in ANSWERS.items():
        seconds = statistics.median(cpu_seconds(XDREAM + argv) for _ in range(args.repeats))
        print(f"xdream {' '.join(argv):24s} {seconds:.2f} s CPU   ratio to a torch import {seconds / torch:.2f}")


if __name__ == "__main__":
    main()
