"""One writer per run directory: an exclusive ``flock`` on ``RUN/.lock``.

The lock file holds the writer's pid, host and start time, so a second writer is refused
with one line naming the holder. The kernel drops a ``flock`` when its process dies (also on
``kill -9``), so a lock file left by a killed writer is not held: the next writer takes it
and overwrites the stale pid. Nothing is ever deleted to "break" a lock.

What it guarantees (flock(2)): on a local filesystem, on NFS (Linux emulates ``flock`` with
NFS byte-range locks since 2.6.12) and on CIFS/SMB from Linux 5.5, two xdream processes never
write one run at once, on one host or on several. Where locks do not reach the server (CIFS
up to Linux 5.4, NFS mounted ``nolock`` / ``local_lock=all``, some FUSE mounts) the call
succeeds on every host and only writers on the same host are kept apart.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from xdream.core.errors import RunDirError

LOCK = ".lock"


def _holder_text(path: Path) -> str:
    try:
        holder = json.loads(path.read_text() or "{}")
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["since"]))
        return f"pid {holder['pid']} on {holder['host']} (since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def is_written(run_path: str | Path) -> bool:
    """Whether a process holds the write lock of ``run_path`` now (a reader's probe: a shared
    ``flock`` tried and dropped at once, so it never blocks or takes over a writer). A run
    without a summary whose lock nobody holds was killed or ended by an error."""
    path = Path(run_path) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: say it may be running
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:  # BlockingIOError: a writer holds it; any other failure: cannot tell, so it may be running
        return True
    finally:
        os.close(fd)  # drops the shared lock, if it was taken
    return False


class RunLock:
    """The exclusive write lock of one run directory; ``release`` (or process exit) frees it."""

    def __init__(self, run_path: str | Path):
        self.path = Path(run_path) / LOCK
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "RunLock":
        """Take the lock now or raise a one-line RunDirError naming its holder."""
        if self._fd is not None:
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise RunDirError(f"cannot create the lock file {self.path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirError(f"run {self.path.parent} is being written by {_holder_text(self.path)}; "
                              "wait for it to end or stop it first") from None
        except OSError as e:
            os.close(fd)
            raise RunDirError(f"cannot lock {self.path}: {e.strerror}") from None
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.encode() + b"\n", 0)
        except OSError as e:
            os.close(fd)
            raise RunDirError(f"cannot write the lock file {self.path}: {e.strerror}") from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def writer_since(run_path: str | Path) -> float | None:
    """When the run's writer that is still alive took the lock (its record's start time), or None.

    Read from the lock file without locking it (a probe with ``flock`` could make a writer's
    own attempt fail at that instant). A writer on this host is alive if its pid is; one on
    another host cannot be checked and is taken as alive."""
    try:
        holder = json.loads((Path(run_path) / LOCK).read_text() or "{}")
        pid, host, since = int(holder["pid"]), holder["host"], float(holder["since"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, another user's
    return since
