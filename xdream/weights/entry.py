"""One published weights file, as a plugin declares it beside its code.

In the spirit of torchvision's ``Weights`` enums (``torchvision.models.ResNet50_Weights``), a
plugin class lists its files in ``weights_files`` (see :class:`xdream.core.generator.Generator`
and :class:`xdream.core.responder.Responder`); :mod:`xdream.weights.catalogue` collects them
from every registered plugin and :mod:`xdream.weights.cache` downloads, verifies and locates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterable, Mapping


@dataclass(frozen=True)
class WeightsEntry:
    """One published weights file. ``name`` is the catalogue key (``xdream weights download
    NAME``), ``file_name`` its name in the cache; ``sha256``/``size`` are None where the
    publisher does not state them (keys and shapes are then checked at load)."""

    name: str
    url: str
    file_name: str
    sha256: str | None
    size: int | None
    licence: str
    description: str
    size_text: str = "?"  # the size as the publisher's page rounds it, for listings
    citation: str = ""  # the paper or page to cite for these weights

    def hash_text(self) -> str:
        """How a message names the expected hash."""
        return f"SHA-256 {self.sha256}" if self.sha256 else "no published SHA-256: keys and shapes are checked at load"


def by_name(entries: Iterable[WeightsEntry]) -> Mapping[str, WeightsEntry]:
    """A read-only catalogue ``name -> entry`` of ``entries`` (a plugin's own, for loading)."""
    return MappingProxyType({entry.name: entry for entry in entries})
