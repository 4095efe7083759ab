"""experiments/bench_loop.py at tiny sizes: part (a), the loop against the forward pass alone,
runs its warm-up and its timed generations to the end (``make bench`` starts with it)."""

from __future__ import annotations

import pytest

from experiment_script import load_script  # same folder


@pytest.fixture(scope="module")
def bench_loop():
    return load_script("bench_loop.py", "bench_loop")


def test_loop_vs_forward_times_every_generation_after_the_warm_up(bench_loop):
    a = bench_loop.loop_vs_forward(2, 4)
    assert a["population"] == 4 and a["loop_s"] > 0 and a["forward_s"] > 0
    assert a["generator"] == "dcgan-faces" and a["target"] == "efficientnet_lite0:_blocks.10:27"
