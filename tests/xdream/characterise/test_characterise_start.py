"""``xdream evolve --init-from-characterisation RUN``: a real characterisation, then an evolution
whose first population sits at the code of the unit's preferred stimulus; bad input is one
line, exit 2, nothing written."""

import json

import numpy as np
import pytest
import torch

from characterise_runs import LAYER, UNIT
from xdream import Experiment, ExperimentConfig
from xdream.core import registry
from xdream.characterise.load import CharacterisationRun, preferred_stimulus
from xdream.characterise.protocol import render_described
from xdream.cli import main
from xdream.config import to_toml
from xdream.core.errors import ConfigError
from xdream.core.generator import Generator
from xdream.images.io import load_image, to_uint8
from xdream.evolve.inversion import encode
from xdream.core.seeding import derive_rngs
from xdream.report import write_report


def cmaes_job(fast_job, **extra):
    """The fast job (pixel 16 px -> UNIT) with CMA-ES at a small step: generation 0 is its start."""
    return {**fast_job, "generations": 1, "optimizer": {"name": "cmaes", "population": 8, "sigma0": 0.1}, **extra}


def evolve(tmp_path, job, name, *flags):
    config = tmp_path / f"{name}.toml"
    config.write_text(to_toml(job))
    assert main(["evolve", str(config), "--output", str(tmp_path / name), "--quiet", *flags]) == 0
    return tmp_path / name


def test_first_generation_starts_at_the_preferred_stimulus_code(unit_run, fast_job, tmp_path):
    job = cmaes_job(fast_job)
    run = evolve(tmp_path, job, "from-char", "--init-from-characterisation", str(unit_run))
    # the preferred stimulus: the best stimulus of the sweep that drove the unit most
    (record,) = json.loads((unit_run / "summary.json").read_text())["unit_results"]
    best_sweep = max(record["sweeps"], key=lambda s: record["sweeps"][s]["max"])
    init = json.loads((run / "init.json").read_text())
    assert init["source"] == "characterisation" and init["unit"] == UNIT
    assert init["stimulus"] == record["sweeps"][best_sweep]["preferred"]
    assert init["response"] == record["sweeps"][best_sweep]["max"]
    assert init["notes"] == record["sweeps"][best_sweep]["notes"] != []  # grating frequency 4: the highest tested
    assert f"the preferred stimulus: {init['notes'][0]}" in write_report(run).read_text()
    # re-rendered with the exact parameters at the generator's size, and inverted
    target = render_described(init["stimulus"], 16)
    assert np.array_equal(to_uint8(load_image(run / "init_target.png")), to_uint8(target))
    generator = registry.create("generator", "pixel", {"size": 16})
    code = encode(generator, target, derive_rngs(job["seed"])["inversion"]).code
    with torch.no_grad():
        reconstruction = generator.decode(code[None])[0]
    assert np.array_equal(to_uint8(load_image(run / "init_reconstruction.png")), to_uint8(reconstruction))
    assert init["inversion_mse"] < 0.01
    assert (run / "init_unit_plot.png").read_bytes() == (unit_run / "plots" / f"{UNIT.replace(':', '-')}.png").read_bytes()
    # generation 0 surrounds the inverted code; a run without the start does not
    codes = np.load(run / "generations" / "gen_0000.npz")["codes"]
    rms = np.sqrt(((codes - code) ** 2).mean(axis=1))
    assert rms.max() < 0.15
    plain = evolve(tmp_path, job, "plain")
    plain_codes = np.load(plain / "generations" / "gen_0000.npz")["codes"]
    assert np.sqrt(((plain_codes - code) ** 2).mean(axis=1)).min() > 5 * rms.max()
    # and, on this unit, scores higher than the prior's start at the same step size
    scores = np.load(run / "generations" / "gen_0000.npz")["scores"]
    plain_scores = np.load(plain / "generations" / "gen_0000.npz")["scores"]
    assert np.median(scores) > np.median(plain_scores)
    assert 'init_characterisation = "' in (run / "config.toml").read_text()


