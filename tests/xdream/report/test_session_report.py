"""``xdream report`` of a session of several threads (real sessions on EfficientNet-Lite0 units):
threads side by side, computed from the threads' logs, live while the session runs and after a
resume; ``--watch`` until the session ends."""

import html
import json
import re
import threading
import time

import numpy as np
import pytest
from scipy.stats import wilcoxon

from xdream.cli import main
from xdream import Experiment
from xdream.report import REPORT, watch, write_report
from xdream.report import evolution as session_page
from xdream.report.writer import CLOCK_SLACK
from xdream.runs.lock import RunLock
from xdream.runs.rundir import RunDir
from xdream.runs.rundir import RunState as SessionState


def thread_log(run, name):
    return RunDir(run / "threads" / name).read_log()


def table_rows(page):
    """The session table's rows as lists of cell texts."""
    table = re.search(r'<table class="sortable">(.*?)</table>', page).group(1)
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", table)]


def test_finished_session_page_matches_the_threads_results(finished_session):
    run = finished_session
    own_plot = (run / "trajectory.png").read_bytes()
    page = write_report(run).read_text()
    assert "http-equiv" not in page and "finished: 3 generations, 3 threads" in page
    assert (run / "trajectory.png").read_bytes() == own_plot  # the session's own plot is never rewritten
    header, *rows = table_rows(page)
    assert header[:8] == ["thread", "generator", "optimiser", "target", "generations", "evaluations", "first best",
                          "final best"]
    results = {r["name"]: r for r in map(json.loads, (run / "results.jsonl").read_text().splitlines())}
    assert [r[0] for r in rows] == ["pix", "four", "avg"]
    for row in rows:
        r = results[row[0]]
        cells = dict(zip(header, row))
        assert cells["generator"] == r["generator"] and cells["optimiser"] == r["optimizer"]
        assert int(cells["generations"]) == r["generations"] and int(cells["evaluations"]) == r["evaluations"]
        assert float(cells["first best"]) == pytest.approx(r["initial_best"], rel=1e-3)
        assert float(cells["final best"]) == pytest.approx(r["final_best"], rel=1e-3)
        assert cells["stopped"] == r["stopped"] == "generations"
        refs = [s for g in thread_log(run, row[0]) for s in g["reference_scores"]]
        refs_name = max(zip(refs, [n for g in thread_log(run, row[0]) for n in g["reference_names"]]))[1]
        assert float(cells["best natural ref."].split(refs_name)[0]) == pytest.approx(max(refs), rel=1e-3)
        assert float(cells["final best / ref."]) == pytest.approx(r["final_best"] / max(refs), abs=0.01)
    assert "Every target starts with efficientnet_lite0:_blocks.2: (left out below)" in page
    assert [r[header.index("target")] for r in rows] == ["5", "5", "3 + 4"]
    assert session_page.target_prefix(["ch0", "ch1"]) == "" and session_page.target_prefix(["m:l:1"]) == ""
    # one row per thread in the image grid, one image per generation, each the thread's own best PNG
    grid = page[page.index("<h2>Best image per generation"):page.index("<h2>Config")]
    assert grid.count("<img") == 9 and "gen 2" in grid


def test_paired_comparison_of_the_threads_on_one_target(finished_session):
    page = write_report(finished_session).read_text()
    paired = page[page.index("<h2>Paired comparison"):page.index("<h2>Best image")]
    assert "Wilcoxon signed-rank" in paired and "not independent samples" in paired
    a = np.array([r["best"] for r in thread_log(finished_session, "pix")])
    b = np.array([r["best"] for r in thread_log(finished_session, "four")])
    d = a - b
    row = re.findall(r"<tr>(.*?)</tr>", paired)[1]
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert cells[:4] == ["pix", "four", "efficientnet_lite0:_blocks.2:5", "3"]
    assert cells[4] == f"{int((d > 0).sum())} of 3"
    assert float(cells[5]) == pytest.approx(d.mean(), rel=1e-3)
    assert float(cells[7]) == pytest.approx(wilcoxon(d).pvalue, rel=1e-2)
    assert "avg" not in paired  # the thread on other units is paired with none


def test_paired_p_without_a_difference_is_not_made_up():
    assert session_page.paired_p(np.zeros(4)) is None
    assert session_page.paired_p(np.array([1.0, 2.0, 3.0, -0.5])) == pytest.approx(wilcoxon([1, 2, 3, -0.5]).pvalue)


