"""Resuming runs on real files: one writer at a time, verified resumes that never lose a
finished generation, umask-honouring modes, one-line errors for damage and full disks."""

import contextlib
import json
import os
import re
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from xdream import Experiment, ExperimentConfig
from xdream.core.errors import ConfigError, RunDirError
from xdream.runs.rundir import RunDir, atomic_write

from test_experiment import assert_same_run, run_job  # same folder (pytest puts it on sys.path)


def stopped_run(job, path, generations):
    """A run stopped cleanly after ``generations`` generations."""
    calls = iter(range(1000))
    run_job(job, path, should_stop=lambda: next(calls) >= generations)


def same_threads_env():
    """A subprocess environment with this process's torch thread count (float reductions, and
    so the scores, depend on it)."""
    import torch

    return {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}


def resume_cli(xdream_main, path, *extra):
    """``xdream evolve --resume PATH --quiet EXTRA``, in this process (the ``xdream_main`` fixture)."""
    return xdream_main("evolve", "--resume", path, "--quiet", *extra)


def one_error_line(result):
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("xdream: error: "), result.stderr
    return lines[0]


def tree(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file() and p.name != ".lock"}



def test_two_simultaneous_resumes_one_runs_the_other_exits_2(tmp_path, fast_job, xdream_cmd, xdream_main):
    """Resume A holds the lock (frozen with SIGSTOP so the overlap is certain); resume B exits 2
    with one line naming A; A then finishes and equals an uninterrupted run."""
    fast_job["generations"] = 12
    run_job(fast_job, tmp_path / "whole")
    split = tmp_path / "split"
    stopped_run(fast_job, split, 2)
    env = same_threads_env()
    a = subprocess.Popen([*xdream_cmd, "evolve", "--resume", str(split), "--quiet"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and a.poll() is None:
        try:
            if json.loads((split / ".lock").read_text())["pid"] == a.pid:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.01)
    a.send_signal(signal.SIGSTOP)
    try:
        line = one_error_line(resume_cli(xdream_main, split))
        assert f"being written by pid {a.pid}" in line
    finally:
        a.send_signal(signal.SIGCONT)
    a.communicate(timeout=300)
    assert a.returncode == 0
    assert_same_run(tmp_path / "whole", split, 12)


def test_a_live_experiment_holds_its_run(tmp_path, fast_job):
    experiment = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=tmp_path / "run")
    with pytest.raises(RunDirError, match="being written by"):
        Experiment.resume(tmp_path / "run")
    experiment.run(progress=False)  # releases the lock at its end
    Experiment.resume(tmp_path / "run").close()


# -- resume verifies what it continues from ---------------------------------------------------------
def test_missing_checkpoint_refuses_and_keeps_every_generation(tmp_path, fast_job, xdream_main):
    run_job(fast_job, tmp_path / "run")
    run = tmp_path / "run"
    (run / "checkpoint.pkl").unlink()
    before = tree(run)
    line = one_error_line(resume_cli(xdream_main, run))
    assert "no checkpoint" in line and "--restart" in line
    assert tree(run) == before and len(list((run / "generations").glob("*.npz"))) == 6


def test_restart_moves_the_old_generations_aside(tmp_path, fast_job):
    run_job(fast_job, tmp_path / "whole")
    run = tmp_path / "run"
    stopped_run(fast_job, run, 3)
    (run / "checkpoint.pkl").unlink()
    old = tree(run)
    experiment = Experiment.resume(run, restart=True)
    experiment.run(progress=False)
    (aside,) = run.glob("discarded-*")
    assert tree(aside) == {p: b for p, b in old.items() if p.name not in ("config.toml", "run.json")}
    assert_same_run(tmp_path / "whole", run, 6)


