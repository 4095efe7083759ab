"""Hand-built units with known answers, noise-free and through Poisson noise with repeats."""

import numpy as np
import pytest

import characterise_units as units
from xdream.characterise.protocol import Protocol
from xdream.characterise.record import classify_recording, present
from xdream.core.registry import create
from xdream.core.responder import NoisyResponder

# The reference spectral sweep and frequency axis; 4 orientations x 4 phases keep it fast.
FAST = {"orientations": [0.0, 45.0, 90.0, 135.0], "phases": [0.0, 90.0, 180.0, 270.0]}

CASES = [  # unit, spectral, spatial, double opponent
    (units.red_minus_green, "opponent", "unresponsive", False),
    (units.luminance, "non-opponent excitatory", "non-opponent excitatory", False),
    (units.dead, "unresponsive", "unresponsive", False),
    (units.centre_surround, "unresponsive", "opponent", False),
    (units.double_opponent, "opponent", "opponent", True),
]
IDS = [c[0].__name__ for c in CASES]


def characterise(unit, protocol, seed=0, noise=None, alpha=0.05):
    responder = unit if noise is None else NoisyResponder(unit, noise, np.random.default_rng(seed))
    recording = present(responder, protocol, units.SIZE, batch_size=512, rng=np.random.default_rng(seed + 100))
    return classify_recording(recording, protocol, "test", alpha=alpha)[0], recording


@pytest.mark.parametrize("make, spectral, spatial, double", CASES, ids=IDS)
def test_noise_free_classification(make, spectral, spatial, double):
    result, _ = characterise(make(), Protocol.from_dict(FAST))
    assert result.sweeps["spectral"].label == spectral
    assert result.sweeps["spatial"].label == spatial
    assert result.double_opponent is double
    assert {v.method for v in result.sweeps.values()} == {"exact"}


def test_red_minus_green_prefers_red_and_least_prefers_green():
    result, _ = characterise(units.red_minus_green(), Protocol.from_dict(FAST))
    spectral = result.sweeps["spectral"]
    assert spectral.preferred["hue"] == 0 and spectral.least_preferred["hue"] == 120
    assert spectral.max == pytest.approx(40.0, rel=1e-5) and spectral.min == pytest.approx(0.0, abs=1e-4)
    assert result.baseline == pytest.approx(20.0)


def test_centre_surround_prefers_the_frequency_theory_predicts():
    result, recording = characterise(units.centre_surround(), Protocol.from_dict(FAST))
    freqs = np.arange(16)
    theory = units.dog_gain(freqs)
    spatial = result.sweeps["spatial"]
    assert spatial.preferred["frequency"] == freqs[np.argmax(theory)]
    assert abs(spatial.preferred["frequency"] - units.dog_peak_frequency()) < 1
    assert spatial.preferred["phase"] == 0  # bright bar on the ON centre
    # the best-phase amplitude per frequency follows the DoG's transfer function
    table = recording.table
    rows = table.rows("spatial")
    amplitude = [np.max(spatial.curve[table.params["frequency"][rows] == f]) - result.baseline for f in freqs]
    gain = 40.0 * 0.5  # kernel gain x grating amplitude
    np.testing.assert_allclose(amplitude, gain * theory, atol=0.04 * gain)


# Poisson spike counts: the hand-built units' outputs are rates (baseline 20 or 5 spikes).
# Stated operating point: the coarse preset's 5 repeats (baseline 20) at alpha 0.01, where a
# sweep with no true response is called responsive about 1% of the time (0.05: about 4.5%,
# see test_characterise_classify), and every true response here is detected.
NOISY_REPEATS = 5
NOISY_ALPHA = 0.01


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("make, spectral, spatial, double", CASES, ids=IDS)
def test_poisson_noise_with_repeats(make, spectral, spatial, double, seed):
    protocol = Protocol.from_dict({"preset": "coarse"})
    assert protocol.repeats == NOISY_REPEATS and protocol.baseline_repeats == 20
    result, recording = characterise(make(), protocol, seed, create("noise", "poisson"), NOISY_ALPHA)
    assert result.sweeps["spectral"].label == spectral
    assert result.sweeps["spatial"].label == spatial
    assert result.double_opponent is double
    if make is not units.dead:
        assert result.sweeps["spatial"].method == "ttest"
        assert np.any(recording.responses != recording.clean)  # the responses really were noisy


def test_exact_rule_on_noisy_responses_sees_crossings_that_are_noise():
    """Why the statistical test exists: noise alone crosses the baseline under ==."""
    protocol = Protocol.from_dict({"preset": "coarse"})
    unit = units.red_minus_green()
    noisy = NoisyResponder(unit, create("noise", "poisson"), np.random.default_rng(0))
    recording = present(noisy, protocol, units.SIZE, batch_size=512, rng=np.random.default_rng(0))
    exact = classify_recording(recording, protocol, "t", method="exact")[0]
    ttest = classify_recording(recording, protocol, "t", method="ttest")[0]
    assert exact.sweeps["spatial"].label == "opponent"
    assert ttest.sweeps["spatial"].label == "unresponsive"
