"""The noise screen: its runs are deterministic and each remedy does what it says (repeats cost
evaluations, the mean moves by its rate, the cap bounds the step size); its table pairs every
variant with plain tpa-es."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xdream.optimizers.tpa_es import TPAES

from experiment_script import load_script  # same folder

BENCH = Path(__file__).resolve().parents[2] / "experiments" / "optimizer_benchmark"
TARGET = "efficientnet_lite0:_blocks.1:0"


@pytest.fixture(scope="module")
def screen():
    return load_script("optimizer_benchmark/noise_screen.py", "noise_screen")


def test_runs_are_deterministic_and_repeats_cost_evaluations(screen):
    plain = screen.screen_run("tpa-es", TARGET, 0.2, 0, budget=120)
    assert plain == screen.screen_run("tpa-es", TARGET, 0.2, 0, budget=120)
    assert plain["evaluations"] == plain["images"] == 120  # 5 generations of 24
    repeated = screen.screen_run("repeat-2", TARGET, 0.2, 0, budget=120)
    assert repeated["evaluations"] == 96 and repeated["images"] == 48  # 2 generations fit, shown twice
    capped = screen.screen_run("cap-1.5-0.3", TARGET, 0.0, 0, budget=120)
    assert capped["final_sigma"] <= 0.3 + 1e-12  # the schedule's end, reached at the budget


def test_mean_moves_by_its_rate_and_samples_keep_their_width(screen):
    def one_generation(optimizer):
        codes = optimizer.ask()
        optimizer.tell(codes, -np.sum((codes - 1.0) ** 2, axis=1))
        return codes

    plain = TPAES(50, np.random.default_rng(3))
    rescaled = screen.RescaledMeanTPA(50, np.random.default_rng(3), mean_rate=0.5)
    np.testing.assert_array_equal(one_generation(plain), one_generation(rescaled))
    np.testing.assert_allclose(rescaled.mean, 0.5 * plain.mean, rtol=1e-12)  # both started at zero
    assert rescaled.sigma == plain.sigma
    direction = lambda v: v / np.linalg.norm(v)  # noqa: E731
    np.testing.assert_allclose(direction(rescaled.shift), direction(plain.shift), atol=1e-12)


def test_table_pairs_every_variant_with_tpa_es(screen, tmp_path):
    assert screen.main(["--variants", "mean-rate-2", "--targets", TARGET, "--noise", "0.2", "--seeds", "0", "1",
                        "--budget", "72", "--workers", "1", "--output", str(tmp_path)]) == 0
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert sorted((r["variant"], r["seed"]) for r in records) == [
        ("mean-rate-2", 0), ("mean-rate-2", 1), ("tpa-es", 0), ("tpa-es", 1)]
    table = (tmp_path / "table.md").read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    assert rows["tpa-es"].endswith("| | |")  # the baseline is not paired with itself
    assert rows["mean-rate-2"].rstrip(" |").endswith("/2")  # two pairs, one per seed


def test_committed_table_is_the_committed_records(screen):
    result = BENCH / "noise-screen-result"
    records = [json.loads(line) for line in (result / "records.jsonl").read_text().splitlines()]
    assert len(records) == len(screen.VARIANTS) * 8 * 2  # every variant, 8 units, noise 0.2 and 0.5
    assert screen.table_markdown(records) in (result / "table.md").read_text()
