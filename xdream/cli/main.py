"""The ``xdream`` command line.

    xdream evolve [CONFIG.toml] [--generator G] [--target SPEC] [--optimizer O] ...
    xdream evolve --resume RUN_DIR
    xdream evolve --target T --init-from-characterisation RUN   start from T's preferred grating / hue
    xdream list                      registered generators, responders, optimisers, noise models
    xdream layers MODEL              layer names and output shapes of a CNN (for target specs)
    xdream weights list | download NAME... | verify [NAME...] | path NAME
    xdream gradient | compare | report   gradient baselines, comparisons, HTML reports (cli_gradient.py)
    xdream rig simulate ARGS         a simulated lab rig speaking xdream-rig/1 (docs/protocol.md)
    xdream rig check ENDPOINT        does a rig implement xdream-rig/1? a pass/fail table (xdream.rig.check)
    xdream sweep SWEEP.toml          a grid of runs on Ray (or a process pool), resumable
    xdream characterise TARGET...    tuning curves and colour/spatial opponency (xdream.characterise)

User errors print one line and exit with status 2; nothing is written. Every command (here,
in ``cli_gradient``, ``weights_cli`` and ``characterise.command``) is added by an
``add_parser(commands)`` that names its handler with ``set_defaults(handler=...)``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from xdream.cli import characterise as characterise_command, gradient as cli_gradient, weights as weights_cli
from xdream.cli.common import parse_set
from xdream.config import ExperimentConfig, read_toml, set_dotted
from xdream.core import registry
from xdream.core.allocator import retain_freed_memory
from xdream.core.errors import ConfigError, XDreamError

# CLI flag -> dotted config key it sets
FLAG_KEYS = {
    "generator": "generator.name",
    "target": "responder.target",
    "weights": "responder.weights",
    "optimizer": "optimizer.name",
    "population": "optimizer.population",
    "noise": "noise.name",
    "generations": "generations",
    "budget": "budget",
    "seed": "seed",
    "output": "output",
    "device": "device",
    "init_image": "init_image",
    "reference_folder": "reference.folder",
    "reference_per_generation": "reference.per_generation",
    "unscored": "unscored",
    "init_from_characterisation": "init_characterisation",
    "init_unit": "init_unit",
    "init_class": "generator.init_class",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line (exit 2) instead of usage + error."""

    def error(self, message):
        self.exit(2, f"xdream: error: {message} (see xdream {self.prog.split()[-1]} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="xdream", description="Closed-loop stimulus evolution (XDREAM).")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    evolve = commands.add_parser("evolve", help="evolve images that drive a target unit or neuron")
    evolve.set_defaults(handler=_evolve)
    evolve.add_argument("config", nargs="?", help="TOML config file (defaults: the embedded demo job)")
    evolve.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or crashed run")
    evolve.add_argument("--generator", help="generator name (xdream list)")
    evolve.add_argument("--target", help="responder target, e.g. efficientnet_lite0:_blocks.6:20[:Y:X]")
    evolve.add_argument("--weights", metavar="FILE",
                        help="local weights file: the generator's if it uses catalogued weights "
                             "(deepsim-*, biggan-deep-*: see xdream weights list), else the torchvision "
                             "target model's")
    evolve.add_argument("--no-verify", action="store_true",
                        help="load the generator's --weights FILE without checking its SHA-256")
    evolve.add_argument("--init-image", metavar="FILE",
                        help="start the optimiser from this image's code (gradient inversion)")
    evolve.add_argument("--init-from-characterisation", metavar="RUN",
                        help="start the optimiser from the code of the unit's preferred stimulus in this "
                             "characterisation run (xdream characterise; gradient inversion)")
    evolve.add_argument("--init-unit", metavar="UNIT",
                        help="with --init-from-characterisation: the run's unit to use, e.g. "
                             "efficientnet_lite0:_blocks.1:3 (default: its only unit, or the --target unit)")
    evolve.add_argument("--init-class", type=int, metavar="N",
                        help="class-conditional generators (biggan-deep-*): start from ImageNet class N")
    evolve.add_argument("--optimizer", help="optimiser name (xdream list)")
    evolve.add_argument("--population", type=int, help="optimiser population size")
    evolve.add_argument("--generations", type=int, help="number of generations")
    evolve.add_argument("--budget", type=int, help="total evaluations (instead of generations)")
    evolve.add_argument("--noise", help="simulated response noise: poisson or gaussian (set options with --set noise.level=0.5)")
    evolve.add_argument("--reference-folder", metavar="DIR",
                        help="natural reference images shown in every generation (default: scikit-image's photographs)")
    evolve.add_argument("--reference-per-generation", type=int, metavar="N",
                        help="natural reference images per generation, scored but never told to the optimiser "
                             "(default 2 when --reference-folder is given; 0: none)")
    evolve.add_argument("--unscored", choices=("nan-policy", "reshow"),
                        help="images with no valid response: the optimiser's NaN policy acts, or they are shown "
                             "again before it is told (--set reshow_attempts=N, default 1)")
    evolve.add_argument("--seed", type=int, help="master seed")
    evolve.add_argument("--output", metavar="DIR", help="run directory (must not exist or be empty)")
    evolve.add_argument("--device", help="torch device (default cpu)")
    evolve.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any config value, e.g. optimizer.mutation_rate=0.3 (repeatable)")
    evolve.add_argument("--quiet", action="store_true", help="no progress bar")
    evolve.add_argument("--live-report", action="store_true",
                        help="rewrite RUN_DIR/report.html after every generation (the page refreshes itself)")

    sweep = commands.add_parser("sweep", help="run a grid of experiments on Ray or a process pool (resumable)")
    sweep.set_defaults(handler=_sweep)
    sweep.add_argument("sweep_file", metavar="SWEEP.toml", help="sweep file: output, [base] config, [grid] axes")
    sweep.add_argument("--output", metavar="DIR", help="sweep directory (overrides the file's output)")
    sweep.add_argument("--backend", default="auto", help="auto (Ray if installed), ray or process")
    sweep.add_argument("--address", help="address of an existing Ray cluster (default: start a local one)")
    sweep.add_argument("--workers", type=int, help="parallel runs (default: CPU count)")

    commands.add_parser("list", help="list registered plugins").set_defaults(handler=_list)
    layers = commands.add_parser("layers", help="list a CNN's layers and output shapes")
    layers.set_defaults(handler=_layers)
    layers.add_argument("model", help="efficientnet_lite0 or a torchvision model name")
    layers.add_argument("--weights", metavar="FILE", help="local weights file for a torchvision model")
    weights_cli.add_parser(commands)
    cli_gradient.add_parser(commands)  # gradient, compare, report
    rig = commands.add_parser("rig", help="rig-side tools: `xdream rig simulate --help`")
    rig.set_defaults(handler=_rig)
    rig.add_argument("name", help="rig command (xdream list: rigs)")
    rig.add_argument("args", nargs=argparse.REMAINDER, help="the rig command's own arguments")
    characterise_command.add_parser(commands)
    return parser


def config_from_args(args) -> ExperimentConfig:
    data = read_toml(args.config) if args.config else ExperimentConfig().to_dict()
    for flag, key in FLAG_KEYS.items():
        value = getattr(args, flag)
        if flag == "weights":
            key = _weights_key(data)
        if value is not None:
            if key.startswith("noise.") and "noise" not in data:
                data["noise"] = {}
            set_dotted(data, key, value)
    if getattr(args, "no_verify", False):
        set_dotted(data, "generator.verify", False)
    for key, value in parse_set(args.set):
        set_dotted(data, key, value)
    return ExperimentConfig.from_dict(data)


def _weights_key(data: dict) -> str:
    """``--weights`` belongs to the generator when it loads catalogued weights, else to the
    responder (a torchvision model's file)."""
    from xdream.weights.catalogue import CATALOG

    generator = data.get("generator", {})
    name = generator.get("name") if isinstance(generator, dict) else generator
    return "generator.weights" if name in CATALOG else "responder.weights"


def _evolve(args) -> int:
    from xdream.evolve.experiment import Experiment

    if args.resume:
        others = [f"--{f.replace('_', '-')}" for f in FLAG_KEYS if getattr(args, f) is not None]
        others += (["--set"] if args.set else []) + (["--no-verify"] if args.no_verify else [])
        if args.config or others:
            raise ConfigError(f"--resume continues a run with its saved config; drop {' '.join(others) or args.config}")
        experiment = Experiment.resume(args.resume)
        print(f"resuming {experiment.run_dir.path} at generation {experiment.generation}", file=sys.stderr)
    else:
        experiment = Experiment(config_from_args(args), progress=not args.quiet)
        print(f"run directory: {experiment.run_dir.path}", file=sys.stderr)

    stop = {"requested": False}

    def on_sigint(signum, frame):
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        print("\nstopping after this generation (Ctrl-C again to abort at once)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        live = None
        if args.live_report:
            from xdream.report import write_report

            live = lambda record: write_report(experiment.run_dir.path)  # noqa: E731
            print(f"live report: {experiment.run_dir.path / 'report.html'}", file=sys.stderr)
        summary = experiment.run(progress=not args.quiet, should_stop=lambda: stop["requested"], on_generation=live)
        if args.live_report:
            write_report(experiment.run_dir.path)
    except KeyboardInterrupt:
        print(f"aborted; the last checkpoint is generation {experiment.generation}: "
              f"xdream evolve --resume {experiment.run_dir.path}", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
        experiment.close()
    print("\n".join(summary.lines()))
    return 0


def _sweep(args) -> int:
    from xdream.sweep.runner import run_sweep

    def log(line):
        print(line, file=sys.stderr, flush=True)

    result = run_sweep(args.sweep_file, output=args.output, backend=args.backend, address=args.address,
                       workers=args.workers, log=log)
    if result["failures"]:
        print(f"{len(result['failures'])} of {result['runs']} runs failed; rerun the same command to retry them",
              file=sys.stderr)
        return 1
    print(f"sweep complete: {result['runs']} runs ({result['skipped']} skipped as already complete); "
          f"results: {result['sweep_dir'] / 'results.jsonl'}")
    return 0


def _list(args) -> int:
    for kind in registry.GROUPS:
        print(f"{kind + 's':12s} {', '.join(registry.available(kind))}")
    return 0


def _layers(args) -> int:
    responder_cls = registry.load("responder", "torch-unit")
    for name, shape in responder_cls.list_layers(args.model, weights=args.weights):
        print(f"{name:40s} {tuple(shape)}")
    return 0


def _rig(args) -> int:
    return registry.load("rig", args.name)(args.args)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # usage errors (one line, code 2) and --help (0) as return codes
        return int(e.code or 0)
    retain_freed_memory()  # about 2x faster evolution loops on glibc (xdream.core.allocator)
    try:
        code = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows up here rather than at interpreter exit
        return code
    except XDreamError as e:
        print(f"xdream: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into a reader that stopped early (`| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1


if __name__ == "__main__":
    sys.exit(main())
