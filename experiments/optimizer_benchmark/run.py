"""Run a benchmark preset as an xdream sweep, then analyse it (table, figure, raw records).

    python experiments/optimizer_benchmark/run.py power            # ~2 h on 2 idle CPU cores, with CIs
    python experiments/optimizer_benchmark/run.py quick            # ~1 h on 2 CPU cores
    python experiments/optimizer_benchmark/run.py paper --address HEAD:6379   # a Ray cluster
    python experiments/optimizer_benchmark/run.py smoke            # minutes: a reduced check

Re-running the same command resumes: finished runs are skipped, failed ones are retried. A
preset with companions (``power``: its peers in ``power-peers.toml``) runs them too, each in
its own sweep directory, and analyses them together; a companion whose optimisers need a
package that is not installed is skipped with a message. Runs that fail are recorded in the
sweep's ``failures.json`` and shown in the table as failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from analyse import FAILURES, analyse  # noqa: E402

from xdream.core.errors import XDreamError  # noqa: E402
from xdream.runs.rundir import atomic_write  # noqa: E402
from xdream.sweep.runner import run_sweep  # noqa: E402

PRESETS = sorted(p.stem for p in HERE.glob("*.toml"))
# preset -> (companion preset, the package its optimisers need, the extra that installs it)
COMPANIONS = {"power": [("power-peers", "nevergrad", "peers")]}


def run_preset(sweep_file: Path, output: str | None = None, **options) -> tuple[Path, int]:
    """One sweep (``options``: run_sweep's backend, address, workers); its failures, if any, are
    written to ``failures.json``. Returns its directory and the number of failed runs."""
    result = run_sweep(sweep_file, output=output, log=lambda line: print(line, file=sys.stderr, flush=True),
                       **options)
    path = result["sweep_dir"] / FAILURES
    if result["failures"]:
        atomic_write(path, json.dumps(result["failures"], indent=1).encode())
        print(f"{sweep_file.stem}: {len(result['failures'])} runs failed (recorded in {path}; re-run to retry)",
              file=sys.stderr)
    elif path.exists():
        path.unlink()
    return result["sweep_dir"], len(result["failures"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", choices=PRESETS)
    parser.add_argument("--output", help="sweep directory (default: the preset's output)")
    parser.add_argument("--backend", default="auto", help="auto, ray or process")
    parser.add_argument("--address", help="existing Ray cluster")
    parser.add_argument("--workers", type=int)
    args = parser.parse_args(argv)
    options = dict(backend=args.backend, address=args.address, workers=args.workers)
    try:
        sweep_dir, failed = run_preset(HERE / f"{args.preset}.toml", args.output, **options)
        more = []
        for companion, package, extra in COMPANIONS.get(args.preset, []):
            if importlib.util.find_spec(package) is None:
                print(f"{companion}: skipped: its optimisers need {package} (pip install 'xdream[{extra}]')",
                      file=sys.stderr)
                continue
            output = None if args.output is None else f"{args.output}-{companion.removeprefix(args.preset + '-')}"
            companion_dir, companion_failed = run_preset(HERE / f"{companion}.toml", output, **options)
            more.append(companion_dir)
            failed += companion_failed
    except XDreamError as e:
        print(f"run.py: error: {e}", file=sys.stderr)
        return 2
    print(analyse(sweep_dir, more=tuple(more)))
    print(f"table, figure and records in {sweep_dir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
