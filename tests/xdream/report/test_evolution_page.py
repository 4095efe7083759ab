"""What the page of a one-thread run says about its images: the best image's caption names
what it is (of the finished run, or so far, with its generation), and a long run shows its first,
last and spread generations, not only the most recent ones."""

from __future__ import annotations

import re

import pytest

from xdream import Experiment, ExperimentConfig
from xdream.report import write_report
from xdream.report import evolution
from xdream.report.evolution import grid_columns


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """A real 9-generation run (more than the table's rows and the image grid's columns that the
    tests below allow)."""
    from tests.conftest import FAST_JOB

    job = {**FAST_JOB, "generations": 9, "optimizer": {"name": "genetic", "population": 4}}
    experiment = Experiment(ExperimentConfig.from_dict(job), run_dir=tmp_path_factory.mktemp("long") / "run")
    experiment.step()
    live = write_report(experiment.run_dir.path).read_text()
    experiment.run(progress=False)
    experiment.close()
    return experiment.run_dir.path, live


def test_the_best_image_says_whether_the_run_ended(long_run):
    path, live = long_run
    assert "best image so far (generation 0, score " in live
    page = write_report(path).read_text()
    assert "best image so far" not in page
    summary = __import__("json").loads((path / "summary.json").read_text())
    assert re.search(rf"best image of the run \(generation {summary['best_generation']}, score [-\d.]+\)", page)


def test_a_long_run_shows_first_last_and_spread_generations(long_run, monkeypatch):
    monkeypatch.setattr(evolution, "MAX_GRID_COLUMNS", 4)  # the page's limits (12 and 20) for 9 generations
    monkeypatch.setattr(evolution, "MAX_TABLE_ROWS", 6)
    path, _ = long_run
    page = write_report(path).read_text()
    captions = [int(g) for g in re.findall(r"<figcaption>generation (\d+): its best", page)]
    assert captions == grid_columns(9) == [0, 3, 5, 8]
    assert captions[0] == 0 and captions[-1] == 8
    table = page[page.index("<h2>Generations</h2>"):page.index("<h2>Config</h2>")]
    listed = [int(g) for g in re.findall(r"<tr><td>(\d+)</td>", table)]
    assert len(listed) == 6 and listed[0] == 0 and listed[-1] == 8 and listed == sorted(set(listed))
    assert "4 of 9 generations shown" in page and "6 of 9 generations shown" in page