@pytest.mark.parametrize("damage, named", [
    (lambda run: (run / "generations" / "gen_0001.npz").unlink(), "gen_0001.npz is missing"),
    (lambda run: (run / "generations" / "gen_0002.npz").write_bytes(
        (run / "generations" / "gen_0002.npz").read_bytes()[:-10]), "gen_0002.npz is damaged"),
    (lambda run: (run / "log.jsonl").unlink(), "log.jsonl is missing"),
    (lambda run: _edit_line(run, 1, b"not json"), "line 2 (generation 1) is damaged"),
    (lambda run: _edit_line(run, 1, b"{}"), "line 2 (generation 1) is damaged"),
    (lambda run: _edit_line(run, 0, bytes(range(256))), "line 1 (generation 0) is damaged"),
    (lambda run: _flip_byte(run / "checkpoint.pkl", -100), "checkpoint.pkl is damaged"),
])
def test_damage_is_one_line_naming_it_and_nothing_changes(tmp_path, fast_job, xdream_main, damage, named):
    run = tmp_path / "run"
    stopped_run(fast_job, run, 4)
    damage(run)
    before = tree(run)
    assert named in one_error_line(resume_cli(xdream_main, run))
    assert tree(run) == before


def _edit_line(run, index, text):
    lines = (run / "log.jsonl").read_bytes().split(b"\n")
    lines[index] = text
    (run / "log.jsonl").write_bytes(b"\n".join(lines))


def _flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_repair_rebuilds_the_log_from_the_checkpoint(tmp_path, fast_job):
    run_job(fast_job, tmp_path / "whole")
    run = tmp_path / "run"
    stopped_run(fast_job, run, 4)
    _edit_line(run, 1, b"not json")
    experiment = Experiment.resume(run, repair=True)
    experiment.run(progress=False)
    assert_same_run(tmp_path / "whole", run, 6)


def test_repair_never_rewrites_the_log_of_files_it_cannot_vouch_for(tmp_path, fast_job, xdream_main):
    """--repair with another run's checkpoint (same seed, other thread count: its log and files
    differ): refused with one line naming a generation file, and the log is not rebuilt first."""
    run, other = tmp_path / "run", tmp_path / "other"
    with torch_threads_restored():
        stopped_run({**fast_job, "threads": 1}, run, 3)
        stopped_run({**fast_job, "threads": 2}, other, 3)
    (run / "checkpoint.pkl").write_bytes((other / "checkpoint.pkl").read_bytes())
    before = tree(run)
    line = one_error_line(resume_cli(xdream_main, run, "--allow-changed", "threads", "--repair"))
    assert "gen_0000.npz is damaged" in line
    assert tree(run) == before


def test_a_bad_log_line_is_named_never_silently_dropped(tmp_path, fast_job):
    run_job(fast_job, tmp_path / "run")
    _edit_line(tmp_path / "run", 2, b"garbage")
    with pytest.raises(RunDirError, match="line 3 is not a generation record"):
        RunDir(tmp_path / "run").read_log()


@pytest.mark.parametrize("key, value", [("optimizer.mutation_rate", 0.9), ("seed", 4), ("optimizer.name", "cmaes")])
def test_resume_refuses_a_changed_config(tmp_path, fast_job, xdream_main, key, value):
    run = tmp_path / "run"
    stopped_run(fast_job, run, 2)
    text = (run / "config.toml").read_text()
    table, _, name = key.rpartition(".")
    old = fast_job.get(table, fast_job).get(name, 0.5 if name == "mutation_rate" else None)
    if name == "mutation_rate":
        text = text.replace("[optimizer]\n", f"[optimizer]\nmutation_rate = {value}\n")
    else:
        text = text.replace(f"{name} = {json.dumps(old)}", f"{name} = {json.dumps(value)}")
    (run / "config.toml").write_text(text)
    before = tree(run)
    line = one_error_line(resume_cli(xdream_main, run))
    assert f"changed since the checkpoint: {key}" in line
    assert tree(run) == before


