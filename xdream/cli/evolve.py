"""``xdream evolve``: run (or resume) one evolution from the defaults, a config file and flags.

    xdream evolve [CONFIG.toml] [--generator G] [--target SPEC] [--optimizer O] ...
    xdream evolve --resume RUN_DIR [--allow-changed KEY] [--repair | --restart]   (docs/runs.md)
    xdream evolve --target T --init-from-characterisation RUN   start from T's preferred grating / hue
    xdream evolve SESSION.toml | --thread ... | --target MODEL:LAYER --units 0:64   several threads
                                                              (xdream.cli.evolve_session)
"""

from __future__ import annotations

import signal
import sys

from xdream.cli import common
from xdream.config import ExperimentConfig, read_toml, set_dotted
from xdream.core import registry
from xdream.core.errors import ConfigError
from xdream.core.threads import default_threads

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
    "threads": "threads",
    "init_image": "init_image",
    "reference_folder": "reference.folder",
    "reference_per_generation": "reference.per_generation",
    "unscored": "unscored",
    "init_from_characterisation": "init_characterisation",
    "init_unit": "init_unit",
    "init_class": "generator.init_class",
}


def add_parser(commands) -> None:
    evolve = commands.add_parser("evolve", help="evolve images that drive a target unit or neuron")
    evolve.set_defaults(handler=run)
    evolve.add_argument("config", nargs="?", help="TOML config file (defaults: the embedded demo job)")
    evolve.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or crashed run")
    evolve.add_argument("--allow-changed", action="append", default=[], metavar="KEY",
                        help="with --resume: continue although config KEY (e.g. generations) differs from the "
                             "checkpoint's (repeatable)")
    evolve.add_argument("--repair", action="store_true",
                        help="with --resume: rebuild a damaged or missing log.jsonl from the checkpoint's copy")
    evolve.add_argument("--restart", action="store_true",
                        help="with --resume: move the run's results into RUN_DIR/discarded-<time>/ and start over")
    common.add_generator(evolve)
    common.add_target(evolve, help="responder target, e.g. MODEL:LAYER:CHANNEL[:Y:X]")
    common.add_weights(evolve, help="local weights file: the generator's if it declares weights files (see "
                                    "xdream weights list), else the target model's")
    evolve.add_argument("--no-verify", action="store_true",
                        help="load the generator's --weights FILE without checking its SHA-256")
    evolve.add_argument("--init-image", metavar="FILE",
                        help="start the optimiser from this image's code (gradient inversion)")
    evolve.add_argument("--init-from-characterisation", metavar="RUN",
                        help="start the optimiser from the code of the unit's preferred stimulus in this "
                             "characterisation run (xdream characterise; gradient inversion)")
    evolve.add_argument("--init-unit", metavar="UNIT",
                        help="with --init-from-characterisation: the run's unit to use "
                             "(default: its only unit, or the --target unit)")
    evolve.add_argument("--init-class", type=int, metavar="N",
                        help="class-conditional generators: start from ImageNet class N (the generator's init_class)")
    evolve.add_argument("--optimizer", help="optimiser name (xdream list)")
    evolve.add_argument("--population", type=int, help="optimiser population size")
    evolve.add_argument("--generations", type=int, help="number of generations")
    evolve.add_argument("--budget", type=int, help="total evaluations (instead of generations)")
    common.add_noise(evolve, help="simulated response noise (options with --set noise.level=0.5)")
    common.add_reference_folder(evolve, "natural reference images shown in every generation "
                                        "(default: scikit-image's photographs)")
    evolve.add_argument("--reference-per-generation", type=int, metavar="N",
                        help="natural reference images per generation, scored but never told to the optimiser "
                             "(default 2 when --reference-folder is given; 0: none)")
    evolve.add_argument("--unscored", choices=("nan-policy", "reshow"),
                        help="images with no valid response: the optimiser's NaN policy acts, or they are shown "
                             "again before it is told (--set reshow_attempts=N, default 1)")
    common.add_seed(evolve)
    common.add_output(evolve)
    common.add_device(evolve)
    evolve.add_argument("--threads", type=int, metavar="N",
                        help="torch threads (default: one per core, or OMP_NUM_THREADS if set); recorded in the "
                             "run's config.toml, so --resume reuses it")
    evolve.add_argument("--thread", action="append", default=[], metavar="KEY=VALUE,...",
                        help="add an evolution thread to a session, e.g. name=faces,generator=dcgan-faces,"
                             "optimizer=genetic,target=ch0 (target=A+B: averaged); repeatable; --target is then "
                             "the session responder's (e.g. a rig's endpoint)")
    evolve.add_argument("--units", metavar="LIST",
                        help="with --target MODEL:LAYER: evolve one thread per channel in one job (shared model, "
                             "batched forward passes), e.g. 0:64 (channels 0-63) or 3,7,12")
    common.add_set(evolve, "any config value, e.g. optimizer.mutation_rate=0.3")
    common.add_quiet(evolve)
    evolve.add_argument("--live-report", action="store_true",
                        help="rewrite RUN_DIR/report.html after every generation (the page refreshes itself)")


