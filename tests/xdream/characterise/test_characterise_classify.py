"""The classification rules on data with known answers, and the statistics they rest on."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from xdream.characterise.classify import Stats, benjamini_hochberg, classify_sweep, t_test_p_values
from xdream.core.errors import ConfigError


def exact(values):
    v = np.asarray(values, dtype=float)
    return Stats(v, np.full(len(v), np.nan), np.ones(len(v), dtype=np.int64))


@pytest.mark.parametrize("curve, label", [
    ([1.0, 1.0, 1.0], "unresponsive"),
    ([1.0, 2.0, 1.0], "non-opponent excitatory"),
    ([0.5, 1.0, 0.2], "non-opponent inhibitory"),
    ([0.5, 1.5, 1.0], "opponent"),
    ([1.0 + 1e-8, 1.0, 1.0 - 1e-8], "unresponsive"),  # float32 rounding is not a response
])
def test_exact_rule(curve, label):
    result = classify_sweep(exact(curve), exact([1.0]), method="exact")
    assert result.label == label and result.method == "exact"


def test_stats_group_presentations_and_skip_nan():
    stimulus = np.array([0, 1, 0, 1, 2, 2, 2])
    responses = np.array([1.0, 5.0, 3.0, np.nan, 4.0, 6.0, 8.0])
    s = Stats.from_presentations(stimulus, responses, 4)
    np.testing.assert_allclose(s.mean[:3], [2.0, 5.0, 6.0])
    np.testing.assert_allclose(s.var[[0, 2]], [2.0, 4.0])
    assert np.isnan(s.var[1]) and np.isnan(s.mean[3])
    np.testing.assert_array_equal(s.count, [2, 1, 3, 0])


def test_t_test_p_values_match_scipy():
    rng = np.random.default_rng(0)
    base = rng.normal(10, 2, 20)
    groups = [rng.normal(m, 3, 5) for m in (8, 10, 13)]
    sweep = Stats(np.array([g.mean() for g in groups]), np.array([g.var(ddof=1) for g in groups]), np.array([5, 5, 5]))
    baseline = Stats(np.array([base.mean()]), np.array([base.var(ddof=1)]), np.array([20]))
    above, below = t_test_p_values(sweep, baseline)
    for g, pa, pb in zip(groups, above, below):
        assert pa == pytest.approx(scipy_stats.ttest_ind(g, base, equal_var=True, alternative="greater").pvalue)
        assert pb == pytest.approx(scipy_stats.ttest_ind(g, base, equal_var=True, alternative="less").pvalue)


def test_benjamini_hochberg_step_up():
    p = np.array([0.01, 0.04, 0.03, 0.5, 0.02])
    # sorted 0.01 0.02 0.03 0.04 0.5 vs q*k/m = 0.01 0.02 0.03 0.04 0.05: the first four pass
    np.testing.assert_array_equal(benjamini_hochberg(p, 0.05), [True, True, True, False, True])
    np.testing.assert_array_equal(benjamini_hochberg(np.array([0.03, 0.9]), 0.05), [False, False])
    adjusted = scipy_stats.false_discovery_control(p)
    np.testing.assert_array_equal(benjamini_hochberg(p, 0.05), adjusted <= 0.05)


def noisy_sweep(rng, means, n, sd):
    data = [rng.normal(m, sd, n) for m in means]
    return Stats(np.array([d.mean() for d in data]), np.array([d.var(ddof=1) for d in data]), np.full(len(means), n))


@pytest.mark.parametrize("means, label", [
    ([10] * 12, "unresponsive"),
    ([10] * 10 + [16, 17], "non-opponent excitatory"),
    ([10] * 10 + [4, 3], "non-opponent inhibitory"),
    ([10] * 8 + [16, 17, 4, 3], "opponent"),
])
def test_t_test_rule_on_noisy_data(means, label):
    rng = np.random.default_rng(1)
    baseline = noisy_sweep(rng, [10], 20, 1.0)
    result = classify_sweep(noisy_sweep(rng, means, 6, 1.0), baseline, method="auto")
    assert result.method == "ttest" and result.label == label


def test_false_crossings_are_rare_under_the_null():
    """A flat curve in noise: the per-unit rate of any false verdict stays near alpha."""
    rng = np.random.default_rng(2)
    wrong = sum(
        classify_sweep(noisy_sweep(rng, [10] * 30, 5, 2.0), noisy_sweep(rng, [10], 20, 2.0), alpha=0.05).label != "unresponsive"
        for _ in range(200)
    )
    assert wrong <= 20  # expected <= 10 (5%); 20 leaves room for sampling


def test_poisson_false_positive_rate_is_controlled():
    """Flat Poisson units at the coarse preset's repeats (5, baseline 20), 192 gratings."""
    rng = np.random.default_rng(3)

    def poisson(n_stim, n):
        x = rng.poisson(20.0, (n_stim, n)).astype(float)
        return Stats(x.mean(1), x.var(1, ddof=1), np.full(n_stim, n))

    wrong = sum(classify_sweep(poisson(192, 5), poisson(1, 20)).label != "unresponsive" for _ in range(200))
    assert wrong <= 20


def test_zero_spread_compares_exactly_and_t_test_needs_repeats():
    sweep = Stats(np.array([0.0, 10.0, 12.0]), np.array([0.0, 0.0, 4.0]), np.array([5, 5, 5]))
    baseline = Stats(np.array([10.0]), np.array([0.0]), np.array([20]))
    result = classify_sweep(sweep, baseline, method="ttest")
    assert result.below.tolist() == [True, False, False]
    with pytest.raises(ConfigError, match="needs >= 2 valid presentations"):
        classify_sweep(exact([1.0, 2.0]), exact([1.0]), method="ttest")
    with pytest.raises(ConfigError, match="unknown classification method 'bayes'"):
        classify_sweep(exact([1.0]), exact([1.0]), method="bayes")
