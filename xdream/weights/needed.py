"""The weights files a configured run needs, and which of them are missing here.

A run is refused before it starts when a file is missing (one line naming every missing file
and how to get it), rather than failing at the first of them. The files of a plugin are its
declared ``weights_files`` in the xdream cache, unless its table names a local file
(``weights = "FILE"``). A plugin whose files depend on its options (``torch-unit``: CaffeNet's
file from the xdream cache, a torchvision model's from torch's hub cache) declares the
classmethod ``needed_files(options) -> list[NeededFile]`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from xdream.core import registry
from xdream.core.errors import WeightsError


@dataclass(frozen=True)
class NeededFile:
    """One file a plugin will load. ``how`` says how to get it (a command that works);
    ``catalogue_name`` is set when ``xdream weights download NAME`` fetches it; ``fetch`` is
    another library's verified download (e.g. torchvision's hub) where xdream's catalogue has
    no entry."""

    what: str
    path: Path
    how: str
    catalogue_name: str | None = None
    fetch: Callable[[], object] | None = None

    @property
    def present(self) -> bool:
        return self.path.is_file()


def needed_files(kind: str, name: str, options: dict) -> list[NeededFile]:
    """The files plugin ``kind``/``name`` with ``options`` loads (none for a plugin without files)."""
    cls = registry.load(kind, name)
    own = getattr(cls, "needed_files", None)
    if own is not None:
        return list(own(options))
    if options.get("weights"):
        return [NeededFile(f"{name} (your file)", Path(options["weights"]).expanduser(), "check the path given")]
    if not cls.weights_files:
        return []
    from xdream.weights.cache import WeightsStore

    store = WeightsStore.from_environment()
    return [NeededFile(entry.name, store.path(entry.name), f"xdream weights download {entry.name}", entry.name)
            for entry in cls.weights_files]


def run_files(config) -> list[NeededFile]:
    """The files a one-thread :class:`~xdream.config.ExperimentConfig` loads: its generator's,
    then its responder's."""
    files = []
    for kind in ("generator", "responder"):
        plugin = getattr(config, kind)
        if plugin is not None:
            files += needed_files(kind, plugin.name, plugin.options)
    return files


def check_preset_files(preset: str, config) -> None:
    """Refuse preset ``preset`` (built into ``config``) when a weights file it loads is missing:
    one WeightsError naming each missing file, where it is expected and how to get it."""
    missing = "; ".join(f"{f.what} at {f.path} ({f.how})" for f in run_files(config) if not f.present)
    if not missing:
        return
    raise WeightsError(f"preset {preset} needs weights files missing here: {missing}; "
                       f"`xdream weights download --preset {preset}` fetches them, or pass local files with "
                       "--generator-weights FILE / --target-weights FILE")
