"""The run directory: everything a run writes, written atomically (the logs appended a fsynced
line at a time), by one writer at a time (:class:`RunDir`), and a run read back as it is on
disk (:class:`RunState`).

Layout::

    RUN/run.json             the run's kind (evolution, session, gradient, compare, characterise), xdream version
                             and the changes allowed on resume
    RUN/config.toml          the resolved config (re-runnable with ``xdream evolve RUN/config.toml``)
    RUN/log.jsonl            one JSON record per generation (scores, best, mean, timings)
    RUN/checkpoint.pkl       state after the last finished generation (atomic replace, SHA-256 checked)
    RUN/generations/gen_NNNN.npz   codes (float32) and scores of every generation (with reference_scores,
                             reference_index of the natural references; shown: batches per image;
                             clean_scores, reference_clean_scores: noise-free, where noise is simulated)
    RUN/images/best_NNNN.png, montage_NNNN.png   best image and all images of a generation
    RUN/best.png             the best image so far
    RUN/trajectory.png, RUN/summary.json   written when the run ends; summary.json last: it is the
                             completion mark
    RUN/.lock                the writer's lock (:mod:`xdream.runs.lock`)

A session of several threads (run.json kind ``session``) has its own ``log.jsonl`` (one record
per generation of all threads), ``checkpoint.pkl``, ``results.jsonl`` and ``summary.json``, and
one folder of the layout above per thread: ``RUN/threads/NAME/``. docs/runs.md ("What the
files hold") names every field of these files.

A killed run loses at most the generation in flight: files of a generation are written before
its log line, and the checkpoint last. The checkpoint carries the SHA-256 of every generation
file and a copy of every log line up to it, so a resume proves what it continues from
(:meth:`RunDir.verify`) before :meth:`RunDir.rewind` drops anything newer than the checkpoint.
Files get the modes the process umask allows (0644 / 0755 under umask 022), as ``open`` would.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import pickle
import shutil
import tempfile
import time
import tomllib
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from xdream.core.errors import RunDirError
from xdream.runs.lock import LOCK, RunLock, is_written

CONFIG, LOG, CHECKPOINT, SUMMARY = "config.toml", "log.jsonl", "checkpoint.pkl", "summary.json"
SUBDIRS = ("generations", "images")
#: First line of a checkpoint; the second is the SHA-256 (hex) of the pickle that follows.
CHECKPOINT_MAGIC = b"xdream-checkpoint/2\n"
TEMP_SUFFIX = ".tmp"
ASIDE_PREFIX = "discarded-"
RUN_INFO = "run.json"  # {"kind": ..., "xdream": version, "changes": [...]}: what wrote the folder, so readers need not guess
SESSION_KIND, THREADS_DIR, RESULTS = "session", "threads", "results.jsonl"  # a run of [[thread]] tables
#: Per-generation values of a log record that the trajectory plots draw (and the checkpoint keeps).
HISTORY_KEYS = ("best", "mean", "clean_best", "reference_mean")


def new_run_path(name: str) -> Path:
    """The default folder of a new run: ``runs/<date>-<time>-<name>``."""
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"


def umask() -> int:
    """The process umask (read from /proc where it can be, so it is never changed)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def os_error(path: str | Path, e: OSError, doing: str = "write") -> RunDirError:
    """A one-line error for a failed file operation, naming the path (disk full, read-only, ...); it
    says to resume only in an evolution run or session (the runs ``xdream evolve --resume`` continues), not
    in one of a comparison's evolution runs (resuming it alone would leave the comparison unfinished)."""
    folders = [(p, RunDir.kind_of(p)) for p in Path(path).parents[:5]]  # each run.json read once
    resumable = all(kind != "compare" for _, kind in folders) and any(
        kind in ("evolution", SESSION_KIND) and (p / CONFIG).is_file() for p, kind in folders[:4])
    space = "; free some space, then resume the run" if resumable else "; free some space"
    hint = {errno.ENOSPC: space, errno.EDQUOT: space,
            errno.EROFS: "; the filesystem is read-only", errno.EACCES: "; check its permissions"}.get(e.errno, "")
    return RunDirError(f"cannot {doing} {path}: {e.strerror or e}{hint}")


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync, then rename over ``path``. The file
    gets mode ``0666 & ~umask`` (``mkstemp`` alone would give 0600)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    except OSError as e:
        raise os_error(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~umask())
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise os_error(path, e) from None
        raise


