"""Shared fixtures: a tiny but real evolution job that runs in about a second."""

import sys

import pytest

from xdream.core.threads import quiet_thread_pools

# Before torch loads in this process (and for every process a test starts): idle OpenMP threads
# sleep instead of spinning. The suite runs on two pytest workers sharing the cores, the busy
# machine xdream.core.threads describes; without this, each worker's pool spun while the other
# computed (the surrogate optimiser's toy test: 9 s alone, 137 s beside a busy neighbour).
quiet_thread_pools()

# A real pretrained unit read early in EfficientNet-Lite0 (the forward pass stops at the
# hooked layer, so this is cheap) and a small weight-free generator.
FAST_JOB = {
    "seed": 3,
    "generations": 6,
    "generator": {"name": "pixel", "size": 16},
    "responder": {"name": "torch-unit", "target": "efficientnet_lite0:_blocks.2:5", "input_size": 64},
    "optimizer": {"name": "genetic", "population": 8},
}


@pytest.fixture(autouse=True)
def _torch_threads_put_back():
    """A run's ``threads`` sets torch's thread count process-wide; put it back after each test, so
    a test that compares an in-process run with a rig subprocess (both at the default count) does
    not depend on which test ran before it in this worker (a Ray sweep test left 1 thread, and a
    noise-free rig run then differed from its local run by 4e-6)."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def private_tmpfs(tmp_path):
    """Skip, saying why, unless this process may mount a tmpfs in a private mount namespace
    (``unshare -m``, as root): the full-disk tests run their command on a tiny one inside it."""
    import os
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", 'mount -t tmpfs -o size=8k tmpfs "$0"', str(tmp_path)],
                           capture_output=True, text=True)
    if probe.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.strip()}")


@pytest.fixture
def fast_job():
    import copy

    return copy.deepcopy(FAST_JOB)


@pytest.fixture
def xdream_cmd():
    """The CLI as a real subprocess command line."""
    return [sys.executable, "-m", "xdream.cli"]


@pytest.fixture
def xdream_main(capsys):
    """``xdream_main(*args)``: the ``xdream`` command run in this process by its own ``main``
    (parsing, handler, exit status, the one-line error) as a ``subprocess.CompletedProcess``
    with its stdout and stderr: what the command says and writes, without the 2-3 s of CPU a
    fresh interpreter spends importing torch. Tests of a signal, a kill, a lock held by another
    process or the environment a process starts with use :func:`xdream_cmd`. torch's thread
    count, which a run's ``threads`` sets process-wide, is put back after each call."""
    import subprocess

    import torch

    from xdream.cli.main import main

    def run(*args):
        argv = [str(a) for a in args]
        capsys.readouterr()  # what the test printed before is not the command's
        threads = torch.get_num_threads()
        try:
            code = main(argv)
        finally:
            torch.set_num_threads(threads)
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["xdream", *argv], code, out, err)

    return run


@pytest.fixture
def layout_copy(tmp_path):
    """``layout_copy(name)``: a copy in tmp_path of the committed run folder
    ``tests/fixtures/layouts/NAME`` (run, session, units, sweep; see its README): a finished
    run for tests that read one, without running an evolution first."""
    import shutil
    from pathlib import Path

    def copy(name):
        return Path(shutil.copytree(Path(__file__).parent / "fixtures" / "layouts" / name, tmp_path / name))

    return copy


def pytest_configure(config):
    """The suite runs with malloc set as the ``xdream`` command sets it (xdream.core.allocator)."""
    from xdream.core.allocator import retain_freed_memory

    retain_freed_memory()
