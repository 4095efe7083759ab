"""Run a sweep: every grid point is an ordinary, resumable run in ``SWEEP_DIR/runs/NAME``.

Runs execute on Ray (a local instance by default, ``address`` for an existing cluster, whose
nodes need xdream installed and the sweep directory on a shared filesystem) or, when Ray is
not installed or ``backend="process"``, on a local process pool. A sweep restarted after a
crash skips the runs that finished (their ``summary.json`` says so) and resumes the others
from their last checkpoint. ``SWEEP_DIR/sweep.json`` holds the expanded plan: a restart whose
grid only adds runs (another optimiser, more seeds) extends the sweep and keeps its finished
runs; one that changes or drops a run is refused. ``results.jsonl`` holds one record per run
when all are done (a grid point that is a session of several threads: one record per thread,
with ``thread``).

Every run holds its run directory's lock (:mod:`xdream.runs.lock`) while it writes, so a
straggling worker of a killed sweep and a rerun never write the same run: the second gets a
one-line error and the run is reported failed (rerun to retry it). Process-pool workers ask
Linux to kill them when their driver dies (``PR_SET_PDEATHSIG``), so ``kill -9`` of the
driver leaves no worker behind; Ray ends a dead driver's tasks itself.

**GPUs.** When the runs' ``device`` is CUDA, a Ray task asks for ``gpu_per_run`` of a GPU
(default 1: one run per card; 0.25 packs four runs on each) and Ray sets each task's
``CUDA_VISIBLE_DEVICES``; the process pool starts one worker per visible GPU (``--workers N``:
N workers, given the GPUs in turn), each worker seeing only its own card through
``CUDA_VISIBLE_DEVICES``, so no two workers open contexts and model copies on the same card
unasked. Runs on CUDA name ``device = "cuda"`` (each worker's card is its ``cuda:0``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
from pathlib import Path

from xdream.core.errors import ConfigError, RunDirError, choices_text
from xdream.core.threads import fair_share, quiet_thread_pools, worker_threads_env
from xdream.runs.rundir import CONFIG, SUMMARY, RunDir, atomic_write
from xdream.sweep.grid import RunSpec, load_sweep

BACKENDS = ("auto", "ray", "process")
PLAN, RESULTS = "sweep.json", "results.jsonl"
SUMMARY_KEYS = ("generations", "evaluations", "final_best", "initial_best")  # a run's or thread's, in its record


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    """Set environment variables for the processes started inside the block, then restore."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def is_complete(path: Path) -> bool:
    """A run that reached its end (not stopped early)."""
    try:
        return json.loads((path / SUMMARY).read_text())["stopped_early"] is False
    except (OSError, ValueError, KeyError):
        return False


def run_record(path: Path) -> dict:
    """A finished run's summary plus ``clean_best``: the best noise-free score of any image
    it evaluated (the benchmark's score; equals ``final_best`` without noise; None when no image
    got a response). A session's
    record holds one record per thread in ``threads`` (their best is its ``clean_best``)."""
    summary = json.loads((path / SUMMARY).read_text())
    if "threads" in summary:
        threads = [{"thread": t["name"], **{k: t[k] for k in SUMMARY_KEYS},
                    "clean_best": t["clean_best"] if t["clean_best"] is not None else t["final_best"]}
                   for t in summary["threads"]]
        bests = [t["clean_best"] for t in threads if t["clean_best"] is not None]
        return {"generations": summary["generations"], "evaluations": summary["evaluations"],
                "clean_best": max(bests) if bests else None, "threads": threads}
    log = RunDir(path).read_log()
    key = "clean_best" if any("clean_best" in r for r in log) else "best"
    values = [r[key] for r in log if r.get(key) is not None]
    seconds = sum(sum(r.get("timings", {}).values()) for r in log)
    return {**{k: summary[k] for k in SUMMARY_KEYS},
            "clean_best": max(values) if values else None, "seconds": seconds}


def best_text(record: dict) -> str:
    """A record's best for the progress line: one number, or a session's best per thread (``a=1.23 b=4.5``: its
    threads score different units, whose scales do not compare, so never their max)."""
    if "threads" in record:
        return " ".join(f"{t['thread']}={'n/a' if t['clean_best'] is None else format(t['clean_best'], '.4g')}"
                        for t in record["threads"])
    return "n/a (no image got a response)" if record["clean_best"] is None else f"{record['clean_best']:.4g}"


