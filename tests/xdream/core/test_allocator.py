"""xdream.core.allocator: freed batch-sized buffers come back without page faults.

Measured in fresh processes: the setting is process-wide, and the suite itself runs with it
(conftest.py)."""

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

FAULTS = """
import contextlib, io, resource, torch

def faults():  # page faults of five 64 MB activations, each freed before the next
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        torch.ones(16, 2**20).sum()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

# the fewest faults of three rounds: one round may grow the heap once (a small block split off
# a freed buffer); the next reuses what it grew
def settled():
    return min(faults() for _ in range(3))
"""
PAGES = 5 * 64 * 2**20 // 4096  # what five fresh 64 MB buffers fault in


def probe(code: str) -> list[str]:
    return subprocess.run([sys.executable, "-c", FAULTS + code], capture_output=True, text=True,
                          check=True).stdout.split()


def test_freed_buffers_are_reused_without_page_faults():
    shipped, took, retained = probe(
        "from xdream.core.allocator import retain_freed_memory\n"
        "shipped = faults()\n"
        "took = retain_freed_memory()\n"
        "print(shipped, took, settled())\n")
    assert int(shipped) > PAGES // 2, "glibc as shipped maps every 64 MB buffer afresh"
    assert took == "True"
    assert int(retained) < PAGES // 100


def test_the_xdream_command_runs_with_it():
    (retained,) = probe(
        "from xdream.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['list']) == 0\n"
        "print(settled())\n")
    assert int(retained) < PAGES // 100
