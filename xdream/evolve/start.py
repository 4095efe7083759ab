"""Where an evolution starts: the code of an image, found by gradient inversion.

One path for both sources: ``init_image`` (an image file) and ``init_characterisation`` (the
unit's preferred parametric stimulus in a characterisation run, re-rendered with its exact
parameters at the generator's size by the characterisation's own renderers). The image is
inverted with :func:`xdream.evolve.inversion.encode` and the code becomes the optimiser's ``init``
(the genetic algorithm's first population contains it; CMA-ES starts its mean there).

Written to the run directory::

    RUN/init_target.png          the image that was inverted, at the generator's size
    RUN/init_reconstruction.png  the generator's image of the code found
    RUN/init.json                the source (file, or characterisation run, unit, sweep, stimulus),
                                 the inversion's final pixel MSE and whether it failed
    RUN/init_unit_plot.png       the unit's tuning plot from the characterisation run, when it has one
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xdream.config import ExperimentConfig
from xdream.core.generator import Generator
from xdream.images.io import load_image, save_png
from xdream.evolve.inversion import Inversion, check_encodable, encode, fit_to_generator
from xdream.core.responder import Responder
from xdream.runs.rundir import RunDir, atomic_write

INIT_FILE = "init.json"
#: An inversion failed when its pixel MSE is above this fraction of the start image's own pixel
#: variance, i.e. the code's image explains less than half of the image (a flat grey at the
#: image's mean has a fraction of exactly 1): e.g. a grating that a face generator renders as a
#: striped face. The evolution then starts from the reconstruction, not from the image.
FAILED_FRACTION = 0.5


@dataclass
class Start:
    image: torch.Tensor  # [3, S, S] in [0, 1] at the generator's size: what is inverted
    source: dict  # what init.json records about where the image came from
    unit_plot: Path | None = None  # the characterised unit's tuning plot


def start_image(config: ExperimentConfig, generator: Generator, responder: Responder) -> Start:
    """The image the run starts from: ``init_image``, else the unit's preferred stimulus in
    ``init_characterisation`` (one of them is set); every problem is a one-line error."""
    if config.init_image is not None:
        image = fit_to_generator(load_image(config.init_image), generator.image_size)
        return Start(image, {"source": "image", "path": config.init_image})
    from xdream.characterise.load import CharacterisationRun, preferred_stimulus
    from xdream.characterise.protocol import render_described

    run = CharacterisationRun.open(config.init_characterisation)
    labels = responder.unit_labels()
    record = run.unit(config.init_unit, labels[0] if len(labels) == 1 else None)
    stimulus, response = preferred_stimulus(record, config.init_sweep)
    image = render_described(stimulus, generator.image_size)
    source = {
        "source": "characterisation", "path": config.init_characterisation,
        "resolved": str(run.path.resolve()), "unit": record["unit"], "group": record["group"],
        "stimulus": stimulus, "response": response, "baseline": record["baseline"],
        "double_opponent": record["double_opponent"],
        "classes": {name: v["label"] for name, v in record["sweeps"].items()},
        # why the preference may mislead (ties, the tested range's edge; older runs have none)
        "notes": record["sweeps"][stimulus["sweep"]].get("notes", []),
    }
    plot = run.unit_plot(record["unit"])
    return Start(image, source, plot if plot.is_file() else None)


def invert_start(config: ExperimentConfig, generator: Generator, responder: Responder, rng: np.random.Generator,
                 *, progress: bool = False) -> tuple[Start, Inversion] | None:
    """The start image and its inversion (nothing written), or None when the run starts from
    the generator's prior. The generator is checked before any image is read."""
    if config.init_image is None and config.init_characterisation is None:
        return None
    check_encodable(generator)
    start = start_image(config, generator, responder)
    return start, encode(generator, start.image, rng, progress=progress)


def save_start(run: RunDir, start: Start, inversion: Inversion) -> None:
    """The start's images and record in the run directory."""
    save_png(start.image, run.path / "init_target.png")
    save_png(inversion.image, run.path / "init_reconstruction.png")
    mse = min(inversion.losses, default=None)
    variance = float(start.image.double().var(unbiased=False))
    fraction = None if mse is None else (mse / variance if variance > 0 else (0.0 if mse == 0 else float("inf")))
    record = {**start.source, "inversion_mse": mse, "inversion_steps": len(inversion.losses),
              "image_variance": variance, "inversion_unexplained": fraction,
              "inversion_failed": fraction is not None and fraction > FAILED_FRACTION}
    run.write_json(INIT_FILE, {**record, "inversion_warning": inversion_warning(record)})  # the page shows it
    if start.unit_plot is not None:
        atomic_write(run.path / "init_unit_plot.png", start.unit_plot.read_bytes())


def inversion_warning(init: dict) -> str | None:
    """One line when ``init.json``'s inversion failed (see :data:`FAILED_FRACTION`), else None."""
    if not init.get("inversion_failed"):
        return None
    return (f"the start image's inversion failed: pixel MSE {init['inversion_mse']:.3g} is "
            f"{init['inversion_unexplained']:.0%} of the image's pixel variance {init['image_variance']:.3g} (a "
            f"good start is below {FAILED_FRACTION:.0%}); the evolution starts from the generator's reconstruction "
            "(init_reconstruction.png), not from the image")
