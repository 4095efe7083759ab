"""Reading a finished characterisation run directory back (for the report and for
``xdream evolve --init-from-characterisation``).

Everything comes from the files :mod:`.run` writes: the resolved protocol and every unit's
verdicts with its preferred stimulus's exact parameters in ``summary.json``, and
the raw responses in ``responses.npz`` (from which recordings and their classification are
rebuilt, to draw a figure that was not written, e.g. after ``--no-unit-plots``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xdream.config import read_toml
from xdream.core.errors import ConfigError, RunDirError, choices_text
from xdream.characterise.outputs import safe_name
from xdream.characterise.protocol import Protocol
from xdream.characterise.record import Recording, UnitResult, classify_recording

SUMMARY_FILE, CLASSIFICATION_FILE = "summary.json", "classification.csv"


def is_characterisation(path: Path) -> bool:
    """Whether ``path`` looks like a characterisation run (its classification table exists)."""
    return (Path(path) / CLASSIFICATION_FILE).is_file() and (Path(path) / SUMMARY_FILE).is_file()


@dataclass
class CharacterisationRun:
    path: Path
    config: dict  # config.toml: the resolved settings (targets, method, alpha, ...)
    summary: dict  # summary.json: layers, table, unit_results, timings

    @classmethod
    def open(cls, path: str | Path) -> "CharacterisationRun":
        """A characterisation run directory, or a one-line RunDirError saying why it is not one."""
        path = Path(path)
        if not path.exists():
            raise RunDirError(f"characterisation run {path} not found (no such directory)")
        if not path.is_dir():
            raise RunDirError(f"characterisation run {path} is a file, not a run directory")
        if not is_characterisation(path):
            raise RunDirError(f"{path} is not a characterisation run (no {CLASSIFICATION_FILE} and {SUMMARY_FILE}; "
                              f"make one with xdream characterise TARGET --output {path})")
        summary = json.loads((path / SUMMARY_FILE).read_text())
        if not isinstance(summary.get("unit_results"), list):
            raise RunDirError(f"characterisation run {path} has no unit results in {SUMMARY_FILE} "
                              f"(written by an older xdream); run xdream characterise again")
        return cls(path, read_toml(path / "config.toml"), summary)

    @property
    def units(self) -> list[dict]:
        """Every unit's record: unit, group, baseline, double_opponent, sweeps (verdicts)."""
        return self.summary["unit_results"]

    def labels(self) -> list[str]:
        return list(dict.fromkeys(u["unit"] for u in self.units))

    def unit(self, label: str | None, target: str | None = None) -> dict:
        """The record of unit ``label``; without one, the only unit of the run, else the unit
        labelled like the evolution's ``target``; else a one-line ConfigError. A unit recorded
        in several groups (a layer and its own unit target) is the same unit: the first is used."""
        labels = self.labels()
        if label is None:
            if len(labels) == 1:
                label = labels[0]
            elif target in labels:
                label = target
            else:
                reason = f"none is the evolution's target {target!r}" if target else "the responder is no single unit"
                raise ConfigError(f"characterisation run {self.path} has {len(labels)} units and {reason}; choose one "
                                  f"with --init-unit (config init_unit): {choices_text(labels, limit=8)}")
        for record in self.units:
            if record["unit"] == label:
                return record
        raise ConfigError(f"unit {label!r} is not in characterisation run {self.path}; valid: "
                          f"{choices_text(labels, limit=8)}")

    def protocol(self) -> Protocol:
        return Protocol.from_dict(self.summary["protocol"])

    def unit_plot(self, label: str) -> Path:
        return self.path / "plots" / f"{safe_name(label)}.png"

    def recordings(self) -> dict[str, tuple[Recording, list[UnitResult]]]:
        """Per group (target): its recording rebuilt from ``responses.npz`` and its units
        classified again with the run's method and alpha (as the run classified them)."""
        protocol = self.protocol()
        table = protocol.table()
        out = {}
        with np.load(self.path / "responses.npz") as raw:
            for group in dict.fromkeys(u["group"] for u in self.units):
                key = safe_name(group)
                stimulus = raw[f"{key}__stimulus"]
                recording = Recording(table, stimulus, np.zeros_like(stimulus), raw[f"{key}__responses"],
                                      [str(u) for u in raw[f"{key}__units"]])
                results = classify_recording(recording, protocol, group, method=self.config.get("method", "auto"),
                                             alpha=self.config.get("alpha", 0.05))
                out[group] = (recording, results)
        return out


def preferred_stimulus(record: dict, sweep: str | None = None) -> tuple[dict, float]:
    """The unit's preferred stimulus (``describe`` form, with its sweep) and its mean response:
    of ``sweep``, or of the sweep whose best stimulus drove the unit most."""
    sweeps = record["sweeps"]
    if not sweeps:
        raise ConfigError(f"unit {record['unit']!r} has no stimulus sweep to take a preferred stimulus from")
    if sweep is None:
        finite = {k: v for k, v in sweeps.items() if v["max"] is not None}
        sweep = max(finite, key=lambda k: finite[k]["max"]) if finite else next(iter(sweeps))
    elif sweep not in sweeps:
        raise ConfigError(f"init_sweep {sweep!r} was not run for unit {record['unit']!r}; valid: {choices_text(sweeps)}")
    verdict = sweeps[sweep]
    return verdict["preferred"], verdict["max"]
