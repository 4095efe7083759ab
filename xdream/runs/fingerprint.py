"""What a run was made of, recorded so that a resume can prove it continues the same run.

:func:`config_fingerprint` is the SHA-256 of a config's canonical JSON (the ``output`` path
left out: a run folder may be moved); :func:`config_changes` lists the dotted keys that differ
between two configs (:func:`changed_config_error`: the one line refusing them); :func:`component_record` describes a generator or responder object (its
class, what it says of itself, a SHA-256 of its torch weights), so that a run started with a
custom module records what it actually used.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from xdream.core.errors import RunDirError
from xdream.runs.rundir import CONFIG

#: Config keys that never change what a run computes.
UNCHECKED = ("output",)


def _canonical(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in UNCHECKED}


def config_fingerprint(config: dict) -> str:
    text = json.dumps(_canonical(config), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _flatten(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_changes(then: dict, now: dict) -> dict[str, tuple]:
    """``{dotted key: (value then, value now)}`` for every key that differs (missing: None)."""
    a, b = _flatten(_canonical(then)), _flatten(_canonical(now))
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def changed_config_error(run_path, refused: dict[str, tuple], fixed: dict[str, str]) -> RunDirError:
    """One line for config keys changed since the checkpoint (``refused``, as from
    :func:`config_changes`): every change, then how to go on: ``--allow-changed`` for each key,
    or why the keys in ``fixed`` (``{key: reason}``) can never change."""
    shown = ", ".join(f"{key} {then!r} -> {now!r}" for key, (then, now) in refused.items())
    tail = "".join(f"; {key} cannot change on resume: {why}" for key, why in fixed.items()) if fixed else \
        f", or continue with the change: xdream evolve --resume {run_path} " + \
        " ".join(f"--allow-changed {key}" for key in refused)
    return RunDirError(f"{Path(run_path) / CONFIG} changed since the checkpoint: {shown}; restore it{tail}")


def component_record(component) -> dict:
    """A generator or responder as the run used it: class, name, its ``describe()`` (device
    left out: a resume may move a run), its repr when it defines one, and a fingerprint of
    every ``torch.nn.Module`` it holds."""
    import torch

    cls = type(component)
    record = {"class": f"{cls.__module__}.{cls.__qualname__}", "name": getattr(component, "name", None)}
    describe = getattr(component, "describe", None)
    if callable(describe):
        record.update({k: v for k, v in describe().items() if k != "device"})
    if cls.__repr__ is not object.__repr__:
        record["repr"] = repr(component)
    modules = [v for v in vars(component).values() if isinstance(v, torch.nn.Module)]
    if modules:  # SHA-256 over the names, dtypes, shapes and bytes of their parameters and buffers
        digest = hashlib.sha256()
        for module in modules:
            for name, tensor in module.state_dict().items():
                t = tensor.detach().cpu().contiguous()
                digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
                digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        record["weights_sha256"] = digest.hexdigest()
    return json.loads(json.dumps(record, default=str))  # plain JSON values: comparable after a pickle round trip
