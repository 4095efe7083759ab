"""``xdream report``: self-contained HTML for evolution runs (live while running), checked in
headless Chromium where one is installed (``make test`` installs it)."""

import subprocess

import pytest

from xdream import Experiment, ExperimentConfig
from xdream.cli import main
from xdream.core.errors import RunDirError
from xdream.report import REPORT, watch, write_report


@pytest.fixture
def evolution(fast_job, tmp_path):
    fast_job["generations"] = 3  # the pages need a run that starts, goes on and ends, not a long one
    experiment = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=tmp_path / "run")
    yield experiment
    experiment.close()


def test_live_page_refreshes_until_the_run_ends(evolution):
    evolution.step()
    evolution.step()
    page = write_report(evolution.run_dir.path).read_text()
    assert '<meta http-equiv="refresh" content="5">' in page
    assert "running: generation 1 done" in page and "best of generation 1:" in page
    assert page.count("data:image/png;base64,") >= 4  # best, trajectory, montage, per-generation bests
    evolution.run(progress=False)
    page = write_report(evolution.run_dir.path).read_text()
    assert "http-equiv" not in page and "finished: 3 generations" in page
    assert (evolution.run_dir.path / "trajectory.png").is_file()


def test_watch_returns_when_the_run_has_finished(layout_copy):
    run = layout_copy("run")  # a finished run (tests/fixtures/layouts)
    assert watch(run, interval=0.01) == run / REPORT
    assert "finished: 2 generations" in (run / REPORT).read_text()


def test_report_opens_in_headless_chromium_without_errors(evolution, tmp_path, browser_check):
    evolution.step()
    assert main(["report", str(evolution.run_dir.path)]) == 0
    page = evolution.run_dir.path / REPORT
    ok, total, errors = browser_check(page)
    assert total >= 4 and ok == total and errors == []
    # the check can fail: a page with a broken image is caught
    broken = tmp_path / "broken.html"
    broken.write_text(page.read_text().replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1))
    ok, total, _ = browser_check(broken)
    assert ok == total - 1


def test_not_a_run_folder(tmp_path):
    with pytest.raises(RunDirError, match="is not an xdream run"):
        write_report(tmp_path)


def test_evolve_live_report_is_written_every_generation(fast_job, tmp_path):
    fast_job["generations"] = 3
    pages = []
    experiment = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=tmp_path / "live")
    experiment.run(progress=False, on_generation=lambda r: pages.append(write_report(experiment.run_dir.path).read_text()))
    experiment.close()
    assert len(pages) == 3
    assert all("http-equiv=\"refresh\"" in p for p in pages)
    assert [f"running: generation {g} done" in p for g, p in enumerate(pages)] == [True] * 3


def test_evolve_cli_live_report_flag(fast_job, tmp_path):
    fast_job["generations"] = 2
    config = tmp_path / "job.toml"
    from xdream.config import to_toml

    config.write_text(to_toml(fast_job))
    assert main(["evolve", str(config), "--output", str(tmp_path / "run"), "--quiet", "--live-report"]) == 0
    page = (tmp_path / "run" / REPORT).read_text()
    assert "finished: 2 generations" in page and "http-equiv" not in page


def test_a_live_page_of_an_aborted_run_does_not_say_running(fast_job, tmp_path, xdream_main):
    """Ctrl-C twice (abort at once) or an error ended a ``--live-report`` run with its page saying
    "running ...; this page refreshes every 5 s" for good; the page is rewritten however the run ends."""
    import os
    import signal
    import threading
    import time

    from xdream.config import to_toml

    fast_job["generations"] = 500
    fast_job["responder"]["input_size"] = 224  # generations long enough for the second Ctrl-C to land in one
    config, run = tmp_path / "job.toml", tmp_path / "run"
    config.write_text(to_toml(fast_job))

    def abort():  # Ctrl-C twice, once the live page is there
        end = time.monotonic() + 120
        while not (run / REPORT).exists() and time.monotonic() < end:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # two at once are one signal
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=abort, daemon=True).start()
    result = xdream_main("evolve", config, "--output", run, "--quiet", "--live-report")
    assert result.returncode == 130, result.stderr
    page = (run / REPORT).read_text()
    # aborted mid-generation: "not running and not ended"; (a slow machine) stopped after it: "stopped before its end"
    assert "running:" not in page and "http-equiv" not in page, page[:2000]


def test_report_shows_the_natural_references(fast_job, tmp_path):
    fast_job.update(generations=2, reference={"per_generation": 2})
    experiment = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=tmp_path / "run")
    experiment.run(progress=False)
    experiment.close()
    page = write_report(tmp_path / "run").read_text()
    assert "reference mean" in page and "natural references&#x27; mean" in page
    assert "<td>astronaut, brick</td>" in page and "<td>camera, cell</td>" in page


