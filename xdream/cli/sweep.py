"""``xdream sweep SWEEP.toml``: a grid of runs on Ray or a process pool, resumable."""

from __future__ import annotations

import sys

from xdream.cli import common


def add_parser(commands) -> None:
    sweep = commands.add_parser("sweep", help="run a grid of experiments on Ray or a process pool (resumable)")
    sweep.set_defaults(handler=run)
    sweep.add_argument("sweep_file", metavar="SWEEP.toml", help="sweep file: output, [base] config, [grid] axes")
    common.add_output(sweep, help="sweep directory (overrides the file's output)")
    sweep.add_argument("--backend", default="auto", help="auto (Ray if installed), ray or process")
    sweep.add_argument("--address", help="address of an existing Ray cluster (default: start a local one)")
    sweep.add_argument("--workers", type=int,
                       help="parallel runs (default: CPU count; runs on device cuda: one per visible GPU)")
    sweep.add_argument("--gpu-per-run", type=float, metavar="FRACTION",
                       help="runs on device cuda, Ray backend: the GPU share each run asks for, in (0, 1] (default 1: "
                            "one run per card; 0.25: four); refused on the process backend, whose workers get a "
                            "whole GPU each")


def run(args) -> int:
    from xdream.sweep.runner import RESULTS, run_sweep

    def log(line):
        print(line, file=sys.stderr, flush=True)

    result = run_sweep(args.sweep_file, output=args.output, backend=args.backend, address=args.address,
                       workers=args.workers, log=log, gpu_per_run=args.gpu_per_run)
    if result["failures"]:
        print(f"{len(result['failures'])} of {result['runs']} runs failed; rerun the same command to retry them",
              file=sys.stderr)
        return 1
    print(f"sweep complete: {result['runs']} runs ({result['skipped']} skipped as already complete); "
          f"results: {result['sweep_dir'] / RESULTS}")
    return 0