def config_from_args(args) -> ExperimentConfig:
    data = read_toml(args.config) if args.config else ExperimentConfig().to_dict()
    if args.budget is not None and args.generations is not None:
        raise ConfigError(f"--generations {args.generations} and --budget {args.budget} are mutually exclusive; "
                          "give one")
    for flag, other in (("budget", "generations"), ("generations", "budget")):
        if getattr(args, flag) is not None:
            data.pop(other, None)  # a flag replaces the file's choice of run length
    for flag, key in FLAG_KEYS.items():
        value = getattr(args, flag)
        if value is not None:
            if flag == "weights":
                key = _weights_key(data)
            if key.startswith("noise.") and "noise" not in data:
                data["noise"] = {}
            set_dotted(data, key, value)
    if getattr(args, "no_verify", False):
        set_dotted(data, "generator.verify", False)
    for key, value in common.parse_set(args.set):
        set_dotted(data, key, value)
    return ExperimentConfig.from_dict(data)


def _weights_key(data: dict) -> str:
    """``--weights`` belongs to the generator when it declares weights files (the capability
    ``Generator.weights_files``), else to the responder (e.g. a torchvision model's file)."""
    generator = data.get("generator", {})
    name = generator.get("name") if isinstance(generator, dict) else generator
    return "generator.weights" if registry.load("generator", name).weights_files else "responder.weights"


def run(args) -> int:
    from xdream.cli.evolve_session import session_config, wants_session
    from xdream.evolve.experiment import Experiment
    from xdream.evolve.session import KIND, Session
    from xdream.runs.rundir import RunDir

    if args.resume:
        others = [f"--{f.replace('_', '-')}" for f in FLAG_KEYS if getattr(args, f) is not None]
        others += (["--set"] if args.set else []) + (["--no-verify"] if args.no_verify else [])
        others += (["--thread"] if args.thread else []) + (["--units"] if args.units else [])
        if args.config or others:
            raise ConfigError(f"--resume continues a run with its saved config; drop {' '.join(others) or args.config}")
        if args.restart and (args.repair or args.allow_changed):
            raise ConfigError("--restart starts the run over; drop --repair / --allow-changed")
        kind = Session if RunDir.kind_of(args.resume) == KIND else Experiment
        experiment = kind.resume(args.resume, allow_changed=args.allow_changed, repair=args.repair,
                                 restart=args.restart)
        print(f"resuming {experiment.run_dir.path} at generation {experiment.generation}", file=sys.stderr)
    else:
        for flag in ("allow_changed", "repair", "restart"):
            if getattr(args, flag):
                raise ConfigError(f"--{flag.replace('_', '-')} needs --resume RUN_DIR")
        session = wants_session(args)
        config = session_config(args) if session else config_from_args(args)
        if config.threads is None:
            config.threads = default_threads()
        experiment = Session(config) if session else Experiment(config, progress=not args.quiet)
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
        print(abort_message(experiment), file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
        experiment.close()
    print("\n".join(summary.lines()))
    return 130 if summary.stopped_early else 0


def abort_message(experiment) -> str:
    """What a second Ctrl-C leaves: the generations the checkpoint on disk holds."""
    n = experiment.checkpointed
    held = f"the checkpoint holds generations 0-{n - 1}" if n else "no generation was checkpointed yet"
    return f"aborted; {held}: xdream evolve --resume {experiment.run_dir.path}"
