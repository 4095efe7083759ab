"""Find plugins by name through entry points and build them from validated options.

Groups: ``xdream.generators``, ``xdream.responders``, ``xdream.optimizers``, ``xdream.noise``,
``xdream.rig`` (rig-side commands: ``xdream rig NAME ARGS``).
The core never imports the ``generators`` or ``responders`` packages; it only looks names up
here, so third-party packages add plugins by declaring entry points of their own. A name
registered by two installed packages is an error naming both (never a silent pick of one).
"""

from __future__ import annotations

import inspect
import types
import typing
from importlib.metadata import entry_points

from xdream.core.errors import ConfigError, PluginConflictError, PluginImportError, UnknownNameError, choices_text

GROUPS = {
    "generator": "xdream.generators",
    "responder": "xdream.responders",
    "optimizer": "xdream.optimizers",
    "noise": "xdream.noise",
    "rig": "xdream.rig",
}


def _group(kind: str) -> str:
    if kind not in GROUPS:
        raise UnknownNameError(f"unknown plugin kind {kind!r}; valid: {choices_text(GROUPS)}")
    return GROUPS[kind]


def available(kind: str) -> list[str]:
    """Sorted names registered for a plugin kind."""
    return sorted({ep.name for ep in entry_points(group=_group(kind))})


def load(kind: str, name: str) -> type:
    """The plugin class registered as ``name``; a one-line error lists the valid names, names
    both packages (and their targets) when two register ``name``, or names the package, the
    entry point and the error when the entry point cannot be imported."""
    found = [ep for ep in entry_points(group=_group(kind)) if ep.name == name]
    if not found:
        raise UnknownNameError(f"unknown {kind} {name!r}; valid: {choices_text(available(kind))}")
    if len(found) > 1:
        owners = "; ".join(f"package {_package(ep)} ({ep.value})" for ep in found)
        raise PluginConflictError(f"{kind} {name!r} is registered by more than one installed package: {owners}; "
                                  "uninstall one of them")
    ep = found[0]
    try:
        return ep.load()
    except Exception as e:  # noqa: BLE001 - third-party code: any exception at import is its defect
        error = " ".join(f"{type(e).__name__}: {e}".split())  # one line, even for a multi-line message
        raise PluginImportError(f"{kind} {ep.name!r} of package {_package(ep)} cannot be imported (entry point "
                                f"{ep.name} = {ep.value} in {ep.group}): {error}; fix or uninstall the package") from None


def _package(ep) -> str:
    """The distribution that declares an entry point, as ``name version``."""
    dist = getattr(ep, "dist", None)
    return "(unknown)" if dist is None else f"{dist.name} {dist.version}"


def responder_for_target(spec: str) -> str:
    """The registered responder that records target ``spec`` (the one whose
    ``accepts_target(spec)`` is true); a one-line error when none or several do."""
    classes = {name: load("responder", name) for name in available("responder")}
    names = [name for name, cls in classes.items() if cls.accepts_target(spec)]
    if len(names) > 1:
        raise ConfigError(f"target {spec!r} is accepted by several responders ({', '.join(names)}); "
                          "name one in the config's [responder] table")
    if not names:
        forms = sorted({form for cls in classes.values() if (form := getattr(cls, "target_form", None))})
        raise ConfigError(f"target {spec!r} is malformed; expected {' or '.join(forms) or 'a target spec'}")
    return names[0]


def user_options(cls: type, provided: typing.Iterable[str] = ()) -> dict[str, inspect.Parameter]:
    """Keyword options a user may set on a plugin: its constructor's parameters minus the
    ones the framework provides (such as ``dim`` and ``rng`` for optimisers)."""
    params = inspect.signature(cls.__init__).parameters
    skip = {"self", *provided}
    return {
        n: p
        for n, p in params.items()
        if n not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def check_options(kind: str, name: str, cls: type, options: dict, provided=()) -> None:
    """Validate option names and types against the constructor's signature and annotations."""
    allowed = user_options(cls, provided)
    hints = typing.get_type_hints(cls.__init__)
    for key, value in options.items():
        if key not in allowed:
            raise ConfigError(
                f"unknown option {key!r} for {kind} {name!r}; valid: {choices_text(sorted(allowed)) or '(none)'}"
            )
        if key in hints and not _matches(value, hints[key]):
            raise ConfigError(
                f"{kind} {name!r} option {key!r} must be {_type_name(hints[key])}, got {value!r}"
            )
    missing = [n for n, p in allowed.items() if p.default is p.empty and n not in options]
    if missing:
        raise ConfigError(f"{kind} {name!r} needs option(s): {', '.join(missing)}")


def create(kind: str, name: str, options: dict | None = None, **provided):
    """Build plugin ``name`` with user ``options`` (validated) and framework ``provided`` args."""
    cls = load(kind, name)
    options = dict(options or {})
    check_options(kind, name, cls, options, provided)
    return cls(**provided, **options)


def _matches(value, hint) -> bool:
    """A small runtime type check for the option types plugins use."""
    origin = typing.get_origin(hint)
    if hint is typing.Any or hint is inspect.Parameter.empty:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    if origin in (list, tuple, typing.Sequence):
        return isinstance(value, (list, tuple))
    if origin is not None:
        return isinstance(value, origin)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _type_name(hint) -> str:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        # ``X | None`` means "X, or leave it unset": TOML has no null, so name only X
        args = [h for h in typing.get_args(hint) if h is not type(None)] or [type(None)]
        return " or ".join(_type_name(h) for h in args)
    if hint is type(None):
        return "None"
    return getattr(hint, "__name__", str(hint))
