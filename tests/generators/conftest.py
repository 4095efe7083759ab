"""Weights files for generators whose published weights cannot ship with the tests.

DeePSiM: one file per distinct layer table (fc6/fc6_eucl/fc7 and conv3/conv4 share theirs),
written once per session in the official format -- a pickled OrderedDict via ``torch.save``
with the official keys and shapes -- holding fresh random weights. Tests load them through
the users' path, hash check included: they pass the file's own SHA-256 as ``sha256``.

BigGAN-deep: likewise one file per size (200-225 MiB each), in the pre-1.6 ``torch.save`` format
the package's files were written in, made on first use and deleted when the session ends.
"""

import pytest
import torch

from generators import biggan, deepsim
from xdream.weights.store import sha256_file


@pytest.fixture(scope="session")
def deepsim_file(tmp_path_factory):
    """variant -> (path, sha256) of a random-weights file in the official format."""
    root = tmp_path_factory.mktemp("deepsim")
    made = {}

    def get(variant):
        table = tuple(deepsim.expected_shapes(variant).items())
        if table not in made:
            path = root / f"upconvGAN_{variant}.pt"
            torch.save(deepsim.init_state_dict(variant, seed=len(made)), path)
            made[table] = (path, sha256_file(path))
        return made[table]

    return get


@pytest.fixture(scope="session")
def biggan_file(tmp_path_factory):
    """resolution -> (path, sha256) of a random-weights file in the official format."""
    root = tmp_path_factory.mktemp("biggan")
    made = {}

    def get(resolution):
        if resolution not in made:
            path = root / f"biggan-deep-{resolution}-pytorch_model.bin"
            state = biggan.init_state_dict(resolution, seed=resolution)
            torch.save(state, path, _use_new_zipfile_serialization=False)
            made[resolution] = (path, sha256_file(path))
        return made[resolution]

    yield get
    for path, _ in made.values():
        path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def generator_options(deepsim_file, biggan_file):
    """Registered generator name -> the options its tests construct it with."""

    def options(name):
        if name.startswith("deepsim-"):
            path, sha = deepsim_file(name.removeprefix("deepsim-").replace("-", "_"))
            return {"weights": str(path), "sha256": sha}
        if name.startswith("biggan-deep-"):
            path, sha = biggan_file(int(name.removeprefix("biggan-deep-")))
            return {"weights": str(path), "sha256": sha}
        return {}

    return options