def test_report_never_rewrites_the_runs_trajectory_and_says_stopped(fast_job, tmp_path):
    """A finished run's trajectory.png (titled by the run) is left as it is; a stopped run's
    page says stopped, not finished."""
    experiment = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=tmp_path / "run")
    calls = iter(range(100))
    experiment.run(progress=False, should_stop=lambda: next(calls) >= 2)
    experiment.close()
    before = (tmp_path / "run" / "trajectory.png").read_bytes()
    assert main(["report", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "trajectory.png").read_bytes() == before
    page = (tmp_path / "run" / REPORT).read_text()
    assert "stopped before its end: 2 generations" in page and "finished" not in page


def test_watch_follows_a_resumed_run_not_its_stale_summary(fast_job, tmp_path):
    """After a resume the old summary.json is gone, so the page is live again."""
    experiment = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=tmp_path / "run")
    calls = iter(range(100))
    experiment.run(progress=False, should_stop=lambda: next(calls) >= 2)
    experiment.close()
    resumed = Experiment.resume(tmp_path / "run")
    resumed.step()
    page = write_report(tmp_path / "run").read_text()
    assert "running: generation 2 done" in page and "http-equiv" in page
    resumed.close()


def test_a_run_nobody_writes_any_more_says_so_and_watch_returns(evolution):
    """No summary and no writer (killed by another process's kill -9, or an error): the page says
    it is not running and does not refresh, and ``--watch`` returns instead of waiting forever.
    A writer in another process (its real flock) makes it live again."""
    import sys

    evolution.step()
    evolution.step()
    run = evolution.run_dir.path
    assert "running: generation 1 done" in write_report(run).read_text()  # this process holds the lock
    evolution.close()
    page = write_report(run).read_text()
    assert "not running and not ended (generation 1 done, 16 evaluations" in page and "http-equiv" not in page
    assert f"xdream evolve --resume {run}" in page
    assert watch(run, interval=0.01) == run / REPORT
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from xdream.runs.lock import RunLock; "
                               f"RunLock({str(run)!r}).acquire(); print('held', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        page = write_report(run).read_text()
        assert "running: generation 1 done" in page and "http-equiv" in page
    finally:
        holder.kill()
        holder.wait()
    assert "not running and not ended" in write_report(run).read_text()  # the kernel dropped the killed one's lock


def test_report_of_a_gradient_or_compare_run_that_did_not_finish(tmp_path, capsys):
    """A gradient, compare or characterise folder left by a run killed (or ended by an error)
    before it wrote its result: ``xdream report`` says so in one line, exit 2, and writes nothing
    into it (a characterisation's said 'is not a characterisation run' and asked for the rerun
    into the same --output, which is refused: the folder is not empty)."""
    from xdream.gradient.baselines import GradientSettings, create_dir
    from xdream.runs.rundir import RunDir

    # as ``xdream gradient`` creates it
    gradient = create_dir(tmp_path / "grad", GradientSettings(), "efficientnet_lite0:_blocks.4:3")
    gradient.lock.release()  # as the kernel does when the process dies
    compare = RunDir.create(tmp_path / "cmp", 'kind = "compare"\n', subdirs=(), kind="compare")
    compare.lock.release()
    characterise = RunDir.create(tmp_path / "chr", 'seed = 0\n', subdirs=("responses", "plots"), kind="characterise")
    characterise.lock.release()
    for run, kind in ((gradient.path, "gradient"), (compare.path, "compare"), (characterise.path, "characterise")):
        before = sorted(p.name for p in run.iterdir())
        assert main(["report", str(run)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and str(run) in err and "not finish" in err and f"xdream {kind}" in err
        assert sorted(p.name for p in run.iterdir()) == before
        with pytest.raises(RunDirError, match="not finish"):
            write_report(run)


def test_a_run_folder_named_with_dollar_signs_gets_its_live_page(fast_job, tmp_path):
    """matplotlib reads the text between two ``$`` as mathtext: the live page's plot, titled with
    the run folder's name, raised on a folder named ``gain $x^$`` (and so did a run with
    --live-report, after its first generation); the name is drawn as written."""
    fast_job["generations"] = 2
    experiment = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=tmp_path / "gain $x^$")
    try:
        experiment.step()
        page = write_report(experiment.run_dir.path).read_text()
    finally:
        experiment.close()
    assert "running: generation 0 done" in page and "gain $x^$" in page
