"""One loop for one thread and for sessions of several: the rules the two copies it replaced
got different, checked once for both kinds of run (issue 24)."""

import copy
import json
import re
import tomllib

import pytest

from xdream import Experiment, ExperimentConfig
from xdream.cli.main import main
from xdream.core.errors import ConfigError, RunDirError
from xdream.runs.rundir import RunDir

from test_session import SESSION, layer  # same folder (pytest puts it on sys.path)

KINDS = ("run", "session")


def build(kind, path, fast_job, **data):
    """A one-thread run (the fast job) or a two-thread session, not yet stepped."""
    if kind == "run":
        return Experiment(ExperimentConfig.from_dict({**fast_job, **data}), run_dir=path)
    return Experiment(ExperimentConfig.from_dict({**copy.deepcopy(SESSION), **data}), responder=layer(), run_dir=path)


def resume(kind, path, **kwargs):
    return Experiment.resume(path, **kwargs) if kind == "run" else Experiment.resume(path, responder=layer(), **kwargs)


def stepped(kind, path, fast_job, n=1):
    run = build(kind, path, fast_job)
    for _ in range(n):
        run.step()
    run.close()
    return path


def thread_folder(kind, path):
    """Where the (first) thread's log and generations are."""
    return path if kind == "run" else path / "threads" / "four"


def files(path):
    return {p: p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_folder_killed_while_being_created_is_reused_and_refused_for_resume_in_one_line(tmp_path, fast_job, kind):
    """What creation writes before the first generation (RUN/threads/ or RUN/generations/, and
    RUN/.lock) never blocks a rerun, whatever the kind."""
    run = tmp_path / "r"
    for sub in (("threads/four/images",) if kind == "session" else ("generations", "images")):
        (run / sub).mkdir(parents=True)
    (run / ".lock").write_text("")
    (run / ".config.toml.k1.tmp").write_bytes(b"seed = ")  # killed while config.toml was written
    with pytest.raises(RunDirError, match=f"{re.escape(str(run))} holds no run yet .* --output") as info:
        resume(kind, run)
    assert "\n" not in str(info.value)
    again = build(kind, run, fast_job)
    again.step()
    again.close()
    assert RunDir(thread_folder(kind, run)).finished_generations() == [0] and not list(run.glob("*.tmp"))


@pytest.mark.parametrize("kind", KINDS)
def test_a_damaged_log_names_a_repair_command_that_works(tmp_path, fast_job, kind):
    run = stepped(kind, tmp_path / "r", fast_job, 2)
    log = thread_folder(kind, run) / "log.jsonl"
    lines = log.read_bytes().split(b"\n")
    log.write_bytes(b"\n".join([b"{damaged", *lines[1:]]))
    with pytest.raises(RunDirError) as info:
        resume(kind, run)
    assert f"xdream evolve --resume {run} --repair" in str(info.value), info.value
    repaired = resume(kind, run, repair=True)  # the command the hint names
    assert repaired.generation == 2
    repaired.close()
    assert log.read_bytes() == b"\n".join(lines)


@pytest.mark.parametrize("kind", KINDS)
def test_repair_leaves_the_folder_of_a_resume_refused_later_as_it_was(tmp_path, fast_job, kind):
    """``--repair`` rebuilds a damaged log only once every check passed: a resume refused for
    its components (here: the run's own responder object not passed again) had already
    rewritten the log."""
    from responders.torch_unit import TorchUnit

    run = tmp_path / "r"
    if kind == "run":
        experiment = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=run,
                                responder=TorchUnit(fast_job["responder"]["target"], input_size=64))
    else:
        experiment = build(kind, run, fast_job)  # a session given its responder object
    experiment.step()
    experiment.close()
    log = thread_folder(kind, run) / "log.jsonl"
    log.write_bytes(b"{damaged" + log.read_bytes()[1:])
    before = files(run)
    with pytest.raises(RunDirError, match="started through the Python API with its own responder") as info:
        Experiment.resume(run, repair=True)
    assert files(run) == before and "\n" not in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_stepping_a_finished_run_is_one_line_and_changes_nothing(tmp_path, fast_job, kind):
    """``step()`` after the run has finished (``run()`` returned "finished: 2 generations") is a
    one-line error saying so, in process and after a resume; it was a KeyError traceback for one
    thread and torch.cat's ValueError for a session."""
    run = tmp_path / "r"
    experiment = build(kind, run, fast_job, generations=2)
    assert experiment.run(progress=False).lines()[0].startswith("finished: 2 generations")
    before = files(run)

    def refused(finished):
        with pytest.raises(RunDirError, match=f"run {re.escape(str(run))} has finished: 2 generations.*"
                                              "stopped: generations.* no generation left") as info:
            finished.step()
        assert "\n" not in str(info.value) and finished.generation == 2
        finished.close()

    refused(experiment)
    refused(resume(kind, run))
    assert files(run) == before


