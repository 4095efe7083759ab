"""``xdream characterise``: build the responders, present the protocol, write everything.

Each target spec goes to the registered responder that accepts it (the core never imports
the plugins): with the built-in ones, ``MODEL:LAYER:CHANNEL[:Y:X]`` is one unit and
``MODEL:LAYER[:Y:X]`` a whole layer (every channel's centre unit from one forward pass). Python
callers pass any :class:`~xdream.core.responder.Responder` (a rig link, their own module) to
:func:`characterise`.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xdream.core import registry
from xdream.config import to_toml
from xdream.core.device import SIZE_RANGE, check_memory
from xdream.core.errors import ConfigError, RunDirError, choices_text
from xdream.core.responder import NoisyResponder, Responder
from xdream.runs.rundir import RunDir, atomic_write
from xdream.core.seeding import check_seed, derive_rngs
from xdream.characterise import outputs
from xdream.characterise.classify import METHODS
from xdream.characterise.protocol import Protocol
from xdream.characterise.record import UnitResult, classify_recording, present

DEFAULT_SIZE = 224  # stimulus px for a responder that reads any size


@dataclass
class Settings:
    """Everything but the protocol: where, how, and with which noise and seed."""

    seed: int = 0
    size: int | None = None  # stimulus size in px; default: the responder's input size, else 224
    batch_size: int = 64
    method: str = "auto"
    alpha: float = 0.05
    unit_plots: bool = True
    noise: dict | None = None  # {"name": ..., options}

    def noise_model(self):
        """The configured noise model (validated through the registry), or None."""
        if self.noise is None:
            return None
        opts = dict(self.noise)
        return registry.create("noise", opts.pop("name"), opts)

    def validate(self, protocol: Protocol) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown classification method {self.method!r}; valid: {choices_text(METHODS)}")
        check_seed(self.seed)
        if not 0 < self.alpha < 1:
            raise ConfigError(f"alpha must be between 0 and 1, got {self.alpha}")
        if self.size is not None and not 1 <= self.size <= SIZE_RANGE[1]:
            raise ConfigError(f"size must be in [1, {SIZE_RANGE[1]}] px, got {self.size}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.noise is not None and self.method != "exact" and min(protocol.repeats, protocol.baseline_repeats) < 2:
            raise ConfigError(
                f"noisy responses need repeats >= 2 and baseline_repeats >= 2 for the statistical test, got "
                f"{protocol.repeats} and {protocol.baseline_repeats}; use --preset coarse or --set repeats=5"
            )
        if self.method == "ttest" and min(protocol.repeats, protocol.baseline_repeats) < 2:
            raise ConfigError(
                f"the t-test needs repeats >= 2 and baseline_repeats >= 2 (method 'ttest'), got {protocol.repeats} "
                f"and {protocol.baseline_repeats}; use --preset coarse, --set repeats=5 --set baseline_repeats=5, "
                "or --method exact"
            )

    def check_fits(self, targets: dict[str, Responder], protocol: Protocol) -> None:
        """Refuse, in one line, a batch of stimuli that cannot fit in memory: ``batch_size``
        presentations (at most all of them) at each responder's stimulus size, as float32 RGB,
        twice (the rendered batch and the responder's preprocessed copy)."""
        count = min(self.batch_size, int(protocol.repeats_of(protocol.table()).sum()))
        for responder in targets.values():
            size = self.size or responder.input_size or DEFAULT_SIZE
            check_memory(f"batch_size {self.batch_size}", count, 3 * size * size * 4 * 2,
                         f"{count} stimuli of {size} px at once", "use a smaller batch_size (at most about {fits})")


def target_responder(target: str, options: dict, device: str = "cpu") -> Responder:
    """The responder that records ``target`` (a unit or a whole layer: the registered responder
    whose ``accepts_target`` takes the spec)."""
    name = registry.responder_for_target(target)
    return registry.create("responder", name, {"target": target, **options}, device=device)


def characterise(targets: dict[str, Responder], protocol: Protocol, settings: Settings, output: str | Path,
                 *, config: dict | None = None, progress: bool = False) -> tuple[list[UnitResult], list[dict]]:
    """Present ``protocol`` to every responder (name -> responder), classify every unit and
    write the run directory ``output``; returns the unit results and the layer summary. Its
    ``config.toml`` holds ``config`` with the settings and protocol the run used (seed, targets,
    method, alpha, batch_size, size, protocol, noise) in place of any it gives."""
    from tqdm.auto import tqdm

    settings.validate(protocol)
    settings.check_fits(targets, protocol)
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise RunDirError(f"output directory {output} already exists and is not empty; choose another")
    noise = settings.noise_model()
    rngs = derive_rngs(settings.seed)
    resolved = {"seed": settings.seed, "targets": list(targets), "method": settings.method, "alpha": settings.alpha,
                "batch_size": settings.batch_size, **({"size": settings.size} if settings.size else {}),
                "protocol": protocol.to_dict(), **({"noise": settings.noise} if settings.noise else {})}
    # what the run did, whatever the caller's config says: the report and its redrawn plots read it
    run = RunDir.create(output, to_toml({**(config or {}), **resolved}), subdirs=("responses", "plots"),
                        kind="characterise")
    table = protocol.table()
    outputs.write_stimulus_strip(run.path / "stimuli.png", table)
    presentations = int(protocol.repeats_of(table).sum())
    results, timings, arrays = [], {}, {}
    for group, responder in targets.items():
        size = settings.size or responder.input_size or DEFAULT_SIZE
        if noise is not None:
            responder = NoisyResponder(responder, noise, rngs["noise"])
        start = time.perf_counter()
        with tqdm(total=presentations, unit="img", desc=group, disable=not progress, dynamic_ncols=True) as bar:
            recording = present(responder, protocol, size, batch_size=settings.batch_size, rng=rngs["order"],
                                progress=bar.update)
        timings[group] = {"seconds": time.perf_counter() - start, "presentations": presentations,
                          "units": len(recording.units), "size": size}
        arrays[f"{outputs.safe_name(group)}__units"] = np.array(recording.units)
        arrays[f"{outputs.safe_name(group)}__stimulus"] = recording.stimulus
        arrays[f"{outputs.safe_name(group)}__responses"] = recording.responses
        if recording.clean is not None:
            arrays[f"{outputs.safe_name(group)}__clean"] = recording.clean
        outputs.write_unit_tables(run.path / "responses", recording)
        group_results = classify_recording(recording, protocol, group, method=settings.method, alpha=settings.alpha)
        if settings.unit_plots:
            for u, result in enumerate(group_results):
                outputs.plot_unit(run.path / "plots" / f"{outputs.safe_name(result.unit)}.png", recording, u, result)
        results += group_results
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write(run.path / "responses.npz", buffer.getvalue())
    summary = outputs.write_summary(run.path, protocol, results, {"timings": timings, "seed": settings.seed,
                                                                    "threads": torch.get_num_threads()})
    return results, summary
