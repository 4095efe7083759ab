"""Thread pools on a busy machine (xdream.core.threads): the fair share, the wait policy, the
``threads`` config key and ``--threads``, recorded in the run and reused on resume."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import pytest

from xdream import ExperimentConfig
from xdream.core.errors import ConfigError
from xdream.core.threads import THREAD_VARS, default_threads, fair_share, worker_threads_env


@pytest.mark.parametrize("cores, processes, expected", [(2, 1, 2), (16, 4, 4), (16, 5, 3), (2, 3, 1), (1, 1, 1)])
def test_fair_share(cores, processes, expected):
    assert fair_share(processes, cores=cores) == expected


def test_default_threads_honours_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    assert 1 <= default_threads() <= os.cpu_count()


def test_process_workers_get_one_thread_pool_size_and_the_passive_policy(monkeypatch):
    """Parallel runs must not oversubscribe the cores: each worker's BLAS/OpenMP pools get the
    run's share and sleep when idle, unless the user fixed them."""
    for var in (*THREAD_VARS, "OMP_WAIT_POLICY"):
        monkeypatch.delenv(var, raising=False)
    assert worker_threads_env(1) == {**{var: "1" for var in THREAD_VARS}, "OMP_WAIT_POLICY": "PASSIVE"}
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    env = worker_threads_env(2)
    assert env["OMP_NUM_THREADS"] == "3" and env["MKL_NUM_THREADS"] == "2" and env["OMP_WAIT_POLICY"] == "ACTIVE"


# Runs ``xdream list`` (a command that loads torch) and prints, last, the wait policy in force
# at the moment torch is first imported (when its OpenMP runtime loads and reads it), by
# watching the import system.
SPY = """
import os, sys
seen = []
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not seen:
            seen.append(os.environ.get("OMP_WAIT_POLICY"))
        return None
sys.meta_path.insert(0, Spy())
from xdream.cli.main import main
main(["list"])
print(seen[0] if seen else "torch never imported")
"""


def test_the_command_sets_the_passive_wait_policy_before_torch_loads():
    code = SPY
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # the user's choice wins
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "ACTIVE"


@pytest.mark.parametrize("value", [0, -2, "two", 1.5, True])
def test_threads_key_must_be_a_positive_integer(fast_job, value):
    with pytest.raises(ConfigError, match=f"'threads'.*{value}"):
        ExperimentConfig.from_dict({**fast_job, "threads": value})


def test_threads_recorded_and_reused_on_resume(tmp_path, fast_job, xdream_main, monkeypatch, capsys):
    """`--threads 1` sets torch's pool and lands in config.toml; without it the command records
    the count it chose; `--resume` reuses the recorded count and refuses a new one."""
    config = tmp_path / "job.toml"
    from xdream.config import to_toml

    config.write_text(to_toml({**fast_job, "generations": 2}))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    pinned, auto = tmp_path / "pinned", tmp_path / "auto"
    result = xdream_main("evolve", config, "--threads", "1", "--quiet", "--output", pinned)
    assert result.returncode == 0, result.stderr
    assert tomllib.loads((pinned / "config.toml").read_text())["threads"] == 1
    result = xdream_main("evolve", config, "--quiet", "--output", auto)
    assert result.returncode == 0, result.stderr
    chosen = tomllib.loads((auto / "config.toml").read_text())["threads"]
    assert 1 <= chosen <= os.cpu_count()
    # refusals happen before any thread count is applied: checked in this process (cheaper)
    from xdream.cli import main

    assert main(["evolve", "--resume", str(pinned), "--threads", "2"]) == 2
    assert "--threads" in capsys.readouterr().err
    assert main(["evolve", str(config), "--threads", "0", "--output", str(tmp_path / "x")]) == 2
    assert "'threads' must be >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_experiment_applies_and_records_threads(tmp_path, fast_job):
    import torch

    from xdream import Experiment

    before = torch.get_num_threads()
    try:
        experiment = Experiment(ExperimentConfig.from_dict({**fast_job, "threads": 1}), run_dir=tmp_path / "a")
        assert torch.get_num_threads() == 1 and experiment.config.threads == 1
        experiment.close()
        torch.set_num_threads(before)
        resumed = Experiment.resume(tmp_path / "a")  # the recorded count, not the process's
        assert torch.get_num_threads() == 1 and resumed.config.threads == 1
        resumed.close()
        torch.set_num_threads(before)
        kept = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=tmp_path / "b")  # no key: kept as is
        assert torch.get_num_threads() == before
        assert tomllib.loads((tmp_path / "b" / "config.toml").read_text())["threads"] == before
        kept.close()
    finally:
        torch.set_num_threads(before)


def test_experiment_without_threads_gives_numpy_blas_one_thread_as_its_resume_does(tmp_path, fast_job):
    """A Python-API run whose config leaves ``threads`` out records the process's count, and a
    resume (or ``xdream evolve RUN/config.toml``) applies that count, which gives numpy's BLAS
    one thread: the run itself must too, or it differs from them (full CMA-ES's eigh at d = 300
    differs bit-wise between 1 and 2 BLAS threads, seen from generation 8 of a 40-generation run)."""
    import numpy as np
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    from xdream import Experiment

    blas = lambda: {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}  # noqa: E731
    with threadpool_limits(2, user_api="blas"):  # a fresh Python process's BLAS on 2 cores; restored after
        assert blas() == {2}
        a = np.random.default_rng(0).standard_normal((300, 300))
        two = np.linalg.eigh(a @ a.T)[1]
        experiment = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=tmp_path / "run")
        experiment.close()
        assert experiment.config.threads == torch.get_num_threads()
        assert blas() == {1}, "the run computes with another BLAS thread count than its resume"
        assert not np.array_equal(np.linalg.eigh(a @ a.T)[1], two)  # the count changes values


def test_use_threads_gives_numpy_blas_one_thread_whatever_the_core_count():
    """numpy's BLAS ends at one thread after use_threads (its products are small; a busy
    machine makes a second thread wait), so the values of a run do not depend on the cores."""
    import torch
    from threadpoolctl import threadpool_info, threadpool_limits

    from xdream.core.threads import use_threads

    blas = lambda: [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]  # noqa: E731
    assert blas(), "threadpoolctl sees no BLAS under numpy: the limit would do nothing"
    with threadpool_limits(2, user_api="blas"):  # restored after the test
        assert set(blas()) == {2}
        use_threads(torch.get_num_threads())
        assert set(blas()) == {1}