def result_lines(name: str, labels: dict, record: dict) -> list[str]:
    """``results.jsonl`` lines of one run: one, or one per thread of a session."""
    if "threads" in record:
        return [json.dumps({"name": name, **labels, **t}) for t in record["threads"]]
    return [json.dumps({"name": name, **labels, **record})]


def run_one(path: str, config: dict, threads: int) -> dict:
    """Run (or resume, or skip if complete) one grid point with ``threads`` torch threads
    (unless its config sets them); returns its record. Top-level so Ray and process pools can
    ship it to workers."""
    quiet_thread_pools()  # a fresh Ray worker has not loaded torch yet (xdream.core.threads)
    from xdream.core.allocator import retain_freed_memory
    from xdream.config import ExperimentConfig
    from xdream.evolve.experiment import Experiment

    config = {"threads": threads, **config}
    retain_freed_memory()
    run_dir = Path(path)
    if not is_complete(run_dir):
        if (run_dir / CONFIG).is_file():
            experiment = Experiment.resume(run_dir)
        else:
            # (a folder left by a kill while it was being created is taken over by RunDir.create)
            experiment = Experiment(ExperimentConfig.from_dict(config), run_dir=run_dir)
        try:
            experiment.run(progress=False)
        finally:
            experiment.close()
    return run_record(run_dir)


def prepare(sweep_file, output: str | None, check=None, ready=None) -> tuple[Path, list[RunSpec]]:
    """Validate the sweep (and ``check(runs)``, before anything is written) and create (or
    re-open) its directory with the plan; ``ready(sweep_dir, runs)`` is called after every check
    of the directory, just before anything is written (an error it raises leaves the directory as it was)."""
    file_output, runs = load_sweep(sweep_file)
    if check is not None:
        check(runs)
    out = output or file_output
    if not out:
        raise ConfigError(f"sweep {sweep_file} has no output directory; set output = \"DIR\" or pass --output")
    sweep_dir = Path(out)
    plan = json.dumps({"runs": [{"name": r.name, "labels": r.labels, "config": r.config} for r in runs]},
                      indent=1, sort_keys=True)
    recorded = (sweep_dir / PLAN).read_text() if (sweep_dir / PLAN).is_file() else None
    if recorded is not None:
        if recorded != plan and not _grows(json.loads(recorded)["runs"], json.loads(plan)["runs"]):
            if _names_without_model(json.loads(recorded)["runs"]):
                raise RunDirError(f"{sweep_dir} holds a sweep planned by an earlier xdream, whose run names leave "
                                  "out the target's model; run this grid into another --output")
            raise RunDirError(f"{sweep_dir} holds a different sweep ({PLAN} differs: a run was changed or "
                              "removed; new grid values only add runs); choose another --output")
    elif sweep_dir.exists() and not sweep_dir.is_dir():
        raise RunDirError(f"output {sweep_dir} is a file, not a sweep directory; choose another")
    elif sweep_dir.exists() and any(sweep_dir.iterdir()):
        raise RunDirError(f"output directory {sweep_dir} already exists and is not a sweep; choose another")
    if ready is not None:
        ready(sweep_dir, runs)
    if recorded is not None:
        if recorded != plan:
            atomic_write(sweep_dir / PLAN, plan.encode())
            (sweep_dir / RESULTS).unlink(missing_ok=True)  # it lists the smaller sweep; rewritten when all are done
    else:  # the plan first: a sweep folder that failed to get one (a full disk) is as empty as before
        try:
            sweep_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunDirError(f"cannot create sweep directory {sweep_dir}: {e.strerror}") from None
        atomic_write(sweep_dir / PLAN, plan.encode())
        try:
            (sweep_dir / "runs").mkdir(exist_ok=True)
        except OSError as e:
            raise RunDirError(f"cannot create sweep directory {sweep_dir / 'runs'}: {e.strerror}") from None
    return sweep_dir, runs


def _grows(recorded: list[dict], planned: list[dict]) -> bool:
    """Whether ``planned`` keeps every recorded run unchanged (name, labels, config) and only
    adds runs: new values on a grid axis (another optimiser, more seeds) extend a sweep, and its
    finished runs count; a changed or removed run would mix two sweeps in one directory."""
    planned_by_name = {entry["name"]: entry for entry in planned}
    return all(entry["name"] in planned_by_name and _same_run(entry, planned_by_name[entry["name"]])
               for entry in recorded)


