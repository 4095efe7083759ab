"""What every command shares: the ``--set KEY=VALUE`` grammar and the common flags.

One grammar for every command: ``KEY=VALUE`` with a dotted ``KEY`` (``optimizer.population``,
``noise.level``) and ``VALUE`` a TOML literal (``3``, ``0.5``, ``true``, ``"text"``, ``[0, 90]``);
anything that is not a TOML literal is taken as a plain string.
"""

from __future__ import annotations

import argparse
import tomllib

from xdream.core.errors import ConfigError


def parse_value(text: str):
    """A --set value as a TOML literal (numbers, booleans, quoted strings), else a plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_set(items: list[str]) -> list[tuple[str, object]]:
    """``--set`` items as (dotted key, value) pairs; a missing ``=`` or key is a one-line error."""
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set needs KEY=VALUE, got {item!r}")
        pairs.append((key.strip(), parse_value(value.strip())))
    return pairs


def path_value(text: str) -> str:
    """A path flag's value (``type=`` of --output, the weights flags and the other path flags): an empty one (an unset
    shell variable) is refused, not taken as "not given" or as the current folder."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the path is empty; give a file or folder, or leave the flag out")
    return text


# -- flags more than one command declares: one definition each -----------------------------------
def add_target(parser, default: str | None = None, help: str | None = None) -> None:
    parser.add_argument("--target", default=default, help=help or "target unit, e.g. MODEL:LAYER:CHANNEL[:Y:X]")


def add_generator(parser, help: str = "generator name (xdream list)", default: str | None = None) -> None:
    parser.add_argument("--generator", default=default, help=help)


def add_weights(parser, help: str = "the target network's local weights file (a torchvision state dict, "
                                   "caffenet.pt); --weights is the same flag here, where only the target loads one") -> None:
    """``--target-weights FILE`` for commands whose only weights are the target's (``--weights``
    there is unambiguous and kept; ``xdream evolve`` takes the generator's file separately)."""
    parser.add_argument("--target-weights", "--weights", dest="weights", metavar="FILE", type=path_value, help=help)


def add_noise(parser, help: str = "simulated response noise") -> None:
    from xdream.core import registry

    parser.add_argument("--noise", metavar="NAME", help=f"{help}: {', '.join(registry.available('noise'))}")


def add_reference_folder(parser, help: str) -> None:
    """``--reference-folder DIR`` (``--reference`` is the same flag, kept for older scripts)."""
    parser.add_argument("--reference-folder", "--reference", dest="reference_folder", metavar="DIR", type=path_value,
                        help=help)


def add_seed(parser, default: int | None = None, help: str = "master seed") -> None:
    parser.add_argument("--seed", type=int, default=default, help=help)


def add_output(parser, help: str = "run directory (must not exist or be empty)") -> None:
    parser.add_argument("--output", metavar="DIR", type=path_value, help=help)


def add_device(parser, default: str | None = None) -> None:
    parser.add_argument("--device", default=default, help="torch device (default cpu)")


def add_set(parser, help: str) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=help + " (repeatable)")


def add_quiet(parser, help: str = "no progress bar") -> None:
    parser.add_argument("--quiet", action="store_true", help=help)


def names(text: str | None) -> list[str]:
    """A comma-separated list of names (``--optimizers genetic,cmaes``)."""
    return [n.strip() for n in text.split(",") if n.strip()] if text else []
