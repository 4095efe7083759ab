"""``xdream compare``: evolution vs gradient ascent vs natural images on one target.

    xdream compare [--preset default|quick] [--optimizers A,B] [--gradient featurevis,latent] [--reference-folder DIR] ...
    xdream compare --from-session RUN [--threads A,B] [--output DIR]     the threads of one run, nothing run again
"""

from __future__ import annotations

import sys

from xdream.cli import common
from xdream.config import defaults
from xdream.core.errors import ConfigError, WeightsError


def add_parser(commands) -> None:
    c = commands.add_parser("compare", help="evolution vs gradient ascent vs natural images on one target")
    c.set_defaults(handler=run)
    c.add_argument("--preset", help="default (full, minutes; the default) or quick (a pipeline check)")
    compare = defaults("compare")
    common.add_target(c, help="MODEL:LAYER:CHANNEL[:Y:X] (a unit) or MODEL:LAYER[:Y:X] (the mean over a layer's "
                      f"channels; default {compare['target']}, --preset quick: {compare['quick_target']})")
    common.add_generator(c, help=f"generator for evolution and latent ascent (default {compare['generator']})")
    c.add_argument("--optimizers", help=f"comma-separated evolution optimisers (default {','.join(compare['optimizers'])})")
    c.add_argument("--gradient", help="comma-separated gradient methods (default featurevis,latent)")
    c.add_argument("--generations", type=int, help="generations per evolution run")
    c.add_argument("--steps", type=int, help="featurevis / pixel steps")
    c.add_argument("--latent-steps", type=int, help="latent ascent steps")
    c.add_argument("--batch", type=int, help="images per gradient run")
    common.add_reference_folder(c, "folder of natural images (default: scikit-image's photos)")
    common.add_seed(c)
    common.add_output(c, help="output folder (must not exist or be empty)")
    common.add_quiet(c, help="no progress bars")
    c.add_argument("--from-session", metavar="RUN", type=common.path_value,
                   help="compare the threads of the session (or one-thread run) RUN from what it recorded "
                        "(runs nothing; takes only --threads and --output)")
    c.add_argument("--threads", metavar="A,B", help="with --from-session: the threads to compare (default all)")


#: The flags that choose what a new comparison runs (refused with --from-session, which runs nothing).
RUN_FLAGS = ("preset", "target", "generator", "optimizers", "gradient", "generations", "steps", "latent_steps",
             "batch", "reference_folder", "seed")


def run(args) -> int:
    from xdream.compare.comparison import Comparison, settings_for, table_markdown
    from xdream.report import write_report

    if args.from_session is not None or args.threads is not None:
        return from_session(args)

    overrides = dict(target=args.target, generator=args.generator, generations=args.generations, steps=args.steps,
                     latent_steps=args.latent_steps, batch=args.batch, reference=args.reference_folder, seed=args.seed)
    if args.optimizers is not None:
        overrides["optimizers"] = common.names(args.optimizers)
    if args.gradient is not None:
        overrides["gradient"] = common.names(args.gradient)
    settings = settings_for(args.preset or "default", **overrides)
    check_weights(settings)
    comparison = Comparison(settings, args.output)
    print(f"output: {comparison.run.path}", file=sys.stderr)
    try:
        results = comparison.run_all(progress=not args.quiet)
    finally:
        comparison.close()
    report = write_report(comparison.run.path)
    print(table_markdown(results) + f"report: {report}")
    return 0


def check_weights(settings) -> None:
    """Refuse a comparison whose generator (evolution, latent ascent) or target network loads a
    weights file missing here, before anything is written (an evolution run loads its generator
    after the folder is made): one line naming each file and how to get it. Compare takes no
    local weights file, so the hint is the caches (``xdream.weights.needed``), not evolve's flags."""
    from xdream.core import registry
    from xdream.weights.needed import needed_files

    plugins = [("responder", registry.responder_for_target(settings.target), {"target": settings.target})]
    if settings.optimizers or "latent" in settings.gradient:
        plugins.insert(0, ("generator", settings.generator, {}))
    missing = [f for kind, name, options in plugins for f in needed_files(kind, name, options) if not f.present]
    if missing:
        files = "; ".join(f"{f.what} at {f.path} ({f.how})" for f in missing)
        raise WeightsError(f"compare needs weights files missing here: {files}; xdream compare takes no weights "
                           "file flags: it loads each from the cache named (XDREAM_HOME sets xdream's)")


def from_session(args) -> int:
    from xdream.compare.comparison import RECORDED, compare_session, table_markdown
    from xdream.report import write_report

    if args.from_session is None:
        raise ConfigError("--threads chooses threads of a session: give the session with --from-session RUN")
    given = [f"--{k.replace('_', '-')}" for k in RUN_FLAGS if getattr(args, k) is not None]
    if given:
        raise ConfigError(f"--from-session compares what the session recorded and runs nothing, so it takes no "
                          f"{given[0]}; give only --threads and --output")
    threads = common.names(args.threads) if args.threads is not None else None
    if args.threads is not None and not threads:
        raise ConfigError(f"--threads {args.threads!r} names no thread; give names separated by commas")
    out, results = compare_session(args.from_session, args.output, threads)
    report = write_report(out.path)
    print(table_markdown(results, f"activation ({RECORDED})") + f"report: {report}")
    return 0
