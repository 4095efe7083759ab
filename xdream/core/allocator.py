"""Keep freed memory in the process instead of handing it back to the kernel.

glibc's malloc serves every large buffer (a batch's activations: tens of MB) with its own
``mmap`` and returns it with ``munmap`` on free, and trims the heap top likewise; the next
forward pass then page-faults the same memory in again, zeroed by the kernel. In an evolution
loop that is most of the system time: the default job spends about half its wall time in page
faults (``experiments/bench_loop.py`` part (d) measures it). PyTorch's CPU tuning guide cures
this by preloading jemalloc or tcmalloc; two ``mallopt`` settings get the same effect with no
dependency and no restart, at the cost of keeping the process's peak heap mapped.

It is process-wide, so xdream's own processes opt in (the ``xdream`` command, sweep workers,
the benchmarks); a script using the Python API calls :func:`retain_freed_memory` itself.
"""

from __future__ import annotations

import ctypes

_M_TRIM_THRESHOLD = -1  # glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_NEVER = 2**31 - 1  # mallopt takes an int; no allocation or free of ours comes near 2 GiB


def retain_freed_memory() -> bool:
    """Tell glibc's malloc to serve large blocks from the heap and never trim it, so freed
    buffers are reused without page faults. Returns True if both settings took; False where
    the C library is not glibc (macOS, musl), which is left as it is."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols, libc's among them
    except (OSError, AttributeError, TypeError):  # no mallopt (macOS), no dlopen(NULL) (Windows)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, _NEVER)) and bool(mallopt(_M_TRIM_THRESHOLD, _NEVER))
