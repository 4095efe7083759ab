"""The local cache of published weights files: download, verify, path.

A store works over a catalogue of :class:`~xdream.weights.entry.WeightsEntry` (by default every
registered plugin's, :func:`xdream.weights.catalogue.registered`; a plugin loading its own file
passes its own entries). Files live in ``$XDREAM_HOME/weights``
(default: the user cache directory, e.g. ``~/.cache/xdream/weights``). A download streams
to ``FILE.part`` beside the destination with a progress bar, resumes a partial file with an
HTTP Range request, checks size and hash, and only then renames the file into place
(atomically). A file that fails the check is moved to ``weights/quarantine/`` and never
loaded; a good cached file is never overwritten. ``XDREAM_WEIGHTS_MIRROR`` (a base URL)
fetches the same file names from a lab mirror instead of the publisher.

Nothing here downloads unless :meth:`WeightsStore.download` is called (``xdream weights
download``); loading code only ever calls :meth:`WeightsStore.resolve`, which fails with one
line naming the URL, the expected hash and where to put the file.
"""

from __future__ import annotations

import http.client
import os
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Mapping

from xdream.core.errors import UnknownNameError, WeightsError, choices_text
from xdream.weights.catalogue import registered
from xdream.weights.entry import WeightsEntry
from xdream.weights.store import local_file, sha256_file

HOME_ENV = "XDREAM_HOME"
MIRROR_ENV = "XDREAM_WEIGHTS_MIRROR"
CHUNK = 1 << 20


