"""A session's progress bar shows numbers that mean one thing: the best score over threads only
when they share one target, else each thread's best by name, or (many threads) how many threads
beat their own first generation; never the maximum over different units."""

from __future__ import annotations

import math
from types import SimpleNamespace

from xdream.evolve.progress import MAX_NAMED, progress_postfix


def test_a_session_on_two_targets_names_each_threads_best(tmp_path, capsys, session_factory):
    session = session_factory(tmp_path / "run", run=False)  # pix and four on one unit, avg on two others
    try:
        session.run(progress=True)
    finally:
        session.close()
    bar = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    last = {name: t.history[-1]["best"] for name, t in zip(("pix", "four", "avg"), session.threads)}
    for name, best in last.items():
        assert f"{name}={best:.3g}" in bar, bar
    assert "best=" not in bar


def test_threads_on_one_target_show_their_highest_score(tmp_path, session_factory, session_config):
    session_config["thread"] = session_config["thread"][:2]  # pix and four, both on one unit
    session = session_factory(tmp_path / "run", session_config, run=False)
    record = session.step()
    session.close()
    assert progress_postfix(record, session.threads) == {
        "gen": "0", "best": f"{max(v['best'] for v in record['threads'].values()):.3g}"}


def thread(name, channel, first, best):
    return SimpleNamespace(name=name, columns=[channel], history=[{"best": first}], best_score=best)


def test_many_threads_on_different_units_count_those_that_improved():
    threads = [thread(f"c{i}", i, first=1.0, best=1.0 + (i % 2)) for i in range(MAX_NAMED + 2)]
    threads[0].history = [{"best": math.nan}]  # no response in its first generation: not counted as improved
    record = {"generation": 4, "threads": {t.name: {"best": 9.0 * i} for i, t in enumerate(threads)}}
    assert progress_postfix(record, threads) == {"gen": "4", "improved": f"3/{MAX_NAMED + 2} threads"}
