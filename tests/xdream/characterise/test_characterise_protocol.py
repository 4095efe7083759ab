"""Presets, overrides and their one-line errors; the stimulus table renders what it lists."""

import numpy as np
import pytest
import torch

from xdream.characterise import stimuli
from xdream.characterise.protocol import PRESETS, Protocol
from xdream.core.errors import ConfigError, UnknownNameError


def test_default_preset_is_the_reference_protocol():
    p = Protocol.from_dict({})
    t = p.table()
    assert len(t.rows("spatial")) == 18 * 32 * 16 == 9216
    assert len(t.rows("spectral")) == 36 and len(t.rows("baseline")) == 3
    np.testing.assert_allclose(np.unique(t.params["hue"][t.rows("spectral")]), np.arange(0, 360, 10))
    np.testing.assert_allclose(np.unique(t.params["orientation"][t.rows("spatial")]), np.arange(18) * 20)
    np.testing.assert_allclose(np.unique(t.params["phase"][t.rows("spatial")]), np.arange(32) * 11.25)
    np.testing.assert_allclose(np.unique(t.params["frequency"][t.rows("spatial")]), np.arange(16))
    assert p.baseline == "black" and p.repeats_of(t).sum() == len(t)


def test_coarse_rig_preset_has_repeats():
    p = Protocol.from_dict({"preset": "coarse"})
    t = p.table()
    assert len(t.rows("spatial")) == 8 * 4 * 6 and len(t.rows("spectral")) == 18
    reps = p.repeats_of(t)
    assert set(reps[t.rows("spatial")]) == {5} and set(reps[t.rows("baseline")]) == {20}
    assert reps.sum() == 210 * 5 + 3 * 20


def test_overrides_ranges_and_optional_sweeps():
    p = Protocol.from_dict({"preset": "coarse", "frequencies": {"start": 1, "stop": 4, "step": 1},
                            "red_green": True, "spots": True, "spot_sigmas": [0.1], "repeats": 2})
    t = p.table()
    assert p.frequencies == [1, 2, 3]
    assert len(t.rows("red-green")) == len(t.rows("spatial")) == 8 * 4 * 3
    assert len(t.rows("gaussian")) == len(t.rows("dog")) == 2  # ON and OFF
    assert Protocol.from_dict(p.to_dict()) == p  # the saved form rebuilds the same protocol


def test_table_renders_each_row_as_its_family():
    p = Protocol.from_dict({"preset": "coarse", "red_green": True, "spots": True})
    t = p.table()
    rows = np.array([t.rows(s)[-1] for s in t.sweeps()])
    images = t.render(rows[::-1], 16)
    last = {s: t.rows(s)[-1] for s in t.sweeps()}
    P = t.params
    expected = {
        "baseline": stimuli.uniform(P["level"][last["baseline"]], 16),
        "spectral": stimuli.hues(P["hue"][last["spectral"]], 16),
        "spatial": stimuli.gratings(P["orientation"][last["spatial"]], P["frequency"][last["spatial"]], P["phase"][last["spatial"]], 16),
        "red-green": stimuli.red_green_gratings(P["orientation"][last["red-green"]], P["frequency"][last["red-green"]], P["phase"][last["red-green"]], 16),
        "gaussian": stimuli.gaussian_spots(P["sigma"][last["gaussian"]], 16, P["polarity"][last["gaussian"]]),
        "dog": stimuli.dog_spots(P["sigma"][last["dog"]], 16, 3.0, P["polarity"][last["dog"]]),
    }
    for image, sweep in zip(images, list(t.sweeps())[::-1]):
        assert torch.equal(image, expected[sweep][0]), sweep


BAD = [
    ({"preset": "fine"}, UnknownNameError, "unknown preset 'fine'; valid: default, coarse"),
    ({"frequencies": []}, ConfigError, "empty parameter range: frequencies = []"),
    ({"hues": {"start": 10, "stop": 10, "step": 5}}, ConfigError, "empty parameter range: hues = []"),
    ({"orientations": {"start": 0, "stop": 90}}, ConfigError, "needs exactly start, stop and step"),
    ({"frequencies": [-1, 2]}, ConfigError, "frequencies value -1 out of range"),
    ({"colour": 1}, ConfigError, "unknown protocol key 'colour'"),
    ({"repeats": 0}, ConfigError, "repeats must be an integer >= 1, got 0"),
    ({"baseline": "pink"}, ConfigError, "baseline 'pink' is not a uniform field; valid: black, grey, white"),
    ({"baseline": "grey", "baseline_levels": [0.0]}, ConfigError, "must be one of baseline_levels"),
    ({"contrast": 2}, ConfigError, "contrast value 2 out of range"),
    ({"red_green": "False"}, ConfigError, "red_green must be true or false, got 'False'"),  # --set red_green=False
    ({"spots": "no"}, ConfigError, "spots must be true or false, got 'no'"),
]


@pytest.mark.parametrize("data, error, message", BAD, ids=[str(d) for d, _, _ in BAD])
def test_bad_protocols_one_line(data, error, message):
    with pytest.raises(error) as info:
        Protocol.from_dict(data)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_presets_are_valid():
    for name, preset in PRESETS.items():
        preset.validate()
        assert Protocol.from_dict({"preset": name}) == preset
