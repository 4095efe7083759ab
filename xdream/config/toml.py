"""TOML in and out: reading a config file with one-line errors, writing a config dict back."""

from __future__ import annotations

import tomllib
from pathlib import Path

from xdream.core.errors import ConfigError


def read_toml(path: str | Path) -> dict:
    """Parse a TOML file, turning read and syntax errors into one-line ConfigErrors."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder; give a .toml file (a run's is RUN/config.toml)") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not text (TOML is UTF-8)") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None


def to_toml(data: dict) -> str:
    """Write a config dict (scalars, lists, tables, arrays of tables such as ``[[thread]]``;
    tables within those become inline tables) as TOML."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict) and not _is_tables(v)]
    tables = [(f"[{k}]", v) for k, v in data.items() if isinstance(v, dict)]
    tables += [(f"[[{k}]]", table) for k, v in data.items() if _is_tables(v) for table in v]
    for header, table in tables:
        lines += ["", header] + [f"{kk} = {_toml_value(vv)}" for kk, vv in table.items()]
    return "\n".join(lines) + "\n"


def _is_tables(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise ConfigError(f"cannot write {v!r} to TOML")


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else _toml_value(key)
