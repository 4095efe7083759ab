"""Run a benchmark preset as an xdream sweep, then analyse it (table, figure, raw records).

    python experiments/optimizer_benchmark/run.py quick            # ~1 h on 2 CPU cores
    python experiments/optimizer_benchmark/run.py paper --address HEAD:6379   # a Ray cluster
    python experiments/optimizer_benchmark/run.py smoke            # minutes: a reduced check

Re-running the same command resumes: finished runs are skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from analyse import analyse  # noqa: E402

from xdream.core.errors import XDreamError  # noqa: E402
from xdream.sweep.runner import run_sweep  # noqa: E402

PRESETS = sorted(p.stem for p in HERE.glob("*.toml"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", choices=PRESETS)
    parser.add_argument("--output", help="sweep directory (default: the preset's output)")
    parser.add_argument("--backend", default="auto", help="auto, ray or process")
    parser.add_argument("--address", help="existing Ray cluster")
    parser.add_argument("--workers", type=int)
    args = parser.parse_args(argv)
    try:
        result = run_sweep(HERE / f"{args.preset}.toml", output=args.output, backend=args.backend,
                           address=args.address, workers=args.workers,
                           log=lambda line: print(line, file=sys.stderr, flush=True))
    except XDreamError as e:
        print(f"run.py: error: {e}", file=sys.stderr)
        return 2
    if result["failures"]:
        print(f"{len(result['failures'])} runs failed; re-run to retry", file=sys.stderr)
        return 1
    print(analyse(result["sweep_dir"]))
    print(f"table, figure and records in {result['sweep_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
