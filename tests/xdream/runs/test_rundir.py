"""A run folder read back as it is on disk (:class:`xdream.runs.rundir.RunState`)."""

from __future__ import annotations

from xdream.cli import main
from xdream.runs.rundir import RunState


def test_a_session_without_run_json_is_read_as_a_session(layout_copy, capsys):
    """run.json is not what tells a session from a one-thread run (docs/runs.md; a resume reads
    config.toml's [[thread]] tables): the report reads the session's threads, not one thread."""
    run = layout_copy("session")
    (run / "run.json").unlink()
    state = RunState.read(run)
    assert [t.name for t in state.threads] == ["ga", "rs"] and not state.single
    assert [len(t.records) for t in state.threads] == [2, 2]
    assert main(["report", str(run)]) == 0, capsys.readouterr().err
    page = (run / "report.html").read_text()
    assert "<td>ga</td>" in page and "<td>rs</td>" in page
