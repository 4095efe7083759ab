"""``xdream evolve --generator deepsim-fc6 --generator-weights FILE`` end to end, with a file in
the official format: verified, loaded, evolved, written; a file that fails verification stops the
run before anything is written. The generator's and the target's files travel separately
(``--generator-weights`` / ``--target-weights``); the old ``--weights`` is one line naming both."""

import json

import pytest
from PIL import Image

from xdream.cli import build_parser, config_from_args, main

FAST = ["--target", "efficientnet_lite0:_blocks.2:5", "--set", "responder.input_size=64",
        "--population", "4", "--generations", "2", "--quiet"]


def test_evolve_with_deepsim_fc6_weights_file(deepsim_file, tmp_path, capsys):
    path, sha = deepsim_file("fc6")
    out = tmp_path / "run"
    code = main(["evolve", "--generator", "deepsim-fc6", "--generator-weights", str(path),
                 "--set", f'generator.sha256="{sha}"', "--output", str(out), *FAST])
    assert code == 0, capsys.readouterr().err
    with Image.open(out / "best.png") as best:
        assert best.size == (256, 256)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generations"] == 2 and summary["evaluations"] == 8
    config = (out / "config.toml").read_text()
    assert 'name = "deepsim-fc6"' in config and f'weights = "{path}"' in config


def test_unverified_file_stops_before_anything_is_written(deepsim_file, tmp_path, capsys):
    path, _ = deepsim_file("fc6")
    out = tmp_path / "run"
    assert main(["evolve", "--generator", "deepsim-fc6", "--generator-weights", str(path), "--output", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected 224398749" in err and "--no-verify to --generator-weights FILE" in err
    assert not out.exists()


def test_wrong_variant_file_is_refused_with_no_verify(deepsim_file, tmp_path, capsys):
    path, _ = deepsim_file("fc8")
    out = tmp_path / "run"
    code = main(["evolve", "--generator", "deepsim-fc6", "--generator-weights", str(path), "--no-verify",
                 "--output", str(out), *FAST])
    assert code == 2 and "holds the weights of deepsim-fc8" in capsys.readouterr().err
    assert not out.exists()


def test_generator_and_target_files_each_reach_their_part(deepsim_file, tmp_path, capsys):
    """The issue's case: DeePSiM norm1 evolving a ResNet-18 unit, both from local files, offline;
    the hint a verification failure gives is a command that then works."""
    import torch
    import torchvision

    gen_path, _ = deepsim_file("norm1")
    r18 = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), r18)
    args = ["evolve", "--generator", "deepsim-norm1", "--target", "resnet18:layer3:12", "--generator-weights",
            str(gen_path), "--target-weights", str(r18), "--set", "responder.input_size=64", "--population", "4",
            "--generations", "1", "--quiet"]
    assert main([*args, "--output", str(tmp_path / "verified")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "add --no-verify to --generator-weights FILE" in err
    assert main([*args, "--no-verify", "--output", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    saved = (tmp_path / "run" / "config.toml").read_text()
    assert f'weights = "{gen_path}"' in saved and f'weights = "{r18}"' in saved
    run = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert run["evaluations"] == 4


def test_old_weights_flag_names_the_two_options(capsys, tmp_path):
    out = tmp_path / "run"
    code = main(["evolve", "--generator", "deepsim-norm1", "--target", "resnet18:layer3:12", "--weights", "r18.pth",
                 "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and not out.exists()
    assert "--generator-weights FILE" in err and "--target-weights FILE" in err and "r18.pth" in err


@pytest.mark.parametrize("flag, key", [("--generator-weights", "generator"), ("--target-weights", "responder")])
def test_weights_flags_set_their_plugin_table(flag, key):
    config = config_from_args(build_parser().parse_args(["evolve", "--generator", "deepsim-pool5", flag, "w.pt"]))
    assert getattr(config, key).options["weights"] == "w.pt"
    other = "responder" if key == "generator" else "generator"
    assert "weights" not in getattr(config, other).options


def test_weights_flags_reach_a_sessions_tables():
    args = build_parser().parse_args(["evolve", "--target", "efficientnet_lite0:_blocks.2", "--units", "0:2",
                                      "--generator", "deepsim-norm1", "--generator-weights", "g.pt",
                                      "--target-weights", "t.pt"])
    config = config_from_args(args)
    assert config.responder.options["weights"] == "t.pt"
    assert [t.generator.to_dict() for t in config.thread] == [{"name": "deepsim-norm1", "weights": "g.pt"}] * 2