def test_allow_changed_extends_a_run_and_refuses_a_seed(tmp_path, fast_job, xdream_main):
    run = tmp_path / "run"
    run_job(fast_job, run)
    text = (run / "config.toml").read_text()
    (run / "config.toml").write_text(text.replace("generations = 6", "generations = 8"))
    assert "--allow-changed generations" in one_error_line(resume_cli(xdream_main, run))
    assert not (run / "generations" / "gen_0006.npz").exists()
    result = resume_cli(xdream_main, run, "--allow-changed", "generations")
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "summary.json").read_text())["generations"] == 8
    assert "seed cannot change" in one_error_line(resume_cli(xdream_main, run, "--allow-changed", "seed"))


@contextlib.contextmanager
def torch_threads_restored():
    """A run's ``threads`` sets torch's thread count process-wide: put this process's back after."""
    import torch

    before = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(before)


def scores(run):
    return [json.loads(line)["scores"] for line in (run / "log.jsonl").read_text().splitlines()]


def test_cli_resume_uses_the_recorded_thread_count(tmp_path, fast_job, xdream_cmd):
    """A run at 1 thread, resumed by the command where the environment asks for 2, continues at 1:
    bit-identical to the uninterrupted run (the same job at 2 threads scores differently)."""
    job = {**fast_job, "threads": 1}
    with torch_threads_restored():
        run_job(job, tmp_path / "whole")
        stopped_run(job, tmp_path / "split", 2)
        run_job({**job, "threads": 2}, tmp_path / "two")
    assert scores(tmp_path / "two") != scores(tmp_path / "whole")  # the count matters for this job
    result = subprocess.run([*xdream_cmd, "evolve", "--resume", str(tmp_path / "split"), "--quiet"],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert result.returncode == 0, result.stderr
    assert_same_run(tmp_path / "whole", tmp_path / "split", 6)
    assert json.loads((tmp_path / "split" / "summary.json").read_text())["config"]["threads"] == 1


def test_resume_refuses_a_changed_thread_count_unless_allowed(tmp_path, fast_job, xdream_main):
    """``threads`` edited in config.toml (the count the checkpoint records differs): one line
    naming it, nothing changed; ``--allow-changed threads`` continues at the new count."""
    run = tmp_path / "run"
    with torch_threads_restored():
        stopped_run({**fast_job, "threads": 1}, run, 2)
    text = (run / "config.toml").read_text()
    assert "threads = 1\n" in text
    (run / "config.toml").write_text(text.replace("threads = 1\n", "threads = 2\n"))
    snapshot = tree(run)
    line = one_error_line(resume_cli(xdream_main, run))
    assert "changed since the checkpoint: threads 1 -> 2" in line and line.endswith("--allow-changed threads")
    assert tree(run) == snapshot
    result = resume_cli(xdream_main, run, "--allow-changed", "threads")
    assert result.returncode == 0, result.stderr
    assert json.loads((run / "summary.json").read_text())["config"]["threads"] == 2
    assert RunDir(run).load_checkpoint()["config"]["threads"] == 2  # the next resume checks against 2


def test_resume_cleans_temp_files_of_killed_writes(tmp_path, fast_job):
    run = tmp_path / "run"
    stopped_run(fast_job, run, 2)
    for leftover in (run / ".checkpoint.pkl.abc.tmp", run / "generations" / ".gen_0002.npz.x.tmp"):
        leftover.write_bytes(b"x" * 1000)
    Experiment.resume(run).close()
    assert not list(run.rglob("*.tmp"))


def test_completion_mark_is_written_after_the_plot(tmp_path, fast_job):
    run_job(fast_job, tmp_path / "run")
    assert (tmp_path / "run" / "summary.json").stat().st_mtime_ns >= (tmp_path / "run" / "trajectory.png").stat().st_mtime_ns


def test_resume_removes_a_stale_summary(tmp_path, fast_job):
    run = tmp_path / "run"
    stopped_run(fast_job, run, 2)
    assert json.loads((run / "summary.json").read_text())["status"] == "stopped"
    experiment = Experiment.resume(run)
    assert not (run / "summary.json").exists()  # the run is live again: readers see it running
    experiment.close()


# -- filesystem errors and modes ---------------------------------------------------------------------
NOBODY = 65534
BIND_READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && exec "$@"'


def read_only_unavailable(mechanism: str, scratch) -> str | None:
    """Why ``mechanism`` cannot make a folder unwritable here (None: it can), found by trying it.

    - ``permissions``: ``chmod 555``; root ignores it, so only for other users;
    - ``bind-mount``: a read-only bind mount in a private mount namespace (``unshare -m``; the
      host's mounts are untouched); needs root (CAP_SYS_ADMIN), which a container may withhold;
    - ``unprivileged-user``: the writer runs as ``nobody`` (``setpriv``) on a folder owned by root.
    """
    if mechanism == "permissions":
        return "running as root, which ignores directory permissions" if os.geteuid() == 0 else None
    if os.geteuid() != 0:
        return f"{mechanism} needs root (this test runs as uid {os.geteuid()})"
    scratch.mkdir()
    probe = [*read_only_command(mechanism, scratch), "sh", "-c", 'touch "$0"/probe', str(scratch)]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, env=read_only_env(mechanism, scratch.parent))
    except OSError as e:
        return f"{probe[0]}: {e.strerror}"
    if (scratch / "probe").exists():
        return f"{mechanism} did not stop a write"
    if "Read-only file system" not in result.stderr and "Permission denied" not in result.stderr:
        return f"{mechanism} does not work here: {result.stderr.strip().splitlines()[-1:]}"
    return None


