"""Image parameterisations (Lucid's ``image``): what gradient ascent optimises.

``ImageParam(size, batch, fft=True, decorrelate=True)`` holds one learnable tensor and maps
it to ``[batch, 3, size, size]`` RGB in (0, 1):

- ``fft=False``: the tensor is the (pre-sigmoid) image itself, ``N(0, sd)``;
- ``fft=True``: the tensor is the real and imaginary spectrum ``N(0, sd)``, scaled by Lucid's
  1/f ``spectrum_scale`` and inverted (:func:`xdream.gradient.lucid.irfft_image`), which equalises the
  energy per octave so that Adam's steps are not dominated by high frequencies;
- ``decorrelate``: channels are in Lucid's decorrelated colour basis;
- then :func:`xdream.gradient.lucid.to_valid_rgb` (a sigmoid), so a zero tensor is mid-grey.

``sd`` is Lucid's 0.01. The initial tensor is drawn from the given ``torch.Generator`` only.
"""

from __future__ import annotations

import torch

from xdream.core.device import SIZE_RANGE  # the image sizes (px) a parameterisation allows
from xdream.core.errors import ConfigError, choices_text
from xdream.gradient.lucid import irfft_image, rfft2d_freqs, spectrum_scale, to_valid_rgb

#: Lucid's initial standard deviation of the parameter tensor.
LUCID_SD = 0.01


class ImageParam:
    """A batch of learnable images; call it to get ``[batch, 3, size, size]`` in (0, 1)."""

    def __init__(
        self,
        size: int = 128,
        batch: int = 1,
        *,
        fft: bool = True,
        decorrelate: bool = True,
        sd: float = LUCID_SD,
        decay_power: float = 1.0,
        generator: torch.Generator | None = None,
        device: str | torch.device = "cpu",
    ):
        if not SIZE_RANGE[0] <= size <= SIZE_RANGE[1]:
            raise ConfigError(f"image size must be in [{SIZE_RANGE[0]}, {SIZE_RANGE[1]}], got {size}")
        if batch < 1:
            raise ConfigError(f"batch must be >= 1, got {batch}")
        self.size, self.batch, self.fft, self.decorrelate = size, batch, fft, decorrelate
        if fft:
            shape = (2, batch, 3, *rfft2d_freqs(size, size).shape)
            self._scale = torch.as_tensor(spectrum_scale(size, size, decay_power), dtype=torch.float32, device=device)
        else:
            shape = (batch, 3, size, size)
        init = torch.randn(shape, generator=generator) * sd
        self.tensor = init.to(device).requires_grad_(True)

    @classmethod
    def named(cls, name: str, **kwargs) -> "ImageParam":
        """``pixel`` or ``fourier`` (both colour-decorrelated unless ``decorrelate=False``)."""
        if name not in PARAMETERISATIONS:
            raise ConfigError(f"unknown parameterisation {name!r}; valid: {choices_text(PARAMETERISATIONS)}")
        return cls(fft=PARAMETERISATIONS[name], **kwargs)

    def parameters(self) -> list[torch.Tensor]:
        return [self.tensor]

    def pre_sigmoid(self) -> torch.Tensor:
        """The image before colour decorrelation and sigmoid, ``[batch, 3, size, size]``."""
        if not self.fft:
            return self.tensor
        spectrum = torch.complex(self.tensor[0], self.tensor[1]) * self._scale
        return irfft_image(spectrum, self.size, self.size)

    def __call__(self) -> torch.Tensor:
        return to_valid_rgb(self.pre_sigmoid(), decorrelate=self.decorrelate)

    def __repr__(self) -> str:
        kind = "fourier" if self.fft else "pixel"
        return f"ImageParam({kind}, size={self.size}, batch={self.batch}, decorrelate={self.decorrelate})"


#: name -> uses the Fourier basis
PARAMETERISATIONS = {"fourier": True, "pixel": False}
