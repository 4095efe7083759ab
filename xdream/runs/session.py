"""Reading a session's run directory (several evolution threads, :mod:`xdream.evolve.session`)
as it is on disk, while it runs or after it ended: the threads' own logs are the truth.

``results.jsonl`` is written only when the session ends (and is stale while a resumed session
runs again), so everything here is computed from ``RUN/threads/NAME/log.jsonl`` and the
session's ``log.jsonl``; ``results.jsonl`` is read only for why a thread stopped. Nothing is
written and no lock is taken, so a report can be written beside the running session.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from xdream.core.errors import RunDirError
from xdream.runs.lock import is_written
from xdream.runs.rundir import CONFIG, SUMMARY, RunDir

KIND = "session"
THREADS_DIR = "threads"
RESULTS = "results.jsonl"


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


@dataclass
class ThreadState:
    """One thread as its log says: what it runs and what it has reached so far."""

    name: str
    generator: str
    optimizer: str
    target: list[str]
    run: RunDir  # RUN/threads/NAME
    records: list[dict]  # its log.jsonl, one record per finished generation
    stopped: str | None = None  # why it ended ("generations", "budget", "patience", or "ended" while the reason is not yet known)

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
        keys = ("best", "mean", "clean_best", "reference_mean")
        return [{k: r[k] for k in keys if r.get(k) is not None} for r in self.records]


@dataclass
class SessionState:
    """A session's run directory read from its files (see the module docstring)."""

    path: Path
    config: dict  # RUN/config.toml as parsed
    threads: list[ThreadState]
    records: list[dict]  # the session's log.jsonl
    summary: dict | None = None  # summary.json (None while the session runs)
    noise: bool = False  # a [noise] table: scores are simulated noisy ones

    @classmethod
    def read(cls, path: str | Path) -> "SessionState":
        path = Path(path)
        if RunDir.kind_of(path) != KIND:
            raise RunDirError(f"{path} is not a session of several threads (its run.json does not say kind "
                              f"{KIND!r}); give the folder of an xdream session run")
        run = RunDir.open(path, lock=False)
        try:
            config = tomllib.loads((path / CONFIG).read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise RunDirError(f"cannot read {path / CONFIG}: {e}") from None
        records = run.read_log()
        reasons = _reasons(records)
        threads = []
        for table in config.get("thread", []):
            thread_run = RunDir(path / THREADS_DIR / table["name"])
            target = table["target"]
            state = ThreadState(table["name"], _plugin_name(table["generator"]), _plugin_name(table["optimizer"]),
                                [target] if isinstance(target, str) else list(target), thread_run,
                                thread_run.read_log())
            state.stopped = reasons(state)
            threads.append(state)
        summary = json.loads((path / SUMMARY).read_text()) if (path / SUMMARY).is_file() else None
        return cls(path, config, threads, records, summary, "noise" in config)

    @property
    def running(self) -> bool:
        """No summary yet and a writer holds the session's lock."""
        return self.summary is None and is_written(self.path)

    @property
    def abandoned(self) -> bool:
        """Neither ended nor written any more (killed, or ended by an error)."""
        return self.summary is None and not is_written(self.path)

    @property
    def generation(self) -> int:
        """Generations the session has finished."""
        return len(self.records)

    @property
    def evaluations(self) -> int:
        return sum(t.evaluations for t in self.threads)

    def thread(self, name: str) -> ThreadState:
        for t in self.threads:
            if t.name == name:
                return t
        raise RunDirError(f"session {self.path} has no thread {name!r}; its threads: "
                          + ", ".join(t.name for t in self.threads))

    def pairs(self) -> list[tuple[ThreadState, ThreadState]]:
        """Every two threads that evolve for the same target (the same units or channels, in any
        order): the pairs a paired comparison makes sense for."""
        out = []
        for i, a in enumerate(self.threads):
            for b in self.threads[i + 1:]:
                if sorted(a.target) == sorted(b.target):
                    out.append((a, b))
        return out


def _plugin_name(value) -> str:
    return value if isinstance(value, str) else value["name"]


def _reasons(records: list[dict]):
    """A function giving a thread's stop reason (``generations``, ``budget``, ``patience``), from
    the session log's last ``stopped`` entry (thread name -> reason); None while it runs."""
    stopped = records[-1].get("stopped", {}) if records else {}

    def reason(thread: ThreadState) -> str | None:
        return stopped.get(thread.name)

    return reason
