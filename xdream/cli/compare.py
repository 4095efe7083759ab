"""``xdream compare``: evolution vs gradient ascent vs natural images on one target.

    xdream compare [--preset default|quick] [--optimizers A,B] [--gradient featurevis,latent] [--reference-folder DIR] ...
"""

from __future__ import annotations

import sys

from xdream.cli import common
from xdream.config import defaults


def add_parser(commands) -> None:
    c = commands.add_parser("compare", help="evolution vs gradient ascent vs natural images on one target")
    c.set_defaults(handler=run)
    c.add_argument("--preset", default="default", help="default (full, minutes) or quick (a pipeline check)")
    compare = defaults("compare")
    common.add_target(c, help=f"MODEL:LAYER:CHANNEL[:Y:X] (default {compare['target']})")
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


def run(args) -> int:
    from xdream.compare.comparison import Comparison, settings_for, table_markdown
    from xdream.report import write_report

    overrides = dict(target=args.target, generator=args.generator, generations=args.generations, steps=args.steps,
                     latent_steps=args.latent_steps, batch=args.batch, reference=args.reference_folder, seed=args.seed)
    if args.optimizers is not None:
        overrides["optimizers"] = common.names(args.optimizers)
    if args.gradient is not None:
        overrides["gradient"] = common.names(args.gradient)
    comparison = Comparison(settings_for(args.preset, **overrides), args.output)
    print(f"output: {comparison.run.path}", file=sys.stderr)
    try:
        results = comparison.run_all(progress=not args.quiet)
    finally:
        comparison.close()
    report = write_report(comparison.run.path)
    print(table_markdown(results) + f"report: {report}")
    return 0
