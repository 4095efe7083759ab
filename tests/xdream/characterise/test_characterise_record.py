"""Presentation order: every stimulus its number of repeats, shuffled reproducibly."""

import numpy as np

from xdream.characterise.record import presentation_order


def test_presentation_order_counts_repeats_and_shuffles_by_seed():
    repeats = np.array([20, 5, 5, 1])
    stimulus, repeat = presentation_order(repeats, np.random.default_rng(4))
    np.testing.assert_array_equal(np.bincount(stimulus), repeats)
    for s, n in enumerate(repeats):
        assert sorted(repeat[stimulus == s]) == list(range(n))  # k-th showing of that stimulus
    assert not np.array_equal(stimulus, np.sort(stimulus))
    again, _ = presentation_order(repeats, np.random.default_rng(4))
    np.testing.assert_array_equal(stimulus, again)
    ordered, _ = presentation_order(repeats, None)
    np.testing.assert_array_equal(ordered, np.sort(ordered))
