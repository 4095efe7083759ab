"""``xdream list`` (every registered plugin) and ``xdream layers MODEL`` (what a target may name)."""

from __future__ import annotations

from xdream.cli import common
from xdream.core import registry
from xdream.core.errors import ConfigError


def add_parser(commands) -> None:
    commands.add_parser("list", help="list registered plugins").set_defaults(handler=list_plugins)
    layers = commands.add_parser("layers", help="list a CNN's layers and output shapes")
    layers.set_defaults(handler=list_layers)
    layers.add_argument("model", help="a model name a responder knows (e.g. a torchvision classifier)")
    common.add_weights(layers)


def list_plugins(args) -> int:
    """Every registered plugin by kind; then the optimisers that state their cost (``summary``)."""
    for kind in registry.GROUPS:
        print(f"{kind + 's':12s} {', '.join(registry.available(kind))}")
    for name in registry.available("optimizer"):
        summary = getattr(registry.load("optimizer", name), "summary", None)
        if summary:
            print(f"  {name}: {summary}")
    return 0


def list_layers(args) -> int:
    """The layers of MODEL from the first registered responder that knows models (``list_layers``)."""
    for name in registry.available("responder"):
        layers = registry.load("responder", name).list_layers(args.model, weights=args.weights)
        if layers is not None:
            for layer, shape in layers:
                print(f"{layer:40s} {tuple(shape)}")
            return 0
    raise ConfigError("no registered responder lists the layers of models (xdream list: responders)")