def _same_run(recorded: dict, planned: dict) -> bool:
    """One run in two plans; labels compare as text, since an earlier xdream recorded grid values
    as text (``"seed": "0"``), so its sweeps go on under this one."""
    text = lambda labels: {k: str(v) for k, v in labels.items()}  # noqa: E731
    return recorded["config"] == planned["config"] and text(recorded["labels"]) == text(planned["labels"])


def _names_without_model(recorded: list[dict]) -> bool:
    """Whether a recorded plan names its target runs by layer and channel alone (before issue 25)."""
    return any("target" in entry["labels"] and entry["labels"]["target"] != entry["config"].get("responder", {}).get(
        "target") for entry in recorded)


def uses_cuda(runs: list[RunSpec]) -> bool:
    """Whether any run of the sweep runs on a CUDA device."""
    return any(str(r.config.get("device", "cpu")).startswith("cuda") for r in runs)


def task_resources(cuda: bool, gpu_per_run: float | None) -> dict:
    """What one Ray task asks for: one CPU, and ``gpu_per_run`` of a GPU (default 1) on CUDA."""
    if gpu_per_run is not None and not (isinstance(gpu_per_run, (int, float)) and 0 < gpu_per_run <= 1):
        raise ConfigError(f"gpu_per_run must be a fraction of one GPU in (0, 1], got {gpu_per_run!r}")
    if gpu_per_run is not None and not cuda:
        raise ConfigError(f"gpu_per_run {gpu_per_run} needs runs on a CUDA device (device = \"cuda\" in the "
                          "sweep's [base]); these runs use none")
    return {"num_cpus": 1, "num_gpus": (gpu_per_run or 1.0) if cuda else 0}