def test_live_page_and_a_resumed_session_come_from_the_threads_logs(tmp_path, session_factory):
    run = tmp_path / "run"
    session: Experiment = session_factory(run, run=False)
    try:
        session.step()
        session.step()
        page = write_report(run).read_text()
        assert '<meta http-equiv="refresh" content="5">' in page and "running: generation 1 done" in page
        assert not (run / "trajectory.png").exists()  # drawn into the page, not into the run
        assert "best score per generation" in page
        header, *rows = table_rows(page)
        assert [r[header.index("generations")] for r in rows] == ["2", "2", "2"]
        assert [r[header.index("stopped")] for r in rows] == ["live"] * 3
        calls = iter(range(100))
        session.run(progress=False, should_stop=lambda: next(calls) >= 0)  # stops at once: summary of 2 generations
    finally:
        session.close()
    assert "stopped before its end: 2 generations" in write_report(run).read_text()
    resumed = Experiment.resume(run, responder=session_page_responder())
    try:
        resumed.step()
        page = write_report(run).read_text()  # results.jsonl still says 2 generations; the logs say 3
        assert "http-equiv" in page and "running: generation 2 done" in page
        header, *rows = table_rows(page)
        assert [r[header.index("generations")] for r in rows] == ["3", "3", "3"]
        assert [r[header.index("stopped")] for r in rows] == ["generations"] * 3  # why: in the session log
        assert json.loads((run / "results.jsonl").read_text().splitlines()[0])["generations"] == 2
    finally:
        resumed.close()


def session_page_responder():
    from responders.torch_layer import TorchLayer

    return TorchLayer("efficientnet_lite0:_blocks.2", input_size=64)


def test_watch_follows_a_resumed_session_to_its_new_summary(tmp_path, session_factory):
    run = tmp_path / "run"
    calls = iter(range(100))
    session_factory(run, should_stop=lambda: next(calls) >= 1)
    assert (run / "summary.json").is_file()
    # A resume holds the lock before it removes the old summary: that summary is stale.
    polls = []
    time.sleep(2 * CLOCK_SLACK)  # a resume starts later than the file-clock slack after the summary
    with RunLock(run):
        watch(run, interval=0.01, should_stop=lambda: polls.append(1) or len(polls) >= 5)
    assert len(polls) == 5
    # A resumed session runs to its end while the page is watched: watch returns on the new summary.
    resumed = Experiment.resume(run, responder=session_page_responder())
    worker = threading.Thread(target=lambda: (resumed.run(progress=False), resumed.close()))
    worker.start()
    try:
        page = watch(run, interval=0.05).read_text()
    finally:
        worker.join()
    assert "finished: 3 generations" in page and "http-equiv" not in page
    assert SessionState.read(run).generation == 3


def test_many_threads_keep_the_page_usable(finished_session, monkeypatch):
    monkeypatch.setattr(session_page, "MAX_GRID_THREADS", 2)
    monkeypatch.setattr(session_page, "MAX_GRID_COLUMNS", 2)
    page = write_report(finished_session).read_text()
    grid = page[page.index("<h2>Best image per generation"):page.index("<h2>Config")]
    state = SessionState.read(finished_session)
    top = sorted(state.threads, key=lambda t: -t.final_best)[:2]
    assert "The 2 threads of 3 with the highest final best" in grid and "2 of 3 generations shown" in grid
    assert re.findall(r"<tr><td>(\w+)<br>", grid) == [t.name for t in top]
    assert grid.count("<img") == 4 and "gen 0" in grid and "gen 2" in grid and "gen 1" not in grid
    columns = session_page.grid_columns(100, 12)
    assert columns == sorted(set(columns)) and len(columns) == 12 and columns[::11] == [0, 99]
    assert session_page.grid_columns(5, 12) == [0, 1, 2, 3, 4]


