"""``xdream evolve``: run (or resume) an evolution of one or several threads from the defaults,
a config file and flags.

    xdream evolve [CONFIG.toml] [--generator G] [--target SPEC] [--optimizer O] ...
    xdream evolve --resume RUN_DIR [--allow-changed KEY] [--repair | --restart]   (docs/runs.md)
    xdream evolve --target T --init-from-characterisation RUN   start from T's preferred grating / hue
    xdream evolve SESSION.toml                                   [[thread]] tables (xdream.config)
    xdream evolve --target MODEL:LAYER --units 0:64              one thread per channel, one job
    xdream evolve --preset xdream | wang-ponce | wang-ponce-sphere | wang-ponce-ga   a published setup
    xdream evolve --set responder.name=zmq --target tcp://HOST:PORT \\
        --thread name=faces,generator=dcgan-faces,optimizer=genetic,target=ch0 \\
        --thread name=fourier,generator=fourier,optimizer=cmaes,target=ch1+ch2
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from pathlib import Path

from xdream.cli import common
from xdream.config import PROVIDED, ExperimentConfig, defaults, is_session, presets, read_toml, set_dotted
from xdream.config.experiment import PLUGINS, THREAD_KEYS
from xdream.core import registry
from xdream.core.errors import ConfigError, XDreamError, choices_text
from xdream.core.threads import default_threads
from xdream.weights.needed import check_preset_files

# CLI flag -> dotted config key it sets
FLAG_KEYS = {
    "generator": "generator.name",
    "target": "responder.target",
    "generator_weights": "generator.weights",
    "target_weights": "responder.weights",
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
    evolve.add_argument("config", nargs="?",
                        help="TOML config file (defaults: the embedded demo job); flags and --set override its values")
    evolve.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or crashed run")
    evolve.add_argument("--preset", metavar="NAME",
                        help=f"a published setup ({', '.join(presets.names())}; README 'Published setups'): its "
                             "generator, target, optimiser and length; flags and --set override them")
    evolve.add_argument("--allow-changed", action="append", default=[], metavar="KEY",
                        help="with --resume: continue although config KEY (e.g. generations) differs from the "
                             "checkpoint's (repeatable)")
    evolve.add_argument("--repair", action="store_true",
                        help="with --resume: rebuild a damaged or missing log.jsonl from the checkpoint's copy")
    evolve.add_argument("--restart", action="store_true",
                        help="with --resume: move the run's results into RUN_DIR/discarded-<time>/ and start over")
    common.add_generator(evolve)
    common.add_target(evolve, help="responder target, e.g. MODEL:LAYER:CHANNEL[:Y:X]")
    evolve.add_argument("--generator-weights", metavar="FILE", type=common.path_value,
                        help="the generator's local weights file (config: [generator] weights), e.g. DeePSiM's "
                             "upconvGAN_fc6.pt; verified against the published SHA-256 unless --no-verify")
    evolve.add_argument("--target-weights", metavar="FILE", type=common.path_value,
                        help="the target network's local weights file (config: [responder] weights), e.g. a "
                             "torchvision state dict or caffenet.pt; its keys and shapes are checked")
    evolve.add_argument("--weights", metavar="FILE", help=argparse.SUPPRESS)  # refused: names the two above
    evolve.add_argument("--no-verify", action="store_true",
                        help="load --generator-weights FILE without checking the published SHA-256 (weights of your "
                             "own; a pinned generator.sha256 is still checked)")
    evolve.add_argument("--init-image", metavar="FILE", type=common.path_value,
                        help="start the optimiser from this image's code (gradient inversion)")
    evolve.add_argument("--init-from-characterisation", metavar="RUN", type=common.path_value,
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
                                        "(default: scikit-image's photographs; with neither this flag nor "
                                        "--reference-per-generation, a run shows no reference images)")
    evolve.add_argument("--reference-per-generation", type=int, metavar="N",
                        help="natural reference images per generation, scored but never told to the optimiser "
                             "(default 2 when --reference-folder is given, none without either flag; 0: none)")
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
                             "the session responder's (e.g. a rig's endpoint); --generator, --optimizer, --population "
                             "and --set generator/optimizer.KEY set the default of threads that name none")
    evolve.add_argument("--units", metavar="LIST",
                        help="with --target MODEL:LAYER: evolve one thread per channel in one job (shared model, "
                             "batched forward passes), e.g. 0:64 (channels 0-63) or 3,7,12")
    common.add_set(evolve, "any config value, e.g. optimizer.mutation_rate=0.3")
    common.add_quiet(evolve)
    evolve.add_argument("--live-report", action="store_true",
                        help="rewrite RUN_DIR/report.html after every generation (the page refreshes itself)")


def refuse_weights(args) -> None:
    """The old ``--weights FILE``: one line naming the two options that replaced it."""
    if getattr(args, "weights", None) is not None:
        raise ConfigError("--weights is ambiguous in xdream evolve (a run loads a generator and a target network); "
                          "give --generator-weights FILE (config: [generator] weights) or --target-weights FILE "
                          f"(config: [responder] weights); got --weights {args.weights}")


def config_from_args(args) -> ExperimentConfig:
    """The run the config file and the flags describe: one thread, or a session of several
    (``[[thread]]`` tables, ``--thread`` or ``--units``) whose flags set the shared settings and
    the defaults of every thread without a table of its own; or a published setup (``--preset``,
    one thread) that the flags override."""
    refuse_weights(args)
    preset = getattr(args, "preset", None)
    if preset and args.config:
        raise ConfigError(f"--preset {preset} and the config file {args.config} both describe the run; give one")
    session = bool(args.thread or args.units) or (bool(args.config) and is_session(read_toml(args.config)))
    if preset and session:
        raise ConfigError(f"--preset {preset} describes a one-thread run; drop --thread / --units")
    for flag in ONE_THREAD_ONLY if session else ():
        if getattr(args, flag) is not None:
            raise ConfigError(f"--{flag.replace('_', '-')} starts a one-thread run; a session of several threads "
                              "cannot take it")
    if preset:
        data = presets.preset_config(preset)
    else:
        data = read_toml(args.config) if args.config else {} if session else ExperimentConfig().to_dict()
    if args.budget is not None and args.generations is not None:
        raise ConfigError(f"--generations {args.generations} and --budget {args.budget} are mutually exclusive; "
                          "give one")
    if session:
        _add_threads(data, args)
    for flag, other in (("budget", "generations"), ("generations", "budget")):
        if getattr(args, flag) is not None:
            data.pop(other, None)  # a flag replaces the file's choice of run length
    for flag, key in FLAG_KEYS.items():
        value = getattr(args, flag)
        if value is not None and not (session and flag == "target"):  # a session's target: _add_threads
            if "." in key and (session or key.endswith(".name")):  # a flag naming a plugin makes its table
                data.setdefault(key.split(".")[0], {})
            set_dotted(data, key, value)
    verify = [("generator.verify", False)] if getattr(args, "no_verify", False) else []
    for key, value in verify + common.parse_set(args.set):
        if session and "." in key and key.split(".")[0] in PLUGINS:
            data.setdefault(key.split(".")[0], {})
        set_dotted(data, key, value)
    if session:
        _refuse_unused_defaults(data, args)
        _name_tables(data)
    if getattr(args, "no_verify", False):
        _refuse_no_verify(data["generator"].get("name"))
    _unmark_described(data, args)
    return ExperimentConfig.from_dict(data)


def _refuse_unused_defaults(data: dict, args) -> None:
    """A flag that sets the session's top-level generator or optimizer, the default of threads
    without their own, while every thread names its own: one line, not a setting no thread uses."""
    for kind in ("generator", "optimizer"):
        given = [f"--{flag.replace('_', '-')} {getattr(args, flag)}" for flag, key in FLAG_KEYS.items()
                 if key.startswith(kind + ".") and getattr(args, flag) is not None]
        given += ["--no-verify"] if kind == "generator" and getattr(args, "no_verify", False) else []
        given += [f"--set {item}" for item in args.set if item.strip().startswith(kind + ".")]
        if given and all(kind in thread for thread in data["thread"]):
            raise ConfigError(f"{given[0]} sets the session's default {kind}, which no thread uses (each names its "
                              f"own {kind}); give it in each thread's own {kind} table of a config file, or drop it")


def _refuse_no_verify(name) -> None:
    """``--no-verify`` for a generator without a weights check: one line naming the flag, not the
    config key ``verify`` it sets, and the generators that take it (an unknown name: from_dict says so)."""
    def takes(n: str) -> bool:
        return "verify" in registry.user_options(registry.load("generator", n), PROVIDED["generator"])

    names = registry.available("generator")
    if name in names and not takes(name):  # only then the others are loaded
        raise ConfigError(f"--no-verify: generator {name!r} has no weights check to skip; generators that take it: "
                          f"{choices_text([n for n in names if takes(n)])}")


def _unmark_described(data: dict, args) -> None:
    """A component the flags name (``--target``, ``--generator``, ``--set responder.KEY=...``)
    is described by its table now: drop it from a saved config's ``python_objects`` mark (the
    run that wrote it was given that component as a Python object)."""
    mark = data.get("python_objects")
    if not isinstance(mark, str):
        return
    keys = [key for flag, key in FLAG_KEYS.items() if getattr(args, flag, None) is not None]
    touched = {key.split(".")[0] for key in keys + [key for key, _ in common.parse_set(args.set)]}
    left = [kind for kind in mark.split(",") if kind not in touched]
    if left:
        data["python_objects"] = ",".join(left)
    else:
        data.pop("python_objects")


ONE_THREAD_ONLY = ("init_image", "init_from_characterisation", "init_unit", "init_class")
UNITS_FORM = "START:END (END excluded) or a comma-separated list, e.g. 0:64 or 3,7,12 or 0:8,20"


def parse_units(text: str) -> list[int]:
    """``--units`` as channel numbers: ``0:64`` (0-63), ``3,7,12``, or both mixed."""
    units: list[int] = []
    for part in text.split(","):
        start, sep, end = part.strip().partition(":")
        try:
            numbers = list(range(int(start), int(end))) if sep else [int(start)]
        except ValueError:
            raise ConfigError(f"--units {text!r}: {part.strip()!r} is not a channel or range; expected {UNITS_FORM}") \
                from None
        if sep and int(end) <= int(start) or any(n < 0 for n in numbers):
            raise ConfigError(f"--units {text!r}: {part.strip()!r} is an empty or negative range; expected {UNITS_FORM}")
        units += numbers
    if len(set(units)) != len(units):
        raise ConfigError(f"--units {text!r} names a channel twice; name each once")
    return units


def parse_thread(text: str) -> dict:
    """``--thread name=N,generator=G,optimizer=O,target=T[+T2...]`` as a [[thread]] table."""
    table: dict = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in THREAD_KEYS:
            raise ConfigError(f"--thread {text!r}: {item!r} is not KEY=VALUE with KEY one of "
                              f"{', '.join(THREAD_KEYS)}; e.g. name=faces,generator=dcgan-faces,target=ch0")
        value = value.strip()
        if key == "target":
            targets = value.split("+")
            table[key] = targets[0] if len(targets) == 1 else targets
        elif key == "name":  # a folder name as written: name=1 is the thread "1", not a number
            parsed = common.parse_value(value)
            table[key] = parsed if isinstance(parsed, str) else value
        else:
            table[key] = common.parse_value(value)
    return table


def layer_units(target: str | None, units: list[int]) -> list[dict]:
    """One thread per channel of layer ``target`` (``MODEL:LAYER`` or ``MODEL:LAYER:Y:X``)."""
    parts = (target or "").split(":")
    if len(parts) not in (2, 4) or not all(parts[:2]):
        raise ConfigError(f"--units needs --target MODEL:LAYER (or MODEL:LAYER:Y:X) naming the layer whose "
                          f"channels are evolved, got --target {target!r}")
    model, layer, *position = parts
    return [{"name": f"unit{c}", "target": ":".join([model, layer, str(c), *position])} for c in units]


def _add_threads(data: dict, args) -> None:
    """The session's threads: ``--units`` makes them, ``--thread`` adds to the config's."""
    if args.units:
        if args.thread or is_session(data):
            raise ConfigError("--units makes the session's threads; drop --thread and the config's [[thread]] tables")
        data["thread"] = layer_units(args.target, parse_units(args.units))
    elif args.thread:
        data["thread"] = [*data.get("thread", []), *(parse_thread(t) for t in args.thread)]
        if args.target is not None:  # the session's responder, e.g. a rig's endpoint
            table = data.get("responder", {})
            data["responder"] = {**({"name": table} if isinstance(table, str) else table), "target": args.target}
    elif args.target is not None:
        raise ConfigError("--target with a session config: set each thread's target in its [[thread]] table (or "
                          "the rig's endpoint in [responder])")


def _name_tables(data: dict) -> None:
    """A session's plugin tables that the flags made without a name get the default one (the
    responder: the one that accepts the first thread's target)."""
    for kind in ("generator", "optimizer"):  # e.g. --population alone: the default optimiser's
        if isinstance(data.get(kind), dict) and "name" not in data[kind]:
            data[kind]["name"] = defaults("evolve")[kind]["name"]
    responder = data.get("responder")
    if isinstance(responder, dict) and "name" not in responder:
        first = data["thread"][0].get("target") if data.get("thread") else None
        unit = first if isinstance(first, str) else (first or [None])[0]
        responder["name"] = registry.responder_for_target(unit)