def visible_gpus(environ=None) -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` entries: that variable's list
    when set, else every device torch counts."""
    environ = os.environ if environ is None else environ
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and not d.strip().startswith("-")]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def run_sweep(sweep_file, *, output=None, backend="auto", address=None, workers=None, log=print,
              gpu_per_run: float | None = None) -> dict:
    """Run every incomplete grid point; returns counts and failures. ``log`` gets progress lines.
    Runs on CUDA: Ray tasks ask for ``gpu_per_run`` of a GPU; pool workers get one GPU each (a
    ``gpu_per_run`` there is refused)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown sweep backend {backend!r}; valid: {choices_text(BACKENDS)}")
    if workers is not None and workers < 1:
        raise ConfigError(f"sweep workers must be >= 1, got {workers}")
    has_ray = importlib.util.find_spec("ray") is not None
    if backend == "auto":
        backend = "ray" if has_ray or address else "process"
    if backend == "ray" and not has_ray:
        raise ConfigError("backend 'ray' needs Ray: pip install 'xdream[ray]' (or use --backend process)")
    if address and backend != "ray":
        raise ConfigError(f"--address {address} needs the ray backend, got {backend!r}")
    placement = {}

    def check_gpus(runs):
        cuda = uses_cuda(runs)
        placement["resources"] = task_resources(cuda, gpu_per_run)
        if gpu_per_run is not None and backend != "ray":  # a pool worker has a whole card
            raise ConfigError(f"gpu_per_run (--gpu-per-run) {gpu_per_run:g} is a Ray task's share of a GPU; the "
                              f"{backend} backend gives each worker one whole GPU: use the ray backend, or drop it")
        placement["gpus"] = visible_gpus() if cuda and backend == "process" else None
        if placement["gpus"] == []:
            raise ConfigError("the sweep's runs use device cuda but no GPU is visible here (CUDA_VISIBLE_DEVICES, "
                              "torch.cuda.device_count()); use device = \"cpu\"")

    def start(sweep_dir, runs):
        # after every check, before the plan is written: Ray starts (and its GPUs are checked) only for
        # a sweep with runs to do, and a cluster without the GPUs they need leaves the folder as it was
        placement["done"] = {r.name for r in runs if is_complete(sweep_dir / "runs" / r.name)}
        if backend == "ray" and len(placement["done"]) < len(runs):
            _start_ray(workers or os.cpu_count() or 1, address, placement["resources"])
            placement["ray"] = True

    try:
        sweep_dir, runs = prepare(sweep_file, output, check=check_gpus, ready=start)
    except BaseException:
        if placement.get("ray"):
            import ray

            ray.shutdown()
        raise
    resources, gpus = placement["resources"], placement["gpus"]
    workers = workers or (len(gpus) if gpus else os.cpu_count() or 1)
    threads = fair_share(workers)
    done = placement["done"]
    pending = [r for r in runs if r.name not in done]
    log(f"sweep {sweep_dir}: {len(runs)} runs, {len(done)} complete (skipped), {len(pending)} to run "
        f"on {backend} with {workers} workers")
    jobs = [(str(sweep_dir / "runs" / r.name), r.config, threads) for r in pending]
    failures = {}
    if not jobs:  # nothing to run: no Ray instance or pool is started
        outcomes = []
    elif backend == "ray":
        outcomes = _run_ray(jobs, resources)
    else:
        outcomes = _run_pool(jobs, workers, worker_threads_env(threads), gpus)
    for k, (name, outcome) in enumerate(outcomes, start=1):
        if isinstance(outcome, BaseException):
            failures[name] = f"{type(outcome).__name__}: {outcome}"
            log(f"[{k}/{len(jobs)}] {name}: FAILED {failures[name]}")
        else:
            log(f"[{k}/{len(jobs)}] {name}: best {best_text(outcome)}")
    if not failures:
        lines = [line for r in runs for line in result_lines(r.name, r.labels, run_record(sweep_dir / "runs" / r.name))]
        atomic_write(sweep_dir / RESULTS, ("\n".join(lines) + "\n").encode())
    return {"sweep_dir": sweep_dir, "runs": len(runs), "skipped": len(done), "ran": len(jobs) - len(failures),
            "failures": failures}


def start_worker(parent: int, gpus=None) -> None:
    """Process-pool worker initialiser: SIGKILL this worker when the process that started it
    dies (Linux ``prctl(PR_SET_PDEATHSIG)``; elsewhere a no-op), and exit at once if it died
    already (a killed worker's run resumes from its last checkpoint); with ``gpus`` (a queue of
    ``CUDA_VISIBLE_DEVICES`` values, one per worker) take this worker's own GPU, set before
    anything in it starts CUDA."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the driver died before the request took effect
        os._exit(1)
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus.get(timeout=60)


def _run_pool(jobs, workers, env, gpus=None, task=None):
    """Local process pool (spawned workers: no forked torch state); with ``gpus``, worker k sees
    only ``gpus[k % len(gpus)]``. ``task`` (default :func:`run_one`) runs each job."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with contextlib.ExitStack() as stack:
        queue = None
        if gpus:
            queue = stack.enter_context(context.Manager()).Queue()
            for k in range(workers):
                queue.put(gpus[k % len(gpus)])
        stack.enter_context(_environment(env))
        pool = stack.enter_context(ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                                       initializer=start_worker, initargs=(os.getpid(), queue)))
        futures = {pool.submit(task or run_one, *job): Path(job[0]).name for job in jobs}
        for future in as_completed(futures):
            exc = future.exception()
            yield futures[future], exc if exc is not None else future.result()


def _start_ray(workers, address, resources):
    """Start a local Ray instance with ``workers`` CPUs, or join the cluster at ``address``; one
    whose runs need a GPU (``resources['num_gpus']``) and that has none is shut down again and refused."""
    import ray

    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                 object_store_memory=200 * 1024**2)
    if resources["num_gpus"] and not ray.cluster_resources().get("GPU"):
        ray.shutdown()
        raise ConfigError("the sweep's runs use device cuda but the Ray cluster has no GPU; use device = \"cpu\"")


def _run_ray(jobs, resources):
    """Ray tasks on the instance :func:`_start_ray` started (shut down when they are done), one CPU
    each (and ``resources['num_gpus']`` of a GPU on CUDA, Ray setting each task's
    CUDA_VISIBLE_DEVICES). (Ray sets a task's OMP_NUM_THREADS to its CPUs itself, so it gets no thread variables.)"""
    import ray

    try:
        task = ray.remote(**resources, max_retries=0)(run_one)
        refs = {task.remote(*job): Path(job[0]).name for job in jobs}
        while refs:
            (ref,), _ = ray.wait(list(refs), num_returns=1)
            name = refs.pop(ref)
            try:
                yield name, ray.get(ref)
            except Exception as e:  # a failed run: reported (the run's own error, not Ray's wrapper), the others go on
                cause = getattr(e, "cause", None)
                yield name, cause if isinstance(cause, BaseException) else e
    finally:
        ray.shutdown()
