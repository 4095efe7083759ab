"""The contract every registered responder keeps, checked through the registry: each plugin's
``example(workdir, seed)`` (see :class:`xdream.core.responder.Responder`) gives the instance, so
a new plugin is tested by the same rules without writing a test of its own.

Scores are float64 ``[B]``, one per image; a score is a finite number or NaN (no valid
response), never infinite; ``respond_units`` has one labelled column per unit, and a responder
whose ``for_units`` builds an instance labels it with the units asked; the same seed gives the
same scores; ``close()`` may be called twice; the constructor takes the ``device`` a run passes."""

import inspect

import numpy as np
import pytest
import torch

from xdream.core import registry
from xdream.core.responder import NoisyResponder, Responder

NAMES = registry.available("responder")
BATCH = 6


def images(n=BATCH, size=48, seed=0):
    """Smooth random images in [0, 1] (noise blurred by upsampling), float32 [n, 3, size, size]."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, 6, 6, generator=g)
    return torch.nn.functional.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)


def example(name, tmp_path_factory, seed=0):
    return registry.load("responder", name).example(tmp_path_factory.mktemp(name), seed=seed)


@pytest.fixture(scope="module", params=NAMES)
def responder(request, tmp_path_factory):
    instance = example(request.param, tmp_path_factory)
    yield instance
    instance.close()


def finite_or_nan(scores):
    return bool(np.all(np.isfinite(scores) | np.isnan(scores)))


def test_core_responders_are_registered():
    assert {"torch-unit", "torch-layer", "torch-units", "zmq"} <= set(NAMES)


def test_name_is_the_registered_one(responder, request):
    assert responder.name == request.node.callspec.params["responder"]


def test_scores_shape_dtype_and_values(responder):
    scores = responder.respond(images())
    assert isinstance(scores, np.ndarray) and scores.dtype == np.float64 and scores.shape == (BATCH,)
    assert finite_or_nan(scores)
    assert np.isfinite(scores).any()  # NaN marks a lost trial, not every image
    assert np.unique(scores[np.isfinite(scores)]).size > 1  # it responds to the images, not a constant


@pytest.mark.parametrize("size", [16, 100])
def test_any_square_image_size_and_extreme_images(responder, size):
    checkerboard = ((torch.arange(size)[:, None] + torch.arange(size)) % 2).float().expand(3, -1, -1)
    extreme = torch.stack([torch.zeros(3, size, size), torch.ones(3, size, size), checkerboard])
    scores = responder.respond(extreme)
    assert scores.dtype == np.float64 and scores.shape == (3,) and finite_or_nan(scores)


def test_prepare_with_image_ids_then_respond(responder, tmp_path):
    ids = [f"g7-{i}" for i in range(BATCH - 1)] + ["g7-ref0"]
    responder.prepare(tmp_path, 7, ids)
    scores = responder.respond(images(seed=1))
    assert scores.shape == (BATCH,) and finite_or_nan(scores)


def test_respond_units_has_one_labelled_column_per_unit(responder):
    units = responder.respond_units(images())
    labels = responder.unit_labels()
    assert units.dtype == np.float64 and units.ndim == 2 and units.shape == (BATCH, len(labels))
    assert finite_or_nan(units)
    assert all(isinstance(label, str) and label for label in labels) and len(set(labels)) == len(labels)


def test_for_units_records_the_units_asked_in_their_order(responder, request):
    """``for_units`` over (up to three of) the units the example records, asked in reverse:
    None (the responder records a fixed set of its own, a session picks among its labels), or
    an instance whose labels are the units asked and whose columns follow them."""
    cls = registry.load("responder", request.node.callspec.params["responder"])
    units = responder.unit_labels()[:3][::-1]
    several = cls.for_units(units, {}, "cpu")
    assert several is None or isinstance(several, Responder), f"{cls.name}.for_units gave {several!r}"
    if several is None:
        return
    try:
        assert several.unit_labels() == units
        table = several.respond_units(images())
        assert table.dtype == np.float64 and table.shape == (BATCH, len(units)) and finite_or_nan(table)
        with cls.for_units(units[::-1], {}, "cpu") as forward:
            np.testing.assert_array_equal(forward.respond_units(images()), table[:, ::-1])
    finally:
        several.close()



def test_check_targets_accepts_the_units_it_records(responder, request):
    """``check_targets`` (a sweep's check before any run) accepts the units its example
    records, and where it checks anything, refuses a channel far out of range on one line."""
    from xdream.core.errors import ConfigError

    cls = registry.load("responder", request.node.callspec.params["responder"])
    units = [u for u in responder.unit_labels() if cls.accepts_target(u)]
    cls.check_targets(units, {"input_size": responder.input_size} if responder.input_size else {})
    if units and units[0].count(":") == 2:  # MODEL:LAYER:CHANNEL: the channel's range is checkable
        bad = units[0].rsplit(":", 1)[0] + ":100000"
        with pytest.raises(ConfigError, match="channel 100000 out of range") as info:
            cls.check_targets([bad], {"input_size": responder.input_size})
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_constructor_takes_the_device_a_run_passes(name):
    """A run builds its responder with ``device=`` (:func:`xdream.evolve.build.build_responder`),
    which the tests here, building through ``example()``, never pass."""
    params = inspect.signature(registry.load("responder", name)).parameters
    assert "device" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()), \
        f"responder {name!r}: its constructor takes no device parameter"


@pytest.mark.parametrize("name", NAMES)
def test_determinism_under_a_seed(name, tmp_path_factory):
    batch = images(seed=2)
    runs = []
    for _ in range(2):
        instance = example(name, tmp_path_factory, seed=11)
        try:
            runs.append((instance.respond(batch), instance.respond(batch)))
        finally:
            instance.close()
    np.testing.assert_array_equal(runs[0][0], runs[1][0])  # NaN where NaN, equal elsewhere
    np.testing.assert_array_equal(runs[0][1], runs[1][1])  # and the next call too


@pytest.mark.parametrize("name", NAMES)
def test_close_is_idempotent_and_a_context_manager_closes(name, tmp_path_factory):
    instance = example(name, tmp_path_factory)
    instance.respond(images(n=2))
    instance.close()
    instance.close()
    with example(name, tmp_path_factory) as managed:
        assert managed.respond(images(n=2)).shape == (2,)
    managed.close()  # after the with block: still harmless


@pytest.mark.parametrize("noise", registry.available("noise"))
def test_noise_on_top_keeps_every_nan_the_responder_gave(responder, noise):
    wrapped = NoisyResponder(responder, registry.load("noise", noise).example(), np.random.default_rng(0))
    noisy = wrapped.respond(images(seed=3))
    clean = wrapped.last_clean
    assert noisy.shape == clean.shape == (BATCH,) and noisy.dtype == np.float64
    assert np.all(np.isnan(noisy)[np.isnan(clean)])  # no response stays no response
