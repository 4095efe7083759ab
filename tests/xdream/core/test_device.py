"""What a run sets on its device: the deterministic settings (applied for CUDA, where torch lets
them be set without a GPU; nothing on the CPU), the decode chunk, and the run's record of both."""

import os
import tomllib

import numpy as np
import pytest
import torch

from xdream.config import ExperimentConfig
from xdream.core.device import CUBLAS_ENV, DECODE_CHUNK, decode_chunk, determinism_settings, use_determinism
from xdream.core.errors import ConfigError
from xdream.evolve.experiment import Experiment


@pytest.fixture
def torch_flags(monkeypatch):
    """Restore torch's process-wide flags and the cuBLAS variable after the test."""
    monkeypatch.delenv(CUBLAS_ENV, raising=False)
    saved = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
             torch.backends.cuda.matmul.allow_tf32, torch.are_deterministic_algorithms_enabled())
    yield
    (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
     torch.backends.cuda.matmul.allow_tf32) = saved[:4]
    torch.use_deterministic_algorithms(saved[4])


def test_cuda_runs_get_every_deterministic_setting(torch_flags):
    applied = use_determinism("cuda", True)
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert torch.are_deterministic_algorithms_enabled()
    assert os.environ[CUBLAS_ENV] == ":4096:8" and applied[CUBLAS_ENV] == ":4096:8"
    assert applied == determinism_settings(True)
    use_determinism("cuda:0", False)  # off: the fast, nondeterministic kernels again
    assert torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()


def test_a_users_cublas_setting_is_kept_and_the_cpu_is_left_alone(torch_flags, monkeypatch):
    monkeypatch.setenv(CUBLAS_ENV, ":16:8")
    assert use_determinism("cuda", True)[CUBLAS_ENV] == ":16:8"
    torch.use_deterministic_algorithms(False)
    assert use_determinism("cpu", True) == {} and not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("per_image, free, expected", [
    (None, None, DECODE_CHUNK),          # CPU: today's chunk
    (6_000_000, None, DECODE_CHUNK),     # a declared cost, but no device memory to size against
    (None, 80 * 2**30, DECODE_CHUNK),    # a device, but no cost known
    (6_000_000, 80 * 2**30, 4096),       # fc6-sized images on an 80 GB card: 7158 fit, power of two below
    (3 * 2**30, 40 * 2**30, 4),          # a huge generator: 6 fit -> 4
    (3 * 2**30, 2**30, 1),               # not even one fits: one at a time
])
def test_decode_chunk_from_memory(per_image, free, expected):
    assert decode_chunk(per_image, free) == expected


def test_deterministic_is_recorded_and_checked(tmp_path, fast_job):
    fast_job["generations"] = 2
    scores = []
    for name in ("a", "b"):
        experiment = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=tmp_path / name)
        experiment.run(progress=False)
        experiment.close()
        assert tomllib.loads((tmp_path / name / "config.toml").read_text())["deterministic"] is True
        with np.load(tmp_path / name / "generations" / "gen_0001.npz") as data:
            scores.append(data["scores"])
    np.testing.assert_array_equal(*scores)  # two runs of one config: bit for bit
    with pytest.raises(ConfigError, match="config key 'deterministic' must be bool, got 'yes'"):
        ExperimentConfig.from_dict({**fast_job, "deterministic": "yes"})
    assert ExperimentConfig.from_dict({**fast_job, "deterministic": False}).to_dict()["deterministic"] is False
