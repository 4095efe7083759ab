"""``xdream report`` on a characterisation run: the per-unit table, the layer summary and every
figure embedded (missing ones drawn again from the responses); and an evolution started from
the characterisation shows the unit's verdicts and links to its row."""

import base64
import csv
import io
import json
import re
import shutil

import numpy as np
from PIL import Image

from characterise_runs import LAYER, UNIT
from xdream.characterise.load import CharacterisationRun
from xdream.characterise.outputs import params_text
from xdream.characterise.protocol import render_described
from xdream.cli import main
from xdream.config import to_toml
from xdream.images.io import to_uint8
from xdream.report import REPORT, write_report


def embedded(page: str) -> list[np.ndarray]:
    """Every embedded PNG of the page, decoded."""
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
            for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_unit_report_has_the_table_and_every_figure(unit_run, tmp_path, capsys):
    run = shutil.copytree(unit_run, tmp_path / "char")
    assert main(["report", str(run)]) == 0
    assert capsys.readouterr().out.strip() == str(run / REPORT)
    page = (run / REPORT).read_text()
    assert "<title>xdream characterisation: char</title>" in page and "1 unit in 1 target; preset default" in page
    (unit,) = rows(run / "classification.csv")
    assert f'<span id="unit-efficientnet_lite0-_blocks.2-5">{UNIT}</span>' in page
    header = "<th>unit</th><th>baseline</th><th>spectral</th><th>spatial</th><th>double opponent</th>"
    assert header + "<th>preferred stimulus</th><th>least preferred</th>" in page
    double = {"true": "yes", "false": "no"}[unit["double_opponent"]]
    cells = f"<td>{float(unit['baseline']):.4g}</td><td>{unit['spectral_class']}</td><td>{unit['spatial_class']}</td>"
    assert f"{UNIT}</span></td>{cells}<td>{double}</td>" in page
    (record,) = json.loads((run / "summary.json").read_text())["unit_results"]
    best = max(record["sweeps"].values(), key=lambda v: v["max"])
    assert f"{best['preferred']['sweep']}: {params_text(best['preferred'])} \u2192 " in page
    images = embedded(page)
    assert len(images) == 5  # layer summary, stimulus strip, preferred + least preferred thumbnails, tuning plot
    assert np.array_equal(images[2], to_uint8(render_described(best["preferred"], 48)))
    assert images[1].shape == np.asarray(Image.open(run / "stimuli.png").convert("RGB")).shape
    assert images[4].shape == np.asarray(Image.open(run / "plots" / "efficientnet_lite0-_blocks.2-5.png").convert("RGB")).shape


def test_layer_report_draws_the_missing_figures(layer_run, tmp_path):
    run = shutil.copytree(layer_run, tmp_path / "layer")
    (run / "stimuli.png").unlink()
    (run / "layer_summary.png").unlink()
    assert not list((run / "plots").iterdir())  # characterised with --no-unit-plots
    page = write_report(run).read_text()
    plots = sorted(p.name for p in (run / "plots").iterdir())
    assert len(plots) == 24 and "efficientnet_lite0-_blocks.2-5.png" in plots
    assert (run / "stimuli.png").is_file() and (run / "layer_summary.png").is_file()
    assert len(embedded(page)) == 2 + 2 * 24 + 24
    (summary,) = rows(run / "layer_summary.csv")
    cells = [f"{float(summary[k]):.2f}" for k in ("spectral_opponent", "spectral_non-opponent", "spectral_unresponsive")]
    assert f"<td>{LAYER}</td><td>24</td>" + "".join(f"<td>{c}</td>" for c in cells) in page
    assert page.count('<span id="unit-') == 24


def test_recordings_rebuild_the_run_classification(layer_run):
    run = CharacterisationRun.open(layer_run)
    ((recording, results),) = run.recordings().values()
    assert recording.responses.shape == (3 + 6 + 48, 24)
    saved = rows(layer_run / "classification.csv")
    assert [r.sweeps["spectral"].label for r in results] == [u["spectral_class"] for u in saved]
    assert [r.sweeps["spatial"].preferred for r in results] == [u["sweeps"]["spatial"]["preferred"] for u in run.units]


def test_evolution_report_shows_and_links_the_characterised_unit(unit_run, fast_job, tmp_path):
    char = shutil.copytree(unit_run, tmp_path / "char")
    config = tmp_path / "job.toml"
    config.write_text(to_toml({**fast_job, "generations": 1}))
    assert main(["evolve", str(config), "--output", str(tmp_path / "ev"), "--quiet",
                 "--init-from-characterisation", str(char)]) == 0
    page = write_report(tmp_path / "ev").read_text()
    assert "<h2>Start: the unit's preferred parametric stimulus</h2>" in page
    assert f"write it with <code>xdream report {char}</code>" in page  # no characterisation report yet
    init = json.loads((tmp_path / "ev" / "init.json").read_text())
    assert f"<td>{UNIT}</td><td>{UNIT}</td><td>spectral {init['classes']['spectral']}, spatial " in page
    assert f"<td>{init['stimulus']['sweep']}: {params_text(init['stimulus'])}</td>" in page
    for name in ("init_target.png", "init_reconstruction.png", "init_unit_plot.png"):
        data = base64.b64encode((tmp_path / "ev" / name).read_bytes()).decode()
        assert f"base64,{data}" in page
    write_report(char)
    page = write_report(tmp_path / "ev").read_text()
    assert '<a href="../char/report.html#unit-efficientnet_lite0-_blocks.2-5">' in page
    assert 'id="unit-efficientnet_lite0-_blocks.2-5"' in (char / REPORT).read_text()
