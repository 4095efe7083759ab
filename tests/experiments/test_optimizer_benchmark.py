"""The optimiser benchmark: its presets are valid sweeps, and the analysis normalises per unit
as Wang & Ponce do (GECCO 2022) and writes table, figure and raw records."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from xdream.sweep.grid import load_sweep

from experiment_script import load_script  # same folder

BENCH = Path(__file__).resolve().parents[2] / "experiments" / "optimizer_benchmark"


def load_analyse():
    return load_script("optimizer_benchmark/analyse.py", "bench_analyse")


@pytest.mark.parametrize("preset, n_runs", [("smoke", 2 * 7 * 3), ("quick", 4 * 7 * 3), ("paper", 2 * 70 * 7 * 3 * 5)])
def test_presets_are_valid_sweeps(preset, n_runs):
    output, runs = load_sweep(BENCH / f"{preset}.toml")
    assert output == f"runs/optimizer-benchmark-{preset}"
    assert len(runs) == n_runs
    assert {r.labels["noise"] for r in runs} == {0, 0.2, 0.5}
    assert {r.labels["optimizer"] for r in runs} == {
        "ga-xdream", "ga-wang-ponce", "pycma", "pycma-diag", "cholesky-cma", "sphere-cma", "random"}
    for r in runs:
        assert r.config["responder"]["readout"] == "center"
        assert r.config["budget"] == (800 if preset == "smoke" else 3000)


def test_analysis_normalises_per_unit_and_writes_outputs(tmp_path):
    analyse = load_analyse()
    # two units with very different scales; per unit the best run defines 1.0
    rows = []
    for target, scale in (("efficientnet_lite0:_blocks.2:0", 1.0), ("efficientnet_lite0:_blocks.10:0", 50.0)):
        for optimizer, value in (("ga-xdream", 0.4), ("sphere-cma", 0.9), ("random", 0.1)):
            for noise, factor in ((0, 1.0), (0.5, 0.5)):  # typed, as results.jsonl holds them
                rows.append({"name": f"{target}-{optimizer}-{noise}", "target": target, "optimizer": optimizer,
                             "noise": noise, "seed": 0, "clean_best": scale * value * factor,
                             "final_best": 0.0, "generations": 2, "evaluations": 80})
    rows[0]["clean_best"] = None  # a run with no finite score counts as NaN, not as zero
    (tmp_path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    table = analyse.analyse(tmp_path)
    records = list(csv.DictReader((tmp_path / "records.csv").open()))
    assert len(records) == len(rows)
    by = {(r["target"], r["optimizer"], r["noise"]): float(r["normalised"]) for r in records}
    assert by[("efficientnet_lite0:_blocks.10:0", "sphere-cma", "0")] == pytest.approx(1.0)
    assert by[("efficientnet_lite0:_blocks.10:0", "ga-xdream", "0.5")] == pytest.approx(0.2 / 0.9)
    assert math.isnan(by[("efficientnet_lite0:_blocks.2:0", "ga-xdream", "0")])
    # noise 0: sphere 1.0 vs GA 0.444 (one unit; the other is NaN) -> 2.25x
    assert "noise 0: best sphere-cma 1.000 / GA (XDREAM) 0.444 = **2.25x**" in table
    assert "[paper 0.86]" in table and "[paper 0.596]" in table
    assert (tmp_path / "figure.png").stat().st_size > 1000
    assert (tmp_path / "table.md").read_text() == table


def load_run():
    return load_script("optimizer_benchmark/run.py", "bench_run")


def test_power_presets_are_paired_grids_of_the_same_cells():
    _, runs = load_sweep(BENCH / "power.toml")
    _, peers = load_sweep(BENCH / "power-peers.toml")
    cells = lambda rs: {(r.labels["target"], r.labels["seed"], r.labels["noise"]) for r in rs}  # noqa: E731
    assert cells(runs) == cells(peers) and len(cells(runs)) == 8 * 3 * 3  # >= 8 units x 3 seeds x 3 noise levels
    assert {r.labels["optimizer"] for r in runs} == {"ga-xdream", "pycma-diag", "pycma-diag-20", "sphere-cma",
                                                     "sphere-p20", "geometry-r256", "peer-pycma", "csa-es", "tpa-es"}
    assert {r.labels["optimizer"] for r in peers} == {"peer-ngopt", "peer-diagonalcma", "peer-twopointsde"}
    assert all(r.config["budget"] == 2000 and r.config["responder"]["input_size"] == 64 for r in runs + peers)


def recorded_name(name: str) -> str:
    """A committed record's run name as the sweep names it now: the results were recorded before
    run names kept the target's model (issue 25), and every preset's targets are EfficientNet-Lite0's."""
    return name if name.startswith("target=efficientnet_lite0-") else name.replace("target=", "target=efficientnet_lite0-", 1)


