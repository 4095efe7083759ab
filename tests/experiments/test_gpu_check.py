"""experiments/gpu_check.py on the CPU at tiny sizes: the fixed job repeats bit for bit twice and
by resume, and the throughput lines come out (the same script runs on a CUDA machine)."""

from __future__ import annotations

import pytest
import torch

from experiment_script import load_script  # same folder


@pytest.fixture(scope="module")
def gpu_check():
    return load_script("gpu_check.py", "gpu_check")


def test_cpu_check_is_bit_identical_and_prints_ratios(gpu_check, capsys):
    code = gpu_check.main(["--device", "cpu", "--population", "3", "--generations", "2", "--units", "2",
                           "--generator", "deepsim-norm1", "--models", "caffenet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "two runs IDENTICAL; run vs stop+resume IDENTICAL" in out
    assert "deepsim-norm1 -> caffenet:fc8:1: loop" in out and "loop/forward" in out and "images/s" in out
    assert "2-unit layer job on caffenet:conv5" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the check would run on it")
def test_no_gpu_is_said_plainly(gpu_check, capsys):
    assert gpu_check.main(["--device", "cuda"]) == 2
    assert "no CUDA device here" in capsys.readouterr().err
