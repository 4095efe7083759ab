"""The contract every registered generator keeps, checked through the registry so that a new
plugin is tested by the same rules without writing a test of its own."""

import numpy as np
import pytest
import torch

from xdream.core import registry

# BigGAN-deep-256 and -512 are BigGAN-deep-128's class with more blocks (generators/biggan.py:
# one network, a config per size): their decode contract would check the same code at ~2x and
# ~3x the CPU of 128 (the suite's slowest tests), so it runs at 128, and tests/generators/
# test_biggan.py loads and decodes every size through the users' path.
SAME_CODE_AT_A_SMALLER_SIZE = {"biggan-deep-256": "biggan-deep-128", "biggan-deep-512": "biggan-deep-128"}
NAMES = [n for n in registry.available("generator") if n not in SAME_CODE_AT_A_SMALLER_SIZE]
BATCH = 3


@pytest.fixture(scope="module", params=NAMES)
def gen(request, generator_options):
    # No skipping: a generator whose weights are missing fails here (plugins whose weights
    # cannot ship get a weights file of their own from tests/generators/conftest.py).
    return registry.create("generator", request.param, generator_options(request.param), device="cpu")


def codes_for(gen, n=BATCH, seed=0):
    return gen.sample(n, np.random.default_rng(seed))


def test_core_generators_are_registered():
    assert {"dcgan-faces", "fourier", "pixel"} <= set(NAMES)
    registered = set(registry.available("generator"))
    for name, smaller in SAME_CODE_AT_A_SMALLER_SIZE.items():  # left out only where the smaller one is in
        assert name in registered and smaller in NAMES
        assert registry.load("generator", name).__mro__[1] is registry.load("generator", smaller).__mro__[1]


def test_attributes(gen, request):
    assert gen.name == request.node.callspec.params["gen"]
    assert gen.latent_dim == int(np.prod(gen.latent_shape)) > 0
    assert isinstance(gen.image_size, int) and gen.image_size >= 8


def test_images_shape_dtype_range_finite(gen):
    s = gen.image_size
    for scale in (1.0, 5.0):  # typical codes and codes far out in the tails
        with torch.no_grad():
            images = gen.decode(scale * codes_for(gen))
        assert images.shape == (BATCH, 3, s, s)
        assert images.dtype == torch.float32
        assert torch.isfinite(images).all()
        assert images.min() >= 0.0 and images.max() <= 1.0


def test_decode_accepts_numpy_and_torch(gen):
    codes = codes_for(gen)
    with torch.no_grad():
        from_numpy = gen.decode(codes)
        from_torch = gen.decode(torch.from_numpy(codes))
        from_shaped = gen.decode(torch.from_numpy(codes).reshape(BATCH, *gen.latent_shape))
        from_float64 = gen.decode(codes.astype(np.float64))
    assert torch.equal(from_numpy, from_torch)
    assert torch.equal(from_numpy, from_shaped)
    assert torch.equal(from_numpy, from_float64)


def test_gradients_flow_to_codes(gen):
    code = torch.from_numpy(codes_for(gen)).requires_grad_(True)
    images = gen.decode(code)
    weights = torch.from_numpy(np.random.default_rng(1).standard_normal(images.shape).astype(np.float32))
    (images * weights).sum().backward()
    assert code.grad is not None and code.grad.shape == code.shape
    assert torch.isfinite(code.grad).all()
    assert (code.grad.abs().sum(dim=1) > 0).all()  # every image's code gets a gradient


def test_decode_is_deterministic(gen):
    codes = codes_for(gen)
    with torch.no_grad():
        assert torch.equal(gen.decode(codes), gen.decode(codes))


def test_two_builds_decode_alike(gen, request, generator_options):
    """A second build with the same options decodes the same codes to the same images: nothing of
    a generator's construction comes from a global RNG (weights it forgot to load, a random
    projection), which would make two runs of one seed differ."""
    name = request.node.callspec.params["gen"]
    again = registry.create("generator", name, generator_options(name), device="cpu")
    codes = codes_for(gen)
    with torch.no_grad():
        assert torch.equal(gen.decode(codes), again.decode(codes))


def test_sample_shape_dtype_and_seed(gen):
    a = gen.sample(5, np.random.default_rng(7))
    assert a.shape == (5, gen.latent_dim) and a.dtype == np.float32
    assert np.array_equal(a, gen.sample(5, np.random.default_rng(7)))
    assert not np.array_equal(a, gen.sample(5, np.random.default_rng(8)))
    assert np.isfinite(a).all()


def test_batch_independence(gen):
    codes = codes_for(gen, n=4, seed=3)
    with torch.no_grad():
        batched = gen.decode(codes)
        single = torch.cat([gen.decode(codes[i : i + 1]) for i in range(len(codes))])
    # float32 kernels differ with the batch size; across BigGAN-deep's ~50 layers that is ~2e-5
    # here, far below a grey level (4e-3), while a batch that mixes images differs by ~0.1
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=1e-4)


def test_different_codes_give_different_images(gen):
    with torch.no_grad():
        images = gen.decode(codes_for(gen, n=2))
    assert (images[0] - images[1]).abs().mean() > 1e-3
