"""``xdream evolve`` for a session of several threads: the ``--thread`` and ``--units``
shorthands, and the flags that apply to every thread.

    xdream evolve SESSION.toml                                   [[thread]] tables (xdream.config.session)
    xdream evolve --target MODEL:LAYER --units 0:64              one thread per channel, one job
    xdream evolve --set responder.name=zmq --target tcp://HOST:PORT \\
        --thread name=faces,generator=dcgan-faces,optimizer=genetic,target=ch0 \\
        --thread name=fourier,generator=fourier,optimizer=cmaes,target=ch1+ch2
"""

from __future__ import annotations

from xdream.cli import common
from xdream.config import SessionConfig, defaults, is_session, read_toml, set_dotted
from xdream.config.session import THREAD_KEYS
from xdream.core import registry
from xdream.core.errors import ConfigError

#: Flags that set a session's shared settings (flag -> top-level key).
SHARED = {"generations": "generations", "budget": "budget", "seed": "seed", "output": "output", "device": "device",
          "threads": "threads", "unscored": "unscored", "reference_per_generation": "reference.per_generation",
          "reference_folder": "reference.folder"}
#: Flags that set the default of every thread without a table of its own.
THREAD_DEFAULTS = {"generator": "generator.name", "optimizer": "optimizer.name", "population": "optimizer.population"}
ONE_THREAD_ONLY = ("init_image", "init_from_characterisation", "init_unit", "init_class")
UNITS_FORM = "START:END (END excluded) or a comma-separated list, e.g. 0:64 or 3,7,12 or 0:8,20"


def wants_session(args) -> bool:
    return bool(args.thread or args.units) or (bool(args.config) and is_session(read_toml(args.config)))


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


def session_config(args) -> SessionConfig:
    """The session the config file and the flags describe."""
    for flag in ONE_THREAD_ONLY:
        if getattr(args, flag) is not None:
            raise ConfigError(f"--{flag.replace('_', '-')} starts a one-thread run; a session of several threads "
                              "cannot take it")
    data = read_toml(args.config) if args.config else {}
    if args.units:
        if args.thread or is_session(data):
            raise ConfigError("--units makes the session's threads; drop --thread and the config's [[thread]] tables")
        data["thread"] = layer_units(args.target, parse_units(args.units))
    elif args.thread:
        data["thread"] = [*data.get("thread", []), *(parse_thread(t) for t in args.thread)]
        if args.target is not None:  # the session's responder, e.g. a rig's endpoint
            data["responder"] = {**_table(data.get("responder")), "target": args.target}
    elif args.target is not None:
        raise ConfigError("--target with a session config: set each thread's target in its [[thread]] table (or "
                          "the rig's endpoint in [responder])")
    for flag, key in {**SHARED, **THREAD_DEFAULTS}.items():
        value = getattr(args, flag)
        if value is not None:
            table = key.split(".")[0]
            if "." in key and table not in data:
                data[table] = {}
            set_dotted(data, key, value)
    if args.budget is not None:
        data.pop("generations", None)
    if args.generations is not None:
        data.pop("budget", None)
    if args.noise is not None:
        data["noise"] = {**_table(data.get("noise")), "name": args.noise}
    if args.weights is not None:
        data["responder"] = {**_table(data.get("responder")), "weights": args.weights}
    for key, value in common.parse_set(args.set):
        table = key.split(".")[0]
        if "." in key and table in ("responder", "noise", "generator", "optimizer") and table not in data:
            data[table] = {}
        set_dotted(data, key, value)
    for kind in ("generator", "optimizer"):  # e.g. --population alone: the default optimiser's
        if isinstance(data.get(kind), dict) and "name" not in data[kind]:
            data[kind]["name"] = defaults("evolve")[kind]["name"]
    responder = data.get("responder")
    if isinstance(responder, dict) and "name" not in responder:
        first = data["thread"][0].get("target") if data.get("thread") else None
        unit = first if isinstance(first, str) else (first or [None])[0]
        responder["name"] = registry.responder_for_target(unit)
    return SessionConfig.from_dict(data)


def _table(value) -> dict:
    if value is None:
        return {}
    return {"name": value} if isinstance(value, str) else dict(value)