def default_home(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDREAM_HOME`` or the platform's user cache directory for xdream."""
    environ = os.environ if environ is None else environ
    if environ.get(HOME_ENV):
        return Path(environ[HOME_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("xdream"))


class WeightsStore:
    """The weights cache under ``home/weights`` for a catalogue of entries (None: every
    registered plugin's, collected now).

    ``mirror`` (a base URL) replaces each entry's URL by ``mirror/<file name>``."""

    def __init__(self, home: str | Path | None = None, catalog: Mapping[str, WeightsEntry] | None = None,
                 mirror: str | None = None):
        self.dir = Path(home if home is not None else default_home()) / "weights"
        self.catalog = registered() if catalog is None else catalog
        self.mirror = mirror

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None,
                         catalog: Mapping[str, WeightsEntry] | None = None) -> "WeightsStore":
        """The store ``$XDREAM_HOME`` and ``$XDREAM_WEIGHTS_MIRROR`` name, over ``catalog``
        (a plugin passes ``by_name(self.weights_files)``; None: every registered plugin's)."""
        environ = os.environ if environ is None else environ
        return cls(default_home(environ), catalog, mirror=environ.get(MIRROR_ENV) or None)

    # -- look-up ----------------------------------------------------------------------------
    def entry(self, name: str) -> WeightsEntry:
        if name not in self.catalog:
            raise UnknownNameError(f"unknown weights {name!r}; valid: {choices_text(sorted(self.catalog))}")
        return self.catalog[name]

    def path(self, name: str) -> Path:
        """Where the cached file of ``name`` lives (whether or not it is there yet)."""
        return self.dir / self.entry(name).file_name

    def url(self, name: str) -> str:
        entry = self.entry(name)
        return f"{self.mirror.rstrip('/')}/{entry.file_name}" if self.mirror else entry.url

    def quarantine_dir(self) -> Path:
        return self.dir / "quarantine"

    # -- checking ---------------------------------------------------------------------------
    def problem(self, name: str, path: Path, sha256: str | None = None) -> str | None:
        """Why ``path`` is not the file of ``name`` (size, then hash), or None if it is.
        ``sha256`` overrides the catalogue's hash (your own weights)."""
        entry = self.entry(name)
        expected = sha256 or entry.sha256
        size = path.stat().st_size
        if sha256 is None and entry.size is not None and size != entry.size:
            return f"{path} has {size} bytes, expected {entry.size}"
        if sha256 is None and entry.size is None and entry.size_mib is not None and \
                abs(size / 2**20 - entry.size_mib) > 0.5:
            return f"{path} has {size} bytes ({size / 2**20:.1f} MiB), expected {entry.size_mib} MiB as published"
        if expected is not None:
            actual = sha256_file(path)
            if actual != expected:
                return f"{path} has SHA-256 {actual}, expected {expected}"
        return None

    def resolve(self, name: str, weights: str | Path | None = None, *, verify: bool = True,
                sha256: str | None = None, option: str = "--generator-weights") -> Path:
        """The verified file to load for ``name``: the local ``weights`` file if given, else
        the cached one, checked against the catalogue's size and hash unless ``verify`` is False;
        a pinned ``sha256`` replaces those checks and is checked even then. Never downloads; a
        missing or wrong file is one WeightsError whose hint
        names ``option``, the ``xdream evolve`` flag that passes this plugin a local file (said as
        evolve's: ``xdream gradient`` and ``compare`` take no such flag)."""
        entry = self.entry(name)
        if sha256 is not None:
            if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
                raise WeightsError(f"{name}: sha256 {sha256!r} is not a SHA-256 hash; give its 64 hexadecimal "
                                   "digits, as sha256sum prints them")
            sha256 = sha256.lower()  # sha256sum prints lower case, PowerShell's Get-FileHash upper
        if weights is not None:
            path = local_file(weights, name)
        else:
            path = self.path(name)
            if not path.is_file():
                raise WeightsError(
                    f"{name}: weights not found at {path}; run `xdream weights download {name}` or fetch "
                    f"{self.url(name)} ({entry.hash_text()}) and put it there, or give xdream evolve {option} FILE"
                )
        if verify or sha256 is not None:  # verify = false waives the published hash, never a pinned sha256
            reason = self.problem(name, path, sha256)
            if reason is not None and sha256 is not None:
                raise WeightsError(f"{name}: {reason} (the pinned sha256); the file is corrupt or not the one pinned")
            if reason is not None:
                hint = (f"; replace it with `xdream weights download {name}`" if weights is None
                        else f"; to use weights of your own add --no-verify to {option} FILE (config: "
                             "verify = false, or sha256 = \"HASH\" to pin yours)")
                raise WeightsError(f"{name}: {reason}; the file is corrupt or not the published one{hint}")
        return path

    def status(self, name: str, *, check_hash: bool = False) -> str:
        """``missing``, ``present`` (not hashed), ``ok``, ``ok (hash not published)`` or the problem."""
        path = self.path(name)
        if not path.is_file():
            return "missing"
        if not check_hash:
            return "present"
        reason = self.problem(name, path)
        if reason is not None:
            return "BAD: " + reason
        return "ok" if self.entry(name).sha256 else "ok (hash not published; size and keys checked at load)"

    # -- downloading ------------------------------------------------------------------------
    def download(self, name: str, *, progress: bool = True, attempts: int = 3, timeout: float = 30.0) -> Path:
        """Fetch ``name`` into the cache (resuming ``.part`` files) and verify it.

        A good cached file is kept as it is; a bad one is quarantined first. A connection
        that breaks is resumed from the bytes already on disk, up to ``attempts`` times."""
        entry = self.entry(name)
        dest = self.path(name)
        if dest.is_file():
            if self.problem(name, dest) is None:
                return dest
            self._quarantine(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        url = self.url(name)
        error, total = None, None
        for _ in range(max(1, attempts)):
            try:
                total = self._fetch(url, part, entry, progress=progress, timeout=timeout)
                error = None
                break
            except urllib.error.HTTPError as exc:  # a definite answer: no retry
                if exc.code == 416 and part.exists():  # nothing left to fetch: check what we have
                    error = None  # an earlier attempt's cut may have come after the last byte
                    break
                raise WeightsError(self._offline_message(name, url, dest, exc)) from None
            except ValueError as exc:  # a malformed URL
                raise WeightsError(self._offline_message(name, url, dest, exc)) from None
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:  # refused, reset, cut short
                error = exc
        if error is not None:
            have = part.stat().st_size if part.exists() else 0
            kept = f"; {have} bytes kept in {part} to resume" if have else ""
            raise WeightsError(self._offline_message(name, url, dest, error) + kept)
        reason = self.problem(name, part)
        if reason is None and total is None and entry.sha256 is None:  # a cut file could pass the MiB check
            reason = (f"{url} sent no Content-Length and no exact size or SHA-256 is published for it, so a download "
                      f"cut short cannot be told from the whole file; fetch it with a tool that shows its size and put "
                      f"it at {dest}")
        if reason is not None:
            moved = self._quarantine(part)
            raise WeightsError(f"{name}: download rejected: {reason}; moved to {moved}")
        os.replace(part, dest)
        return dest

    def _fetch(self, url: str, part: Path, entry: WeightsEntry, *, progress: bool, timeout: float) -> int | None:
        """Download ``url`` into ``part`` (resuming it); return the file's size where the server or
        the catalogue says it (None: nothing does)."""
        from tqdm.auto import tqdm

        offset = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(url, headers={"User-Agent": "xdream"})
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if offset and response.status != 206:  # the server ignored the range: start over
                offset = 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else entry.size
            with open(part, "ab" if offset else "wb") as f, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                desc=entry.file_name, disable=not progress,
            ) as bar:
                while block := response.read(CHUNK):
                    f.write(block)
                    bar.update(len(block))
                f.flush()
                os.fsync(f.fileno())
            if total is not None and part.stat().st_size < total:  # cut short (no Content-Length: the file's size)
                raise ConnectionError(f"connection closed after {part.stat().st_size} of {total} bytes")
            return total

    def _quarantine(self, path: Path) -> Path:
        target_dir = self.quarantine_dir()
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.{os.getpid()}.bad"
        os.replace(path, target)
        return target

    def _offline_message(self, name: str, url: str, dest: Path, exc: BaseException) -> str:
        if isinstance(exc, urllib.error.HTTPError):
            reason = f"HTTP {exc.code} {exc.reason}"
        else:
            reason = getattr(exc, "reason", None) or exc
        return (f"{name}: cannot download {url} ({reason}); on an offline machine fetch it elsewhere "
                f"({self.entry(name).hash_text()}) and put it at {dest}")
