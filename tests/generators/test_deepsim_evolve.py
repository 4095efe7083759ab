"""``xdream evolve --generator deepsim-fc6 --weights FILE`` end to end, with a file in the
official format: verified, loaded, evolved, written; a file that fails verification stops the
run before anything is written."""

import json

import pytest
from PIL import Image

from xdream.cli import build_parser, config_from_args, main

FAST = ["--target", "efficientnet_lite0:_blocks.2:5", "--set", "responder.input_size=64",
        "--population", "4", "--generations", "2", "--quiet"]


def test_evolve_with_deepsim_fc6_weights_file(deepsim_file, tmp_path, capsys):
    path, sha = deepsim_file("fc6")
    out = tmp_path / "run"
    code = main(["evolve", "--generator", "deepsim-fc6", "--weights", str(path),
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
    assert main(["evolve", "--generator", "deepsim-fc6", "--weights", str(path), "--output", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected 224398749" in err and "--no-verify" in err
    assert not out.exists()


def test_wrong_variant_file_is_refused_with_no_verify(deepsim_file, tmp_path, capsys):
    path, _ = deepsim_file("fc8")
    out = tmp_path / "run"
    code = main(["evolve", "--generator", "deepsim-fc6", "--weights", str(path), "--no-verify",
                 "--output", str(out), *FAST])
    assert code == 2 and "holds the weights of deepsim-fc8" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("generator, key", [("deepsim-pool5", "generator"), ("pixel", "responder")])
def test_weights_flag_goes_to_the_part_that_loads_a_file(generator, key):
    config = config_from_args(build_parser().parse_args(["evolve", "--generator", generator, "--weights", "w.pt"]))
    assert getattr(config, key).options["weights"] == "w.pt"
    other = "responder" if key == "generator" else "generator"
    assert "weights" not in getattr(config, other).options
