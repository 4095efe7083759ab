"""The client's journal of rig requests: what was sent, recorded durably before it is sent.

``RUN/rig_requests.jsonl`` gets one line per ``present`` request (generation, its sequence
number within the generation, request id, image ids and a checksum of the payload), fsynced
before the request leaves. A run resumed after a client crash or a stop on a silent rig
replays its unfinished generation bit-identically, so its n-th request of generation g is the
same request as before: the journal gives it the same request id, and the rig, which keeps
its reply cache across client sessions (docs/protocol.md §5), answers from the cache instead
of presenting the images again. Trial records the interrupted attempt had saved for
unfinished generations are dropped from ``RUN/rig_trials.jsonl``; the resend brings them back.
"""

from __future__ import annotations

import json
from pathlib import Path

from xdream.runs.rundir import append_line, atomic_write

JOURNAL_FILE = "rig_requests.jsonl"


class RequestJournal:
    """The journal of one run directory, opened at the run's first request of this process
    (generation ``generation``): the requests of that generation and later ones, from an
    interrupted attempt, can be sent again under their request ids."""

    def __init__(self, run_dir: Path, generation: int, trials_file: str):
        self.path = Path(run_dir) / JOURNAL_FILE
        self.unfinished: dict[tuple[int, int], dict] = {}
        if self.path.exists():
            text = self.path.read_text()
            whole = text[:text.rfind("\n") + 1]  # without a torn last line (a crash, a full disk): never sent
            for line in whole.splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    break  # the torn last line of a crash: that request was never sent
                if entry["generation"] >= generation:
                    self.unfinished[(entry["generation"], entry["seq"])] = entry
            if whole != text:  # dropped, so that the next request is appended on a line of its own
                atomic_write(self.path, whole.encode())
        _drop_trials_from(Path(run_dir) / trials_file, generation)

    def request_id(self, generation: int, seq: int, image_ids: list[str], checksum: str) -> str | None:
        """The request id this request had in an interrupted attempt, if it is the same request."""
        entry = self.unfinished.get((generation, seq))
        if entry is not None and entry["image_ids"] == image_ids and entry["checksum"] == checksum:
            return entry["request_id"]
        return None

    def record(self, generation: int, seq: int, request_id: str, image_ids: list[str], checksum: str) -> None:
        """Append the request, durably (fsync), before it is sent."""
        line = json.dumps({"generation": generation, "seq": seq, "request_id": request_id,
                           "image_ids": image_ids, "checksum": checksum}) + "\n"
        append_line(self.path, line)  # the run folder's writer: a full or read-only disk is one line


def _drop_trials_from(path: Path, generation: int) -> None:
    """Rewrite the trial records file without the records of generations >= ``generation``."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    keep = []
    for line in lines:
        try:
            if json.loads(line)["generation"] < generation:
                keep.append(line)
        except json.JSONDecodeError:
            continue  # a torn last line
    if len(keep) != len(lines):
        atomic_write(path, "".join(keep).encode())
