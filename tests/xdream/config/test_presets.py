"""Presets for the published setups: every preset is a valid config documented with its source;
a preset whose weights files are missing is refused in one line naming them and the command that
fetches them, and runs offline from files the test makes (random weights, the published keys and
shapes) passed with --generator-weights / --target-weights."""

import tomllib

import pytest
import torch
import torchvision

from generators import deepsim
from responders.models import caffenet
from xdream.cli import main
from xdream.config import ExperimentConfig, presets
from xdream.core.errors import UnknownNameError


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """No weights anywhere: an empty xdream cache and an empty torch hub cache."""
    monkeypatch.setenv("XDREAM_HOME", str(tmp_path / "xdream-home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return tmp_path


@pytest.fixture(scope="module")
def made_files(tmp_path_factory):
    """Random-weights files in the published formats: DeePSiM fc6, CaffeNet, torchvision AlexNet."""
    root = tmp_path_factory.mktemp("preset-files")
    files = {"fc6": root / "upconvGAN_fc6.pt", "caffenet": root / "caffenet.pt", "alexnet": root / "alexnet.pth"}
    torch.save(deepsim.init_state_dict("fc6", seed=0), files["fc6"])
    torch.save(caffenet.init_state_dict(seed=1), files["caffenet"])
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), files["alexnet"])
    yield files
    for path in files.values():
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("name", presets.names())
def test_every_preset_is_a_valid_documented_config(name):
    table = presets.preset(name)
    assert table["source"] and len(table["conventions"]) >= 2
    config = ExperimentConfig.from_dict(presets.preset_config(name))
    assert config.generator.name == "deepsim-fc6"


def test_the_published_settings():
    xdream = ExperimentConfig.from_dict(presets.preset_config("xdream"))
    assert xdream.responder.options["target"].startswith("caffenet:") and xdream.generations == 500
    assert xdream.optimizer.to_dict() == {"name": "genetic", "preset": "xdream"}
    wp = ExperimentConfig.from_dict(presets.preset_config("wang-ponce"))
    assert wp.optimizer.to_dict() == {"name": "cholesky-cma", "population": 40, "sigma0": 3.0, "update_every": 10}
    assert wp.responder.options["target"].startswith("alexnet:") and wp.responder.options["input_size"] == 227
    assert wp.budget == 3000
    sphere = ExperimentConfig.from_dict(presets.preset_config("wang-ponce-sphere")).optimizer.options
    assert (sphere["population"], sphere["select"], sphere["sphere_norm"], sphere["lr"]) == (40, 20, 300.0, 1.5)
    with pytest.raises(UnknownNameError, match="unknown preset 'xdraem'; valid: .*wang-ponce"):
        presets.preset("xdraem")


@pytest.mark.parametrize("name, files", [
    ("xdream", ["upconvGAN_fc6.pt", "xdream weights download deepsim-fc6", "caffenet.pt",
                "xdream weights download caffenet"]),
    ("wang-ponce", ["upconvGAN_fc6.pt", "alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/"]),
])
def test_missing_files_are_refused_in_one_line(name, files, empty_caches, capsys):
    out = empty_caches / "run"
    assert main(["evolve", "--preset", name, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not out.exists()
    for text in [*files, f"xdream weights download --preset {name}", "--generator-weights FILE"]:
        assert text in err, text
    assert main(["weights", "download", "--preset", name, "--dry-run"]) == 0
    listing = capsys.readouterr().out
    assert listing.count("MISSING") == 2 and presets.preset(name)["source"][:20] in listing
    assert not list(empty_caches.rglob("*.pt*"))  # a dry run fetches nothing


def test_presets_run_from_local_files(made_files, empty_caches, capsys):
    """Both published setups end to end, offline, at a tiny size; the run records the preset's
    settings with the flags' overrides."""
    common = ["--generator-weights", str(made_files["fc6"]), "--no-verify", "--population", "4",
              "--generations", "1", "--quiet"]
    for name, target in (("xdream", made_files["caffenet"]), ("wang-ponce", made_files["alexnet"])):
        out = empty_caches / name
        code = main(["evolve", "--preset", name, "--target-weights", str(target), *common, "--output", str(out)])
        assert code == 0, capsys.readouterr().err
        saved = tomllib.loads((out / "config.toml").read_text())
        expected = ExperimentConfig.from_dict(presets.preset_config(name))
        assert saved["responder"] == {**expected.responder.to_dict(), "weights": str(target)}
        assert saved["optimizer"] == {**expected.optimizer.to_dict(), "population": 4}
        assert saved["generator"]["weights"] == str(made_files["fc6"]) and saved["generations"] == 1
        assert (out / "best.png").is_file()


def test_preset_with_a_config_file_or_a_session_is_refused(tmp_path, capsys):
    (tmp_path / "job.toml").write_text("seed = 1\n")
    assert main(["evolve", str(tmp_path / "job.toml"), "--preset", "xdream"]) == 2
    assert "--preset xdream and the config file" in capsys.readouterr().err
    assert main(["evolve", "--preset", "wang-ponce", "--target", "alexnet:features.10", "--units", "0:2"]) == 2
    assert "--preset wang-ponce describes a one-thread run" in capsys.readouterr().err