def read_only_command(mechanism: str, folder) -> list[str]:
    """The prefix that runs a command with ``folder`` unwritable."""
    return {"permissions": [],
            "bind-mount": ["unshare", "-m", "sh", "-c", BIND_READ_ONLY, str(folder)],
            "unprivileged-user": ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]}[mechanism]


def read_only_env(mechanism: str, base):
    """``nobody`` cannot read root's home: give it its own (matplotlib writes its cache there)."""
    if mechanism != "unprivileged-user":
        return same_threads_env()
    home = base / "home"
    home.mkdir(exist_ok=True)
    os.chown(home, NOBODY, NOBODY)
    return {**same_threads_env(), "HOME": str(home), "MPLCONFIGDIR": str(home)}


def make_unwritable(mechanism: str, run, folder) -> list:
    """Set the files up so ``folder`` (in ``run``) is unwritable to the writer and the rest of
    the run writable, as for a user whose folder is ``chmod 555``; returns what to undo."""
    if mechanism == "permissions":
        os.chmod(folder, 0o555)
        return [lambda: os.chmod(folder, 0o755)]
    if mechanism == "bind-mount":
        return []
    for p in (run, *run.rglob("*")):
        os.chown(p, NOBODY, NOBODY)
    os.chown(folder, 0, 0)  # nobody may not create or remove entries in it
    return [lambda: [os.chown(p, 0, 0) for p in (run, *run.rglob("*"))]]


@pytest.fixture
def base(tmp_path, mechanism):
    """The test's folder: ``tmp_path``, or for ``nobody`` a fresh folder under the system temp
    folder (pytest keeps its own base folders 0700, and other pytest processes reset them)."""
    if mechanism != "unprivileged-user":
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="xdream-read-only-") as folder:
        os.chmod(folder, 0o755)
        yield Path(folder)


