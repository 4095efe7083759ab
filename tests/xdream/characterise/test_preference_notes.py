"""A preferred stimulus that may mislead says so: one pick among stimuli tied at the maximum
(Poisson noise gives many zeros), or a frequency at the edge of the tested range (the optimum may
lie beyond it); summary.json keeps the notes and the report page shows them."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np

from xdream.characterise.protocol import Protocol
from xdream.characterise.record import Recording, classify_recording, presentation_order
from xdream.report import write_report

PROTOCOL = {"hues": [0, 60, 120, 180, 240, 300], "orientations": [0, 90], "phases": [0, 180],
            "frequencies": [1, 2, 4], "repeats": 3, "baseline_repeats": 3}


def recording(hue_response, grating_response) -> tuple[Recording, Protocol]:
    """Responses of two units: each a function of a stimulus row's parameters, plus a little
    per-presentation jitter that keeps sweeps with distinct means distinct."""
    protocol = Protocol.from_dict(PROTOCOL)
    table = protocol.table()
    stimulus, repeat = presentation_order(protocol.repeats_of(table), None)
    responses = np.zeros((len(stimulus), 1))
    for p, row in enumerate(stimulus):
        params = table.describe(row)
        responses[p, 0] = {"spectral": hue_response, "spatial": grating_response}.get(params["sweep"],
                                                                                     lambda q: 0.0)(params)
    return Recording(table, stimulus, repeat, responses, ["u"]), protocol


def test_ties_and_range_edges_are_noted():
    rec, protocol = recording(lambda q: 0.0, lambda q: q["frequency"] + 0.1 * np.cos(np.radians(q["orientation"])))
    (unit,) = classify_recording(rec, protocol, "g")
    spectral, spatial = unit.sweeps["spectral"], unit.sweeps["spatial"]
    assert spectral.notes == ["tied: 6 stimuli share the maximum mean 0; this one is an arbitrary pick among them"]
    assert spatial.preferred["frequency"] == 4
    assert "frequency 4 is the highest tested: the optimum may lie above the tested range" in spatial.notes


def test_a_clear_interior_preference_has_no_notes():
    rec, protocol = recording(lambda q: -abs(q["hue"] - 120.0),
                              lambda q: -abs(q["frequency"] - 2.0) + 0.1 * np.cos(np.radians(q["orientation"]))
                              + 0.01 * np.cos(np.radians(q["phase"])))
    (unit,) = classify_recording(rec, protocol, "g")
    assert unit.sweeps["spectral"].preferred["hue"] == 120 and unit.sweeps["spectral"].notes == []
    assert unit.sweeps["spatial"].preferred["frequency"] == 2 and unit.sweeps["spatial"].notes == []


def test_the_page_shows_the_notes_summary_json_keeps(unit_run, tmp_path):
    """The shared real unit (EfficientNet-Lite0 _blocks.2:5 on frequencies 1, 2, 4) prefers a
    grating at frequency 4, the highest tested."""
    (unit,) = json.loads((unit_run / "summary.json").read_text())["unit_results"]
    spatial = unit["sweeps"]["spatial"]
    assert spatial["preferred"]["frequency"] == 4
    assert spatial["notes"] == ["frequency 4 is the highest tested: the optimum may lie above the tested range"]
    copy = shutil.copytree(unit_run, tmp_path / "unit")  # the shared run stays without a page
    page = write_report(copy).read_text()
    assert "\u26a0 frequency 4 is the highest tested: the optimum may lie above the tested range" in page
    with open(unit_run / "classification.csv") as f:
        (row,) = csv.DictReader(f)
    assert row["spatial_notes"] == spatial["notes"][0] and row["spectral_notes"] == "; ".join(unit["sweeps"]["spectral"]["notes"])


def test_the_notes_of_a_sweep_whose_stimulus_is_not_shown_stand_by_its_class(unit_run):
    """The unit table shows one preferred stimulus (of the sweep that drove the unit most); the
    other sweep's notes (e.g. 18 hues tied at zero under Poisson noise) stand by its class."""
    from xdream.report.characterise import _unit_table

    (unit,) = json.loads((unit_run / "summary.json").read_text())["unit_results"]
    unit["sweeps"]["spectral"]["notes"] = ["tied: 18 stimuli share the maximum mean 0; this one is an arbitrary pick"]
    table = _unit_table([unit])
    assert "its preferred stimulus: tied: 18 stimuli share the maximum mean 0" in table
    assert "its preferred stimulus: frequency 4" not in table  # shown once, with the stimulus itself
    assert table.count("frequency 4 is the highest tested") == 1
