"""The closed loop end to end on real components, its run directory, and crash-safe resume."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from xdream import Experiment, ExperimentConfig
from xdream.errors import RunDirError


def run_job(job, path, **kwargs):
    experiment = Experiment(ExperimentConfig.from_dict(job), run_dir=path)
    summary = experiment.run(progress=False, **kwargs)
    experiment.close()
    return experiment, summary


def all_arrays(path, generations):
    out = {}
    for g in range(generations):
        with np.load(path / "generations" / f"gen_{g:04d}.npz") as data:
            out[g] = {k: data[k] for k in data.files}
    return out


def assert_same_run(a, b, generations):
    arrays_a, arrays_b = all_arrays(a, generations), all_arrays(b, generations)
    for g in range(generations):
        assert arrays_a[g].keys() == arrays_b[g].keys()
        for key in arrays_a[g]:
            np.testing.assert_array_equal(arrays_a[g][key], arrays_b[g][key], err_msg=f"gen {g} {key}")
    log_a = [json.loads(line) for line in (a / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(line) for line in (b / "log.jsonl").read_text().splitlines()]
    assert [r["scores"] for r in log_a] == [r["scores"] for r in log_b]
    assert [r["generation"] for r in log_a] == list(range(generations))


def test_run_writes_every_generation(tmp_path, fast_job):
    experiment, summary = run_job(fast_job, tmp_path / "run")
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(records) == 6 and summary.generations == 6 and summary.evaluations == 48
    for g, record in enumerate(records):
        arrays = np.load(run / "generations" / f"gen_{g:04d}.npz")
        assert arrays["codes"].shape == (8, 3 * 16 * 16) and arrays["codes"].dtype == np.float32
        np.testing.assert_array_equal(arrays["scores"], record["scores"])
        assert record["best"] == max(record["scores"]) and record["best_index"] == int(np.argmax(record["scores"]))
        assert set(record["timings"]) == {"ask", "decode", "respond", "tell", "save"}
        for kind in ("best", "montage"):
            assert (run / "images" / f"{kind}_{g:04d}.png").stat().st_size > 0
    for name in ("config.toml", "best.png", "trajectory.png", "summary.json", "checkpoint.pkl"):
        assert (run / name).is_file(), name
    saved = json.loads((run / "summary.json").read_text())
    assert saved["final_best"] == max(r["best"] for r in records) == summary.final_best
    assert saved["initial_best"] == records[0]["best"]
    # the saved config reproduces the run
    Experiment.from_toml(run / "config.toml", run_dir=tmp_path / "again").run(progress=False)
    assert_same_run(run, tmp_path / "again", 6)


def test_seed_fixes_the_run(tmp_path, fast_job):
    run_job(fast_job, tmp_path / "a")
    run_job(fast_job, tmp_path / "b")
    assert_same_run(tmp_path / "a", tmp_path / "b", 6)
    fast_job["seed"] = 4
    run_job(fast_job, tmp_path / "c")
    assert not np.array_equal(all_arrays(tmp_path / "a", 1)[0]["codes"], all_arrays(tmp_path / "c", 1)[0]["codes"])


def test_output_dir_is_never_overwritten(tmp_path, fast_job):
    run_job(fast_job, tmp_path / "run")
    before = (tmp_path / "run" / "log.jsonl").read_bytes()
    with pytest.raises(RunDirError, match="already exists"):
        Experiment(ExperimentConfig.from_dict(fast_job), run_dir=tmp_path / "run")
    assert (tmp_path / "run" / "log.jsonl").read_bytes() == before


def test_budget_counts_evaluations(tmp_path, fast_job):
    fast_job["budget"] = 20  # population 8 -> 3 generations (24 evaluations)
    _, summary = run_job(fast_job, tmp_path / "run")
    assert summary.generations == 3 and summary.evaluations == 24


def test_noise_records_clean_scores(tmp_path, fast_job):
    fast_job["noise"] = {"name": "gaussian", "level": 0.5}
    run_job(fast_job, tmp_path / "run")
    arrays = all_arrays(tmp_path / "run", 6)
    for g in range(6):
        clean, noisy = arrays[g]["clean_scores"], arrays[g]["scores"]
        assert clean.shape == noisy.shape and not np.array_equal(clean, noisy)


@pytest.mark.parametrize("optimizer", ["genetic", "cmaes"])
def test_stop_and_resume_in_process_is_identical(tmp_path, fast_job, optimizer):
    fast_job["optimizer"]["name"] = optimizer
    fast_job["noise"] = {"name": "poisson"}
    run_job(fast_job, tmp_path / "whole")
    calls = iter(range(100))
    experiment, summary = run_job(fast_job, tmp_path / "split", should_stop=lambda: next(calls) >= 2)
    assert summary.stopped_early and summary.generations == 2
    resumed = Experiment.resume(tmp_path / "split")
    assert resumed.generation == 2
    resumed.run(progress=False)
    assert_same_run(tmp_path / "whole", tmp_path / "split", 6)


def test_resume_discards_a_half_written_generation(tmp_path, fast_job):
    run_job(fast_job, tmp_path / "whole")
    calls = iter(range(100))
    run_job(fast_job, tmp_path / "split", should_stop=lambda: next(calls) >= 3)
    split = tmp_path / "split"
    # A crash after generation 3's files and a torn log line, before its checkpoint:
    (split / "generations" / "gen_0003.npz").write_bytes(b"garbage")
    (split / "images" / "best_0003.png").write_bytes(b"garbage")
    with open(split / "log.jsonl", "a") as f:
        f.write('{"generation": 3, "scor')
    Experiment.resume(split).run(progress=False)
    assert_same_run(tmp_path / "whole", split, 6)


def test_resume_rejects_a_non_run_directory(tmp_path):
    with pytest.raises(RunDirError, match="not an xdream run directory"):
        Experiment.resume(tmp_path)


def _count_lines(path):
    try:
        return sum(1 for line in path.read_text().splitlines() if line.endswith("}"))
    except FileNotFoundError:
        return 0


def test_sigkill_mid_run_resumes_bit_identically(tmp_path, fast_job, xdream_cmd):
    """A real process killed with SIGKILL part-way, resumed, equals an uninterrupted run."""
    generations = 14
    flags = ["--generator", "pixel", "--set", "generator.size=16", "--target", "efficientnet_lite0:_blocks.2:5",
             "--set", "responder.input_size=64", "--optimizer", "cmaes", "--population", "8",
             "--generations", str(generations), "--seed", "11", "--noise", "gaussian", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run([*xdream_cmd, "evolve", *flags, "--output", str(whole)], check=True, env=env,
                   capture_output=True)
    process = subprocess.Popen([*xdream_cmd, "evolve", *flags, "--output", str(killed)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _count_lines(killed / "log.jsonl") < 5 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    done = _count_lines(killed / "log.jsonl")
    assert 5 <= done < generations, "the run must be killed part-way"
    resumed = subprocess.run([*xdream_cmd, "evolve", "--resume", str(killed), "--quiet"], env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    assert_same_run(whole, killed, generations)
    assert json.loads((killed / "summary.json").read_text())["final_best"] == \
        json.loads((whole / "summary.json").read_text())["final_best"]


def test_python_api_with_a_users_module(tmp_path, fast_job):
    """Any nn.Module through the Python API: a tiny random CNN's unit, evolved by CMA-ES."""
    import torch
    from torch import nn

    from responders.torch_unit import TorchUnit

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.Conv2d(8, 4, 3), nn.ReLU())
    unit = TorchUnit.from_module(net, layer="2", channel=1, input_size=32)
    fast_job["optimizer"] = {"name": "cmaes", "population": 10}
    fast_job["generations"] = 15
    experiment = Experiment(ExperimentConfig.from_dict(fast_job), responder=unit, run_dir=tmp_path / "run")
    summary = experiment.run(progress=False)
    assert summary.final_best > summary.initial_best
    resumed = Experiment.resume(tmp_path / "run", responder=unit)
    assert resumed.done and resumed.generation == 15


