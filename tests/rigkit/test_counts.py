"""rigkit.counts: exact counts per window and channel, baseline subtraction, aborted trials
dropped, onsets from a photodiode trace and from markers, and alignment that names a missing
onset or a clock offset."""

import warnings

import numpy as np
import pytest

from rigkit.counts import (AlignmentError, ClockOffsetError, MissingOnsetError, Presentation, SpikeCounter, Window,
                           align, onsets_from_markers, onsets_from_photodiode)
from spike_scenario import BASELINE, SPACING, WINDOWS, build, expected_values
from xdream.core.errors import ConfigError, XDreamError


@pytest.mark.parametrize("subtract", [False, True])
def test_records_carry_the_constructed_counts(subtract):
    s = build(seed=1)
    onsets, offset = align(s.presentations, s.onsets, jitter=0.005)
    assert offset == pytest.approx(s.offset, abs=0.005)
    valid = np.array([p.valid for p in s.presentations])
    np.testing.assert_array_equal(onsets[valid], s.onsets[valid])
    assert np.isnan(onsets[~valid]).all() or np.allclose(onsets[~valid], s.onsets[~valid])
    counter = SpikeCounter(WINDOWS, baseline=BASELINE if subtract else None, subtract=subtract)
    records = counter.records(s.presentations, onsets, s.spikes)
    assert [r["values"] for r in records] == expected_values(s, subtract)
    assert [r["valid"] for r in records] == list(valid)
    assert [(r["image_id"], r["repeat"], r["trial_id"]) for r in records] == \
        [(p.image_id, p.repeat, p.trial_id) for p in s.presentations]


def test_windows_are_half_open_and_per_channel():
    counter = SpikeCounter({"a": Window(0.0625, 0.125), "b": Window(0.0, 0.0625)})  # binary-exact times
    spikes = {"a": np.array([1.0625, 1.125, 1.1875]), "b": np.array([1.0, 1.0625])}
    np.testing.assert_array_equal(counter.counts(spikes, np.array([1.0])), [[2, 1]])  # 1.1875, 1.0625: the ends


def test_photodiode_onsets_ignore_flicker_within_the_dead_time():
    times = np.arange(0, 2, 0.001)
    signal = np.zeros_like(times)
    for t0 in (0.2, 0.9, 1.5):
        signal[(times >= t0) & (times < t0 + 0.05)] = 1.0
    signal[(times >= 0.21) & (times < 0.212)] = 0.0  # a flickering edge: one onset, not two
    np.testing.assert_allclose(onsets_from_photodiode(signal, times, 0.5, dead_time=0.05), [0.2, 0.9, 1.5])


def test_markers_select_their_label():
    markers = [(2.0, "onset g0-1 r0"), (1.0, "onset"), (1.5, "reward"), (3.0, "onsets")]
    np.testing.assert_array_equal(onsets_from_markers(markers, "onset"), [1.0, 2.0])


def test_a_missing_onset_is_named():
    s = build(seed=2)
    k = 5  # a valid presentation
    with pytest.raises(MissingOnsetError, match=f"trial {s.presentations[k].trial_id} \\(image "
                                                f"{s.presentations[k].image_id}, repeat {s.presentations[k].repeat}"):
        align(s.presentations, np.delete(s.onsets, k), jitter=0.005)
    onsets, _ = align(s.presentations, np.delete(s.onsets, 3), jitter=0.005)  # an aborted trial's: not needed
    assert np.isnan(onsets[3])


def test_onsets_that_fall_only_on_aborted_trials_name_the_missing_one_at_a_finite_time():
    shown = [Presentation("a", 0, 1, 0.0, valid=False), Presentation("a", 0, 2, 0.4, valid=False),
             Presentation("b", 0, 3, 2.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no median of an empty set (numpy's warning, then NaN)
        with pytest.raises(MissingOnsetError, match=r"trial 3 .*expected at 2\.0000 s"):
            align(shown, np.array([0.0, 0.4]))


@pytest.mark.parametrize("extra", ["flash before", "event after"])
def test_two_pairings_that_fit_equally_are_refused_not_guessed(extra):
    """Evenly spaced trials with one onset of no presentation at an end fit both the true offset
    and one shifted by a trial; picking one would score every image with its neighbour's response.
    Where the clocks agree (``max_offset``), the shifted one is ruled out."""
    s = build(seed=0, offset=0.002, aborted=(11,) if extra == "flash before" else (0,))  # their flips are recorded
    spurious = s.onsets[0] - SPACING if extra == "flash before" else s.onsets[-1] + SPACING
    with pytest.raises(AlignmentError, match=r"two pairings .* offsets -?0\.\d+ s and -?0\.\d+ s"):
        align(s.presentations, np.r_[spurious, s.onsets], jitter=0.005)
    onsets, offset = align(s.presentations, np.r_[spurious, s.onsets], jitter=0.005, max_offset=0.05)
    assert offset == pytest.approx(s.offset, abs=0.003)
    valid = [p.valid for p in s.presentations]
    np.testing.assert_array_equal(onsets[valid], s.onsets[valid])


def test_a_clock_offset_is_detected_and_named():
    s = build(seed=3, offset=0.0)
    align(s.presentations, s.onsets, jitter=0.005, max_offset=0.01)
    with pytest.raises(ClockOffsetError, match=r"\+250\.\d ms off the stimulus clock \(allowed: 10 ms\)"):
        align(s.presentations, s.onsets + 0.25, jitter=0.005, max_offset=0.01)
    assert issubclass(ClockOffsetError, XDreamError)


def test_bad_windows_are_refused():
    with pytest.raises(ConfigError, match="width > 0"):
        Window(0.05, 0.0)
    with pytest.raises(ConfigError, match="baseline"):
        SpikeCounter(WINDOWS, subtract=True)
    with pytest.raises(ConfigError, match="no spike times for channel 'e2'"):
        SpikeCounter(WINDOWS).counts({"e1": np.array([])}, np.array([1.0]))


@pytest.mark.parametrize("spacing", [0.4, 0.7])  # test flashes at the trials' own spacing, or another
def test_onsets_before_the_first_presentation_shift_no_alignment(spacing):
    s = build(seed=6, n_images=20, jitter=0.004)
    flashes = s.onsets[0] - 5.0 - spacing * np.arange(15)[::-1]  # test flashes, a restarted program
    onsets, offset = align(s.presentations, np.r_[flashes, s.onsets], jitter=0.005)
    assert offset == pytest.approx(s.offset, abs=0.004)
    valid = np.array([p.valid for p in s.presentations])
    np.testing.assert_array_equal(onsets[valid], s.onsets[valid])
    # the acquisition started after the program's first 12 presentations (uneven intervals: evenly spaced ones cannot
    # tell which are missing): the first is named, at its time
    extra = np.cumsum(np.random.default_rng(6).uniform(0, 0.2, len(s.presentations)))
    shown = [type(p)(p.image_id, p.repeat, p.trial_id, p.time + e, p.valid) for p, e in zip(s.presentations, extra)]
    first = f"trial {shown[0].trial_id} .* expected at {shown[0].time + s.offset:.1f}"
    with pytest.raises(MissingOnsetError, match=first + r"\d* s .*; 10 valid presentation\(s\) lack"):  # 2 aborted
        align(shown, (s.onsets + extra)[12:], jitter=0.005)
