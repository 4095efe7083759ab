"""Many units of one layer in one job vs one run per unit, measured in one run.

Evolves ``--units`` channels of one layer (default 8 channels of EfficientNet-Lite0's
``_blocks.10``, dcgan-faces + genetic) twice, with the same generations and population:

(a) one job: ``xdream evolve --target MODEL:LAYER --units 0:8`` (a session of 8 threads: the
    model loaded once, every thread's images in the same forward passes);
(b) 8 sequential single-unit runs ``xdream evolve --target MODEL:LAYER:C``, as a sweep of
    separate processes would do them.

Each is a fresh ``xdream`` process; it prints the images evaluated per second of wall time
(process start and model loading included: that is what a user waits for) and each
process's peak resident memory (``wait4``'s ``ru_maxrss``), and the ratios one job /
sequential. Goal (issue 12): images/s ratio >= 1.0 on CPU.

    python experiments/bench_units.py [--units 0:8] [--generations 5] [--population 20] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one command run to completion."""
    start = time.perf_counter()
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({process.returncode}): {process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss * 1024


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="efficientnet_lite0:_blocks.10", help="MODEL:LAYER")
    p.add_argument("--units", default="0:8")
    p.add_argument("--generator", default="dcgan-faces")
    p.add_argument("--optimizer", default="genetic")
    p.add_argument("--generations", type=int, default=5)
    p.add_argument("--population", type=int, default=20)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    from xdream.cli.evolve import parse_units

    units = parse_units(args.units)
    xdream = [sys.executable, "-m", "xdream"]
    common = ["--generator", args.generator, "--optimizer", args.optimizer, "--generations", str(args.generations),
              "--population", str(args.population), "--device", args.device, "--quiet"]
    images = len(units) * args.generations * args.population
    with tempfile.TemporaryDirectory() as tmp:
        one_s, one_rss = timed([*xdream, "evolve", "--target", args.target, "--units", args.units, *common,
                                "--output", f"{tmp}/job"])
        runs = [timed([*xdream, "evolve", "--target", f"{args.target}:{c}", *common, "--output", f"{tmp}/u{c}"])
                for c in units]
        assert len(list(Path(tmp, "job", "threads").iterdir())) == len(units)
    seq_s, seq_rss = sum(s for s, _ in runs), max(r for _, r in runs)
    print(f"{len(units)} units of {args.target}, {args.generator} + {args.optimizer}, {args.generations} generations "
          f"x population {args.population} = {images} images, device {args.device}")
    print(f"{'':28}{'wall s':>9}{'images/s':>10}{'peak RSS MiB':>14}")
    print(f"{'one job (--units)':28}{one_s:9.1f}{images / one_s:10.1f}{one_rss / 2**20:14.0f}")
    print(f"{f'{len(units)} sequential runs':28}{seq_s:9.1f}{images / seq_s:10.1f}{seq_rss / 2**20:14.0f}"
          "   (peak of one run)")
    print(f"images/s ratio one job / sequential: {seq_s / one_s:.2f}x (goal >= 1.0)")
    print(f"peak memory ratio one job / one sequential run: {one_rss / seq_rss:.2f}x")


if __name__ == "__main__":
    main()
