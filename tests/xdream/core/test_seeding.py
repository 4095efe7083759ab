"""xdream.core.seeding: named streams of one seed, and the one check every seed passes (a seed
numpy's SeedSequence cannot take is one ConfigError line, from the Python API too)."""

import numpy as np
import pytest

from xdream.core.errors import ConfigError
from xdream.core.seeding import STREAMS, derive_rngs


def test_streams_are_fixed_by_the_seed_and_differ_from_each_other():
    a, b = derive_rngs(7), derive_rngs(7)
    assert list(a) == list(STREAMS)
    draws = {name: a[name].integers(2**62) for name in STREAMS}
    assert draws == {name: b[name].integers(2**62) for name in STREAMS}
    assert len(set(draws.values())) == len(STREAMS)
    assert derive_rngs(np.int64(7))["optimizer"].integers(2**62) == draws["optimizer"]


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3", None])
def test_a_seed_that_is_not_an_integer_at_least_0_is_one_config_error(seed):
    with pytest.raises(ConfigError, match=f"^seed must be an integer >= 0, got {seed!r}$".replace("(", "\\(")):
        derive_rngs(seed)