def append_line(path: str | Path, line: str) -> None:
    """Append ``line`` to ``path`` (created if missing) and fsync; a failure is one line naming
    the file (:func:`os_error`)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            data = memoryview(line.encode())
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise os_error(path, e) from None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def json_safe(value):
    """NaN/inf become null so log lines stay valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def _is_skeleton(path: Path) -> bool:
    """A folder left by a run of any kind killed while it was being created: nothing but
    folders of empty folders (``generations/``, ``threads/NAME/images/``...), the lock file,
    ``run.json`` and temp files of an unfinished write."""
    for entry in path.iterdir():
        if entry.name in (LOCK, RUN_INFO) or (entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)):
            continue
        if entry.name in (*SUBDIRS, THREADS_DIR) and entry.is_dir() and _holds_no_file(entry):
            continue
        return False
    return True


def _run_info(path: Path) -> dict | None:
    """``path/run.json`` as written, or None where it is missing or not a JSON object."""
    try:
        info = json.loads((path / RUN_INFO).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def legacy_kind(path: Path) -> str | None:
    """The kind of a folder written before runs recorded theirs, from the files it holds."""
    if (path / "compare.json").is_file():
        return "compare"
    if (path / "gradient.json").is_file():
        return "gradient"
    if (path / "classification.csv").is_file() and (path / SUMMARY).is_file():
        return "characterise"
    if (path / CONFIG).is_file() and ((path / LOG).is_file() or (path / "generations").is_dir()):
        return SESSION_KIND if (path / THREADS_DIR).is_dir() else "evolution"
    return None


def evolution_kind(path: Path) -> str | None:
    """The kind of ``path`` where it is an evolution run or session (or not a run at all: None),
    else a one-line RunDirError naming the kind it is (``--resume``, ``compare --from-session``)."""
    kind = RunDir.kind_of(path)
    if kind not in (None, "evolution", SESSION_KIND):
        raise RunDirError(f"{path} is a {kind} folder, not an evolution run or session; give the folder of an "
                          "xdream evolve run")
    return kind


def _holds_no_file(folder: Path) -> bool:
    return all(entry.is_dir() and not entry.is_symlink() and _holds_no_file(entry) for entry in folder.iterdir())


def repair_hint(path: Path) -> str:
    """How to rebuild the log of ``path``, with the folder ``xdream evolve --resume`` takes for it:
    the session's own folder for a thread's ``RUN/threads/NAME``, else ``path``."""
    if path.parent.name == THREADS_DIR and (path.parent.parent / CONFIG).is_file():
        path = path.parent.parent
    return f"rebuild it from the checkpoint's copy with xdream evolve --resume {path} --repair"


class RunDir:
    """One run's directory. ``create`` starts a new run, ``open`` an existing one; both take
    the run's write lock (:class:`xdream.runs.lock.RunLock`) unless ``lock=False`` (readers)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.lock = RunLock(self.path)

    # -- lifecycle -------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, config_toml: str, subdirs=SUBDIRS, kind: str = "evolution") -> "RunDir":
        """A new run folder of ``kind`` (recorded in ``run.json``) with its config; ``path`` must
        not exist, be empty, or be left by a run killed while it was being created. The run's
        lock is taken before anything is written."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or (any(path.iterdir()) and not _is_skeleton(path))):
            # only an evolution resumes (gradient, compare, characterise have no --resume), of any version
            found = cls.kind_of(path)
            resume = f" or resume it with xdream evolve --resume {path}" \
                if (path / CONFIG).is_file() and found in ("evolution", "session") else ""
            raise RunDirError(f"output directory {path} already exists and is not empty; choose another{resume}")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunDirError(f"cannot create output directory {path}: {e.strerror}") from None
        run = cls(path)
        run.lock.acquire()
        try:
            if not _is_skeleton(path):  # another process created the run in the meantime
                raise RunDirError(f"output directory {path} was just filled by another run; choose another")
            run.clean_temp_files()
            for sub in subdirs:
                (path / sub).mkdir(parents=True, exist_ok=True)
            run.write_json(RUN_INFO, {"kind": kind, "xdream": version("xdream")})
            atomic_write(path / CONFIG, config_toml.encode())
        except OSError as e:
            run.lock.release()
            raise RunDirError(f"cannot create output directory {path}: {e.strerror}") from None
        except BaseException:
            run.lock.release()
            raise
        return run

    @staticmethod
    def kind_of(path: str | Path) -> str | None:
        """The kind recorded in ``path/run.json``, or for a folder written by an xdream older than
        the record the kind its files show (:func:`legacy_kind`); None for a folder of no run."""
        return (_run_info(Path(path)) or {}).get("kind") or legacy_kind(Path(path))

    @classmethod
    def open(cls, path: str | Path, *, lock: bool = True) -> "RunDir":
        path = Path(path)
        if not path.exists():
            raise RunDirError(f"run directory {path} does not exist")
        if not (path / CONFIG).is_file():
            if path.is_dir() and any(path.iterdir()) and _is_skeleton(path):
                raise RunDirError(f"{path} holds no run yet (it was stopped while being created); start it again "
                                  f"with --output {path}")
            raise RunDirError(f"{path} is not an xdream run directory (no {CONFIG})")
        run = cls(path)
        if lock:
            run.lock.acquire()
        return run

    def clean_temp_files(self) -> None:
        """Remove temp files of writes that a killed process never finished (hold the lock)."""
        for folder in (self.path, *(self.path / s for s in SUBDIRS)):
            if folder.is_dir():
                for f in folder.glob(f".*{TEMP_SUFFIX}"):
                    self.remove(f)

    def remove(self, name: str | Path) -> None:
        """Delete ``name`` (in the run, or an absolute path) if it is there; a failure (a read-only
        folder) is one line naming it."""
        path = self.path / name
        try:
            path.unlink(missing_ok=True)
        except OSError as e:
            raise os_error(path, e, "remove") from None

    # -- per generation ---------------------------------------------------------------------
    def generation_file(self, generation: int) -> Path:
        return self.path / "generations" / f"gen_{generation:04d}.npz"

    def image_file(self, kind: str, generation: int) -> Path:
        return self.path / "images" / f"{kind}_{generation:04d}.png"

    def save_arrays(self, generation: int, **arrays: np.ndarray) -> str:
        """Write one generation's arrays; returns the file's SHA-256 (kept in the checkpoint)."""
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        data = buffer.getvalue()
        atomic_write(self.generation_file(generation), data)
        return sha256(data)

    def load_arrays(self, generation: int) -> dict[str, np.ndarray]:
        with np.load(self.generation_file(generation)) as data:
            return {k: data[k] for k in data.files}

    def append_log(self, record: dict) -> str:
        """Append one record as a JSON line (fsynced) to the log; returns the line written. A full
        or read-only disk is a one-line :class:`RunDirError`."""
        line = json.dumps(json_safe(record), allow_nan=False) + "\n"
        append_line(self.path / LOG, line)
        return line

    def read_log(self) -> list[dict]:
        """The log's records. A torn last line (a write cut by a crash) is ignored; a bad line
        before the last is a one-line RunDirError naming it, never a silent end of the log."""
        path = self.path / LOG
        if not path.exists():
            return []
        *complete, torn = path.read_bytes().split(b"\n")
        records = []
        for number, line in enumerate(complete, start=1):
            record = _parse_record(line)
            if record is None:
                if not line.strip():
                    continue
                raise RunDirError(f"{path} line {number} is not a generation record (damaged or edited): "
                                  f"{line[:40]!r}; restore the file, or {repair_hint(self.path)}")
            records.append(record)
        last = _parse_record(torn) if torn.strip() else None
        return records + ([last] if last is not None else [])  # else: the torn line of a killed write

    # -- checkpoint ---------------------------------------------------------------------------
    def save_checkpoint(self, state: dict) -> None:
        payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        atomic_write(self.path / CHECKPOINT, CHECKPOINT_MAGIC + sha256(payload).encode() + b"\n" + payload)

    def load_checkpoint(self) -> dict | None:
        """The last checkpoint, or None if there is none; a damaged one is a RunDirError.

        Checkpoints are local files written by the user's own process, and their SHA-256 is
        checked before unpickling; never load one from an untrusted source."""
        path = self.path / CHECKPOINT
        if not path.exists():
            return None
        try:
            data = path.read_bytes()
        except OSError as e:
            raise os_error(path, e, "read") from None
        head, _, rest = data.partition(b"\n")
        digest, _, payload = rest.partition(b"\n")
        if head + b"\n" != CHECKPOINT_MAGIC or digest.decode(errors="replace") != sha256(payload):
            raise RunDirError(f"checkpoint {path} is damaged (its SHA-256 does not match its contents); "
                              f"restore it from a backup, or start over with xdream evolve --resume {self.path} "
                              "--restart (the old generations are moved aside)")
        try:
            return pickle.loads(payload)
        except Exception as e:
            raise RunDirError(f"checkpoint {path} is unreadable ({type(e).__name__}); cannot resume") from None

    def _numbered(self, folder: str, pattern: str):
        """``(number, file)`` for each file of ``folder`` matching ``pattern`` whose name ends in ``_NUMBER``."""
        for f in (self.path / folder).glob(pattern):
            try:
                yield int(f.stem.rsplit("_", 1)[1]), f
            except ValueError:
                continue

    def finished_generations(self) -> list[int]:
        """Generations with a file in ``generations/`` (finished or in flight)."""
        return sorted(number for number, _ in self._numbered("generations", "gen_*.npz"))

    def verify(self, log_lines: list[str], digests: list[str]) -> None:
        """Check that the log starts with ``log_lines`` and that generation ``g``'s file has
        SHA-256 ``digests[g]`` (both as the checkpoint recorded them); one line naming the
        first missing or damaged file otherwise. Nothing is changed."""
        path = self.path / LOG
        if log_lines:
            if not path.is_file():
                raise RunDirError(f"{path} is missing ({len(log_lines)} generations are checkpointed); restore it, or "
                                  f"{repair_hint(self.path)}")
            have = path.read_bytes().split(b"\n")
            for number, line in enumerate(log_lines, start=1):
                if number > len(have) or have[number - 1] + b"\n" != line.encode():
                    state = "missing" if number > len(have) or not have[number - 1] else "damaged or edited"
                    raise RunDirError(f"{path} line {number} (generation {number - 1}) is {state}; restore the file, "
                                      f"or {repair_hint(self.path)}")
        for g, digest in enumerate(digests):
            file = self.generation_file(g)
            try:
                data = file.read_bytes()
            except FileNotFoundError:
                raise RunDirError(f"{file} is missing (the checkpoint holds generations 0-{len(digests) - 1}); "
                                  "restore it from a backup to resume") from None
            except OSError as e:
                raise os_error(file, e, "read") from None
            if sha256(data) != digest:
                raise RunDirError(f"{file} is damaged (its SHA-256 differs from the checkpoint's); restore it "
                                  "from a backup to resume")

    def repair_log(self, log_lines: list[str]) -> None:
        """Rewrite the log from the checkpoint's copy of its lines."""
        atomic_write(self.path / LOG, "".join(log_lines).encode())

    def rewind(self, generations_done: int, log_lines: list[str]) -> None:
        """Drop log lines and files of generations at or after ``generations_done`` (the
        generation in flight when a run was killed); the log keeps exactly ``log_lines``."""
        path = self.path / LOG
        if path.is_file() and path.read_bytes() != "".join(log_lines).encode():
            atomic_write(path, "".join(log_lines).encode())
        for folder, pattern in (("generations", "gen_*.npz"), ("images", "*_*.png")):
            for number, f in self._numbered(folder, pattern):
                if number >= generations_done:
                    self.remove(f)

    def set_aside(self, subdirs=SUBDIRS) -> Path:
        """Move everything but the config, run.json and the lock into ``RUN/discarded-<time>/`` (for a
        restart) and make the run's empty ``subdirs`` again; returns that folder. The ``--allow-changed``
        changes run.json records were the discarded run's: they are dropped from it (that run's
        checkpoint and summary, moved aside, keep them)."""
        aside = self.path / f"{ASIDE_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}"
        n = 1
        while aside.exists():
            aside, n = self.path / f"{ASIDE_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}-{n}", n + 1
        try:
            aside.mkdir()
            for entry in self.path.iterdir():
                if entry.name not in (CONFIG, LOCK, RUN_INFO) and not entry.name.startswith(ASIDE_PREFIX):
                    shutil.move(str(entry), aside / entry.name)
            for sub in subdirs:
                (self.path / sub).mkdir(exist_ok=True)
        except OSError as e:
            raise os_error(aside, e, "move the old generations into") from None
        info = _run_info(self.path)
        if info is not None and "changes" in info:
            self.write_json(RUN_INFO, {k: v for k, v in info.items() if k != "changes"})
        return aside

    def record_changes(self, changes: list[dict], config_toml: str, kind: str) -> None:
        """Record a run's ``--allow-changed`` changes (generation, key, old, new) in run.json and
        put back config.toml as the run started (``config_toml``, with a note of the changes)."""
        info = _run_info(self.path) or {"kind": kind, "xdream": version("xdream")}  # a folder older than run.json
        self.write_json(RUN_INFO, {**info, "changes": changes})
        atomic_write(self.path / CONFIG, config_toml.encode())

    def write_json(self, name: str, data: dict) -> None:
        atomic_write(self.path / name, (json.dumps(json_safe(data), indent=2) + "\n").encode())


def _parse_record(line: bytes) -> dict | None:
    """A log line as a generation record, or None for anything else (binary, non-JSON, ``{}``)."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("generation"), int):
        return None
    return record


# -- reading a run back ------------------------------------------------------------------------------
# An evolution run read as it is on disk, while it runs or after it ended: the threads' own logs
# are the truth. ``results.jsonl`` is written only when a session ends (and is stale while a
# resumed session runs again), so everything here comes from the logs; nothing is written and no
# lock is taken, so a report can be written beside the running run. A one-thread run is read as
# a run of one thread whose folder is the run's own.


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


@dataclass
class ThreadState:
    """One thread as its log says: what it runs and what it has reached so far."""

    name: str
    generator: str
    optimizer: str
    target: list[str]
    run: RunDir  # RUN/threads/NAME (RUN itself for a one-thread run)
    records: list[dict]  # its log.jsonl, one record per finished generation
    stopped: str | None = None  # why it ended ("generations", "budget", "patience", ...; None while it runs)

    @property
    def target_text(self) -> str:
        return " + ".join(self.target)

    @property
    def generations(self) -> int:
        return len(self.records)

    @property
    def evaluations(self) -> int:
        return self.records[-1]["evaluations"] if self.records else 0

    @property
    def bests(self) -> list[float]:
        """Each generation's best score (NaN where no image got a response)."""
        return [math.nan if r.get("best") is None else float(r["best"]) for r in self.records]

    @property
    def first_best(self) -> float:
        return self.bests[0] if self.records else math.nan

    @property
    def final_best(self) -> float:
        """The best score of any generation so far."""
        return max(_finite(self.bests), default=math.nan)

    @property
    def improvement(self) -> float | None:
        return self.final_best / self.first_best if self.first_best > 0 else None

    @property
    def clean_best(self) -> float | None:
        """The best noise-free score, where noise was simulated."""
        return max(_finite(r.get("clean_best") for r in self.records), default=None)

    @property
    def best_reference(self) -> float | None:
        """The best natural reference image's score on this thread's target (None without references)."""
        return max(_finite(s for r in self.records for s in r.get("reference_scores", [])), default=None)

    @property
    def best_reference_name(self) -> str | None:
        pairs = [(s, n) for r in self.records for s, n in zip(r.get("reference_scores", []), r.get("reference_names", []))
                 if s is not None and math.isfinite(s)]
        return max(pairs)[1] if pairs else None

    @property
    def reference_ratio(self) -> float | None:
        """The final best over the best natural reference (None where that is not positive)."""
        ref = self.best_reference
        return self.final_best / ref if ref is not None and ref > 0 else None

    def history(self) -> list[dict]:
        """The per-generation values the trajectory plots draw."""
        return [{k: r[k] for k in HISTORY_KEYS if r.get(k) is not None} for r in self.records]


@dataclass
class RunState:
    """An evolution run's folder read from its files: a session's threads, or a one-thread run
    (of any version, ``run.json`` or not) as a run of one thread."""

    path: Path
    config: dict  # RUN/config.toml as parsed
    threads: list[ThreadState]
    records: list[dict]  # the run's log.jsonl (a session's: all threads per generation)
    summary: dict | None = None  # summary.json (None while the run runs)
    noise: bool = False  # a [noise] table: scores are simulated noisy ones

    @classmethod
    def read(cls, path: str | Path) -> "RunState":
        path = Path(path)
        kind = evolution_kind(path)
        run = RunDir.open(path, lock=False)
        try:
            config = tomllib.loads((path / CONFIG).read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise RunDirError(f"cannot read {path / CONFIG}: {e}") from None
        try:
            summary = json.loads((path / SUMMARY).read_text()) if (path / SUMMARY).is_file() else None
            if summary is not None and not isinstance(summary, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:  # cut or edited (UnicodeDecodeError is a ValueError)
            raise RunDirError(f"cannot read {path / SUMMARY}: {e}") from None
        records = run.read_log()
        if kind == SESSION_KIND or (kind is None and "thread" in config):  # a session without run.json
            stopped = records[-1].get("stopped", {}) if records else {}  # thread -> why it ended
            threads = [_thread(table, RunDir(path / THREADS_DIR / table["name"]), stopped.get(table["name"]))
                       for table in config.get("thread", [])]
        else:
            ended = None if summary is None else "stopped early" if summary.get("stopped_early") else "generations"
            threads = [_thread({**config, "name": path.resolve().name}, run, ended, records)]
        return cls(path, config, threads, records, summary, "noise" in config)

    @property
    def single(self) -> bool:
        """A one-thread run: its thread's folder is the run's own."""
        return len(self.threads) == 1 and self.threads[0].run.path == self.path

    @property
    def running(self) -> bool:
        """No summary yet and a writer holds the run's lock."""
        return self.summary is None and is_written(self.path)

    @property
    def abandoned(self) -> bool:
        """Neither ended nor written any more (killed, or ended by an error)."""
        return self.summary is None and not is_written(self.path)

    @property
    def generation(self) -> int:
        """Generations the run has finished."""
        return len(self.records)

    @property
    def evaluations(self) -> int:
        return sum(t.evaluations for t in self.threads)

    def seconds(self, thread: ThreadState) -> float:
        """Wall time of the generations ``thread`` took part in (shared with the threads shown in
        the same responder calls)."""
        return sum(sum(r.get("timings", {}).values()) for r in self.records
                   if self.single or thread.name in r.get("threads", {}))

    def thread(self, name: str) -> ThreadState:
        for t in self.threads:
            if t.name == name:
                return t
        raise RunDirError(f"run {self.path} has no thread {name!r}; its threads: "
                          + ", ".join(t.name for t in self.threads))

    def pairs(self) -> list[tuple[ThreadState, ThreadState]]:
        """Every two threads that evolve for the same target (the same units or channels, in any
        order): the pairs a paired comparison makes sense for."""
        return [(a, b) for i, a in enumerate(self.threads) for b in self.threads[i + 1:]
                if sorted(a.target) == sorted(b.target)]


def _thread(table: dict, run: RunDir, stopped: str | None, records: list[dict] | None = None) -> ThreadState:
    """A thread from its config table (a session's ``[[thread]]``, or a one-thread run's config)."""
    name = lambda value: value if isinstance(value, str) else value["name"]  # noqa: E731 - plugin name or table
    target = table.get("target", table.get("responder", {}).get("target", ""))
    return ThreadState(table["name"], name(table["generator"]), name(table["optimizer"]),
                       [target] if isinstance(target, str) else list(target), run,
                       run.read_log() if records is None else records, stopped)
