"""Bit-identity of the evolution loop across a refactor (issue 24, "one loop").

Runs a fixed set of short jobs through the ``xdream`` command -- the ``make demo`` job, one
one-thread run per built-in optimiser, the session configs of ``experiments/sessions/``
(shortened; the rig session against a simulated rig) and a ``--units`` job -- into a folder,
and compares two such folders: every array of every generation file (``codes``, ``scores``,
reference and clean scores, at the top and under ``threads/NAME/``) and every log record's
scores must be equal, and the two folders must hold the same files.

    python experiments/one_loop_identity.py run  /tmp/ref      # with the old code
    python experiments/one_loop_identity.py run  /tmp/new      # with the new code
    python experiments/one_loop_identity.py compare /tmp/ref /tmp/new

Prints one line per run and a total; exits 1 when anything differs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
XDREAM = [sys.executable, "-m", "xdream.cli"]
SMALL = ["--generator", "fourier", "--target", "efficientnet_lite0:_blocks.4:3", "--population", "8",
         "--generations", "3", "--threads", "1", "--quiet"]
OPTIMIZERS = ("cholesky-cma", "cmaes", "csa-es", "genetic", "geometry-cma", "nevergrad", "random", "sphere-cma",
              "surrogate-tpa", "tpa-es")
SESSIONS = ROOT / "experiments" / "sessions"
SHORT_SESSION = ["--generations", "3", "--threads", "1", "--quiet", "--set", "optimizer.population=8"]


def jobs(out: Path) -> dict[str, list[str]]:
    """Run name -> the ``xdream evolve`` arguments (without the rig session)."""
    out_of = lambda name: ["--output", str(out / name)]  # noqa: E731
    runs = {"demo": ["evolve", "--generations", "3", "--threads", "1", "--quiet", *out_of("demo")]}
    for name in OPTIMIZERS:
        runs[f"opt-{name}"] = ["evolve", *SMALL, "--optimizer", name, *out_of(f"opt-{name}")]
    runs["opt-sphere-cma"] += ["--set", "optimizer.select=4"]  # its default (20) needs a larger population
    runs["budget-noise-reference"] = ["evolve", *SMALL[:6], "--budget", "20", "--threads", "1", "--quiet",
                                      "--noise", "gaussian", "--reference-per-generation", "2",
                                      *out_of("budget-noise-reference")]
    runs["session-generators"] = ["evolve", str(SESSIONS / "generators_same_neuron.toml"), *SHORT_SESSION,
                                  *out_of("session-generators")]
    runs["session-layer-units"] = ["evolve", str(SESSIONS / "layer_units.toml"), *SHORT_SESSION,
                                   "--set", "generator.name=fourier", *out_of("session-layer-units")]
    runs["units"] = ["evolve", "--target", "efficientnet_lite0:_blocks.4", "--units", "0:3", "--generator",
                     "fourier", "--population", "8", "--generations", "3", "--threads", "1", "--quiet",
                     *out_of("units")]
    return runs


def run_rig_session(out: Path) -> None:
    """``two_threads_rig.toml`` (shortened) against a seeded simulated rig on loopback."""
    with tempfile.TemporaryDirectory() as tmp:
        endpoint_file = Path(tmp) / "endpoint"
        rig = subprocess.Popen([*XDREAM, "rig", "simulate", "--target", "efficientnet_lite0:_blocks.4:3",
                                "--target", "efficientnet_lite0:_blocks.4:5", "--noise", "poisson", "--seed", "0",
                                "--endpoint", "tcp://127.0.0.1:*", "--endpoint-file", str(endpoint_file),
                                "--log", str(Path(tmp) / "rig.jsonl"), "--max-seconds", "600"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                if endpoint_file.is_file() and endpoint_file.read_text().strip():
                    break
                time.sleep(0.1)
            endpoint = endpoint_file.read_text().strip()
            subprocess.run([*XDREAM, "evolve", str(SESSIONS / "two_threads_rig.toml"), "--generations", "3",
                            "--threads", "1", "--quiet", "--set", f"responder.target={endpoint}",
                            "--output", str(out / "session-rig")], cwd=ROOT, check=True)
        finally:
            rig.terminate()
            rig.wait(timeout=30)


def run_all(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name, args in jobs(out).items():
        if (out / name / "summary.json").is_file():  # done by an earlier call
            continue
        started = time.perf_counter()
        subprocess.run([*XDREAM, *args], cwd=ROOT, check=True, env=env, stdout=subprocess.DEVNULL)
        print(f"{name}: {time.perf_counter() - started:.1f} s", flush=True)
    if not (out / "session-rig" / "summary.json").is_file():
        run_rig_session(out)
        print("session-rig: done", flush=True)


def _files(run: Path) -> set[str]:
    """The run's files that the loop decides (not its lock, not the time-stamped ones)."""
    return {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file() and p.name != ".lock"}


def _log_scores(path: Path) -> list:
    """Each log record without its timings (the only field that depends on the clock)."""
    return [{k: v for k, v in json.loads(line).items() if k != "timings"}
            for line in path.read_text().splitlines() if line.strip()]


def compare_run(ref: Path, new: Path) -> tuple[int, int, list[str]]:
    """(generation files, arrays) compared, and the differences found."""
    problems, files, arrays = [], 0, 0
    missing = _files(ref) ^ _files(new)
    if missing:
        problems.append(f"files differ: {sorted(missing)[:6]}")
    for npz in sorted(ref.rglob("gen_*.npz")):
        other = new / npz.relative_to(ref)
        if not other.is_file():
            continue
        files += 1
        with np.load(npz) as a, np.load(other) as b:
            if sorted(a.files) != sorted(b.files):
                problems.append(f"{npz.relative_to(ref)}: arrays {a.files} vs {b.files}")
            for key in a.files:
                arrays += 1
                if key in b.files and not np.array_equal(a[key], b[key], equal_nan=True):
                    problems.append(f"{npz.relative_to(ref)}:{key} differs")
    for log in sorted(ref.rglob("log.jsonl")):
        other = new / log.relative_to(ref)
        if other.is_file() and _log_scores(log) != _log_scores(other):
            problems.append(f"{log.relative_to(ref)}: log records differ")
    return files, arrays, problems


def compare_all(ref: Path, new: Path) -> int:
    runs = sorted(p.name for p in ref.iterdir() if p.is_dir())
    total_files = total_arrays = bad = 0
    for name in runs:
        files, arrays, problems = compare_run(ref / name, new / name)
        total_files, total_arrays = total_files + files, total_arrays + arrays
        bad += bool(problems)
        print(f"{name}: {files} generation files, {arrays} arrays: " + ("; ".join(problems) if problems else "equal"))
    print(f"{len(runs)} runs, {total_files} generation files, {total_arrays} arrays: "
          + (f"{bad} runs differ" if bad else "all equal"))
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "run":
        run_all(Path(argv[1]))
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        return compare_all(Path(argv[1]), Path(argv[2]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
