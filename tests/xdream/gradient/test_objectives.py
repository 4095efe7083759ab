"""Objectives: values on known activations, the algebra, and that each one rises under
gradient ascent on the embedded EfficientNet-Lite0."""

import numpy as np
import pytest
import torch

from xdream.gradient import objectives as obj
from xdream.gradient import ImageParam, render
from xdream.gradient.transforms import standard_transforms


@pytest.fixture
def acts():
    g = torch.Generator().manual_seed(0)
    return {"conv": torch.randn(3, 4, 5, 7, generator=g), "logits": torch.randn(3, 10, generator=g),
            "input": torch.rand(3, 3, 6, 6, generator=g)}


def test_values_on_known_activations(acts):
    a = acts["conv"]
    assert float(obj.neuron("conv", 2)(acts)) == pytest.approx(float(a[:, 2, 2, 3].mean()))
    assert float(obj.neuron("conv", 2, 1, 5)(acts)) == pytest.approx(float(a[:, 2, 1, 5].mean()))
    assert float(obj.neuron("logits", 4)(acts)) == pytest.approx(float(acts["logits"][:, 4].mean()))
    assert float(obj.channel("conv", 1)(acts)) == pytest.approx(float(a[:, 1].mean()))
    assert float(obj.channel("conv", 1, batch=2)(acts)) == pytest.approx(float(a[2, 1].mean()))
    assert float(obj.layer("conv")(acts)) == pytest.approx(float((a**2).mean()))
    assert float(obj.class_logit(7)(acts)) == pytest.approx(float(acts["logits"][:, 7].mean()))
    v = np.array([1.0, -2.0, 0.5, 0.0])
    expected = (a * torch.tensor(v, dtype=torch.float32).view(1, 4, 1, 1)).sum(1).mean()
    assert float(obj.direction("conv", v)(acts)) == pytest.approx(float(expected), rel=1e-5)


def test_diversity_is_minus_batch_size_minus_one_for_identical_images(acts):
    same = {"conv": acts["conv"][:1].repeat(4, 1, 1, 1)}
    assert float(obj.diversity("conv")(same)) == pytest.approx(-3.0, abs=1e-5)
    assert float(obj.diversity("conv")(acts)) > -2.0  # different images are less similar


def test_regularisers(acts):
    flat = {"input": torch.full((2, 3, 5, 5), 0.3)}
    assert float(obj.total_variation()(flat)) == 0 and float(obj.blur()(flat)) == pytest.approx(0)
    assert float(obj.l1(constant=0.3)(flat)) == pytest.approx(0, abs=1e-5)
    assert float(obj.l1()(flat)) == pytest.approx(0.3 * 75)
    step = torch.zeros(1, 1, 2, 3)
    step[..., 2] = 1.0  # one vertical edge of height 2
    assert float(obj.total_variation()({"input": step})) == 2.0
    assert float(obj.blur()(acts)) > 0


def test_blur_is_lucids_kernel():
    """An impulse in a 3x3 image: Lucid's blur (0.5 around, 1 at the centre, zero-padded and
    normalised inside the image) gives 1/5 at the centre and corners and 1/7 at the edges."""
    impulse = torch.zeros(1, 1, 3, 3)
    impulse[..., 1, 1] = 1.0
    blurred = torch.tensor([[1 / 5, 1 / 7, 1 / 5], [1 / 7, 1 / 5, 1 / 7], [1 / 5, 1 / 7, 1 / 5]])
    expected = 0.5 * float(((impulse[0, 0] - blurred) ** 2).sum())
    assert float(obj.blur()({"input": impulse})) == pytest.approx(expected, rel=1e-6)


def test_algebra(acts):
    a, b = obj.channel("conv", 0), obj.class_logit(3)
    va, vb = float(a(acts)), float(b(acts))
    assert float((a + b)(acts)) == pytest.approx(va + vb)
    assert float((a - 2 * b)(acts)) == pytest.approx(va - 2 * vb)
    assert float((b * 3 - a / 2)(acts)) == pytest.approx(3 * vb - va / 2)
    assert float((-a)(acts)) == pytest.approx(-va)
    assert float((1 - a + 0.5)(acts)) == pytest.approx(1.5 - va)
    combined = a - 1e-3 * obj.total_variation() + b
    assert combined.layers == ("conv", "input", "logits")
    assert "channel(conv:0)" in combined.name and "tv(input)" in combined.name
    with pytest.raises(TypeError):
        a * b


def objective_cases(layer):
    return {
        "neuron": obj.neuron(layer, 3),
        "channel": obj.channel(layer, 3),
        "layer": obj.layer(layer),
        "class_logit": obj.class_logit(285),
        "direction": obj.direction(layer, np.linspace(-1, 1, 40)),
        "diversity": obj.diversity(layer),
    }


@pytest.mark.parametrize("name", list(objective_cases("x")))
def test_every_objective_rises_on_efficientnet_lite0(name, lite_target):
    objective = objective_cases("_blocks.4")[name]
    batch = 3 if name == "diversity" else 1

    def clean_value(images):
        with torch.no_grad():
            return float(objective(lite_target.activations(images, objective.layers)))

    param = ImageParam(48, batch=batch, generator=torch.Generator().manual_seed(1))
    before = param().detach()
    after = render(objective, lite_target, param=param, steps=10, seed=1).images
    assert clean_value(after) > clean_value(before) + 1e-3


def test_render_history_and_score(lite_unit, lite_target):
    result = render(lite_target.objective, lite_target, size=48, steps=8, seed=0, score=lite_unit.respond,
                    score_every=4, transforms=standard_transforms())
    assert [h["step"] for h in result.history] == [0, 4, 8]
    assert result.history[-1]["score"] > result.history[0]["score"]
    assert result.history[-1]["score"] == pytest.approx(float(lite_unit.respond(result.images).max()))
    assert result.images.shape == (1, 3, 48, 48) and 0 < float(result.images.min()) <= float(result.images.max()) < 1


def test_penalties_fall_when_subtracted(lite_target):
    for penalty in (obj.total_variation(), obj.blur(), obj.l1(constant=0.5)):
        param = ImageParam(32, fft=False, sd=1.0, generator=torch.Generator().manual_seed(0))
        start = float(penalty({"input": param().detach()}))
        result = render(-penalty, lite_target, param=param, steps=10, lr=0.1)
        assert float(penalty({"input": result.images})) < 0.9 * start