@pytest.mark.parametrize("where", [".", "generations"])
@pytest.mark.parametrize("mechanism", ["permissions", "bind-mount", "unprivileged-user"])
def test_read_only_folder_is_one_line_naming_the_path_and_nothing_is_lost(base, fast_job, xdream_cmd, xdream_main,
                                                                          mechanism, where):
    """A resume into a read-only run folder (or generations folder) exits 2 with one line naming a
    path in it; every file already written stays as it was, and a resume once the folder is
    writable again ends as an uninterrupted run."""
    why = read_only_unavailable(mechanism, base / "probe")
    if why:
        print(f"skipped: {why}")
        pytest.skip(why)
    whole, run = base / "whole", base / "run"
    run_job(fast_job, whole)
    stopped_run(fast_job, run, 3)
    folder = (run / where).resolve()
    before = tree(run)
    undo = make_unwritable(mechanism, run, folder)
    try:
        result = subprocess.run([*read_only_command(mechanism, folder), *xdream_cmd, "evolve", "--resume", str(run),
                                 "--quiet"], capture_output=True, text=True, env=read_only_env(mechanism, base))
    finally:
        for step in reversed(undo):
            step()
    if where != ".":  # the resume began: its notice comes first
        notice, _, rest = result.stderr.partition("\n")
        assert notice.startswith(f"resuming {run} at generation 3"), result.stderr
        result.stderr = rest
    line = one_error_line(result)
    assert re.search(rf"cannot [a-z ]+ {re.escape(str(folder))}/\S+: (Read-only file system|Permission denied)",
                     line), line
    after = tree(run)
    if where != ".":  # the stopped session's completion mark is withdrawn once the resume begins
        assert after == {k: v for k, v in before.items() if k.name != "summary.json"}
    else:
        assert after == before
    assert resume_cli(xdream_main, run).returncode == 0
    assert_same_run(whole, run, 6)


def test_atomic_write_into_a_read_only_folder_names_the_path(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("running as root, which ignores directory permissions (the test above covers root)")
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o555)
    with pytest.raises(RunDirError, match=f"cannot write {tmp_path / 'ro' / 'x'}"):
        atomic_write(tmp_path / "ro" / "x", b"1")


@pytest.mark.parametrize("device", ["/dev/full"])
def test_disk_full_is_one_line_naming_the_path(tmp_path, device):
    """A real full device: /dev/full fails every write with ENOSPC."""
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    run = RunDir(tmp_path)
    (tmp_path / "log.jsonl").symlink_to(device)
    with pytest.raises(RunDirError, match=r"cannot write .*log.jsonl: No space left on device"):
        run.append_log({"generation": 0})


def test_files_honour_the_umask(tmp_path, fast_job):
    """Under umask 022 every file is 0644 and every folder 0755 (mkstemp alone gives 0600)."""
    old = os.umask(0o022)
    try:
        run_job(fast_job, tmp_path / "run")
    finally:
        os.umask(old)
    modes = {p.relative_to(tmp_path): stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "run").rglob("*")}
    assert {m for p, m in modes.items() if (tmp_path / p).is_file()} == {0o644}, modes
    assert {m for p, m in modes.items() if (tmp_path / p).is_dir()} == {0o755}, modes
    old = os.umask(0o077)
    try:
        atomic_write(tmp_path / "private", b"1")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600


def test_seed_must_not_be_negative(fast_job):
    with pytest.raises(ConfigError, match="seed"):
        ExperimentConfig.from_dict({**fast_job, "seed": -1})


def test_state_has_checksums_of_every_generation(tmp_path, fast_job):
    run_job(fast_job, tmp_path / "run")
    state = RunDir(tmp_path / "run").load_checkpoint()
    assert len(state["digests"]) == 6 and len(state["log_lines"]) == 6
    assert state["config"]["seed"] == fast_job["seed"] and len(state["config_fingerprint"]) == 64
    assert np.load(tmp_path / "run" / "generations" / "gen_0000.npz")["codes"].shape[0] == 8


def test_another_runs_checkpoint_is_refused(tmp_path, fast_job, xdream_main):
    run, other = tmp_path / "run", tmp_path / "other"
    stopped_run(fast_job, run, 3)
    stopped_run({**fast_job, "seed": 9}, other, 3)
    (run / "checkpoint.pkl").write_bytes((other / "checkpoint.pkl").read_bytes())
    before = tree(run)
    assert "changed since the checkpoint: seed" in one_error_line(resume_cli(xdream_main, run))
    assert tree(run) == before