@pytest.mark.parametrize("preset", ["candidates", "geometry-screen"])
def test_screen_presets_are_their_committed_results(preset):
    _, runs = load_sweep(BENCH / f"{preset}.toml")
    records = list(csv.DictReader((BENCH / f"{preset}-result" / "records.csv").open()))
    assert sorted(r.name for r in runs) == sorted(recorded_name(r["name"]) for r in records)


def test_power_result_holds_every_run_of_the_preset_and_its_peers():
    """The committed table is the preset as it stands: one record per run of both sweeps, the
    failed ones (NGOpt's) included."""
    runs = [r for preset in ("power", "power-peers") for r in load_sweep(BENCH / f"{preset}.toml")[1]]
    records = list(csv.DictReader((BENCH / "power-result" / "records.csv").open()))
    assert sorted(r.name for r in runs) == sorted(recorded_name(r["name"]) for r in records)


@pytest.mark.parametrize("preset, n_runs, n_failed", [("surrogate-power", 576, 72), ("surrogate-dcgan", 72, 0)])
def test_surrogate_results_hold_every_run_of_their_preset(preset, n_runs, n_failed):
    """The committed issue-23 tables are their presets as they stand: one record per run,
    NGOpt's failed ones (power) included, and a trajectory for every run that was scored."""
    runs = load_sweep(BENCH / f"{preset}.toml")[1]
    result = BENCH / f"{preset}-result"
    records = list(csv.DictReader((result / "records.csv").open()))
    assert len(runs) == n_runs
    assert sorted(r.name for r in runs) == sorted(recorded_name(r["name"]) for r in records)
    scored = {r["name"] for r in records if r["final_best"] not in ("", "nan")}
    trajectories = {json.loads(line)["name"] for line in (result / "trajectories.jsonl").open()}
    assert len(scored) == n_runs - n_failed and scored == trajectories


def test_mean_ci_and_paired_test_match_hand_computations():
    analyse = load_analyse()
    mean, half, n = analyse.mean_ci([1.0, 2.0, 3.0, 4.0, float("nan")])
    # t(0.975, 3) = 3.18245; sd = 1.29099; half = t * sd / sqrt(4)
    assert (mean, n) == (2.5, 4) and half == pytest.approx(3.18245 * 1.29099 / 2, rel=1e-4)
    assert math.isnan(analyse.mean_ci([0.3])[1])
    # six positive differences: the exact two-sided signed-rank p is 2 / 2^6
    test = analyse.paired_test([0.1, 0.2, 0.05, 0.3, 0.15, 0.25])
    assert test["p"] == pytest.approx(2 / 64) and test["wins"] == 6 and test["n"] == 6
    mixed = analyse.paired_test([0.1, -0.1, 0.2, -0.2, 0.05, -0.05])
    assert mixed["p"] > 0.5 and mixed["wins"] == 3 and mixed["mean"] == pytest.approx(0.0, abs=1e-12)
    assert analyse.paired_test([0.0, 0.0, 0.0])["p"] == 1.0