def test_cli_report_of_a_live_session_writes_only_the_page(tmp_path, session_factory):
    run = tmp_path / "run"
    session = session_factory(run, run=False)
    try:
        session.step()
        before = sorted(p.relative_to(run) for p in run.rglob("*"))
        assert main(["report", str(run)]) == 0  # beside the session, which holds the lock
        after = sorted(p.relative_to(run) for p in run.rglob("*"))
    finally:
        session.close()
    assert set(after) - set(before) == {run.relative_to(run) / REPORT}
    page = write_report(run).read_text()  # no summary and no writer: killed, or ended by an error
    assert "not running and not ended (generation 0 done" in page and "http-equiv" not in page
    assert f"xdream evolve --resume {run}" in page


def test_session_page_opens_in_headless_chromium(finished_session, browser_check):
    page = write_report(finished_session)
    ok, total, errors = browser_check(page)
    assert total >= 10 and ok == total and errors == []


CLICK = """<script>window.addEventListener('load', function () {
  var table = document.querySelector('table.sortable'), head = table.rows[0].cells[%d];
  var names = function () { return Array.prototype.slice.call(table.rows, 1).map(function (r) {
    return r.cells[0].textContent; }).join(','); };
  head.click(); var down = names(); head.click();
  document.body.setAttribute('data-sorted', down + ';' + names());
});</script></body>"""


def test_a_click_on_a_column_head_sorts_the_threads(finished_session, tmp_path, browser_dom):
    page = write_report(finished_session).read_text()
    header = table_rows(page)[0]
    clicked = tmp_path / "clicked.html"
    clicked.write_text(page.replace("</body>", CLICK % header.index("final best")))
    dom, _ = browser_dom(clicked)
    down, up = re.search(r'data-sorted="([^"]*)"', dom).group(1).split(";")
    threads = sorted(SessionState.read(finished_session).threads, key=lambda t: -t.final_best)
    assert down.split(",") == [t.name for t in threads] and up.split(",") == [t.name for t in threads][::-1]


def test_a_layer_of_units_has_one_plot_without_legend_and_a_row_each(tmp_path, session_factory, monkeypatch):
    layer = "efficientnet_lite0:_blocks.2"
    data = {"seed": 2, "generations": 2, "generator": {"name": "pixel", "size": 16},
            "optimizer": {"name": "genetic", "population": 4},
            "thread": [{"name": f"u{i}", "target": f"{layer}:{i}"} for i in range(12)]}
    monkeypatch.setattr(session_page, "MAX_GRID_THREADS", 5)
    session = session_factory(tmp_path / "run", data, run=False)
    try:
        session.step()
        page = write_report(tmp_path / "run").read_text()  # live: the plot is drawn from the logs
    finally:
        session.close()
    assert "(no legend for 12 threads)" in page and "Paired comparison" not in page
    assert len(table_rows(page)) == 1 + 12 and "The 5 threads of 12 with the highest final best" in page


def test_evolve_units_with_live_report_ends_on_the_finished_page(tmp_path):
    out = tmp_path / "run"
    assert main(["evolve", "--target", "efficientnet_lite0:_blocks.2", "--units", "0:2", "--generations", "2",
                 "--generator", "pixel", "--set", "generator.size=16", "--output", str(out), "--quiet",
                 "--live-report"]) == 0
    page = (out / REPORT).read_text()
    assert "finished: 2 generations, 2 threads" in page and "http-equiv" not in page
    header, *rows = table_rows(page)
    assert [r[0] for r in rows] == [t.name for t in SessionState.read(out).threads] and len(rows) == 2


def test_with_simulated_noise_the_table_says_which_scores_are_noisy(tmp_path, session_factory, session_config):
    """Its noise-free column is the highest noise-free score of any image a thread evaluated (not
    that of the noisy best, as compare --from-session takes), and the other scores are noisy."""
    data = session_config
    data.update(generations=2, noise={"name": "gaussian", "level": 0.5})
    data["thread"] = data["thread"][:2]
    run = session_factory(tmp_path / "run", data)
    page = write_report(run).read_text()
    header, *rows = table_rows(page)
    cells = dict(zip(header, rows[0]))
    thread = RunDir(run / "threads" / "pix")
    clean = max(float(np.max(thread.load_arrays(r["generation"])["clean_scores"])) for r in thread.read_log())
    assert float(cells["best (noise-free)"]) == pytest.approx(clean, rel=1e-3)
    note = html.unescape(page[page.index("Click a column head"):])
    assert "With simulated noise, first best, final best and the natural references are noisy responses" in note
    assert "best (noise-free): the highest noise-free score of any image the thread evaluated" in note
