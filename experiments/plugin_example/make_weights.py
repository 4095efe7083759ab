"""Make ``xdream_plugin_example/data/example_decoder.pt`` (the example generator's weights file)
and print the entry facts to declare in ``decoder.py``: its SHA-256 and size.

A lab would train its generator and save the state dict the same way (``torch.save`` of a dict
of tensors, which xdream loads tensors-only). Run: ``python make_weights.py``.
"""

import hashlib
from pathlib import Path

import torch

from xdream_plugin_example.decoder import FILE, SHAPES


def main() -> None:
    g = torch.Generator().manual_seed(0)
    out_features, latent = SHAPES["linear.weight"]
    state = {
        # scaled so that N(0, 1) codes give pre-sigmoid values of std ~1.5: contrasty images
        "linear.weight": torch.randn(out_features, latent, generator=g) * (1.5 / latent**0.5),
        "linear.bias": torch.zeros(out_features),
    }
    FILE.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, FILE)
    data = Path(FILE).read_bytes()
    print(f"{FILE}: {len(data)} bytes, SHA-256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
