"""What the page of a one-thread run says about its images: the best image's caption names
what it is (of the finished run, or so far, with its generation), and a long run shows its first,
last and spread generations, not only the most recent ones."""

from __future__ import annotations

import json
import re

from xdream import Experiment, ExperimentConfig
from xdream.report import evolution, write_report
from xdream.report.evolution import grid_columns


def test_captions_and_the_generations_a_long_run_shows(fast_job, tmp_path, monkeypatch):
    """A real 9-generation run, more than the limits the page is given here (4 images, 6 table rows;
    by default 12 and 20)."""
    fast_job.update(generations=9, optimizer={"name": "genetic", "population": 4})
    experiment = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=tmp_path / "run")
    experiment.step()
    path = experiment.run_dir.path
    assert "best image so far (generation 0, score " in write_report(path).read_text()
    experiment.run(progress=False)
    experiment.close()

    monkeypatch.setattr(evolution, "MAX_GRID_COLUMNS", 4)
    monkeypatch.setattr(evolution, "MAX_TABLE_ROWS", 6)
    page = write_report(path).read_text()
    assert "best image so far" not in page
    summary = json.loads((path / "summary.json").read_text())
    assert re.search(rf"best image of the run \(generation {summary['best_generation']}, score [-\d.]+\)", page)

    captions = [int(g) for g in re.findall(r"<figcaption>best of generation (\d+):", page)]
    assert captions == grid_columns(9) == [0, 3, 5, 8]
    table = page[page.index("<h2>Generations</h2>"):page.index("<h2>Config</h2>")]
    listed = [int(g) for g in re.findall(r"<tr><td>(\d+)</td>", table)]
    assert len(listed) == 6 and listed[0] == 0 and listed[-1] == 8 and listed == sorted(set(listed))
    assert "4 of 9 generations shown" in page and "6 of 9 generations shown" in page


def test_a_session_on_different_targets_says_its_scores_compare_only_within_one(finished_session, tmp_path):
    import shutil

    page = write_report(shutil.copytree(finished_session, tmp_path / "run")).read_text()
    assert "the threads&#x27; targets differ: a score compares only with those of the same target" in page
    assert "Under each image: its score, the best of its thread's generation." in page


def test_a_noisy_run_says_its_scores_are_noisy_and_shows_the_noise_free_best(fast_job, tmp_path):
    """With simulated noise, a one-thread page's best and table are the noisy scores the optimiser
    was told; it says so and lists each generation's noise-free best, as a session's page does."""
    fast_job.update(generations=2, optimizer={"name": "genetic", "population": 4},
                    noise={"name": "gaussian", "level": 0.5})
    experiment = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=tmp_path / "run")
    experiment.run(progress=False)
    experiment.close()
    path = experiment.run_dir.path
    page = write_report(path).read_text()
    table = page[page.index("<h2>Generations</h2>"):page.index("<h2>Config</h2>")]
    assert "best (noise-free)" in table and "noisy" in table
    records = [json.loads(line) for line in (path / "log.jsonl").read_text().splitlines()]
    for r in records:
        assert f"<td>{r['clean_best']:.4g}</td>" in table
