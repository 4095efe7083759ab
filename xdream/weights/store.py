"""Locating, verifying and loading one weights file: a file is checked against its SHA-256
before it is loaded where a hash is given (a file published without one, or loaded with
``verify = false``, is left to the plugin's key and shape check, :func:`check_table`), and a
missing or wrong file raises one clear :class:`WeightsError`."""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Mapping

from xdream.core.errors import WeightsError


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def local_file(path: str | Path, what: str) -> Path:
    """A weights file the user named (``~`` expanded), or one WeightsError saying that the path
    is empty (``Path("")`` would be the current folder), a folder or not found."""
    if not str(path).strip():
        raise WeightsError(f"{what}: the weights file path is empty; give a file, or no weights option for the "
                           "published weights")
    path = Path(path).expanduser()
    if path.is_dir():
        raise WeightsError(f"{what}: weights file {path} is a folder, not a file; give the file inside it")
    if not path.is_file():
        raise WeightsError(f"{what}: weights file {path} not found")
    return path


def verify_file(path: str | Path, sha256: str | None, what: str) -> Path:
    """Return ``path`` (:func:`local_file`) if it exists and (when ``sha256`` is given) matches; else raise."""
    path = local_file(path, what)
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256:
            raise WeightsError(
                f"{what}: {path} has SHA-256 {actual}, expected {sha256}; the file is corrupt or not the right one"
            )
    return path


def package_file(package: str, relative: str, sha256: str | None, what: str, install_hint: str) -> Path:
    """A verified data file shipped inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"{what}: package {package!r} is not installed; {install_hint}")
    base = Path(next(iter(spec.submodule_search_locations)))
    return verify_file(base / relative, sha256, what)


def load_tensor_file(path: str | Path, what: str) -> OrderedDict:
    """A ``torch.save`` d state dict (either serialisation format), loaded tensors-only
    (``weights_only``: no code runs from the file) on the CPU. Any problem is one WeightsError."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise WeightsError(f"{what}: {path} is not a tensors-only torch file") from None
    except Exception as exc:  # truncated or corrupt file, empty file, ...
        detail = (str(exc).strip().splitlines() or [""])[0][:100]
        raise WeightsError(f"{what}: cannot load {path} as a torch file ({type(exc).__name__}: {detail})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{what}: {path} is not a state dict of tensors")
    return OrderedDict(state)


def check_table(state: Mapping, expected: Mapping[str, tuple], alternatives: Mapping[str, Mapping[str, tuple]],
                *, what: str, path: str | Path, table: str) -> None:
    """A loaded state dict's keys and shapes must be exactly ``expected`` (the ``table`` of
    ``what``); one that matches another variant's table (``alternatives``: name -> table) is
    named as such. Any mismatch is one WeightsError."""
    found = {key: tuple(value.shape) for key, value in state.items()}
    if found == dict(expected):
        return
    others = [name for name, shapes in alternatives.items() if dict(shapes) == found]
    if others:
        raise WeightsError(f"{what}: {path} holds the weights of {' or '.join(others)}, not of {what}")
    missing = [k for k in expected if k not in found]
    extra = [k for k in found if k not in expected]
    wrong = [f"{k} {found[k]} != {expected[k]}" for k in expected if k in found and found[k] != expected[k]]
    raise WeightsError(f"{what}: {path} does not match the {table}: missing {missing[:3]}, unexpected {extra[:3]}, "
                       f"wrong shapes {wrong[:2]}")