def run(args) -> int:
    from xdream.evolve.experiment import Experiment

    if args.resume:
        refuse_weights(args)  # a new run's flags are checked by config_from_args
        others = [args.config] if args.config else []
        others += [f"--{f.replace('_', '-')}" for f in FLAG_KEYS if getattr(args, f) is not None]
        others += (["--set"] if args.set else []) + (["--no-verify"] if args.no_verify else [])
        others += (["--thread"] if args.thread else []) + (["--units"] if args.units else [])
        others += [f"--preset {args.preset}"] if args.preset else []
        if others:
            raise ConfigError(f"--resume continues a run with its saved config; drop {' '.join(others)}")
        if args.restart and (args.repair or args.allow_changed):
            raise ConfigError("--restart starts the run over; drop --repair / --allow-changed")
        experiment = Experiment.resume(args.resume, allow_changed=args.allow_changed, repair=args.repair,
                                       restart=args.restart)
        print(f"resuming {experiment.run_dir.path} at generation {experiment.generation}", file=sys.stderr)
    else:
        for flag in ("allow_changed", "repair", "restart"):
            if getattr(args, flag):
                raise ConfigError(f"--{flag.replace('_', '-')} needs --resume RUN_DIR")
        config = config_from_args(args)
        if args.preset:
            check_preset_files(args.preset, config)
            print(f"preset {args.preset}: {presets.preset(args.preset)['source']}", file=sys.stderr)
        if config.threads is None:
            config.threads = default_threads()
        if args.config:
            note_changed_run(Path(args.config))
        experiment = Experiment(config, progress=not args.quiet)
        print(f"run directory: {experiment.run_dir.path}", file=sys.stderr)
        warn_failed_inversion(experiment.run_dir.path)

    stop = {"requested": False}

    def on_sigint(signum, frame):
        if stop["requested"]:
            raise KeyboardInterrupt
        stop["requested"] = True
        print("\nstopping after this generation (Ctrl-C again to abort at once)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    live, ended = None, False
    try:
        if args.live_report:
            from xdream.report import write_report

            live = lambda record: write_report(experiment.run_dir.path)  # noqa: E731
            print(f"live report: {experiment.run_dir.path / 'report.html'}", file=sys.stderr)
        summary = experiment.run(progress=not args.quiet, should_stop=lambda: stop["requested"], on_generation=live)
        if live:
            write_report(experiment.run_dir.path)
        ended = True
    except KeyboardInterrupt:
        print(abort_message(experiment), file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
        experiment.close()
        if live and not ended:  # aborted, or ended by an error: the page must not say "running" for good
            with contextlib.suppress(XDreamError):  # a page it cannot write must not hide why the run ended
                write_report(experiment.run_dir.path)
    print("\n".join(summary.lines()))
    return 130 if summary.stopped_early else 0


def warn_failed_inversion(run: Path) -> None:
    """Say so at the start when the run starts from an image whose inversion failed."""
    from xdream.evolve.start import INIT_FILE

    if (run / INIT_FILE).is_file():
        warning = json.loads((run / INIT_FILE).read_text()).get("inversion_warning")
        if warning:
            print(f"warning: {warning}", file=sys.stderr)


def note_changed_run(config: Path) -> None:
    """Say so when the config file is a run's own config.toml and that run was changed on
    resume (``--allow-changed``): this repeats the run as it started, not as it went on."""
    try:
        changes = json.loads((config.parent / "run.json").read_text()).get("changes") or []
    except (OSError, ValueError, AttributeError):
        return
    if changes and config.name == "config.toml":
        shown = ", ".join(f"{c['key']} {c['old']!r} -> {c['new']!r} at generation {c['generation']}" for c in changes)
        print(f"note: {config} is the config the run in {config.parent} started with; that run was changed on "
              f"resume ({shown}), so this run repeats its start, not its changes", file=sys.stderr)


def abort_message(experiment) -> str:
    """What a second Ctrl-C leaves: the generations the checkpoint on disk holds."""
    n = experiment.checkpointed
    held = f"the checkpoint holds generations 0-{n - 1}" if n else "no generation was checkpointed yet"
    return f"aborted; {held}: xdream evolve --resume {experiment.run_dir.path}"
