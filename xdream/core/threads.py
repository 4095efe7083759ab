"""Thread pools that take a fair share of a busy machine and sleep when they have no work.

On a loaded machine (a rig PC also runs the acquisition software; a sweep runs several jobs)
torch's default of one OpenMP thread per core, each spinning while it waits for the next
parallel region, makes the threads of every process fight for the cores: the default job ran
about 30x slower beside two busy processes on 2 cores instead of the ~3x a fair share costs.
Three remedies, the first two measured by ``experiments/bench_loop.py`` part (e):

- ``OMP_WAIT_POLICY=PASSIVE`` (OpenMP 4.5 spec, section 4.8; libgomp and Intel's runtime honour
  it): an idle pool thread sleeps at once instead of spinning. It is read when the OpenMP
  runtime loads, i.e. when torch is imported, so :func:`quiet_thread_pools` must run before
  that; xdream's own processes do it (the ``xdream`` command, sweep workers, the benchmarks),
  a script using the Python API sets the variable itself or calls it first.
- One intra-op thread per core, shared among the processes of a sweep (:func:`fair_share`).
  The count is a config value (``threads``), recorded in
  the run's ``config.toml`` so a resumed run reuses it: 1 and 2 threads sum floats in different
  orders, so the count is part of what makes a run bit-identical.
- One thread for numpy's BLAS (:func:`quiet_numpy_blas`), whose products are small.
"""

from __future__ import annotations

import os

WAIT_POLICY = {"OMP_WAIT_POLICY": "PASSIVE"}
# Pool sizes the BLAS/OpenMP runtimes read once, at load: set for processes started later.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def quiet_thread_pools() -> None:
    """Make OpenMP pool threads sleep when idle, unless the user chose a wait policy. Effective
    only before torch (its OpenMP runtime) is imported in this process."""
    for key, value in WAIT_POLICY.items():
        os.environ.setdefault(key, value)


def worker_threads_env(threads: int) -> dict[str, str]:
    """The variables a worker process gets (values the user set win): ``threads`` per pool and
    the passive wait policy, so parallel workers do not oversubscribe the cores."""
    env = {var: os.environ.get(var, str(threads)) for var in THREAD_VARS}
    return {**env, **{k: os.environ.get(k, v) for k, v in WAIT_POLICY.items()}}


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def fair_share(processes: int = 1, *, cores: int | None = None) -> int:
    """Intra-op threads for each of ``processes`` of ours: the usable cores shared among them, at
    least one. With passive pools this *is* the fair share on a loaded machine: the kernel gives
    every runnable thread an equal slice, so a job of one thread per core gets about as much as
    each of its neighbours, and its idle threads sleep instead of taking slices from them
    (fewer threads would only shrink its share: measured by ``bench_loop.py`` part (e))."""
    cores = usable_cores() if cores is None else cores
    return max(1, cores // max(1, processes))


def default_threads() -> int:
    """A run's threads when its config does not set them: the user's ``OMP_NUM_THREADS`` if it
    is a count, else :func:`fair_share`."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) >= 1 else fair_share()


def use_threads(threads: int) -> None:
    """Set torch's intra-op pool (which sizes MKL's too) to ``threads`` and its inter-op pool to
    one thread (xdream runs no concurrent torch ops); the inter-op size can only be set before
    torch first uses that pool, so later calls leave it. numpy's BLAS gets one thread
    (:func:`quiet_numpy_blas`)."""
    import torch

    torch.set_num_threads(threads)
    quiet_numpy_blas()
    if torch.get_num_interop_threads() != 1:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already started, or set before in this process
            pass


def quiet_numpy_blas() -> None:
    """One thread for numpy's BLAS (OpenBLAS in numpy's wheels), through threadpoolctl. numpy
    serves the optimisers' small products (at most population x d = 40 x 4096), where a second
    thread gains little when the machine is idle and loses much when it is busy: OpenBLAS's
    threads spin, then wait for a time slice, at every call. Measured beside 2 busy processes
    on 2 cores, a [40, 256] x [256, 4096] product: median 10.9 ms with 2 threads, 5.9 ms with
    1. It also keeps a run's values independent of the machine's core count: OpenBLAS's
    threaded products (and eigendecompositions, as full CMA-ES does) sum in another order."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
