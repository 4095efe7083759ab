"""The ``gradient``, ``compare`` and ``report`` commands of the ``xdream`` CLI.

    xdream gradient [--method featurevis|pixel|latent|deepdream] [--target SPEC] [--objective unit|channel|layer|class:N] ...
    xdream compare  [--preset default|quick] [--optimizers genetic,cmaes] [--gradient featurevis,latent] [--reference DIR] ...
    xdream report   RUN_DIR [--watch]
"""

from __future__ import annotations

import sys

from xdream.config import DEFAULT_TARGET


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()] if text else []


def add_parser(commands) -> None:
    """The gradient, compare and report commands."""
    g = commands.add_parser("gradient", help="gradient-ascent feature visualisation of a target unit")
    g.set_defaults(handler=_gradient)
    g.add_argument("--method", default="featurevis", help="featurevis (Lucid), pixel, latent or deepdream")
    g.add_argument("--target", default=DEFAULT_TARGET, help="MODEL:LAYER:CHANNEL[:Y:X]")
    g.add_argument("--weights", metavar="FILE", help="local weights file for a torchvision model")
    g.add_argument("--objective", help="unit (default), channel, layer (DeepDream's default) or class:N")
    g.add_argument("--steps", type=int, help="steps (per octave for deepdream); default 512, latent 256, deepdream 32")
    g.add_argument("--lr", type=float, default=0.05, help="Adam learning rate (default 0.05)")
    g.add_argument("--size", type=int, default=128, help="image size in px (default 128)")
    g.add_argument("--batch", type=int, default=1, help="images optimised together")
    g.add_argument("--generator", default="dcgan-faces", help="latent: the generator to ascend through")
    g.add_argument("--image", metavar="FILE", help="deepdream: the photo (default scikit-image's chelsea)")
    g.add_argument("--octaves", type=int, default=4, help="deepdream octaves (default 4)")
    g.add_argument("--octave-scale", type=float, default=1.4, help="deepdream octave scale (default 1.4)")
    for name in ("tv", "l1", "blur"):
        g.add_argument(f"--{name}", type=float, default=0.0, help=f"weight of the {name} penalty (default 0)")
    g.add_argument("--transforms", action=__import__("argparse").BooleanOptionalAction, default=None,
                   help="Lucid's standard transforms (default on for images, off for latent)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--output", metavar="DIR", help="output folder (must not exist or be empty)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")

    c = commands.add_parser("compare", help="evolution vs gradient ascent vs natural images on one target")
    c.set_defaults(handler=_compare)
    c.add_argument("--preset", default="default", help="default (full, minutes) or quick (a pipeline check)")
    c.add_argument("--target", help="MODEL:LAYER:CHANNEL[:Y:X]")
    c.add_argument("--generator", help="generator for evolution and latent ascent (default dcgan-faces)")
    c.add_argument("--optimizers", help="comma-separated evolution optimisers (default genetic,cmaes)")
    c.add_argument("--gradient", help="comma-separated gradient methods (default featurevis,latent)")
    c.add_argument("--generations", type=int, help="generations per evolution run")
    c.add_argument("--steps", type=int, help="featurevis / pixel steps")
    c.add_argument("--latent-steps", type=int, help="latent ascent steps")
    c.add_argument("--batch", type=int, help="images per gradient run")
    c.add_argument("--reference", metavar="DIR", help="folder of natural images (default: scikit-image's photos)")
    c.add_argument("--seed", type=int)
    c.add_argument("--output", metavar="DIR", help="output folder (must not exist or be empty)")
    c.add_argument("--quiet", action="store_true", help="no progress bars")

    r = commands.add_parser("report", help="write RUN_DIR/report.html (self-contained) and PNG figures of an "
                                           "evolution, gradient, compare or characterise run")
    r.set_defaults(handler=_report)
    r.add_argument("run_dir", metavar="RUN_DIR")
    r.add_argument("--watch", action="store_true", help="keep the page current until the evolution ends")


def _gradient(args) -> int:
    from xdream.core import registry
    from xdream.gradient.baselines import GradientSettings, create_dir, default_output, prepare, run_gradient, write_gradient_dir
    from xdream.report import write_report

    settings = GradientSettings(
        method=args.method, objective=args.objective, steps=args.steps, lr=args.lr, size=args.size, batch=args.batch,
        seed=args.seed, transforms=args.transforms, tv=args.tv, l1=args.l1, blur=args.blur,
        generator={"name": args.generator}, image=args.image, octaves=args.octaves, octave_scale=args.octave_scale,
    )
    settings.validate()
    options = {"target": args.target, **({"weights": args.weights} if args.weights else {})}
    responder = registry.create("responder", "torch-unit", options)
    parts = prepare(responder, settings)
    run = create_dir(args.output or default_output(args.method), settings)
    print(f"output: {run.path}", file=sys.stderr)
    outcome = run_gradient(responder, settings, parts, progress=not args.quiet)
    write_gradient_dir(run.path, settings, responder, outcome, run=run)
    report = write_report(run.path)
    print(f"{settings.method} on {args.target}: best activation {outcome.scores.max():.4g} "
          f"({outcome.steps} steps, {outcome.seconds:.1f} s)\nreport: {report}")
    return 0


def _compare(args) -> int:
    from xdream.compare.comparison import Comparison, settings_for, table_markdown
    from xdream.report import write_report

    overrides = dict(target=args.target, generator=args.generator, generations=args.generations, steps=args.steps,
                     latent_steps=args.latent_steps, batch=args.batch, reference=args.reference, seed=args.seed)
    if args.optimizers is not None:
        overrides["optimizers"] = _names(args.optimizers)
    if args.gradient is not None:
        overrides["gradient"] = _names(args.gradient)
    comparison = Comparison(settings_for(args.preset, **overrides), args.output)
    print(f"output: {comparison.run.path}", file=sys.stderr)
    try:
        results = comparison.run_all(progress=not args.quiet)
    finally:
        comparison.close()
    report = write_report(comparison.run.path)
    print(table_markdown(results) + f"report: {report}")
    return 0


def _report(args) -> int:
    from xdream.report import watch, write_report

    if args.watch:
        print(f"watching {args.run_dir}; Ctrl-C to stop", file=sys.stderr)
        try:
            print(watch(args.run_dir))
        except KeyboardInterrupt:
            pass
        return 0
    print(write_report(args.run_dir))
    return 0

