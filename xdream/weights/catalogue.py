"""The weights catalogue: every file the registered plugins declare.

No file is listed here: each generator or responder class declares its own files in its
``weights_files`` class attribute (see :class:`xdream.core.generator.Generator`), and this module
collects them through the registry, so a third-party plugin's weights are listed, downloaded and
verified by ``xdream weights`` exactly like the built-in ones.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Iterable, Mapping

from xdream.core import registry
from xdream.core.errors import WeightsError
from xdream.weights.entry import WeightsEntry

# plugin kinds whose interface declares ``weights_files``
WEIGHTS_KINDS = ("generator", "responder")


def registered() -> Mapping[str, WeightsEntry]:
    """The catalogue of every registered generator and responder (their classes are imported)."""
    return collect((kind, name, registry.load(kind, name))
                   for kind in WEIGHTS_KINDS for name in registry.available(kind))


def collect(plugins: Iterable[tuple[str, str, type]]) -> Mapping[str, WeightsEntry]:
    """A read-only catalogue ``name -> entry`` of the files ``(kind, name, class)`` declare.

    The same entry declared by two classes (a registered subclass inheriting its parent's files)
    is one file. Two different entries with the same catalogue name or the same cache file name
    would overwrite each other's file: that is a :class:`WeightsError` naming both plugins."""
    entries: dict[str, WeightsEntry] = {}
    owners: dict[tuple[str, str], tuple[WeightsEntry, str]] = {}  # ("name"|"file", value) -> first declarer
    for kind, name, plugin in plugins:
        who = f"{kind} {name!r} ({plugin.__module__}.{plugin.__qualname__})"
        for entry in getattr(plugin, "weights_files", ()):
            if not isinstance(entry, WeightsEntry):
                raise WeightsError(f"{who} declares weights_files item {entry!r}; each must be a "
                                   "xdream.weights.entry.WeightsEntry")
            for key in (("name", entry.name), ("file name", entry.file_name)):
                first = owners.setdefault(key, (entry, who))
                if first[0] != entry:
                    raise WeightsError(f"weights {key[0]} {key[1]!r} is declared by both {first[1]} and {who} "
                                       "with different files; rename one of them")
            entries[entry.name] = entry
    return MappingProxyType(entries)
