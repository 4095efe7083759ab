"""One published weights file, as a plugin declares it beside its code.

In the spirit of torchvision's ``Weights`` enums (``torchvision.models.ResNet50_Weights``), a
plugin class lists its files in ``weights_files`` (see :class:`xdream.core.generator.Generator`
and :class:`xdream.core.responder.Responder`); :mod:`xdream.weights.catalogue` collects them
from every registered plugin and :mod:`xdream.weights.cache` downloads, verifies and locates them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Iterable, Mapping

# A Hugging Face download URL naming a commit (``resolve/<40 hex digits>/FILE``) always serves the
# same bytes; ``resolve/main/FILE`` follows the branch. Other hosts' URLs count as not pinned.
_PINNED = re.compile(r"^https://huggingface\.co/[^/]+/[^/]+/resolve/[0-9a-f]{40}/")


@dataclass(frozen=True)
class WeightsEntry:
    """One published weights file. ``name`` is the catalogue key (``xdream weights download
    NAME``), ``file_name`` its name in the cache; ``sha256``/``size`` are None where the
    publisher does not state them (keys and shapes are then checked at load). ``size_mib``: where
    only a rounded size is published, that size in MiB, checked to +-0.5 MiB instead."""

    name: str
    url: str
    file_name: str
    sha256: str | None
    size: int | None
    licence: str
    description: str
    size_text: str = "?"  # the size as the publisher's page rounds it, for listings
    citation: str = ""  # the paper or page to cite for these weights
    size_mib: int | None = None  # the published size rounded to MiB, where no exact size is published

    @property
    def pinned(self) -> bool:
        """Whether the URL names an immutable revision (a Hugging Face commit), so that a
        download always fetches the published bytes however the repository changes."""
        return bool(_PINNED.match(self.url))

    def provenance_text(self) -> str:
        """What is and is not fixed about the published file, for listings: pinned, hashed, sized."""
        return ", ".join((
            "pinned to a commit" if self.pinned else "NOT pinned (the host has no revision to pin)",
            "SHA-256 published" if self.sha256 else "NO published SHA-256",
            f"{self.size} bytes" if self.size is not None
            else f"exact size not published, {self.size_mib} MiB checked" if self.size_mib is not None
            else "size not published",
        ))

    def hash_text(self) -> str:
        """How a message names the expected hash."""
        return f"SHA-256 {self.sha256}" if self.sha256 else "no published SHA-256: keys and shapes are checked at load"


def by_name(entries: Iterable[WeightsEntry]) -> Mapping[str, WeightsEntry]:
    """A read-only catalogue ``name -> entry`` of ``entries`` (a plugin's own, for loading)."""
    return MappingProxyType({entry.name: entry for entry in entries})
