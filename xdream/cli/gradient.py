"""``xdream gradient``: gradient-ascent feature visualisation of a target unit (Lucid conventions).

    xdream gradient [--method featurevis|pixel|latent|deepdream] [--target SPEC] [--objective unit|channel|layer|class:N] ...
"""

from __future__ import annotations

import argparse
import sys

from xdream.cli import common
from xdream.config import defaults


def add_parser(commands) -> None:
    g = commands.add_parser("gradient", help="gradient-ascent feature visualisation of a target unit")
    g.set_defaults(handler=run)
    g.add_argument("--method", default="featurevis", help="featurevis (Lucid), pixel, latent or deepdream; an option "
                   "the method does not use is refused")
    gradient = defaults("gradient")
    common.add_target(g, default=gradient["target"], help="MODEL:LAYER:CHANNEL[:Y:X] (a unit) or MODEL:LAYER[:Y:X] "
                      f"(the mean over a layer's channels; default {gradient['target']})")
    common.add_weights(g)
    g.add_argument("--objective", help="unit (default: what the target scores), channel (a unit target's), layer "
                   "(DeepDream's default) or class:N")
    g.add_argument("--steps", type=int, help="steps (per octave for deepdream); default 512, latent 256, deepdream 32")
    g.add_argument("--lr", type=float,
                   help="Adam's learning rate (default 0.05); deepdream: its step size (default 0.01)")
    g.add_argument("--size", type=int, default=128,
                   help="featurevis, pixel: image size in px, 8-2048 (default 128); deepdream: the photo is "
                   "twice this (at most 2048)")
    g.add_argument("--batch", type=int, default=1, help="featurevis, pixel, latent: images optimised together")
    common.add_generator(g, default=gradient["generator"],
                         help=f"latent: the generator to ascend through (default {gradient['generator']})")
    g.add_argument("--image", metavar="FILE", type=common.path_value,
                   help="deepdream: the photo (default scikit-image's chelsea)")
    g.add_argument("--octaves", type=int, default=4, help="deepdream octaves (default 4)")
    g.add_argument("--octave-scale", type=float, default=1.4, help="deepdream octave scale (default 1.4)")
    for name, what in (("tv", "total variation"), ("l1", "the L1 distance from mid-grey (0.5)"),
                       ("blur", "the distance from a blurred copy (Lucid's blur)")):
        g.add_argument(f"--{name}", type=float, default=0.0, help=f"weight of the penalty on {what} (default 0)")
    g.add_argument("--transforms", action=argparse.BooleanOptionalAction, default=None,
                   help="featurevis, pixel, latent: Lucid's standard transforms (default on for images, off for "
                   "latent; deepdream has its own jitter)")
    common.add_seed(g, default=0)
    common.add_output(g, help="output folder (must not exist or be empty)")
    common.add_quiet(g)


def run(args) -> int:
    from xdream.core import registry
    from xdream.gradient.baselines import GradientSettings, create_dir, prepare, run_gradient, write_gradient_dir
    from xdream.report import write_report
    from xdream.runs.rundir import new_run_path

    settings = GradientSettings(
        method=args.method, objective=args.objective, steps=args.steps, lr=args.lr, size=args.size, batch=args.batch,
        seed=args.seed, transforms=args.transforms, tv=args.tv, l1=args.l1, blur=args.blur,
        generator={"name": args.generator}, image=args.image, octaves=args.octaves, octave_scale=args.octave_scale,
    )
    settings.validate()
    options = {"target": args.target, **({"weights": args.weights} if args.weights else {})}
    responder = registry.create("responder", registry.responder_for_target(args.target), options)
    parts = prepare(responder, settings)
    run = create_dir(args.output or new_run_path(f"gradient-{args.method}"), settings, args.target)
    print(f"output: {run.path}", file=sys.stderr)
    outcome = run_gradient(responder, settings, parts, progress=not args.quiet)
    write_gradient_dir(run.path, settings, responder, outcome, run=run)
    report = write_report(run.path)
    print(result_lines(settings, args.target, outcome) + f"\nreport: {report}")
    return 0


def result_lines(settings, target: str, outcome) -> str:
    """The two numbers of a gradient run, each named with what it measures: the objective the
    ascent maximised and the unit's activation of the best final image as an evolution scores it;
    they are different quantities (the page says the same)."""
    from xdream.gradient.baselines import ACTIVATION_MEANING

    final = outcome.history[-1]["objective"] if outcome.history else float("nan")
    return (f"{settings.method} on {target} ({outcome.steps} steps, {outcome.seconds:.1f} s):\n"
            f"  objective {outcome.objective} at the last step: {final:.4g} ({settings.objective_meaning})\n"
            f"  unit activation of the best final image: {outcome.scores.max():.4g} ({ACTIVATION_MEANING})")
