"""surrogate-tpa's own behaviour (the registry-wide contract is in test_optimizers.py): its model
learns the responses and finds out how noisy they are, the pre-screen shows what the model
ranks best while keeping TPA's line samples, and its memory stays bounded."""

from __future__ import annotations

import numpy as np
import pytest

from xdream.core import registry
from xdream.core.errors import ConfigError


def make(seed=0, dim=12, **options):
    return registry.create("optimizer", "surrogate-tpa", options, dim=dim, rng=np.random.default_rng(seed))


def linear(x):
    return np.asarray(x, np.float64) @ np.linspace(-1, 1, x.shape[1])


def feed(opt, generations, objective, noise=0.0, seed=1):
    rng = np.random.default_rng(seed)
    for _ in range(generations):
        x = opt.ask()
        clean = objective(x)
        opt.tell(x, clean + noise * rng.standard_normal(len(x)))


def test_model_predicts_the_ranking_of_fresh_codes():
    opt = make(population=10)
    feed(opt, 8, linear)
    fresh = opt.mean + opt.sigma * np.random.default_rng(5).standard_normal((200, opt.dim))
    rho = np.corrcoef(np.argsort(np.argsort(opt.predict(fresh))), np.argsort(np.argsort(linear(fresh))))[0, 1]
    assert rho > 0.8


def test_leave_one_out_finds_the_noise_level():
    """Noise-free responses: the model interpolates (small noise term); pure noise: it smooths."""
    clean, noisy = make(population=10), make(population=10)
    feed(clean, 6, linear)
    feed(noisy, 6, lambda x: np.zeros(len(x)), noise=1.0)
    assert clean.model["noise"] <= 0.01
    assert noisy.model["noise"] >= 1.0


def test_prescreen_shows_what_the_model_ranks_best_and_keeps_the_line_samples():
    screened, plain = make(seed=3, population=10, screen=8), make(seed=3, population=10, screen=1)
    feed(screened, 6, linear)
    feed(plain, 6, linear)
    x = screened.ask()
    # TPA's two line samples: mirror images about the mean
    np.testing.assert_allclose(x[0] + x[1], 2 * screened.mean, atol=1e-4)
    # the rest: candidates the model predicts best, so far better than unscreened samples
    z_shown = (x[2:] - screened.mean) / screened.sigma
    z_plain = (plain.ask()[2:] - plain.mean) / plain.sigma
    assert linear(z_shown).mean() > linear(z_plain).mean() + 1.0


def test_memory_is_bounded_over_a_long_run():
    opt = make(population=8, memory=40)
    feed(opt, 30, linear)  # 240 evaluations
    state = opt.state_dict()
    assert state["archive_codes"].shape == (40, opt.dim) and state["archive_scores"].shape == (40,)
    assert len(opt.model["coef"]) == 40


def test_denoise_tells_the_strategy_the_model_ranking():
    """With denoise the strategy's update follows the smoothed scores, not the observed ones."""
    a, b = make(seed=2, population=10, denoise=True), make(seed=2, population=10)
    feed(a, 4, linear, noise=0.5)
    feed(b, 4, linear, noise=0.5)
    assert not np.allclose(a.mean, b.mean)


@pytest.mark.parametrize("options, named", [({"screen": 0}, "screen"), ({"memory": 5}, "memory"),
                                             ({"denoise": "yes"}, "denoise"), ({"screen": 2.5}, "screen")])
def test_bad_options_are_one_line_config_errors(options, named):
    with pytest.raises(ConfigError) as e:
        make(**options)
    assert named in str(e.value) and "\n" not in str(e.value)


def test_docstring_names_every_length_scale_the_fit_tries():
    from xdream.optimizers import surrogate_tpa

    doc = " ".join(surrogate_tpa.__doc__.split())
    factors = surrogate_tpa.LENGTH_FACTORS
    listed = ", ".join(f"{f:g}" for f in factors[:-1]) + f" or {factors[-1]:g}"
    assert f"scale ({listed} times the median distance between archived codes)" in doc
