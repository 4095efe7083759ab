"""Rendering, latent ascent and DeepDream on real models; seeding; bad input."""

import random

import numpy as np
import pytest
import torch
from torch import nn

from xdream.core import registry
from xdream.core.errors import ConfigError, UnknownNameError
from xdream.gradient import ModelTarget, channel, deepdream_image, latent_ascent, layer, render, target_of
from xdream.core.generator import Generator

skimage_data = pytest.importorskip("skimage.data")


def test_same_seed_same_images_whatever_the_global_rngs(lite_target):
    results = []
    for global_seed in (1, 2):
        random.seed(global_seed)
        np.random.seed(global_seed)
        torch.manual_seed(global_seed)
        results.append(render(lite_target.objective, lite_target, size=32, steps=3, seed=7).images)
    assert torch.equal(results[0], results[1])
    other = render(lite_target.objective, lite_target, size=32, steps=3, seed=8).images
    assert not torch.equal(results[0], other)


def test_responder_objective_equals_its_activation(lite_unit, lite_target):
    images = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        value = lite_target.objective(lite_target.activations(images, lite_target.objective.layers))
    assert float(value) == pytest.approx(float(lite_unit.activation(images).mean()), rel=1e-5)
    mean_unit = registry.create("responder", "torch-unit", {"target": lite_unit.target.__str__(), "input_size": 64,
                                                            "readout": "mean"})
    target = mean_unit.feature_target()
    with torch.no_grad():
        value = target.objective(target.activations(images, target.objective.layers))
    assert "channel(" in target.objective.name
    assert float(value) == pytest.approx(float(mean_unit.activation(images).mean()), rel=1e-5)


def test_layer_target_unit_objective_is_the_layer_score_and_it_has_no_channel():
    """On a whole-layer target (torch-layer, scored by the mean over its channels' centre units)
    the ``unit`` objective is that score, not channel 0; ``channel`` is refused on one line."""
    from xdream.gradient.baselines import GradientSettings, prepare

    layer_unit = registry.create("responder", "torch-layer", {"target": "efficientnet_lite0:_blocks.4",
                                                              "input_size": 64})
    parts = prepare(layer_unit, GradientSettings(size=40))
    target, objective = parts["target"], parts["objective"]
    images = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        value = objective(target.activations(images, objective.layers))
    assert float(value) == pytest.approx(float(layer_unit.respond(images)[0]), rel=1e-5, abs=1e-6)
    assert target.name == "efficientnet_lite0:_blocks.4"
    with pytest.raises(ConfigError) as e:
        prepare(layer_unit, GradientSettings(objective="channel"))
    message = str(e.value)
    assert "\n" not in message and "efficientnet_lite0:_blocks.4" in message and "unit, layer, class:N" in message


class DetachedHead(nn.Module):
    """A user's model whose second layer is computed on a detached copy: no gradient path."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.frozen = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        return self.frozen(self.conv(x).detach()).mean((2, 3))


def test_layer_without_gradient_path_is_one_line():
    target = ModelTarget(DetachedHead(), input_size=16, name="DetachedHead")
    render(channel("conv", 0), target, size=16, steps=1)  # the first layer is fine
    with pytest.raises(ConfigError, match=r"layer 'frozen' of DetachedHead has no gradient path") as e:
        render(channel("frozen", 0), target, size=16, steps=1)
    assert "\n" not in str(e.value)


def test_unknown_layer_and_non_torch_responder():
    with pytest.raises(UnknownNameError, match="unknown layer 'conv2'.*close matches: conv"):
        render(channel("conv2", 0), ModelTarget(DetachedHead(), input_size=16), size=16, steps=1)
    noise_free = registry.load("noise", "poisson")
    with pytest.raises(ConfigError, match="has no differentiable model"):
        target_of(noise_free())


@pytest.mark.parametrize("name, options", [("dcgan-faces", {}), ("fourier", {"size": 32}), ("pixel", {"size": 16})])
def test_latent_ascent_raises_the_unit(name, options, lite_unit, lite_target):
    generator = registry.create("generator", name, options)
    result = latent_ascent(generator, lite_target.objective, lite_target, batch=2, steps=8, lr=0.1, seed=0,
                           score=lite_unit.respond, score_every=4)
    assert result.codes.shape == (2, generator.latent_dim)
    assert result.history[-1]["score"] > result.history[0]["score"]
    torch.testing.assert_close(result.images, generator.decode(result.codes))


class NumpyBlobs(Generator):
    """A generator that renders with numpy: real images, but no gradient to the codes."""

    name = "numpy-blobs"
    latent_shape = (3,)
    image_size = 16

    def decode_tensor(self, codes):
        colours = 1 / (1 + np.exp(-codes.detach().numpy()))
        return torch.from_numpy(np.ascontiguousarray(np.broadcast_to(colours[:, :, None, None], (len(codes), 3, 16, 16))))


def test_non_differentiable_generator_is_one_line(lite_target):
    with pytest.raises(ConfigError, match="generator 'numpy-blobs' is not differentiable") as e:
        latent_ascent(NumpyBlobs(), lite_target.objective, lite_target, steps=2)
    assert "\n" not in str(e.value)


def test_deepdream_from_a_photo_with_octaves(lite_target):
    photo = torch.from_numpy(skimage_data.chelsea()[:, 75:375]).permute(2, 0, 1)[None].float() / 255
    photo = torch.nn.functional.interpolate(photo, size=(96, 96), mode="area")
    objective = layer("_blocks.4")
    result = deepdream_image(photo, lite_target, objective, octaves=3, steps_per_octave=3, seed=0)
    assert result.images.shape == photo.shape and result.steps == 9
    with torch.no_grad():
        before = float(objective(lite_target.activations(photo, objective.layers, resize=False)))
    assert result.history[-1]["objective"] > 1.2 * before
    change = (result.images - photo).abs().mean()
    assert 0.005 < float(change) < 0.2  # dreamed into, still the photo
    assert np.corrcoef(result.images.flatten(), photo.flatten())[0, 1] > 0.8
    with pytest.raises(ConfigError, match="octave_scale > 1"):
        deepdream_image(photo, lite_target, objective, octave_scale=0.5)


def test_deepdream_run_takes_lr_as_its_step_size_and_refuses_score_every(lite_unit):
    """``xdream gradient --method deepdream --lr X`` is DeepDream's step size (default 0.01);
    a setting DeepDream does not use (score_every: it scores once per octave) is refused."""
    from xdream.gradient.baselines import GradientSettings, prepare, run_gradient

    settings = GradientSettings(method="deepdream", size=16, steps=2, octaves=2)
    parts = prepare(lite_unit, settings)
    images = {lr: run_gradient(lite_unit, GradientSettings(method="deepdream", size=16, steps=2, octaves=2, lr=lr),
                               parts).images for lr in (None, 0.01, 0.05)}
    expected = deepdream_image(parts["photo"], parts["target"], parts["objective"], octaves=2, steps_per_octave=2,
                               step_size=0.05).images
    assert torch.equal(images[None], images[0.01]) and torch.equal(images[0.05], expected)
    assert not torch.equal(images[None], images[0.05])
    with pytest.raises(ConfigError, match=r"^gradient score_every 4 is not used by method 'deepdream'; methods "
                                          r"that use it: featurevis, pixel, latent$"):
        GradientSettings(method="deepdream", score_every=4).validate()
