"""Sweeps on GPUs, checked without one: what a Ray task asks for, which GPUs are visible, and a
real spawned process pool in which each worker sees only its own CUDA_VISIBLE_DEVICES."""

import os

import pytest

from xdream.cli import main
from xdream.core.errors import ConfigError
from xdream.sweep.runner import _run_pool, task_resources, uses_cuda, visible_gpus
from xdream.sweep.grid import RunSpec


def test_ray_tasks_ask_for_a_gpu_share_only_on_cuda():
    assert task_resources(False, None) == {"num_cpus": 1, "num_gpus": 0}
    assert task_resources(True, None) == {"num_cpus": 1, "num_gpus": 1.0}
    assert task_resources(True, 0.25) == {"num_cpus": 1, "num_gpus": 0.25}
    with pytest.raises(ConfigError, match=r"gpu_per_run must be a fraction of one GPU in \(0, 1\], got 2"):
        task_resources(True, 2)
    with pytest.raises(ConfigError, match="needs runs on a CUDA device"):
        task_resources(False, 0.5)
    assert uses_cuda([RunSpec("a", {}, {"device": "cpu"}), RunSpec("b", {}, {"device": "cuda"})])
    assert not uses_cuda([RunSpec("a", {}, {})])


def test_visible_gpus_follow_cuda_visible_devices():
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "2, 5"}) == ["2", "5"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == [] == visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"})


def test_each_pool_worker_sees_only_its_gpu():
    """Two spawned workers, GPUs "3" and "5": every job reads its worker's variable."""
    jobs = [("CUDA_VISIBLE_DEVICES",)] * 6
    seen = [value for _, value in _run_pool(jobs, 2, {}, gpus=["3", "5"], task=os.getenv)]
    assert len(seen) == 6 and set(seen) <= {"3", "5"}
    plain = [value for _, value in _run_pool([("XDREAM_NO_SUCH_VARIABLE",)], 1, {}, task=os.getenv)]
    assert plain == [None]


def cuda_sweep(tmp_path, fast_job):
    """A one-run sweep file whose runs use device cuda."""
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('[base]\ngenerations = 1\ndevice = "cuda"\ngenerator = { name = "pixel", size = 16 }\n'
                     f'responder = {{ name = "torch-unit", target = "{fast_job["responder"]["target"]}", '
                     'input_size = 64 }\n[grid]\nseed = [0]\n')
    return sweep


def test_a_cpu_sweep_refuses_a_gpu_share(fast_job, tmp_path, capsys):
    (tmp_path / "sweep.toml").write_text('output = "s"\n[base]\ngenerations = 1\n[grid]\nseed = [0]\n')
    code = main(["sweep", str(tmp_path / "sweep.toml"), "--output", str(tmp_path / "s"), "--backend", "process",
                 "--gpu-per-run", "0.5"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "gpu_per_run 0.5 needs runs on a CUDA device" in err
    assert not (tmp_path / "s").exists()  # refused before the sweep's folder is made


def test_a_gpu_share_on_the_process_pool_is_refused(fast_job, tmp_path, monkeypatch, capsys):
    """--gpu-per-run is a Ray task's share of a card; the process pool gives each worker a whole
    card, so on it --gpu-per-run 0.25 was accepted and ignored (one run per card, not four)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # a visible card, on any machine
    out, sweep = tmp_path / "out", cuda_sweep(tmp_path, fast_job)
    code = main(["sweep", str(sweep), "--output", str(out), "--backend", "process", "--gpu-per-run", "0.25"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--gpu-per-run" in err and "ray backend" in err, err
    assert not out.exists()


def test_a_ray_cluster_without_a_gpu_is_refused_before_anything_is_written(fast_job, tmp_path, monkeypatch, capsys):
    """Runs on device cuda and a local Ray instance with no GPU: one error, exit 2, and no sweep
    folder, so the sweep fixed as the error says (device = "cpu") may use the same --output (a
    plan written first refused it: 'holds a different sweep')."""
    import shutil
    import tempfile

    ray_tmp = tempfile.mkdtemp(prefix="xr", dir="/tmp")  # short: the AF_UNIX path limit
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU for the local Ray instance, on any machine
    out, sweep = tmp_path / "out", cuda_sweep(tmp_path, fast_job)
    code = main(["sweep", str(sweep), "--output", str(out), "--backend", "ray", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "xdream: error: the sweep's runs use device cuda but the Ray cluster has no GPU" in err, err
    assert not out.exists()
    shutil.rmtree(ray_tmp, ignore_errors=True)
