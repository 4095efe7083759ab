"""The optimiser benchmark: its presets are valid sweeps, and the analysis normalises per unit
as Wang & Ponce do (GECCO 2022) and writes table, figure and raw records."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
from pathlib import Path

import pytest

from xdream.sweep.grid import load_sweep

BENCH = Path(__file__).resolve().parents[2] / "experiments" / "optimizer_benchmark"


def load_analyse():
    spec = importlib.util.spec_from_file_location("bench_analyse", BENCH / "analyse.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("preset, n_runs", [("smoke", 2 * 7 * 3), ("quick", 4 * 7 * 3), ("paper", 2 * 70 * 7 * 3 * 5)])
def test_presets_are_valid_sweeps(preset, n_runs):
    output, runs = load_sweep(BENCH / f"{preset}.toml")
    assert output == f"runs/optimizer-benchmark-{preset}"
    assert len(runs) == n_runs
    assert {r.labels["noise"] for r in runs} == {"0", "0.2", "0.5"}
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
            for noise, factor in (("0", 1.0), ("0.5", 0.5)):
                rows.append({"name": f"{target}-{optimizer}-{noise}", "target": target, "optimizer": optimizer,
                             "noise": noise, "seed": "0", "clean_best": scale * value * factor,
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
