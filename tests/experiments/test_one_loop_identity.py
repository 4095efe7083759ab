"""experiments/one_loop_identity.py: its fixed set of jobs covers every built-in optimiser, and a
second ``run`` into the same folder (after an interruption, or to add jobs) skips what is done."""

from __future__ import annotations

import json

import pytest

from experiment_script import load_script  # same folder


@pytest.fixture(scope="module")
def identity():
    return load_script("one_loop_identity.py", "one_loop_identity")


def test_one_run_per_built_in_optimiser(identity):
    from importlib.metadata import entry_points

    built_in = {e.name for e in entry_points(group="xdream.optimizers") if e.value.startswith("xdream.optimizers.")}
    assert set(identity.OPTIMIZERS) == built_in


def test_a_second_run_skips_the_finished_runs_the_rig_session_included(identity, tmp_path, capsys):
    for name in [*identity.jobs(tmp_path), "session-rig"]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps({}))
    identity.run_all(tmp_path)
    assert "session-rig" not in capsys.readouterr().out
