"""The run directory: everything a run writes, written atomically.

Layout::

    RUN/run.json             the run's kind (evolution, gradient, compare, characterise) and xdream version
    RUN/config.toml          the resolved config (re-runnable with ``xdream evolve RUN/config.toml``)
    RUN/log.jsonl            one JSON record per generation (scores, best, mean, timings)
    RUN/checkpoint.pkl       state after the last finished generation (atomic replace)
    RUN/generations/gen_NNNN.npz   codes (float32) and scores of every generation (with reference_scores,
                             reference_index of the natural references; shown: batches per image)
    RUN/images/best_NNNN.png, montage_NNNN.png   best image and all images of a generation
    RUN/best.png             the best image so far
    RUN/summary.json, RUN/trajectory.png   written when the run ends

A killed run loses at most the generation in flight: files of a generation are written before
its log line, and the checkpoint last; :meth:`RunDir.rewind` drops anything newer than the
checkpoint before a resume.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import tempfile
from importlib.metadata import version
from pathlib import Path

import numpy as np

from xdream.core.errors import RunDirError

CONFIG, LOG, CHECKPOINT, SUMMARY = "config.toml", "log.jsonl", "checkpoint.pkl", "summary.json"
RUN_INFO = "run.json"  # {"kind": ..., "xdream": version}: what wrote the folder, so readers need not guess


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync, then rename over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_safe(value):
    """NaN/inf become null so log lines stay valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


class RunDir:
    """One run's directory. ``create`` starts a new run; ``open`` an existing one to resume."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, config_toml: str, subdirs=("generations", "images"),
               kind: str = "evolution") -> "RunDir":
        """A new run folder of ``kind`` (recorded in ``run.json``) with its config; ``path`` must
        not exist or be empty."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise RunDirError(
                f"output directory {path} already exists and is not empty; choose another or resume it with --resume {path}"
            )
        try:
            path.mkdir(parents=True, exist_ok=True)
            for sub in subdirs:
                (path / sub).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunDirError(f"cannot create output directory {path}: {e.strerror}") from None
        run = cls(path)
        run.write_json(RUN_INFO, {"kind": kind, "xdream": version("xdream")})
        atomic_write(path / CONFIG, config_toml.encode())
        return run

    @staticmethod
    def kind_of(path: str | Path) -> str | None:
        """The kind recorded in ``path/run.json``; None for a folder without one (not a run, or
        written by an xdream older than the record)."""
        try:
            return json.loads((Path(path) / RUN_INFO).read_text())["kind"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @classmethod
    def open(cls, path: str | Path) -> "RunDir":
        path = Path(path)
        if not (path / CONFIG).is_file():
            raise RunDirError(f"{path} is not an xdream run directory (no {CONFIG})")
        return cls(path)

    # -- per generation ---------------------------------------------------------------------
    def generation_file(self, generation: int) -> Path:
        return self.path / "generations" / f"gen_{generation:04d}.npz"

    def image_file(self, kind: str, generation: int) -> Path:
        return self.path / "images" / f"{kind}_{generation:04d}.png"

    def save_arrays(self, generation: int, **arrays: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write(self.generation_file(generation), buffer.getvalue())

    def load_arrays(self, generation: int) -> dict[str, np.ndarray]:
        with np.load(self.generation_file(generation)) as data:
            return {k: data[k] for k in data.files}

    def append_log(self, record: dict) -> None:
        line = json.dumps(_json_safe(record), allow_nan=False) + "\n"
        with open(self.path / LOG, "a") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def read_log(self) -> list[dict]:
        """Complete log records (a torn last line from a crash is ignored)."""
        if not (self.path / LOG).exists():
            return []
        records = []
        for line in (self.path / LOG).read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return records

    # -- checkpoint ---------------------------------------------------------------------------
    def save_checkpoint(self, state: dict) -> None:
        atomic_write(self.path / CHECKPOINT, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    def load_checkpoint(self) -> dict | None:
        """The last checkpoint, or None if the run never finished a generation.

        Checkpoints are local files written by the user's own process, so pickle is fine here;
        never load one from an untrusted source."""
        path = self.path / CHECKPOINT
        if not path.exists():
            return None
        try:
            return pickle.loads(path.read_bytes())
        except Exception as e:
            raise RunDirError(f"checkpoint {path} is unreadable ({type(e).__name__}); cannot resume") from None

    def rewind(self, generations_done: int) -> None:
        """Drop log lines and files of generations at or after ``generations_done``."""
        records = [r for r in self.read_log() if r["generation"] < generations_done]
        atomic_write(self.path / LOG, "".join(json.dumps(r) + "\n" for r in records).encode())
        for folder, pattern in (("generations", "gen_*.npz"), ("images", "*_*.png")):
            for f in (self.path / folder).glob(pattern):
                if int(f.stem.rsplit("_", 1)[1]) >= generations_done:
                    f.unlink()

    def write_json(self, name: str, data: dict) -> None:
        atomic_write(self.path / name, (json.dumps(_json_safe(data), indent=2) + "\n").encode())
