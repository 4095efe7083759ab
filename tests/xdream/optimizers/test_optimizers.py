"""Registry-wide optimiser contract tests (in the style of nevergrad's optimiser tests).

Every optimiser registered under ``xdream.optimizers`` is tested by the same contract, so a new
optimiser gets these tests for free; ``CASES`` adds interesting option sets of known ones.
The second half checks the XDREAM genetic algorithm and the pycma wrapper against
Xiao & Kreiman (PLoS CB 2020) and XDREAM's published code (willwx/XDream, ``Optimizers.Genetic``).
"""

from __future__ import annotations

import inspect
import pickle
import re
import warnings

import numpy as np
import pytest

from xdream.core import registry
from xdream.core.errors import ConfigError
from xdream.core.optimizer import Optimizer

NAN_POLICIES = {"carry-over", "rank-last", "ignore", "rank-last-unmodelled"}
NAMES = registry.available("optimizer")

# Extra option sets of known optimisers; used only when that optimiser is registered.
EXTRA_OPTIONS = {
    "cmaes": [{"diagonal": True}, {"population": 4}],
    "csa-es": [{"population": 6, "sigma0": 0.5}],
    "tpa-es": [{"population": 6, "sigma0": 0.5}],
    "surrogate-tpa": [{"population": 6, "screen": 2, "memory": 12, "denoise": True}, {"screen": 1}],
    "genetic": [
        {"n_conserve": 3},
        {"population": 9, "heritability": 0.8, "mutation_rate": 0.25},
        {"preset": "wang-ponce"},
        {"preset": "wang-ponce", "population": 16, "n_conserve": 2},
    ],
    "sphere-cma": [{"population": 12, "select": 5, "lr": 1.0}, {"sphere_norm": 3.0}],
    "cholesky-cma": [{"update_every": 1, "sigma0": 0.5}, {"population": 6}],
    "nevergrad": [{"method": "TwoPointsDE"}, {"method": "DiagonalCMA", "population": 12}],
    "geometry-cma": [{"population": 6, "rank": 3, "sigma0": 0.5}],
}


def _case_id(name, options):
    return name + "".join(f"-{k}={v}" for k, v in options.items())


CASES = [pytest.param(n, {}, id=n) for n in NAMES] + [
    pytest.param(n, o, id=_case_id(n, o)) for n in NAMES for o in EXTRA_OPTIONS.get(n, [])
]