def test_layer_run_uses_the_evolution_target_unit(layer_run, unit_run, fast_job, tmp_path):
    job = {**fast_job, "generations": 1}
    run = evolve(tmp_path, job, "layer", "--init-from-characterisation", str(layer_run))
    init = json.loads((run / "init.json").read_text())
    assert init["unit"] == UNIT and init["group"] == LAYER
    (single,) = CharacterisationRun.open(unit_run).units
    assert init["stimulus"] == preferred_stimulus(single)[0]  # the same unit characterised twice
    assert not (run / "init_unit_plot.png").exists()  # the layer run has no unit plots
    chosen = evolve(tmp_path, {**job, "init_sweep": "spectral"}, "unit-7", "--init-from-characterisation",
                    str(layer_run), "--init-unit", f"{LAYER}:7")
    init = json.loads((chosen / "init.json").read_text())
    assert init["unit"] == f"{LAYER}:7" and init["stimulus"]["sweep"] == "spectral"


def test_genetic_population_contains_the_code(unit_run, fast_job, tmp_path):
    config = ExperimentConfig.from_dict({**fast_job, "generations": 1, "init_characterisation": str(unit_run)})
    experiment = Experiment(config, run_dir=tmp_path / "run")
    experiment.step()
    experiment.close()
    np.testing.assert_array_equal(experiment.run_dir.load_arrays(0)["codes"][0], experiment.inversion.code)


class Frozen(Generator):
    """Decodes through numpy: images carry no gradient, so it cannot encode."""

    name = "frozen"
    latent_shape = (3, 8, 8)
    image_size = 8

    def decode_tensor(self, codes):
        return torch.from_numpy(1 / (1 + np.exp(-codes.detach().cpu().numpy()))).reshape(-1, 3, 8, 8)


def test_generator_that_cannot_encode_writes_nothing(unit_run, fast_job, tmp_path):
    config = ExperimentConfig.from_dict({**fast_job, "init_characterisation": str(unit_run)})
    with pytest.raises(ConfigError, match="generator 'frozen' cannot encode images"):
        Experiment(config, generator=Frozen(), run_dir=tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


BAD = [
    (["--init-from-characterisation", "nowhere"], "characterisation run nowhere not found"),
    (["--init-from-characterisation", "plain"], "plain is not a characterisation run"),
    (["--init-from-characterisation", "plain/config.toml"], "characterisation run plain/config.toml is a file"),
    (["--init-from-characterisation", "{layer}", "--target", "efficientnet_lite0:_blocks.3:1"],
     "has 24 units and none is the evolution's target 'efficientnet_lite0:_blocks.3:1'; choose one with --init-unit"),
    (["--init-from-characterisation", "{layer}", "--init-unit", "efficientnet_lite0:_blocks.2:99"],
     "unit 'efficientnet_lite0:_blocks.2:99' is not in characterisation run"),
    (["--init-from-characterisation", "{unit}", "--set", "init_sweep='dog'"],
     "init_sweep 'dog' was not run for unit 'efficientnet_lite0:_blocks.2:5'; valid: spectral, spatial"),
    (["--init-from-characterisation", "{unit}", "--init-image", "x.png"],
     "init_image ('x.png') and init_characterisation"),
    (["--init-unit", "efficientnet_lite0:_blocks.2:5"], "init_unit = 'efficientnet_lite0:_blocks.2:5' needs init_characterisation"),
]


@pytest.mark.parametrize("flags, message", BAD, ids=[m.split(";")[0][:40] for _, m in BAD])
def test_bad_start_one_line_exit_2_nothing_written(flags, message, unit_run, layer_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "config.toml").write_text("seed = 0\n")  # a run folder, but no characterisation
    flags = [f.format(unit=unit_run, layer=layer_run) for f in flags]
    argv = ["evolve", "--generator", "pixel", "--set", "generator.size=16", "--set", "responder.input_size=64",
            "--target", UNIT, "--output", "out", "--quiet"]
    if "--target" in flags:
        argv.remove("--target"), argv.remove(UNIT)
    assert main([*argv, *flags]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]
    assert [p.name for p in (tmp_path / "plain").iterdir()] == ["config.toml"]
