"""The ``xdream characterise TARGET...`` subcommand (wired into :mod:`xdream.cli`).

    xdream characterise efficientnet_lite0:_blocks.4:3               one unit, default preset
    xdream characterise efficientnet_lite0:_blocks.0 efficientnet_lite0:_blocks.1   whole layers
    xdream characterise TARGET --preset coarse --noise poisson --set noise.gain=2 --set repeats=8
    xdream characterise TARGET --set 'frequencies={start=1, stop=9, step=1}' --set red_green=true

``--set KEY=VALUE`` sets a protocol value (``repeats``, ``hues``, ``orientations``, ...), a noise
option (``noise.gain``) or a responder option (``responder.input_size``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from xdream.cli import common
from xdream.core.errors import ConfigError
from xdream.characterise.classify import METHODS
from xdream.characterise.protocol import PRESETS, Protocol


def add_parser(commands) -> None:
    p = commands.add_parser("characterise", help="tuning curves and colour/spatial opponency of units or whole layers")
    p.set_defaults(handler=run)
    p.add_argument("targets", nargs="+", metavar="TARGET",
                   help="MODEL:LAYER:CHANNEL[:Y:X] (one unit) or MODEL:LAYER[:Y:X] (every channel of a layer)")
    p.add_argument("--preset", default="default", help=f"stimulus protocol: {', '.join(PRESETS)} (default: default)")
    common.add_noise(p, help="simulated response noise (needs repeats >= 2, unless --method exact)")
    common.add_weights(p)
    p.add_argument("--size", type=int, help="stimulus size in px, at most 2048 (default: the model's input size)")
    p.add_argument("--batch-size", type=int, default=64, help="images per responder call (default 64)")
    p.add_argument("--method", default="auto", help=f"classification rule: {', '.join(METHODS)} (default auto)")
    p.add_argument("--alpha", type=float,
                   help="error rate of the statistical test (default 0.05; ttest, and auto on noisy units; refused "
                   "with exact)")
    common.add_seed(p, default=0, help="master seed (presentation order, noise)")
    common.add_output(p)
    common.add_device(p, default="cpu")
    common.add_set(p, "protocol value (repeats=5, hues=[0,90]), noise.KEY or responder.KEY")
    p.add_argument("--no-unit-plots", action="store_true", help="skip the per-unit tuning plots (large layers)")
    common.add_quiet(p)


def run(args) -> int:
    from xdream.characterise.run import Settings, characterise, target_responder
    from xdream.runs.rundir import new_run_path

    if args.alpha is not None and args.method == "exact":
        raise ConfigError(f"--alpha {args.alpha} is not used by method 'exact'; methods that use it: auto (on noisy "
                          "units), ttest")
    alpha = Settings.alpha if args.alpha is None else args.alpha
    tables = {"protocol": {"preset": args.preset}, "noise": {}, "responder": {}}
    for key, value in common.parse_set(args.set):
        table, dot, sub = key.partition(".")
        if dot and table not in ("noise", "responder"):
            raise ConfigError(f"cannot set {key!r}: use a protocol KEY, noise.KEY or responder.KEY")
        if dot:
            tables[table][sub] = value
        else:
            tables["protocol"][key] = value
    if tables["noise"] and args.noise is None:
        raise ConfigError("noise options given without --noise NAME (xdream list: noises)")
    protocol = Protocol.from_dict(tables["protocol"])
    noise = {"name": args.noise, **tables["noise"]} if args.noise else None
    settings = Settings(seed=args.seed, size=args.size, batch_size=args.batch_size, method=args.method,
                        alpha=alpha, unit_plots=not args.no_unit_plots, noise=noise)
    settings.validate(protocol)
    settings.noise_model()
    options = dict(tables["responder"])
    if args.weights:
        options["weights"] = args.weights
    targets = {t: target_responder(t, options, args.device) for t in dict.fromkeys(args.targets)}
    output = Path(args.output or new_run_path("characterise"))
    config = {"seed": args.seed, "targets": list(targets), "method": args.method, "alpha": alpha,
              "batch_size": args.batch_size, **({"size": args.size} if args.size else {}),
              "protocol": protocol.to_dict(), **({"noise": noise} if noise else {}),
              **({"responder": options} if options else {})}
    try:
        settings.check_fits(targets, protocol)  # before the run directory is named
        print(f"run directory: {output}", file=sys.stderr)
        results, summary = characterise(targets, protocol, settings, output, config=config, progress=not args.quiet)
    finally:
        for responder in targets.values():
            responder.close()
    from xdream.characterise.outputs import summary_text

    print(summary_text(summary))
    print(f"results: {output}  (classification.csv, layer_summary.csv/.png, responses/, plots/, stimuli.png); "
          f"HTML page: xdream report {output}")
    return 0