D = 8  # search dimension for the contract tests (small: fast)


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """numpy's BLAS on one thread, as every run has it (xdream.core.threads.use_threads): the
    surrogate's eigendecompositions took ~10x longer on OpenBLAS's spinning threads on a busy
    machine (surrogate-tpa's climb: 43 s against 4 s beside the other pytest worker)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


# Optimisers that wrap an optional package (an extra of pyproject.toml): skipped without it.
OPTIONAL_PACKAGES = {"nevergrad": "nevergrad"}


def make(name, options=None, seed=0, dim=D, **provided) -> Optimizer:
    if name in OPTIONAL_PACKAGES:
        pytest.importorskip(OPTIONAL_PACKAGES[name], reason=f"optimizer {name!r} needs the [peers] extra")
    return registry.create("optimizer", name, dict(options or {}), dim=dim, rng=np.random.default_rng(seed), **provided)


def sphere(x):
    """Toy objective to maximise: -||x - 1||^2 (float64)."""
    return -np.sum((np.asarray(x, np.float64) - 1.0) ** 2, axis=1)


def run(opt, generations, objective=sphere):
    """Ask/tell ``generations`` times; returns the list of asked code arrays."""
    asked = []
    for _ in range(generations):
        x = opt.ask()
        asked.append(x.copy())
        opt.tell(x, objective(x))
    return asked


def assert_same_sequence(a, b, generations=4):
    """Two optimisers fed the same scores ask for identical codes for ``generations``."""
    for g in range(generations):
        xa, xb = a.ask(), b.ask()
        np.testing.assert_array_equal(xa, xb, err_msg=f"generation {g} after the split")
        a.tell(xa, sphere(xa))
        b.tell(xb, sphere(xb))


def policy_of(name) -> str:
    policy = getattr(registry.load("optimizer", name), "nan_policy", None)
    if policy not in NAN_POLICIES:
        pytest.fail(f"optimizer {name!r} declares nan_policy {policy!r}; must be one of {sorted(NAN_POLICIES)}")
    return policy


def rows_equal(x, row):
    """Boolean mask of the rows of ``x`` exactly equal to ``row``."""
    return np.all(x == row, axis=1)


# --------------------------------------------------------------------------------------------
# Registry-wide contract
# --------------------------------------------------------------------------------------------


def test_registry_lists_builtin_optimizers():
    assert {"genetic", "cmaes"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_declares_known_nan_policy(name):
    cls = registry.load("optimizer", name)
    assert issubclass(cls, Optimizer)
    policy_of(name)


@pytest.mark.parametrize("name, options", CASES)
def test_ask_returns_finite_float32_codes(name, options):
    opt = make(name, options)
    for _ in range(4):
        x = opt.ask()
        assert isinstance(x, np.ndarray)
        assert x.dtype == np.float32
        assert x.ndim == 2 and x.shape[1] == D and x.shape[0] >= 2
        assert np.all(np.isfinite(x))
        opt.tell(x, sphere(x))


@pytest.mark.parametrize("name, options", CASES)
def test_deterministic_for_a_seed(name, options):
    a, b = make(name, options, seed=3), make(name, options, seed=3)
    for xa, xb in zip(run(a, 5), run(b, 5)):
        np.testing.assert_array_equal(xa, xb)
    c = make(name, options, seed=4)
    assert not np.array_equal(make(name, options, seed=3).ask(), c.ask())


@pytest.mark.parametrize("name, options", CASES)
@pytest.mark.parametrize("k", [0, 3])
def test_state_dict_round_trip_through_pickle(name, options, k):
    a = make(name, options, seed=11)
    run(a, k)
    state = pickle.loads(pickle.dumps(a.state_dict()))
    b = make(name, options, seed=12345)  # a different seed: the state must carry the RNG
    b.load_state_dict(state)
    assert b.generation == a.generation == k
    assert_same_sequence(a, b, generations=5)


@pytest.mark.parametrize("name, options", CASES)
def test_state_dict_is_a_snapshot(name, options):
    """A state dict taken now still restores *now* after the optimiser has moved on."""
    a = make(name, options, seed=5)
    run(a, 2)
    state = a.state_dict()
    expected = run(a, 3)
    b = make(name, options, seed=6)
    b.load_state_dict(state)
    for x_expected, x in zip(expected, run(b, 3)):
        np.testing.assert_array_equal(x, x_expected)


@pytest.mark.parametrize("name, options", CASES)
def test_state_dict_round_trip_between_ask_and_tell(name, options):
    """A checkpoint taken after ask() lets a fresh instance take the pending tell()."""
    a = make(name, options, seed=21)
    run(a, 2)
    x = a.ask()
    state = pickle.loads(pickle.dumps(a.state_dict()))
    b = make(name, options, seed=22)
    b.load_state_dict(state)
    a.tell(x, sphere(x))
    b.tell(x, sphere(x))
    assert_same_sequence(a, b, generations=3)


@pytest.mark.parametrize("name, options", CASES)
def test_a_budget_set_after_construction_counts_as_one_given_to_it(name, options):
    """A run given in generations sets ``budget`` right after construction (xdream.evolve.build):
    every optimiser then asks as one built with that budget."""
    later = make(name, options)
    later.budget = 120
    assert_same_sequence(make(name, options, budget=120), later)


def test_nevergrad_sees_the_budget_of_a_run_given_in_generations():
    """NGOpt chooses its algorithm by the budget: the one set after construction is the one it
    is built with (it was built with the 3000 of no budget)."""
    later = make("nevergrad", {"method": "NGOpt", "population": 8})
    later.budget = 80
    later.ask()
    assert later.ng.budget == 80


@pytest.mark.parametrize("name, options", CASES)
def test_population_is_declared_and_is_what_ask_returns(name, options):
    """The Experiment reads ``population`` to turn generations into a budget."""
    opt = make(name, options)
    assert isinstance(opt.population, int) and opt.population >= 2
    for x in run(opt, 3):
        assert len(x) == opt.population


@pytest.mark.parametrize("name, options", CASES)
def test_tell_not_asked_raises_and_changes_nothing(name, options):
    """tell() without a pending ask, twice for one ask, or with codes other than the asked
    ones (unless the optimiser accepts repaired codes) is a one-line ValueError; the
    optimiser then goes on exactly like a twin that never saw the bad calls."""
    a, twin = make(name, options, seed=13), make(name, options, seed=13)
    x0 = a.ask()
    s0 = sphere(x0)
    a.tell(x0, s0)
    twin.tell(twin.ask(), s0)
    bad = [(x0, s0)]  # the pending ask is used up
    x = a.ask()
    s = sphere(x)
    a.tell(x, s)
    bad.append((x, s))  # the same codes told twice
    fresh = make(name, options, seed=13)
    with pytest.raises(ValueError, match="without a pending ask") as info:
        fresh.tell(x0, s0)  # never asked
    assert "\n" not in str(info.value)
    for codes, scores in bad:
        with pytest.raises(ValueError, match="without a pending ask"):
            a.tell(codes, scores)
    xt = twin.ask()
    twin.tell(xt, sphere(xt))
    y = a.ask()
    other = y.copy()
    other[1] += 0.5  # one code the optimiser never asked for
    if a.accepts_repaired_codes:
        b = make(name, options, seed=13)
        b.load_state_dict(a.state_dict())
        b.tell(other, sphere(y))  # taken as told (e.g. clipped by the caller)
        assert np.all(np.isfinite(b.ask()))
    else:
        with pytest.raises(ValueError, match="1 of .* codes other than the ones asked") as info:
            a.tell(other, sphere(y))
        assert "\n" not in str(info.value)
        with pytest.raises(ValueError, match="other than the ones asked"):
            a.tell(x0, s0)  # codes of an earlier generation, same shape
    yt = twin.ask()
    np.testing.assert_array_equal(y, yt)
    a.tell(y, sphere(y))
    twin.tell(yt, sphere(yt))
    assert_same_sequence(a, twin, generations=2)


@pytest.mark.parametrize("name, options", CASES)
def test_base_bookkeeping_round_trips_through_the_state_dict(name, options):
    """The base's own keys: the generation counter and the pending codes (exactly the codes
    asked, None once told), restored on a fresh instance, which then takes the pending tell
    and refuses a second one; a state without ``pending`` (checkpoints of older runs, taken
    after tell) loads as nothing pending."""
    a = make(name, options, seed=31)
    run(a, 2)
    told = a.state_dict()
    assert told["generation"] == 2 and told["pending"] is None
    x = a.ask()
    asked = pickle.loads(pickle.dumps(a.state_dict()))
    assert asked["generation"] == 2
    np.testing.assert_array_equal(np.asarray(asked["pending"], np.float32), x)
    b = make(name, options, seed=32)
    b.load_state_dict(asked)
    b.tell(x, sphere(x))
    assert b.generation == 3 and b.state_dict()["pending"] is None
    with pytest.raises(ValueError, match="without a pending ask"):
        b.tell(x, sphere(x))
    c = make(name, options, seed=33)
    c.load_state_dict(asked)
    c.load_state_dict({k: v for k, v in told.items() if k != "pending"})  # an older checkpoint
    assert c.generation == 2
    with pytest.raises(ValueError, match="without a pending ask"):
        c.tell(x, sphere(x))
    a.tell(x, sphere(x))
    d = make(name, options, seed=34)
    d.load_state_dict(told)
    run(d, 1)
    assert_same_sequence(a, d, generations=2)


@pytest.mark.parametrize("name, options", CASES)
def test_tell_with_wrong_shapes_raises_and_changes_nothing(name, options):
    a, twin = make(name, options, seed=9), make(name, options, seed=9)
    run(a, 1)
    run(twin, 1)
    x = a.ask()
    s = sphere(x)
    bad = [
        (x[:-1], s[:-1]),  # too few codes
        (np.concatenate([x, x[:1]]), np.concatenate([s, s[:1]])),  # too many codes
        (x[:, :-1], s),  # wrong dimension
        (x.reshape(-1), s),  # flattened
        (x, s[:-1]),  # too few scores
        (x, np.concatenate([s, s[:1]])),  # too many scores
        (x, np.stack([s, s], axis=1)),  # [n, 2] scores
    ]
    for codes, scores in bad:
        with pytest.raises(ValueError):
            a.tell(codes, scores)
    # The failed calls left the optimiser as it was: it accepts the right tell and goes on
    # exactly like a twin that never saw them.
    xt = twin.ask()
    np.testing.assert_array_equal(x, xt)
    a.tell(x, s)
    twin.tell(xt, sphere(xt))
    assert_same_sequence(a, twin, generations=2)


@pytest.mark.parametrize("name, options", CASES)
def test_leaves_global_numpy_rng_and_cwd_alone_and_prints_nothing(name, options, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    np.random.seed(1234)
    before = np.random.get_state()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = make(name, options, seed=0, dim=12)
        run(a, 3)
        x = a.ask()
        s = sphere(x)
        s[0] = np.nan
        a.tell(x, s)  # some unscored
        x = a.ask()
        a.tell(x, np.full(len(x), np.nan))  # none scored
        b = make(name, options, seed=1, dim=12)
        b.load_state_dict(pickle.loads(pickle.dumps(a.state_dict())))
        run(b, 3)
    after = np.random.get_state()
    assert before[0] == after[0]
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2:] == after[2:], "the global numpy RNG was used"
    assert list(tmp_path.iterdir()) == [], "files were written to the working directory"
    out, err = capfd.readouterr()
    assert out == "" and err == "", f"printed: {out!r} {err!r}"
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("name, options", CASES)
def test_climbs_toy_objective(name, options):
    """Maximise -||x - 1||^2 in d=20 for 60 generations from the default start.

    The final generation's best loss must be under half the first generation's best loss.
    Measured: genetic ~0.1-0.36, cmaes ~1e-3-6e-2; a genetic algorithm whose fitness ignores
    the scores ends at > 2, a CMA-ES told shuffled scores at > 3.

    A score-blind optimiser (nan_policy "ignore": random search, the benchmark's floor) must
    instead keep drawing from the prior: the same codes whatever it is told, N(0, 1) here."""
    if policy_of(name) == "ignore":
        a, b = make(name, options, seed=0, dim=20), make(name, options, seed=0, dim=20)
        xa = run(a, 60)
        xb = run(b, 60, objective=lambda x: -sphere(x))
        for g, (x, y) in enumerate(zip(xa, xb)):
            np.testing.assert_array_equal(x, y, err_msg=f"generation {g}: the scores changed what it asks")
        assert np.std(xa[-1]) == pytest.approx(1.0, abs=0.25) and abs(np.mean(xa[-1])) < 0.25
        return
    opt = make(name, options, seed=0, dim=20)
    first = -sphere(opt.ask()).max()
    run(opt, 60)
    final = -sphere(opt.ask()).max()
    assert final < 0.5 * first, f"best loss {first:.3g} -> {final:.3g}"


# ---- NaN policy ------------------------------------------------------------------------------


@pytest.mark.parametrize("name, options", CASES)
def test_nan_policy_some_unscored(name, options):
    policy = policy_of(name)
    if policy == "carry-over":
        _check_carry_over(name, options)
    elif policy == "rank-last":
        _check_rank_last(name, options)
    elif policy == "rank-last-unmodelled":
        _check_rank_last_unmodelled(name, options)
    elif policy == "ignore":
        _check_ignore(name, options)
    else:  # pragma: no cover - policy_of fails first
        pytest.fail(f"untested nan_policy {policy!r}")


def _check_carry_over(name, options):
    """Unscored individuals reappear unchanged; no child inherits a gene from one."""
    d = 24
    opt = make(name, options, seed=2, dim=d)
    run(opt, 2)
    x = opt.ask()
    n = len(x)
    unscored = [0, n // 2, n - 1]
    s = sphere(x)
    s[unscored] = np.nan
    opt.tell(x, s)
    y = opt.ask()
    carried = np.zeros(len(y), bool)
    for i in unscored:
        hits = rows_equal(y, x[i])
        assert hits.any(), f"unscored individual {i} was not carried over unchanged"
        carried |= hits
    # Any other row is an elite copy or a child of scored parents: it shares no gene value
    # with an unscored individual (continuous codes: a shared value means inheritance) unless
    # a scored individual has that same value there too (common descent).
    scored = np.setdiff1d(np.arange(n), unscored)
    for r in np.flatnonzero(~carried):
        for i in unscored:
            shared = (y[r] == x[i]) & ~np.any(x[scored] == y[r], axis=0)
            assert not shared.any(), f"row {r} inherited genes {np.flatnonzero(shared)} from unscored individual {i}"


def _check_ignore(name, options):
    """NaN scores (and scores at all) make no difference to what is asked next."""
    a, b = make(name, options, seed=4), make(name, options, seed=4)
    run(a, 2)
    run(b, 2)
    xa, xb = a.ask(), b.ask()
    s = sphere(xa)
    s_nan = s.copy()
    s_nan[[0, len(s) // 2]] = np.nan
    a.tell(xa, s_nan)
    b.tell(xb, s)
    assert_same_sequence(a, b, generations=3)


def _check_rank_last(name, options):
    """A NaN score acts exactly like a score below every finite one."""
    for unscored_of in (lambda s: [int(np.argmax(s))], lambda s: [int(np.argmax(s)), int(np.argsort(s)[len(s) // 2])]):
        a, b, c = (make(name, options, seed=4) for _ in range(3))
        for opt in (a, b, c):
            run(opt, 2)
        xa, xb, xc = a.ask(), b.ask(), c.ask()
        np.testing.assert_array_equal(xa, xb)
        s = sphere(xa)
        idx = unscored_of(s)
        s_nan, s_low = s.copy(), s.copy()
        s_nan[idx] = np.nan
        s_low[idx] = s.min() - 1.0  # worse than every finite score (ties among themselves)
        a.tell(xa, s_nan)
        b.tell(xb, s_low)
        c.tell(xc, s)  # control: the same samples, scored normally, lead elsewhere
        ya, yc = a.ask(), c.ask()
        assert not np.array_equal(ya, yc), "test is insensitive: the unscored sample's rank did not matter"
        a.tell(ya, sphere(ya))
        yb = b.ask()
        np.testing.assert_array_equal(ya, yb)
        b.tell(yb, sphere(yb))
        assert_same_sequence(a, b, generations=3)


def _check_rank_last_unmodelled(name, options):
    """Unscored samples never enter the model; in the strategy's own state (everything but
    ``model_state_keys``) a NaN acts exactly like a score below every finite one, when the
    strategy is told the observed scores (a denoised ranking is the model's, so it differs)."""
    a, b = make(name, options, seed=4), make(name, options, seed=4)
    for opt in (a, b):
        run(opt, 2)
    xa, xb = a.ask(), b.ask()
    np.testing.assert_array_equal(xa, xb)
    s = sphere(xa)
    idx = [int(np.argmax(s)), int(np.argsort(s)[len(s) // 2])]
    s_nan, s_low = s.copy(), s.copy()
    s_nan[idx] = np.nan
    s_low[idx] = s.min() - 1.0
    modelled = len(a.state_dict()[a.model_state_keys[1]])
    a.tell(xa, s_nan)
    b.tell(xb, s_low)
    sa, sb = a.state_dict(), b.state_dict()
    archive = sa[a.model_state_keys[0]]
    assert not any(rows_equal(archive, xa[i]).any() for i in idx), "an unscored code entered the model"
    assert len(sa[a.model_state_keys[1]]) == min(modelled + len(s) - len(idx), a.memory)  # the scored ones
    if options.get("denoise", False):
        return
    for key in sa:
        if key not in a.model_state_keys:
            np.testing.assert_equal(sa[key], sb[key], err_msg=f"state {key!r} differs for NaN and a low score")


@pytest.mark.parametrize("name, options", CASES)
def test_nan_policy_all_unscored_generation(name, options):
    """With no score, only the RNG and the generation counter may change: the next ask equals
    that of the pre-generation state continued with the post-generation RNG."""
    policy = policy_of(name)
    a = make(name, options, seed=8)
    run(a, 3)
    before = a.state_dict()
    x = a.ask()
    a.tell(x, np.full(len(x), np.nan))
    after = a.state_dict()
    assert after["generation"] == before["generation"] + 1
    b = make(name, options, seed=99)
    b.load_state_dict({**before, "rng": after["rng"], "generation": after["generation"]})
    if policy == "carry-over":  # the whole population is kept
        np.testing.assert_array_equal(a.ask(), x)
    elif policy not in ("rank-last", "ignore", "rank-last-unmodelled"):  # pragma: no cover - policy_of fails first
        pytest.fail(f"untested nan_policy {policy!r}")
    assert_same_sequence(a, b, generations=4)


# ---- options -----------------------------------------------------------------------------------


def _bad_option_cases():
    cases = []
    for name in NAMES:
        cases.append(pytest.param(name, {"no_such_option": 1}, "no_such_option", id=f"{name}-unknown"))
        if "population" in registry.user_options(registry.load("optimizer", name)):
            cases += [
                pytest.param(name, {"population": 1}, "1", id=f"{name}-population=1"),
                pytest.param(name, {"population": 0}, "0", id=f"{name}-population=0"),
                pytest.param(name, {"population": "ten"}, "ten", id=f"{name}-population=ten"),
                pytest.param(name, {"population": 10.5}, "10.5", id=f"{name}-population=10.5"),
            ]
    known = {
        "genetic": [
            ({"mutation_rate": 2}, "2"),
            ({"mutation_rate": -0.1}, "-0.1"),
            ({"mutation_rate": float("nan")}, "nan"),
            ({"heritability": 1.5}, "1.5"),
            ({"mutation_size": 0}, "0"),
            ({"selectivity": -1.0}, "-1.0"),
            ({"n_conserve": 20}, "20"),
            ({"n_conserve": -1}, "-1"),
            ({"mutation_rate": "high"}, "high"),
            ({"mutation_rate": True}, "True"),
            ({"preset": "paper"}, "paper"),
        ],
        "sphere-cma": [
            ({"select": 0}, "0"),
            ({"select": 41}, "41"),
            ({"lr": 0}, "0"),
            ({"lr": float("inf")}, "inf"),
            ({"sphere_norm": -1.0}, "-1.0"),
            ({"angle_start": 0.0}, "0.0"),
            ({"angle_end": float("nan")}, "nan"),
        ],
        "nevergrad": [({"method": "NoSuchMethod"}, "NoSuchMethod")],
        "geometry-cma": [
            ({"rank": 0}, "0"),
            ({"points": 0}, "0"),
            ({"iterations": -1}, "-1"),
            ({"rank": 2.5}, "2.5"),
            ({"sigma0": float("nan")}, "nan"),
        ],
        "cholesky-cma": [
            ({"sigma0": 0}, "0"),
            ({"sigma0": float("nan")}, "nan"),
            ({"update_every": 0}, "0"),
            ({"update_every": 2.5}, "2.5"),
        ],
        "cmaes": [
            ({"sigma0": 0}, "0"),
            ({"sigma0": -2.0}, "-2.0"),
            ({"sigma0": float("nan")}, "nan"),
            ({"sigma0": "1"}, "1"),
            ({"diagonal": "yes"}, "yes"),
        ],
    }
    for name, rows in known.items():
        if name in NAMES:
            for options, shown in rows:
                cases.append(pytest.param(name, options, shown, id=_case_id(name, options)))
    return cases


@pytest.mark.parametrize("name, options, shown", _bad_option_cases())
def test_bad_options_raise_config_error_naming_the_value(name, options, shown):
    (key,) = options
    with pytest.raises(ConfigError) as info:
        make(name, options)
    message = str(info.value)
    assert key in message, message
    assert re.search(rf"(?<![\w.-]){re.escape(shown)}(?![\w.])", message), f"{shown!r} not in {message!r}"
    assert "\n" not in message


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad_shape", [(2, D + 4), (3, D - 1), (D + 1,), (0, D)])
def test_init_of_wrong_width_raises(name, bad_shape):
    """(2, D + 4) would silently reshape to (3, D): it must be refused, not reinterpreted."""
    with pytest.raises(ConfigError, match="init"):
        make(name, init=np.zeros(bad_shape, np.float32))
    make(name, init=np.zeros((3, 2, D // 2), np.float32))  # [k, *latent_shape] is fine


@pytest.mark.parametrize("name", NAMES)
def test_bad_dimension_raises_config_error(name):
    with pytest.raises(ConfigError, match="0"):
        make(name, dim=0)


# --------------------------------------------------------------------------------------------
# XDREAM genetic algorithm (Xiao & Kreiman 2020; willwx/XDream Optimizers.Genetic)
# --------------------------------------------------------------------------------------------

needs_genetic = pytest.mark.skipif("genetic" not in NAMES, reason="genetic optimizer not registered")


def xdream_fitness(scores, selectivity):
    """XDREAM's fitness, written out independently: kT = std(scores) / selectivity (floored at
    1e-8), scores clipped at their 95th percentile, exp((s - max s) / kT), normalised."""
    scores = np.asarray(scores, np.float64)
    kT = max(float(np.std(scores)) / selectivity, 1e-8)
    clipped = np.clip(scores, None, np.percentile(scores, 95))
    f = np.exp((clipped - clipped.max()) / kT)
    return f / f.sum()


@needs_genetic
def test_genetic_fitness_matches_xdream_formula():
    from xdream.optimizers.genetic import fitness

    rng = np.random.default_rng(0)
    for trial in range(50):
        n = int(rng.integers(2, 60))
        scores = rng.normal(rng.normal(0, 10), rng.uniform(0.01, 20), n)
        if trial % 3 == 0:  # outliers: the 95th-percentile clip matters
            scores[rng.integers(n)] += rng.uniform(50, 500)
        selectivity = float(rng.uniform(0.2, 5))
        got = fitness(scores, selectivity)
        np.testing.assert_allclose(got, xdream_fitness(scores, selectivity), rtol=1e-9, atol=1e-15)
        assert got.sum() == pytest.approx(1.0)
    # A fixed hand-checkable case: kT = std([0, 1]) / 1 = 0.5; clip at 0.95 -> f ∝ [e^-1.9, 1].
    np.testing.assert_allclose(fitness(np.array([0.0, 1.0]), 1.0), [np.exp(-1.9) / (1 + np.exp(-1.9)), 1 / (1 + np.exp(-1.9))])


@needs_genetic
@pytest.mark.parametrize("value", [0.0, -3.5, 1e6])
def test_genetic_flat_scores_give_uniform_fitness(value):
    from xdream.optimizers.genetic import fitness

    np.testing.assert_allclose(fitness(np.full(7, value), 2.0), np.full(7, 1 / 7))
    np.testing.assert_allclose(fitness(np.array([value]), 2.0), [1.0])


@needs_genetic
def test_genetic_defaults_are_xdreams():
    cls = registry.load("optimizer", "genetic")
    assert inspect.signature(cls.__init__).parameters["preset"].default == "xdream"
    expected = dict(population=20, mutation_rate=0.5, mutation_size=0.5, selectivity=2, heritability=0.5, n_conserve=0)
    opt = make("genetic")
    assert {k: getattr(opt, k) for k in expected} == expected
    assert opt.ask().shape == (20, D)
    assert policy_of("genetic") == "carry-over"


@needs_genetic
def test_genetic_wang_ponce_preset_and_explicit_overrides():
    """Wang & Ponce's GA (GECCO 2022): kT = 2 std is selectivity 0.5."""
    wp = dict(population=40, mutation_rate=0.25, mutation_size=0.75, selectivity=0.5, heritability=0.75, n_conserve=10)
    opt = make("genetic", {"preset": "wang-ponce"})
    assert {k: getattr(opt, k) for k in wp} == wp
    assert opt.ask().shape == (40, D)
    mixed = make("genetic", {"preset": "wang-ponce", "mutation_rate": 0.6, "population": 12})
    assert {k: getattr(mixed, k) for k in wp} == {**wp, "mutation_rate": 0.6, "population": 12}
    # With the preset's n_conserve = 10 a population of 10 is refused, naming the value.
    with pytest.raises(ConfigError, match="n_conserve.*10"):
        make("genetic", {"preset": "wang-ponce", "population": 10})


@needs_genetic
def test_genetic_wang_ponce_selects_on_the_unclipped_softmax():
    """Wang & Ponce's step_simple (ActMax-Optimizer-Dev, core/Optimizers.py) has no clip: the best
    individual's parent probability is exp(0) / sum exp((s - max s) / kT), kT = std / 0.5;
    XDREAM's preset clips at the 95th percentile and gives the outlier less."""
    from xdream.optimizers.genetic import fitness

    scores = np.array([0.0, 1.0, 2.0, 3.0, 40.0])  # one outlier: the clip matters
    kT = np.std(scores) / 0.5
    unclipped = np.exp((scores - scores.max()) / kT)
    opt = make("genetic", {"preset": "wang-ponce", "population": 12, "n_conserve": 2})
    assert opt.clip_percentile == 100
    p = fitness(scores, opt.selectivity, opt.clip_percentile)
    assert p[-1] == pytest.approx(1 / unclipped.sum(), rel=1e-12)
    np.testing.assert_allclose(p, unclipped / unclipped.sum(), rtol=1e-12)
    assert fitness(scores, 0.5)[-1] < p[-1]  # XDREAM's clip


@needs_genetic
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_genetic_treats_non_finite_scores_as_unscored(bad):
    """+-inf, like NaN, is carried over unchanged at the end and never selected as a parent."""
    opt = make("genetic", {"population": 6, "mutation_rate": 0.0})
    codes = opt.ask()
    scores = np.array([1.0, 2.0, bad, 3.0, 0.5, 1.5])
    opt.tell(codes, scores)
    after = opt.ask()
    np.testing.assert_array_equal(after[-1], codes[2])  # carried over at the end
    # no child has genes of the non-finite individual (mutation off: genes are copied exactly)
    assert not np.isin(after[:-1], codes[2]).any()


@needs_genetic
def test_genetic_initial_codes_are_standard_normal():
    x = make("genetic", {"population": 200}, dim=100).ask()
    assert abs(x.mean()) < 0.02
    assert x.std() == pytest.approx(1.0, abs=0.02)


@needs_genetic
def test_genetic_init_rows_come_first_then_the_sampler():
    init = np.arange(3 * D, dtype=np.float32).reshape(3, D) + 100
    sampler_calls = []

    def sampler(n, rng):
        sampler_calls.append(n)
        return np.full((n, D), -7.0, np.float32)

    x = make("genetic", {"population": 10}, init=init, sampler=sampler).ask()
    np.testing.assert_array_equal(x[:3], init)
    np.testing.assert_array_equal(x[3:], -7.0)
    assert sampler_calls == [7]
    # More init rows than the population: the first ``population`` are used.
    big = np.random.default_rng(0).normal(size=(30, D)).astype(np.float32)
    np.testing.assert_array_equal(make("genetic", {"population": 10}, init=big).ask(), big[:10])
    # One code given as a flat vector is one row.
    np.testing.assert_array_equal(make("genetic", init=init[0]).ask()[0], init[0])




@needs_genetic
def test_genetic_elites_kept_unchanged_at_the_start():
    opt = make("genetic", {"n_conserve": 4}, seed=1)
    run(opt, 2)
    x = opt.ask()
    s = sphere(x)
    s[int(np.argsort(s)[len(s) // 2])] = np.nan  # a NaN elsewhere does not disturb the elites
    opt.tell(x, s)
    best = np.argsort(-np.nan_to_num(s, nan=-np.inf))[:4]
    np.testing.assert_array_equal(opt.ask()[:4], x[best])


@needs_genetic
def test_genetic_unscored_never_parents_extreme_codes():
    """Scored codes all zeros, the unscored code all 1e6: no child may carry a 1e6 gene."""
    n = 20
    init = np.zeros((n, D), np.float32)
    init[5] = 1e6
    for options in ({}, {"heritability": 1.0, "mutation_rate": 0.0}, {"n_conserve": 2}):
        opt = make("genetic", {"population": n, **options}, init=init)
        x = opt.ask()
        np.testing.assert_array_equal(x, init)
        scores = np.arange(n, dtype=float)
        scores[5] = np.nan
        opt.tell(x, scores)
        y = opt.ask()
        big = np.abs(y) > 1e5
        assert rows_equal(y, init[5]).sum() == 1, "the unscored individual must reappear once, unchanged"
        assert big.sum() == D, "a child inherited a gene from the unscored individual"


@needs_genetic
def test_genetic_only_one_scored_parent():
    opt = make("genetic", {"population": 6, "mutation_rate": 0.0}, seed=3)
    x = opt.ask()
    s = np.full(6, np.nan)
    s[2] = 1.0
    opt.tell(x, s)
    y = opt.ask()
    for i in (0, 1, 3, 4, 5):
        assert rows_equal(y, x[i]).sum() == 1
    assert rows_equal(y, x[2]).sum() == 1  # the single child copies the single parent


@needs_genetic
def test_genetic_without_mutation_and_full_heritability_children_copy_scored_parents():
    opt = make("genetic", {"mutation_rate": 0.0, "heritability": 1.0}, seed=4)
    x = opt.ask()  # the first generation: all rows distinct
    s = sphere(x)
    s[[0, 7]] = np.nan
    opt.tell(x, s)
    y = opt.ask()
    scored = [i for i in range(len(x)) if i not in (0, 7)]
    for r, row in enumerate(y):
        assert any(np.array_equal(row, x[i]) for i in range(len(x))), f"row {r} is no parent"
    assert rows_equal(y, x[0]).sum() == 1 and rows_equal(y, x[7]).sum() == 1
    assert sum(rows_equal(y, x[i]).sum() for i in scored) == len(y) - 2


@needs_genetic
def test_genetic_recombination_takes_each_gene_from_one_of_two_parents():
    d = 16
    opt = make("genetic", {"mutation_rate": 0.0, "heritability": 0.5}, seed=5, dim=d)
    x = opt.ask()
    opt.tell(x, sphere(x))
    y = opt.ask()
    n_mixed = 0
    for r, child in enumerate(y):
        match = child[None, :] == x  # [parents, genes]
        pairs = [(i, j) for i in range(len(x)) for j in range(i, len(x)) if np.all(match[i] | match[j])]
        assert pairs, f"child {r} has a gene from neither of any two parents"
        n_mixed += not match.all(axis=1).any()
    assert n_mixed >= len(y) // 3, "recombination never mixed two parents"


@needs_genetic
@pytest.mark.parametrize("heritability", [0.5, 0.8])
def test_genetic_heritability_fraction(heritability):
    """Parents all-0 and all-1 with equal scores: a mixed child takes a fraction h (or 1 - h)
    of its genes from each; unmixed children are exact copies."""
    d, n = 4000, 40
    init = np.zeros((n, d), np.float32)
    init[n // 2 :] = 1.0
    opt = make("genetic", {"population": n, "mutation_rate": 0.0, "heritability": heritability}, seed=6, dim=d, init=init)
    opt.tell(opt.ask(), np.zeros(n))
    fractions = opt.ask().mean(axis=1)  # fraction of genes from an all-1 parent
    mixed = fractions[(fractions > 0) & (fractions < 1)]
    assert len(mixed) > n // 4
    tol = 5 * np.sqrt(heritability * (1 - heritability) / d)
    assert np.all(np.minimum(np.abs(mixed - heritability), np.abs(mixed - (1 - heritability))) < tol)


@needs_genetic
@pytest.mark.parametrize("mutation_size", [0.5, 0.25, 2.0])
def test_genetic_mutation_is_gaussian_with_the_given_size(mutation_size):
    d, n = 5000, 10
    parent = np.random.default_rng(0).normal(size=d).astype(np.float32)
    init = np.tile(parent, (n, 1))
    opt = make(
        "genetic",
        {"population": n, "mutation_rate": 1.0, "heritability": 1.0, "mutation_size": mutation_size},
        dim=d,
        init=init,
    )
    opt.tell(opt.ask(), np.arange(n, dtype=float))
    delta = (opt.ask().astype(np.float64) - parent).ravel()
    assert np.all(delta != 0)
    assert abs(delta.mean()) < 5 * mutation_size / np.sqrt(delta.size)
    assert delta.std() == pytest.approx(mutation_size, rel=0.02)
    kurtosis = np.mean((delta / delta.std()) ** 4)
    assert kurtosis == pytest.approx(3.0, abs=0.15)  # Gaussian, not uniform


@needs_genetic
@pytest.mark.parametrize("mutation_rate", [0.1, 0.5])
def test_genetic_mutation_rate_is_the_fraction_of_genes_changed(mutation_rate):
    d, n = 5000, 10
    init = np.tile(np.linspace(-1, 1, d, dtype=np.float32), (n, 1))
    opt = make("genetic", {"population": n, "mutation_rate": mutation_rate, "heritability": 1.0}, dim=d, init=init)
    opt.tell(opt.ask(), np.arange(n, dtype=float))
    changed = (opt.ask() != init).mean()
    assert changed == pytest.approx(mutation_rate, abs=5 * np.sqrt(mutation_rate * (1 - mutation_rate) / (n * d)))


@needs_genetic
def test_genetic_roulette_selection_follows_fitness():
    """Children (no mutation, heritability 1) copy parent 1, drawn by roulette on fitness."""
    from xdream.optimizers.genetic import fitness

    n, groups = 3000, 5
    init = np.zeros((n, 2), np.float32)
    init[:, 0] = np.arange(n)
    scores = (np.arange(n) % groups).astype(float)
    opt = make("genetic", {"population": n, "mutation_rate": 0.0, "heritability": 1.0}, dim=2, init=init)
    opt.tell(opt.ask(), scores)
    parents = opt.ask()[:, 0].astype(int)
    counts = np.bincount(parents % groups, minlength=groups)
    p = np.bincount(np.arange(n) % groups, weights=fitness(scores, 2.0), minlength=groups)
    assert p[-1] > 0.4 and p[0] < 0.05  # selection is doing something here
    expected = n * p
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected * (1 - p)) + 1), (counts, expected)


@needs_genetic
def test_genetic_maximises():
    """Higher score is better: with one clearly best parent and high selectivity, most
    children (no mutation, heritability 1) copy it."""
    n = 20
    opt = make("genetic", {"population": n, "mutation_rate": 0.0, "heritability": 1.0, "selectivity": 10.0}, seed=1)
    x = opt.ask()
    scores = np.zeros(n)
    scores[3] = 1.0
    scores[8] = -1.0
    opt.tell(x, scores)
    y = opt.ask()
    assert rows_equal(y, x[3]).sum() > rows_equal(y, x[8]).sum()


# --------------------------------------------------------------------------------------------
# pycma wrapper
# --------------------------------------------------------------------------------------------

needs_cmaes = pytest.mark.skipif("cmaes" not in NAMES, reason="cmaes optimizer not registered")


@needs_cmaes
@pytest.mark.parametrize("options", [{}, {"diagonal": True}], ids=["full", "diagonal"])
def test_cmaes_mean_starts_at_init_mean(options):
    init = np.random.default_rng(0).normal(3.0, 2.0, size=(5, D)).astype(np.float32)
    opt = make("cmaes", {**options, "sigma0": 1e-6}, init=init)
    np.testing.assert_allclose(opt.es.mean, init.astype(np.float64).mean(axis=0), rtol=1e-12)
    x = opt.ask()
    np.testing.assert_allclose(x, np.broadcast_to(init.mean(axis=0), x.shape), atol=1e-4)
    # Default start: the origin.
    x0 = make("cmaes", {**options, "sigma0": 1e-6}).ask()
    np.testing.assert_allclose(x0, 0.0, atol=1e-4)


@needs_cmaes
def test_cmaes_population_and_sigma0_options():
    opt = make("cmaes", {"population": 7, "sigma0": 0.25}, dim=400)
    x = opt.ask()
    assert x.shape == (7, 400)
    assert x.std() == pytest.approx(0.25, rel=0.05)
    assert opt.sigma == pytest.approx(0.25)
    assert policy_of("cmaes") == "rank-last"


@needs_cmaes
def test_cmaes_tell_without_ask_raises():
    opt = make("cmaes")
    with pytest.raises(ValueError):
        opt.tell(np.zeros((opt.population, D), np.float32), np.zeros(opt.population))
    x = opt.ask()
    opt.tell(x, sphere(x))
    with pytest.raises(ValueError):  # the pending ask is used up
        opt.tell(x, sphere(x))


@needs_cmaes
def test_cmaes_nan_sample_does_not_pull_the_mean():
    """Scores favour the unscored sample's direction strongly; told NaN, the mean must not
    move towards it (it ranks last, so active CMA pushes away)."""
    opt = make("cmaes", seed=2)
    x = opt.ask()
    target = x[0].astype(np.float64)
    s = -np.sum((x - target) ** 2, axis=1)  # x[0] is the best sample by far
    s[0] = np.nan
    opt.tell(x, s)
    # Compared with the run where x[0] is scored (and best), the mean stays farther from it.
    ref = make("cmaes", seed=2)
    xr = ref.ask()
    ref.tell(xr, -np.sum((xr - target) ** 2, axis=1))
    assert np.linalg.norm(opt.es.mean - target) > np.linalg.norm(ref.es.mean - target)


@needs_cmaes
def test_cmaes_accepts_codes_other_than_asked():
    """Codes changed by the caller (e.g. clipped) are told back as they are."""
    opt = make("cmaes", seed=3)
    x = opt.ask()
    opt.tell(np.clip(x, -0.5, 0.5), sphere(x))
    assert np.all(np.isfinite(opt.ask()))
