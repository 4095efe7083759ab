"""``xdream evolve`` for sessions: --units (a layer in one job), --thread, and their bad input."""

import json

import pytest

from xdream.cli.evolve import layer_units, parse_thread, parse_units
from xdream.core.errors import ConfigError

LAYER = "efficientnet_lite0:_blocks.2"
SMALL = ["--generator", "pixel", "--set", "generator.size=16", "--population", "4", "--generations", "2",
         "--set", "responder.input_size=64", "--quiet"]


@pytest.fixture
def evolve(xdream_main):
    """``xdream evolve ARGS`` run in this process (the real process's single line: tests/xdream/cli/test_cli.py)."""
    return lambda *args: xdream_main("evolve", *args)


def test_units_evolves_one_thread_per_channel_in_one_job(tmp_path, evolve):
    out = tmp_path / "layer"
    proc = evolve("--target", LAYER, "--units", "0:2,7", *SMALL, "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [(r["name"], r["target"], r["evaluations"]) for r in results] == \
        [(f"unit{c}", f"{LAYER}:{c}", 8) for c in (0, 1, 7)]
    assert sorted(p.name for p in (out / "threads").iterdir()) == ["unit0", "unit1", "unit7"]
    assert "unit7" in proc.stdout and "finished: 2 generations, 3 threads" in proc.stdout
    resumed = evolve("--resume", str(out))
    assert resumed.returncode == 0, resumed.stderr  # a finished session resumes to nothing new


@pytest.mark.parametrize("args, message", [
    (["--target", LAYER, "--units", "20:30"], "channel 24"),
    (["--target", LAYER, "--units", "3:1"], "empty or negative range"),
    (["--target", LAYER + ":5", "--units", "0:2"], "--units needs --target MODEL:LAYER"),
    (["--thread", f"name=a,target={LAYER}:1", "--thread", f"name=a,target={LAYER}:2"], "two threads are named 'a'"),
    (["--thread", f"name=a,target={LAYER}:1,colour=red"], "'colour=red' is not KEY=VALUE"),
    (["--units", "0:2", "--target", LAYER, "--init-image", "x.png"], "--init-image starts a one-thread run"),
    # every thread names its own optimiser: --population 4 (in SMALL) set the session's default, which no thread
    # used, and the run went on with genetic's population of 20
    (["--thread", f"name=a,optimizer=genetic,target={LAYER}:1"], "--population 4 sets the session's default"),
    (["--thread", f"name=a,optimizer=genetic,target={LAYER}:1", "--set", "optimizer.mutation_rate=0.1"],
     "no thread uses"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, evolve, args, message):
    proc = evolve(*args, *SMALL, "--output", str(tmp_path / "run"))
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
    assert not (tmp_path / "run").exists()


def test_shorthand_parsers():
    assert parse_units("0:3,7") == [0, 1, 2, 7]
    with pytest.raises(ConfigError, match="names a channel twice"):
        parse_units("0:3,2")
    with pytest.raises(ConfigError, match="is not a channel or range"):
        parse_units("a:b")
    assert parse_thread("name=f,generator=fourier,target=ch1+ch2,patience=5") == \
        {"name": "f", "generator": "fourier", "target": ["ch1", "ch2"], "patience": 5}
    for name in ("1", "007", "1e3", "true"):  # a folder name as written, never a number or a boolean
        assert parse_thread(f"name={name},target=ch1") == {"name": name, "target": "ch1"}
    assert parse_thread('name="1",target=ch1')["name"] == "1"
    assert layer_units("m:l:3:4", [1]) == [{"name": "unit1", "target": "m:l:1:3:4"}]