def test_default_job_climbs_at_least_twofold(tmp_path):
    """The embedded default (what `make demo` runs): DCGAN faces -> an EfficientNet-Lite0 unit."""
    config = ExperimentConfig()
    _, summary = run_job(config.to_dict(), tmp_path / "demo")
    assert summary.generations == config.generations
    assert summary.initial_best > 0
    assert summary.final_best >= 2 * summary.initial_best, summary.lines()


def test_ctrl_c_stops_cleanly_after_saving(tmp_path, xdream_cmd):
    """SIGINT (Ctrl-C) finishes the generation in flight, saves, summarises and exits 0;
    the run then resumes to the same result as an uninterrupted one."""
    flags = ["--generator", "pixel", "--set", "generator.size=16", "--target", "efficientnet_lite0:_blocks.2:5",
             "--set", "responder.input_size=64", "--population", "8", "--generations", "20", "--seed", "5", "--quiet"]
    run = tmp_path / "run"
    process = subprocess.Popen([*xdream_cmd, "evolve", *flags, "--output", str(run)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _count_lines(run / "log.jsonl") < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "stopped early" in out and f"--resume {run}" in out
    done = json.loads((run / "summary.json").read_text())["generations"]
    assert 3 <= done < 20 and _count_lines(run / "log.jsonl") == done
    subprocess.run([*xdream_cmd, "evolve", "--resume", str(run), "--quiet"], check=True, capture_output=True)
    subprocess.run([*xdream_cmd, "evolve", *flags, "--output", str(tmp_path / "whole")], check=True,
                   capture_output=True)
    assert_same_run(tmp_path / "whole", run, 20)


@pytest.mark.parametrize("save_images, files", [("all", {"best", "montage"}), ("best", {"best"}), ("none", set())])
def test_save_images_controls_the_per_generation_pngs(tmp_path, fast_job, save_images, files):
    run_job({**fast_job, "save_images": save_images}, tmp_path / "run")
    written = {p.name.split("_")[0] for p in (tmp_path / "run" / "images").glob("*.png")}
    assert written == files
    assert (tmp_path / "run" / "best.png").is_file()  # the run's best image is always kept


def test_save_images_rejects_an_unknown_value(fast_job):
    from xdream.errors import ConfigError

    with pytest.raises(ConfigError, match="'save_images' must be one of all, best, none, got 'some'"):
        ExperimentConfig.from_dict({**fast_job, "save_images": "some"})