def test_a_session_without_run_json_resumes_through_the_command(tmp_path, capsys):
    """run.json is not what tells a session from a one-thread run (folders of older versions
    lack it): config.toml's [[thread]] tables and the checkpoint do."""
    data = {**copy.deepcopy(SESSION), "responder": {"name": "torch-unit", "input_size": 64}}
    session = Experiment(ExperimentConfig.from_dict(data), run_dir=tmp_path / "r")
    session.step()
    session.close()
    (tmp_path / "r" / "run.json").unlink()
    assert main(["evolve", "--resume", str(tmp_path / "r"), "--quiet"]) == 0
    out = capsys.readouterr()
    assert "resuming" in out.err and "finished: 3 generations, 2 threads" in out.out
    (tmp_path / "r" / "checkpoint.pkl").unlink()  # and with no way to continue: one line saying why
    assert main(["evolve", "--resume", str(tmp_path / "r"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("xdream: error: ") and "--restart" in err[0], err


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("damage, named", [("delete", "gen_0001.npz is missing"), ("cut", "gen_0001.npz is damaged")])
def test_a_refused_resume_removes_nothing_not_even_temp_files(tmp_path, fast_job, kind, damage, named):
    """Every thread's generation files are verified, and a refused resume leaves the folder as
    it was: the temp file of a killed write is removed only after every check passed."""
    run = stepped(kind, tmp_path / "r", fast_job, 2)
    generations = thread_folder(kind, run) / "generations"
    (generations / ".gen_0002.npz.x.tmp").write_bytes(b"half")
    victim = generations / "gen_0001.npz"
    victim.unlink() if damage == "delete" else victim.write_bytes(victim.read_bytes()[:-10])
    before = files(run)
    with pytest.raises(RunDirError, match=named) as info:
        resume(kind, run)
    assert files(run) == before and "\n" not in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
def test_allow_changed_records_when_and_config_toml_stays_the_start(tmp_path, fast_job, kind, capsys):
    run = stepped(kind, tmp_path / "r", fast_job, 1)
    config = run / "config.toml"
    started = config.read_text()
    key, old, new = ("optimizer.mutation_rate", None, 0.4) if kind == "run" else \
        ("thread.four.optimizer.sigma0", None, 0.5)
    if kind == "run":
        config.write_text(started.replace('name = "genetic"', 'name = "genetic"\nmutation_rate = 0.4'))
    else:
        config.write_text(started.replace('optimizer = { name = "cmaes", population = 5 }',
                                          'optimizer = { name = "cmaes", population = 5, sigma0 = 0.5 }'))
    edited = files(run)
    with pytest.raises(RunDirError, match=f"{re.escape(key)} None -> {new}.* --allow-changed {re.escape(key)}"):
        resume(kind, run)
    fixed = "optimizer.name" if kind == "run" else "thread.four.optimizer.name"
    with pytest.raises(ConfigError, match=f"--allow-changed {fixed}: .* cannot change on resume"):
        resume(kind, run, allow_changed=[fixed])
    assert files(run) == edited
    resumed = resume(kind, run, allow_changed=[key])
    change = {"generation": 1, "key": key, "old": old, "new": new}
    assert resumed.changes == [change]
    resumed.step()
    resumed.close()
    assert json.loads((run / "run.json").read_text())["changes"] == [change]
    assert tomllib.loads(config.read_text()) == tomllib.loads(started)  # the config the run started with
    assert f"at generation 1: {key}" in config.read_text()
    again = resume(kind, run)  # the change holds on without being allowed again
    assert again.changes == [change]
    assert (again.config.optimizer.options if kind == "run" else again.config.thread[1].optimizer.options)[
        key.rsplit(".", 1)[1]] == new
    summary = again.run(progress=False)
    again.close()
    assert json.loads((run / "summary.json").read_text())["changes"] == [change]
    assert summary.generations == (6 if kind == "run" else 3)
    from xdream.cli.evolve import note_changed_run

    note_changed_run(config)
    note = capsys.readouterr().err
    assert f"{run} started with; that run was changed on resume ({key} {old!r} -> {new!r} at generation 1)" in note


@pytest.mark.parametrize("kind", KINDS)
def test_a_change_is_recorded_only_once_a_checkpoint_holds_it(tmp_path, fast_job, kind):
    """A resume with ``--allow-changed`` that ends before it saves a generation (a rig that fails,
    a kill) leaves the change unrecorded and config.toml as edited: the next resume asks for
    ``--allow-changed`` again. It put config.toml back and wrote the change to run.json at once,
    so the next resume continued silently without the change (here: the run ended 2 short)."""
    run = stepped(kind, tmp_path / "r", fast_job, 1)
    config, n = run / "config.toml", 6 if kind == "run" else 3
    config.write_text(config.read_text().replace(f"generations = {n}", f"generations = {n + 2}"))
    edited = files(run)
    resume(kind, run, allow_changed=["generations"]).close()  # ends before its first generation
    assert files(run) == edited
    with pytest.raises(RunDirError, match=f"generations {n} -> {n + 2}; .* --allow-changed generations$"):
        resume(kind, run)
    resumed = resume(kind, run, allow_changed=["generations"])
    summary = resumed.run(progress=False)
    resumed.close()
    assert summary.generations == n + 2
    change = {"generation": 1, "key": "generations", "old": n, "new": n + 2}
    assert json.loads((run / "run.json").read_text())["changes"] == [change]
    assert f"# Changed on resume at generation 1: generations {n} -> {n + 2}" in config.read_text()


@pytest.mark.parametrize("kind", KINDS)
def test_allowing_a_table_to_change_never_lets_its_fixed_key_change(tmp_path, fast_job, kind):
    """``--allow-changed TABLE`` lets the table's keys change, but never the ones no resume may
    change: a generator of another latent space got the checkpoint's codes (a traceback at the
    next decode), and a thread's new seed was recorded for a run its old seed made."""
    run = stepped(kind, tmp_path / "r", fast_job, 1)
    config = run / "config.toml"
    if kind == "run":
        table, key = "generator", "generator.name"
        config.write_text(config.read_text().replace('name = "pixel"\nsize = 16',
                                                     'name = "fourier"\nsize = 16\nmax_frequency = 4'))
    else:
        table, key = "thread.pix", "thread.pix.seed"
        config.write_text(config.read_text().replace("seed = 2152514161", "seed = 7"))
    edited = files(run)
    with pytest.raises(RunDirError, match=f"{re.escape(key)} .* -> .*; {re.escape(key)} cannot change on resume") \
            as info:
        resume(kind, run, allow_changed=[table])
    assert "\n" not in str(info.value) and "--allow-changed" not in str(info.value)
    assert files(run) == edited


def test_a_thread_name_with_dots_resumes_with_the_allow_changed_its_refusal_names(tmp_path):
    """A thread's name may hold dots (``v4.b``): its config keys (``thread.v4.b.optimizer.sigma0``)
    are split at the name, not at every dot, so the ``--allow-changed`` a refusal names continues
    the run (it was refused as an unknown key 'b' of a thread 'v4'), and the thread's seed stays fixed."""
    data = copy.deepcopy(SESSION)
    data["thread"][1]["name"] = "v4.b"
    run = tmp_path / "r"
    session = Experiment(ExperimentConfig.from_dict(data), responder=layer(), run_dir=run)
    session.step()
    session.close()
    config = run / "config.toml"
    config.write_text(config.read_text().replace('optimizer = { name = "cmaes", population = 5 }',
                                                 'optimizer = { name = "cmaes", population = 5, sigma0 = 0.5 }'))
    key = "thread.v4.b.optimizer.sigma0"
    with pytest.raises(RunDirError, match=f"{re.escape(key)} None -> 0.5; .* --allow-changed {re.escape(key)}$"):
        resume("session", run)
    with pytest.raises(ConfigError, match="--allow-changed thread.v4.b.seed: .* cannot change on resume"):
        resume("session", run, allow_changed=["thread.v4.b.seed"])
    resume("session", run, allow_changed=["thread.v4.b"]).close()  # the whole thread's table, ended unsaved
    resumed = resume("session", run, allow_changed=[key])
    assert [t.name for t in resumed.config.thread] == ["pix", "v4.b"]
    assert resumed.config.thread[1].optimizer.options["sigma0"] == 0.5
    assert resumed.changes == [{"generation": 1, "key": key, "old": None, "new": 0.5}]
    resumed.step()
    resumed.close()


@pytest.mark.parametrize("name", [".", "..", "a/b", ".hidden", "../x"])
def test_thread_names_that_are_not_plain_folder_names_are_refused_in_one_line(name):
    data = copy.deepcopy(SESSION)
    data["thread"][0]["name"] = name
    with pytest.raises(ConfigError, match="needs name = a plain folder name") as info:
        ExperimentConfig.from_dict(data)
    assert "\n" not in str(info.value)


def test_a_thread_name_from_the_command_line_is_checked_the_same(tmp_path, capsys):
    code = main(["evolve", "--thread", "name=..,target=efficientnet_lite0:_blocks.2:1",
                 "--output", str(tmp_path / "s"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "plain folder name" in err[0], err
    assert not (tmp_path / "s").exists()


def test_the_rig_responders_files_on_a_full_disk_fail_in_one_line(tmp_path):
    """The rig responder's own files in the run folder (rig_trials.jsonl, rig_requests.jsonl)
    go through the run folder's writer: a full disk (/dev/full) is one RunDirError naming the
    file, not the writer's OSError traceback."""
    from types import SimpleNamespace

    from responders.rig_journal import JOURNAL_FILE, RequestJournal
    from responders.zmq_client import TRIALS_FILE, ZmqResponder

    for name in (TRIALS_FILE, JOURNAL_FILE):
        (tmp_path / name).symlink_to("/dev/full")
    record = {"image_index": 0, "score": 1.0}
    with pytest.raises(RunDirError, match=f"cannot write .*{TRIALS_FILE}: No space left on device") as info:
        ZmqResponder._save(SimpleNamespace(run_dir=tmp_path), [record], True)
    assert "\n" not in str(info.value)
    journal = RequestJournal.__new__(RequestJournal)
    journal.path = tmp_path / JOURNAL_FILE
    with pytest.raises(RunDirError, match=f"cannot write .*{JOURNAL_FILE}: No space left on device"):
        journal.record(0, 0, "r0", ["g0-0"], "sum")


@pytest.mark.parametrize("kind", KINDS)
def test_a_generator_of_another_latent_size_is_refused_before_anything_changes(tmp_path, fast_job, kind, capsys):
    """An allowed change of the generator's table that alters its latent size (a pixel generator's
    ``size``) is refused in one line naming the run and both sizes, with nothing changed: the
    optimiser's state is in the old space (it resumed, and the first decode was a traceback)."""
    run = stepped(kind, tmp_path / "r", fast_job, 1)
    config = run / "config.toml"
    if kind == "run":
        config.write_text(config.read_text().replace("size = 16", "size = 12"))
        allow = ["generator.size", "generator"]
    else:
        config.write_text(config.read_text().replace('generator = { name = "pixel", size = 16 }',
                                                     'generator = { name = "pixel", size = 12 }'))
        allow = ["thread.pix.generator.size", "generators"]
    edited = files(run)
    with pytest.raises(RunDirError, match=f"{re.escape(str(run))} .*768 .*432.*new run") as info:
        resume(kind, run, allow_changed=allow)
    assert "\n" not in str(info.value) and files(run) == edited
    if kind == "run":  # the command of the report
        assert main(["evolve", "--resume", str(run), "--quiet", *(f"--allow-changed={a}" for a in allow)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("xdream: error: ") and "432" in err[0], err
        assert files(run) == edited


def test_a_refused_resume_closes_the_rig_connection_it_opened(tmp_path, fast_job):
    """The responder a resume builds (here a ``zmq`` client of a rig) is closed when the resume is
    refused after it connected (the reference folder changed since the run started): only the lock
    was released, and the rig's connection stayed open until garbage collection."""
    import gc

    from PIL import Image

    from responders.rig_sim import RigSimulator, ServingThread
    from responders.torch_unit import TorchUnit
    from responders.zmq_client import ZmqResponder

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.new("RGB", (20, 20), (90 * i, 0, 0)).save(photos / f"p{i}.png")
    rig = ServingThread(RigSimulator(TorchUnit(fast_job["responder"]["target"], input_size=64),
                                     endpoint="tcp://127.0.0.1:*", log=tmp_path / "rig-log.jsonl"))
    try:
        endpoint = rig.sim.endpoint
        job = {**fast_job, "responder": {"name": "zmq", "target": endpoint, "timeout": 20},
               "reference": {"folder": str(photos), "per_generation": 1}}
        stepped("run", tmp_path / "r", job, 1)
        Image.new("RGB", (20, 20)).save(photos / "p2.png")
        with pytest.raises(RunDirError, match=r"reference images .* changed since the run started") as info:
            Experiment.resume(tmp_path / "r")
        clients = [o for o in gc.get_objects() if type(o) is ZmqResponder and o.target == endpoint]
        assert clients and all(c._context.closed and c._socket is None for c in clients), info.value
    finally:
        rig.stop()
