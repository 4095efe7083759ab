"""The Python API with a responder that is no CNN at all (as a rig link would be)."""

import csv

import numpy as np
import torch

from xdream.characterise.protocol import Protocol
from xdream.characterise.run import Settings, characterise
from xdream.core.responder import Responder


class ConeContrast(Responder):
    """A pure-numpy 'cell': L-M cone-like opponency at the centre pixel, spikes/s 10 + 30 (R - G)."""

    name = "cone-cell"

    def respond(self, images: torch.Tensor) -> np.ndarray:
        c = images.shape[-1] // 2
        centre = images[:, :, c, c].double().numpy()
        return 10.0 + 30.0 * (centre[:, 0] - centre[:, 1])


def test_any_responder_through_the_api(tmp_path):
    protocol = Protocol.from_dict({"orientations": [0.0, 90.0], "phases": [0.0, 180.0], "frequencies": [2], "red_green": True})
    results, summary = characterise({"rig": ConeContrast()}, protocol, Settings(size=16), tmp_path / "run")
    (unit,) = results
    assert unit.unit == "cone-cell" and unit.group == "rig"
    assert unit.sweeps["spectral"].label == "opponent"
    assert unit.sweeps["spatial"].label == "unresponsive"  # achromatic gratings: R - G = 0
    assert unit.sweeps["red-green"].label == "opponent"
    assert unit.sweeps["red-green"].preferred["phase"] == 0  # red bar on the centre pixel
    assert summary[0]["spectral_opponent"] == 1.0 and summary[0]["double_opponent"] == 0.0
    with open(tmp_path / "run" / "classification.csv") as f:
        row = next(csv.DictReader(f))
    assert row["red-green_class"] == "opponent" and row["spectral_preferred"].startswith("hue=0 ")
    assert np.load(tmp_path / "run" / "responses.npz")["rig__units"].tolist() == ["cone-cell"]


def test_api_run_records_its_settings_so_the_report_and_rebuilt_plots_say_what_was_computed(tmp_path):
    from xdream.characterise.load import CharacterisationRun
    from xdream.config import read_toml
    from xdream.report import write_report

    protocol = Protocol.from_dict({"orientations": [0.0, 90.0], "phases": [0.0, 180.0], "frequencies": [2],
                                   "repeats": 3, "baseline_repeats": 3})
    settings = Settings(seed=3, size=16, method="exact", alpha=0.01, noise={"name": "gaussian"}, unit_plots=False)
    (unit,), _ = characterise({"rig": ConeContrast()}, protocol, settings, tmp_path / "run")
    config = read_toml(tmp_path / "run" / "config.toml")
    assert [config[k] for k in ("seed", "method", "alpha", "noise")] == [3, "exact", 0.01, {"name": "gaussian"}]
    ((_, (rebuilt,)),) = CharacterisationRun.open(tmp_path / "run").recordings().values()  # redraws the plots
    assert {k: (v.label, v.method) for k, v in rebuilt.sweeps.items()} == {
        k: (v.label, v.method) for k, v in unit.sweeps.items()}
    page = write_report(tmp_path / "run").read_text()
    assert "classification exact, noise gaussian" in page
