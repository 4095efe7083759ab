"""``xdream compare --from-session RUN``: the comparison table of a real session's threads, from
its recorded scores; nothing is run again and the session is left as it was."""

import csv
import json

import numpy as np
import pytest

from xdream.cli import main
from xdream.compare.comparison import RECORDED as ACTIVATION
from xdream.report import write_report
from xdream.runs.rundir import RunDir


def snapshot(run):
    return {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.name != "report.html"}


def thread_log(run, name):
    return RunDir(run / "threads" / name).read_log()


def test_all_threads_with_one_natural_row_per_target(finished_session, tmp_path, capsys):
    before = snapshot(finished_session)
    out = tmp_path / "cmp"
    assert main(["compare", "--from-session", str(finished_session), "--output", str(out)]) == 0
    assert snapshot(finished_session) == before  # the session is only read
    printed = capsys.readouterr().out
    assert f"activation ({ACTIVATION})" in printed and "| pix (pixel + genetic) |" in printed
    data = json.loads((out / "compare.json").read_text())
    assert data["activation"] == ACTIVATION and data["settings"]["threads"] == ["pix", "four", "avg"]
    methods = {m["method"]: m for m in data["methods"]}
    assert list(methods) == ["pix (pixel + genetic)", "four (fourier + genetic)", "avg (pixel + cmaes)",
                             "natural images on efficientnet_lite0:_blocks.2:5",
                             "natural images on efficientnet_lite0:_blocks.2:3 + efficientnet_lite0:_blocks.2:4"]
    natural_of = {"pix": 3, "four": 3, "avg": 4}
    naturals = list(methods.values())
    for name in ("pix", "four", "avg"):
        log = thread_log(finished_session, name)
        m = next(v for k, v in methods.items() if k.startswith(name + " "))
        assert m["best"] == pytest.approx(max(r["best"] for r in log))  # no noise: the recorded best
        assert m["cost"] == log[-1]["evaluations"] and m["kind"] == "thread"
        refs = max(s for r in log for s in r["reference_scores"])
        natural = naturals[natural_of[name]]
        assert natural["best"] == pytest.approx(refs)
        assert m["ratio"] == pytest.approx(m["best"] / refs)
        assert (out / m["montage"]).is_file() and m["top_scores"] == sorted(m["top_scores"], reverse=True)
    assert naturals[3]["cost"] == 3 * 2  # reference images shown in 3 generations, 2 each
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert [r["kind"] for r in rows] == ["thread"] * 3 + ["natural"] * 2
    assert ACTIVATION in (out / "table.md").read_text()
    page = (out / "report.html").read_text()
    assert "nothing was run again" in page and "not re-scored" in page and (out / "trajectories.png").is_file()
    assert RunDir.kind_of(out) == "compare"


def test_chosen_threads_on_one_target(finished_session, tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", "--from-session", str(finished_session), "--threads", "four,pix",
                 "--output", str(out)]) == 0
    methods = json.loads((out / "compare.json").read_text())["methods"]
    assert [m["method"] for m in methods] == ["four (fourier + genetic)", "pix (pixel + genetic)", "natural images"]
    assert methods[2]["ratio"] == pytest.approx(1.0)


def test_with_simulated_noise_the_activation_trajectory_and_natural_row_are_noise_free(tmp_path, session_factory,
                                                                                       session_config):
    """A thread's activation is its noise-free score, so the natural row it is divided by, and the
    trajectories drawn against it, are noise-free too, not the best of their noisy draws."""
    data = session_config
    data.update(generations=3, noise={"name": "gaussian", "level": 0.5})
    data["thread"] = data["thread"][:2]
    run = session_factory(tmp_path / "run", data)
    out = tmp_path / "cmp"
    assert main(["compare", "--from-session", str(run), "--output", str(out)]) == 0
    methods = json.loads((out / "compare.json").read_text())["methods"]
    for m, name in zip(methods, ("pix", "four")):
        thread = RunDir(run / "threads" / name)
        clean = [thread.load_arrays(r["generation"])["clean_scores"][r["best_index"]] for r in thread.read_log()]
        noisy = [r["best"] for r in thread.read_log()]
        assert m["best"] == pytest.approx(max(clean))
        assert not np.isclose(m["best"], max(noisy))
    page = write_report(run).read_text()  # the session's own page has a noise-free column
    assert "<th>best (noise-free)</th>" in page
    thread = RunDir(run / "threads" / "pix")
    arrays = [thread.load_arrays(r["generation"]) for r in thread.read_log()]
    clean = np.concatenate([a["reference_clean_scores"] for a in arrays])
    noisy = np.concatenate([a["reference_scores"] for a in arrays])
    assert not np.isclose(clean.max(), noisy.max())
    natural = methods[2]
    assert natural["method"] == "natural images" and natural["best"] == pytest.approx(clean.max())
    assert methods[0]["ratio"] == pytest.approx(methods[0]["best"] / clean.max())
    best_clean = [a["clean_scores"][r["best_index"]] for a, r in zip(arrays, thread.read_log())]
    assert [y for _, y in methods[0]["trajectory"]] == pytest.approx(np.maximum.accumulate(best_clean))


@pytest.mark.parametrize("args, message", [
    (["--threads", "pix,nope"], "has no thread 'nope'; its threads: pix, four, avg"),
    (["--seed", "3"], "runs nothing, so it takes no --seed"),
    (["--optimizers", "cmaes"], "takes no --optimizers"),
    (["--threads", ","], "names no thread"),
])
def test_bad_input_is_one_line_and_writes_nothing(finished_session, tmp_path, capsys, args, message):
    out = tmp_path / "cmp"
    assert main(["compare", "--from-session", str(finished_session), *args, "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_threads_without_a_session_and_a_folder_that_is_not_one(tmp_path, capsys):
    """A one-thread run compares as a run of one thread (tests/xdream/runs/test_earlier_layouts.py);
    a folder of another kind (here: a comparison) or no run at all is one line, nothing written."""
    from pathlib import Path

    assert main(["compare", "--threads", "a"]) == 2
    assert "give the session with --from-session RUN" in capsys.readouterr().err
    run = Path(__file__).parents[2] / "fixtures" / "layouts" / "run"
    assert main(["compare", "--from-session", str(run), "--output", str(tmp_path / "cmp")]) == 0
    assert main(["compare", "--from-session", str(tmp_path / "cmp"), "--output", str(tmp_path / "cmp2")]) == 2
    assert "is a compare folder, not an evolution run or session" in capsys.readouterr().err
    assert main(["evolve", "--resume", str(tmp_path / "cmp")]) == 2  # nor one to resume
    assert "is a compare folder, not an evolution run or session" in capsys.readouterr().err
    (tmp_path / "cmp" / "run.json").unlink()  # as an earlier xdream wrote it: told by its compare.json
    for args in (["compare", "--from-session", str(tmp_path / "cmp"), "--output", str(tmp_path / "cmp2")],
                 ["evolve", "--resume", str(tmp_path / "cmp")]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "is a compare folder, not an evolution run or session" in err and len(err.splitlines()) == 1
    (tmp_path / "empty").mkdir()
    assert main(["compare", "--from-session", str(tmp_path / "empty"), "--output", str(tmp_path / "cmp2")]) == 2
    assert "is not an xdream run directory" in capsys.readouterr().err
    assert not (tmp_path / "cmp2").exists()