def synthetic_sweep(path: Path, rows: list[dict], failures: dict | None = None) -> None:
    """A sweep directory as analyse reads it: results.jsonl, or plan + run dirs + failures.json."""
    path.mkdir(parents=True)
    if failures is None:
        (path / "results.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        return
    runs = [{"name": r["name"], "labels": {k: r[k] for k in ("target", "optimizer", "noise", "seed")}, "config": {}}
            for r in rows]
    (path / "sweep.json").write_text(json.dumps({"runs": runs}))
    (path / "failures.json").write_text(json.dumps(failures))


def test_statistics_pair_by_unit_seed_noise_and_report_goals_and_failures(tmp_path):
    analyse = load_analyse()
    rows = []
    for unit in range(4):
        for seed in range(3):
            for noise in ("0", "0.2"):
                base = {"target": f"net:_blocks.{unit}:0", "noise": noise, "seed": str(seed)}
                scale = 10.0 * (unit + 1)  # per-unit scales differ: normalisation takes them out
                ga = scale * (0.5 + 0.01 * seed)
                for optimizer, value in (("ga-xdream", ga), ("sphere-cma", 1.5 * ga), ("pycma-diag", ga)):
                    rows.append({**base, "name": f"{unit}-{seed}-{noise}-{optimizer}", "optimizer": optimizer,
                                 "clean_best": value, "final_best": 0.0, "generations": 2, "evaluations": 80})
    peers = [{**r, "name": r["name"].replace("pycma-diag", "peer-ngopt"), "optimizer": "peer-ngopt"}
             for r in rows if r["optimizer"] == "pycma-diag"]
    synthetic_sweep(tmp_path / "ours", rows)
    synthetic_sweep(tmp_path / "peers", peers, failures={p["name"]: "RuntimeError: Mean shift samples are "
                                                          "expected but missing" for p in peers})
    table = analyse.analyse(tmp_path / "ours", more=(tmp_path / "peers",))
    # sphere-cma is 1.5x the GA in every pair: it won all 24 pairs, p far below 0.05
    stats = analyse.run_statistics(analyse.normalise([*analyse.load_records(tmp_path / "ours"),
                                                      *analyse.load_records(tmp_path / "peers")]))
    sphere = stats["paired"][("sphere-cma", "all")]
    assert sphere["n"] == 24 and sphere["wins"] == 24 and sphere["p"] < 1e-4
    # normalised by the unit's best (sphere-cma, seed 2): (1.5 - 1) g_s / (1.5 g_2), averaged over seeds
    assert sphere["mean"] == pytest.approx(0.51 / 0.52 / 3, rel=1e-9)
    assert stats["paired"][("pycma-diag", "all")]["p"] == 1.0  # level with the GA everywhere
    assert stats["ci"][("peer-ngopt", "all")][2] == 0 and len(stats["failed"]["peer-ngopt"]) == 24
    assert "best sphere-cma 0.981 / ga-xdream 0.654 = **1.50x** (goal >= 1.3x: goal met)" in table
    assert "noise 0.2: best sphere-cma" in table
    assert "- peer-ngopt: 24 run(s): RuntimeError: Mean shift samples are expected but missing" in table
    assert "| peer-ngopt |" in table and "| 24 |" in table  # failed runs counted in the CI table



def test_the_best_over_the_ga_skips_an_arm_whose_runs_all_failed(tmp_path):
    """``analyse.py PEERS_DIR OURS_DIR``: the peers' records first, NGOpt's all failed (NaN means);
    the best optimiser over the GA is the best scored one, never the failed arm (NaN compares
    as neither larger nor smaller, so a max() that meets it first keeps it)."""
    analyse = load_analyse()
    rows, peers = [], []
    for noise in ("0", "0.2"):
        base = {"target": "net:_blocks.1:0", "noise": noise, "seed": "0", "final_best": 0.0, "generations": 2,
                "evaluations": 80}
        rows += [{**base, "name": f"{noise}-{o}", "optimizer": o, "clean_best": v}
                 for o, v in (("ga-xdream", 1.0), ("sphere-cma", 1.5))]
        peers.append({**base, "name": f"{noise}-peer-ngopt", "optimizer": "peer-ngopt", "clean_best": None})
    synthetic_sweep(tmp_path / "ours", rows)
    synthetic_sweep(tmp_path / "peers", peers, failures={p["name"]: "RuntimeError: Mean shift" for p in peers})
    table = analyse.analyse(tmp_path / "peers", tmp_path / "out", more=(tmp_path / "ours",))
    assert "- noise 0: best sphere-cma 1.000 / GA (XDREAM) 0.667 = **1.50x**" in table
    assert "best peer-ngopt" not in table

SMOKE_BASE = """
[base]
budget = 24
save_images = "none"
generator = { name = "pixel", size = 16 }
responder = { name = "torch-unit", input_size = 64 }
[grid]
target = ["efficientnet_lite0:_blocks.2:5", "efficientnet_lite0:_blocks.2:6"]
seed = [0]
noise = [0, 0.2]
"""


def test_pipeline_smoke_run_with_a_peer(tmp_path):
    """A tiny real benchmark through run.py's sweep step and the analysis: two xdream arms in
    one sweep and a nevergrad peer in its companion, analysed together."""
    pytest.importorskip("nevergrad", reason="the peers need the [peers] extra")
    run = load_run()
    ours, peers = tmp_path / "ours.toml", tmp_path / "peers.toml"
    ours.write_text(f'output = "{tmp_path / "ours"}"\n' + SMOKE_BASE + 'optimizer = [{ name = "genetic", population '
                    '= 8, label = "ga-xdream" }, { name = "sphere-cma", population = 8, select = 4, label = '
                    '"sphere-cma" }]\n')
    peers.write_text(f'output = "{tmp_path / "peers"}"\n' + SMOKE_BASE + 'optimizer = [{ name = "nevergrad", '
                     'method = "DiagonalCMA", population = 8, label = "peer-diagonalcma" }]\n')
    ours_dir, failed = run.run_preset(ours, backend="process", workers=1)
    assert failed == 0 and (ours_dir / "results.jsonl").is_file()
    peers_dir, failed = run.run_preset(peers, backend="process", workers=1)
    assert failed == 0
    table = load_analyse().analyse(ours_dir, more=(peers_dir,))
    assert "| sphere-cma | " in table and "| peer-diagonalcma | " in table
    assert "Paired against ga-xdream" in table and "best xdream" in table
    records = list(csv.DictReader((ours_dir / "records.csv").open()))
    assert len(records) == 4 * 3 and {r["optimizer"] for r in records} == {"ga-xdream", "sphere-cma",
                                                                             "peer-diagonalcma"}
    assert all(0 < float(r["normalised"]) <= 1 for r in records)
    # every run's trajectory was read from its log: best-so-far per generation, non-decreasing
    trajectories = [json.loads(line) for line in (ours_dir / "trajectories.jsonl").read_text().splitlines()]
    assert len(trajectories) == len(records)
    for t in trajectories:
        bests = [b for _, b in t["trajectory"]]
        assert bests == sorted(bests) and t["trajectory"][-1][0] == 8 * len(bests)
    assert "## Evaluations to a level" in table and "| sphere-cma | " in table.split("**GA final**")[1]


def load_levels():
    return load_script("optimizer_benchmark/levels.py", "bench_levels")


def test_evaluations_to_a_level_counts_a_run_that_never_reached_it_as_censored():
    levels = load_levels()
    trajectory = [[40, 1.0], [80, None], [120, 5.0], [160, 9.0]]
    assert levels.evaluations_to(trajectory, 5.0) == 120
    assert levels.evaluations_to(trajectory, 0.5) == 40
    assert levels.evaluations_to(trajectory, 9.5) is None  # censored, not 160


def test_level_table_pairs_with_the_ga_and_orders_censored_pairs(tmp_path):
    """Constructed trajectories on two units: the ratios, the GA-final level and the censoring
    come out as computed by hand."""
    levels = load_levels()
    ga = [[100, 2.0], [200, 6.0], [300, 8.0]]  # final 8.0; reaches 8 (GA final) at 300
    fast = [[100, 8.0], [200, 10.0], [300, 10.0]]  # reaches 8 at 100: ratio 1/3
    slow = [[100, 1.0], [200, 3.0], [300, 4.0]]  # never reaches 8: censored
    records = []
    for unit, arm_trajectory in (("u1", fast), ("u2", slow)):
        for opt, trajectory in (("ga-xdream", ga), ("model", arm_trajectory), ("peer-x", ga)):
            records.append({"name": f"{unit}-{opt}", "unit": unit, "optimizer": opt, "seed": "0", "noise": "0.2",
                            "clean_best": trajectory[-1][1], "trajectory": trajectory})
    evals = levels.level_evaluations(records, "ga-xdream")
    assert evals[("model", "u1", "0", "0.2", "GA final")] == 100
    assert evals[("model", "u2", "0", "0.2", "GA final")] is None
    # unit u1's best ever is 10 (the model's): 0.9 of it = 9, which the GA never reaches
    assert evals[("ga-xdream", "u1", "0", "0.2", "0.9 of best")] is None
    ratios, arm_cens, ref_cens, both = levels.paired_ratios(evals, "model", "ga-xdream", "GA final", "0.2")
    assert sorted(ratios.tolist()) == [pytest.approx(1 / 3), math.inf] and (arm_cens, ref_cens, both) == (1, 0, 0)
    ratios, arm_cens, ref_cens, both = levels.paired_ratios(evals, "model", "ga-xdream", "0.9 of best", "0.2")
    # u1: the GA never reaches 9 (0 for the pair); u2 (best 8): the GA reaches 7.2, the model never
    assert ratios.tolist() == [0.0, math.inf] and (arm_cens, ref_cens, both) == (1, 1, 0)
    median, lo, hi = levels.median_ci(np.array([0.2, 0.4, math.inf]))
    assert median == 0.4 and lo == 0.2 and hi == math.inf
    table = levels.levels_markdown(records, "ga-xdream", "peer-")
    # one of two pairs censored: the median depends on it, so it is beyond the budget
    assert "| model | cens. [0.33, cens.] (n=2; cens. 1/0/0)" in table
    assert "- model: cens. of the GA's evaluations" in table and "rule NOT met" in table
    fast_only = [r for r in records if r["unit"] == "u1"]
    assert "- model: 0.33 of the GA's evaluations [0.33, 0.33]; vs the best peer peer-x: ratio 0.33" in \
        levels.levels_markdown(fast_only, "ga-xdream", "peer-")


def level_records(arms: dict[str, dict[str, list]], noise: str = "0.2") -> list[dict]:
    """Records as levels.py reads them: ``{unit: {optimiser: trajectory}}``, seed 0."""
    return [{"name": f"{unit}-{opt}", "unit": unit, "optimizer": opt, "seed": "0", "noise": noise,
             "clean_best": trajectory[-1][1], "trajectory": trajectory}
            for unit, by_arm in arms.items() for opt, trajectory in by_arm.items()]


def test_a_median_on_a_pair_the_ga_never_finished_is_not_half_of_its_neighbour():
    """A pair the GA never finished is 0, an order and not a number (the optimiser was faster by an
    unknown factor): a median that falls between it and an observed ratio is on a censored pair, as
    one next to an optimiser-censored pair (inf) is, not half the observed ratio."""
    levels = load_levels()
    assert levels.median_ci(np.array([0.0, 1.03]))[0] == 0.0  # was (0 + 1.03) / 2
    assert levels.median_ci(np.array([0.0, 0.0, 1.08, math.inf]))[0] == 0.0
    assert levels.median_ci(np.array([0.4, math.inf]))[0] == math.inf
    assert levels.median_ci(np.array([0.4, 0.6, 1.0, 2.0]))[0] == 0.8  # observed ratios: averaged as before
    ga = [[100, 2.0], [200, 6.0], [300, 8.0]]
    # u1: the model reaches 0.9 of the best (9) at 200, the GA never; u2 (best 8): 7.2 at 100 against 300
    records = level_records({"u1": {"ga-xdream": ga, "model": [[100, 8.0], [200, 10.0], [300, 10.0]]},
                             "u2": {"ga-xdream": ga, "model": [[100, 8.0], [200, 8.0], [300, 8.0]]}})
    ratios = levels.paired_ratios(levels.level_evaluations(records, "ga-xdream"), "model", "ga-xdream",
                                  "0.9 of best", "0.2")[0]
    assert sorted(ratios.tolist()) == [0.0, pytest.approx(1 / 3)]
    table = levels.levels_markdown(records, "ga-xdream", "peer-")
    assert "| model | 0 (ref. cens.) [0 (ref. cens.), 0.33] (n=2; cens. 0/1/0)" in table.split("**0.9 of best**")[1]


def test_a_level_no_run_of_a_pair_reached_is_not_reported_as_no_pairs():
    """Pairs where neither run reached the level are pairs (left out of the median, counted): a
    cell of only such pairs says so, and "no pairs" is kept for a cell with none."""
    levels = load_levels()
    ga = [[100, 2.0], [200, 6.0], [300, 8.0]]
    records = level_records({"u1": {"ga-xdream": ga, "model": [[100, 3.0], [200, 7.0], [300, 8.0]],
                                    "top": [[100, 20.0], [200, 20.0], [300, 20.0]]}})
    table = levels.levels_markdown(records, "ga-xdream", "peer-")
    # 0.5 of the best (20) is 10: neither the GA nor the model reached it
    assert "| model | neither reached it (n=1; cens. 0/0/1) |" in table.split("**0.8 of best**")[0]
    assert "no pairs" not in table


def test_the_decision_rule_compares_with_a_peer_that_has_pairs_at_its_noise_level():
    """A peer whose runs at noise 0.2 all failed (no trajectory there; NGOpt fails part-way) has no
    median at that level: the rule's best peer is the best of those that have one."""
    levels = load_levels()
    ga, fast = [[100, 2.0], [200, 6.0], [300, 8.0]], [[100, 8.0], [200, 8.0], [300, 8.0]]
    records = [*level_records({"u1": {"ga-xdream": ga, "peer-a": ga}}, noise="0"),
               *level_records({"u1": {"ga-xdream": ga, "model": fast, "peer-b": ga}})]
    lines = levels.decision_lines(levels.level_evaluations(records, "ga-xdream"),
                                  ["ga-xdream", "peer-a", "model", "peer-b"], "ga-xdream", "peer-")
    assert "- model: 0.33 of the GA's evaluations [0.33, 0.33]; vs the best peer peer-b: ratio 0.33" in lines[-1]


def test_surrogate_presets_pair_every_arm_on_the_same_cells():
    for preset, units, seeds, budget in (("surrogate-power", 8, 3, 2000), ("surrogate-dcgan", 3, 1, 1200)):
        _, runs = load_sweep(BENCH / f"{preset}.toml")
        arms = {r.labels["optimizer"] for r in runs}
        peers = {"peer-ngopt", "peer-diagonalcma", "peer-twopointsde"}
        assert arms == {"ga-xdream", "tpa-es", "peer-pycma", "surrogate-tpa", "surrogate-tpa-denoise"} | peers
        cells = {(r.labels["target"], r.labels["seed"], r.labels["noise"]) for r in runs}
        assert len(cells) == units * seeds * 3 and len(runs) == len(cells) * len(arms)
        assert all(r.config["budget"] == budget for r in runs)
