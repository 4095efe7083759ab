"""What a run sets on its torch device: deterministic kernels, and how many images to decode at once.

**Determinism** (PyTorch's "Reproducibility" notes): on CUDA, cuDNN picks among convolution
algorithms by timing them (``cudnn.benchmark``) and several of them, like ``ConvTranspose2d``'s
backward, ``index_add`` and atomics-based reductions, are nondeterministic; TF32 matmuls and
convolutions round differently from float32; cuBLAS needs a fixed workspace
(``CUBLAS_WORKSPACE_CONFIG=:4096:8``, set before CUDA starts) to repeat its results. With
``deterministic = true`` (a run's config key, the default) a CUDA run sets
``cudnn.deterministic``, turns ``cudnn.benchmark`` and TF32 off and calls
``torch.use_deterministic_algorithms(True)``, so an op without a deterministic kernel raises
instead of silently differing. The cost: cuDNN may not use its fastest (autotuned or TF32)
kernels; on Ampere and later TF32 alone is worth up to several times on large matmuls. On the
CPU torch's kernels are deterministic already and nothing is changed.

**Decode chunk.** On CUDA the chunk is as many images as half the free device memory holds at
the generator's cost per image -- its declared ``memory_per_image``, else the peak memory of
decoding one code, measured once -- so BigGAN-deep-512 decodes a few at a time where DeePSiM fc6
decodes a whole population. On the CPU the chunk stays :data:`DECODE_CHUNK` (today's behaviour).

**What fits.** :func:`check_memory` refuses, in one line and before anything is written, a run
whose images alone would take more than half of the memory available (the host's
``MemAvailable``, or a CUDA device's free memory): evolve's population, a gradient run's batch,
a characterisation's batch of stimuli. :data:`SIZE_RANGE` bounds the image sizes a user gives.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from xdream.core.errors import ConfigError

CUBLAS_ENV = "CUBLAS_WORKSPACE_CONFIG"
CUBLAS_WORKSPACE = ":4096:8"
DECODE_CHUNK = 64  # images decoded at once where nothing better is known (and always on the CPU)
MEMORY_SHARE = 0.5  # the part of the free device memory a decode chunk may take
#: The image sizes (px) a user may give: gradient ascent's images, DeepDream's, characterisation stimuli.
SIZE_RANGE = (8, 2048)


def is_cuda(device: str | torch.device) -> bool:
    return torch.device(device).type == "cuda"


def determinism_settings(deterministic: bool) -> dict:
    """The torch settings a CUDA run gets, for the run's record and for :func:`use_determinism`."""
    return {
        "cudnn.deterministic": deterministic,
        "cudnn.benchmark": not deterministic,
        "use_deterministic_algorithms": deterministic,
        "cuda.matmul.allow_tf32": not deterministic,
        "cudnn.allow_tf32": not deterministic,
        CUBLAS_ENV: CUBLAS_WORKSPACE if deterministic else os.environ.get(CUBLAS_ENV),
    }


def use_determinism(device: str | torch.device, deterministic: bool) -> dict:
    """Apply :func:`determinism_settings` when ``device`` is CUDA (process-wide, before any model
    is built); returns the settings applied ({} on other devices). ``CUBLAS_WORKSPACE_CONFIG`` only
    takes effect if CUDA has not started in this process: set here when the run is built, before
    its models reach the device (a user's own value is kept)."""
    if not is_cuda(device):
        return {}
    settings = determinism_settings(deterministic)
    if deterministic:
        os.environ.setdefault(CUBLAS_ENV, CUBLAS_WORKSPACE)
        settings[CUBLAS_ENV] = os.environ[CUBLAS_ENV]
    torch.backends.cudnn.deterministic = settings["cudnn.deterministic"]
    torch.backends.cudnn.benchmark = settings["cudnn.benchmark"]
    torch.backends.cuda.matmul.allow_tf32 = settings["cuda.matmul.allow_tf32"]
    torch.backends.cudnn.allow_tf32 = settings["cudnn.allow_tf32"]
    torch.use_deterministic_algorithms(deterministic)
    return settings


def decode_chunk(memory_per_image: int | None, free_bytes: int | None, fallback: int = DECODE_CHUNK) -> int:
    """How many images to decode at once: as many as :data:`MEMORY_SHARE` of ``free_bytes``
    holds at ``memory_per_image`` each, rounded down to a power of two (at least 1), so that a
    small change in free memory between a run and its resume rarely changes the batch shapes
    the kernels see; ``fallback`` when either is unknown (the CPU, or a generator that declares
    no cost)."""
    if not memory_per_image or free_bytes is None:
        return max(1, fallback)
    fits = int(free_bytes * MEMORY_SHARE) // int(memory_per_image)
    return 1 << max(0, fits.bit_length() - 1) if fits >= 1 else 1


def free_memory(device: str | torch.device) -> int | None:
    """Free bytes on a CUDA device (None elsewhere)."""
    if not is_cuda(device):
        return None
    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return int(free)


def bytes_per_image(generator, device: str | torch.device) -> int | None:
    """The device memory one decoded image takes: the generator's declared ``memory_per_image``,
    else (CUDA) the peak allocation of decoding one code of its own prior (its own RNG: the
    run's random streams are untouched); None on other devices."""
    declared = getattr(generator, "memory_per_image", None)
    if declared or not is_cuda(device):
        return declared or None
    dev = torch.device(device)
    torch.cuda.synchronize(dev)
    before = torch.cuda.memory_allocated(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    with torch.no_grad():
        generator.decode(generator.sample(1, np.random.default_rng(0)))
    torch.cuda.synchronize(dev)
    return max(1, torch.cuda.max_memory_allocated(dev) - before)


def available_memory(device: str | torch.device | None = None) -> int | None:
    """Bytes free for a run's tensors: a CUDA ``device``'s free memory, else the host's
    ``MemAvailable`` (/proc/meminfo); None where it cannot be read."""
    if device is not None and is_cuda(device):
        return free_memory(device)
    try:
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        return int(next(line for line in meminfo if line.startswith("MemAvailable:")).split()[1]) * 1024
    except (OSError, ValueError, StopIteration):
        return None


def check_memory(what: str, count: int, per_item: int, items: str, advice: str,
                 device: str | torch.device | None = None) -> None:
    """Refuse (one-line ConfigError) ``count`` items of ``per_item`` bytes each that would take
    more than half of :func:`available_memory` (the rest is for the models and the responder);
    ``what`` names the value, ``items`` what the memory holds, and ``advice`` says what to do,
    with ``{fits}`` for how many items fit (at least 1). Nothing is checked where the free
    memory is unknown."""
    need, have = count * per_item, available_memory(device)
    if have is not None and need > have // 2:
        fits = max(1, have // 2 // per_item)
        raise ConfigError(f"{what} needs about {need / 2**30:.1f} GiB for {items}, more than half of the "
                          f"{have / 2**30:.1f} GiB available (the rest is for the models and the responder): "
                          + advice.format(fits=fits))
