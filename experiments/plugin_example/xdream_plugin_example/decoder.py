"""``example-decoder``: an 8-number code -> a 32 px colour image, through one linear layer whose
weights come from a file the plugin declares (``weights_files``), as a lab's trained generator would.

Decoding: ``linear`` maps the code to a 3 x 6 x 6 map, bilinear upsampling takes it to 32 x 32, a
sigmoid maps it into [0, 1]. Every step is differentiable, so gradient baselines work too.

The weights file ships inside this package (``data/example_decoder.pt``, made by
``make_weights.py``) and its entry's URL is a ``file://`` URL to it, so ``xdream weights download
example-decoder`` works offline. A lab's own generator would point ``url`` at its server.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from xdream.core.generator import Generator
from xdream.weights.cache import WeightsStore
from xdream.weights.entry import WeightsEntry, by_name
from xdream.weights.store import check_table, load_tensor_file

LATENT = 8
GRID = 6  # the linear layer's output map is 3 x GRID x GRID
IMAGE_SIZE = 32
SHAPES = {"linear.weight": (3 * GRID * GRID, LATENT), "linear.bias": (3 * GRID * GRID,)}
FILE = Path(__file__).resolve().parent / "data" / "example_decoder.pt"

WEIGHTS = WeightsEntry(
    name="example-decoder",
    url=FILE.as_uri(),
    file_name="example_decoder.pt",
    sha256="2faa16295edfcd728cfb6ad230149ef300f8eb55154713b155c05a67604d9548",
    size=5797,
    licence="CC0-1.0",
    description="example-decoder's linear layer (random, seed 0; make_weights.py)",
    size_text="5.7 KiB",
    citation="xdream-plugin-example (experiments/plugin_example in the xdream repository)",
)


class ExampleDecoder(Generator):
    """A tiny decoding generator. Options: ``weights`` (a local file instead of the cache),
    ``verify`` (check its SHA-256; default true)."""

    name = "example-decoder"
    latent_shape = (LATENT,)
    image_size = IMAGE_SIZE
    weights_files = (WEIGHTS,)

    def __init__(self, *, weights: str | None = None, verify: bool = True, device: str = "cpu"):
        super().__init__(device=device)
        store = WeightsStore.from_environment(catalog=by_name(self.weights_files))
        path = store.resolve(WEIGHTS.name, weights, verify=verify)
        state = load_tensor_file(path, self.name)
        check_table(state, SHAPES, {}, what=self.name, path=path, table="example-decoder layer table")
        self.weight = state["linear.weight"].to(self.device)
        self.bias = state["linear.bias"].to(self.device)

    def decode_tensor(self, codes: torch.Tensor) -> torch.Tensor:
        grid = F.linear(codes, self.weight, self.bias).reshape(len(codes), 3, GRID, GRID)
        image = F.interpolate(grid, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
        return torch.sigmoid(image)
