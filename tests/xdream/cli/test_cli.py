"""The command line: bad input gives one line, exit 2, no traceback and writes nothing."""

import subprocess

import pytest

from xdream.cli import main, parse_value

BAD_INPUTS = [
    (["--generator", "stylegan"], "unknown generator 'stylegan'; valid: "),
    (["--optimizer", "adam"], "unknown optimizer 'adam'; valid: "),
    (["--target", "vgg99:features.0:1"], "vgg99"),
    (["--target", "efficientnet_lite0:_blocks.99:1"], "_blocks.99"),
    (["--target", "efficientnet_lite0:_blocks.2:9999"], "9999"),
    (["--target", "efficientnet_lite0:_blocks.2"], "MODEL:LAYER:CHANNEL"),
    (["--target", "efficientnet_lite0:_blocks.2:x"], "'x'"),
    (["--set", "colour=1"], "unknown config key 'colour'"),
    (["--optimizer", "genetic", "--set", "optimizer.mutation_rate=\"high\""], "'mutation_rate' must be float, got 'high'"),
    (["--set", "seed=1.5"], "'seed' must be int, got 1.5"),
    (["--set", "noise.level=0.2"], "no [noise] table"),
    (["--set", "novalue"], "KEY=VALUE"),
    (["--noise", "laplace"], "unknown noise 'laplace'; valid: gaussian, poisson"),
    (["--population", "1"], "population must be >= 2, got 1"),
    (["--generations", "ten"], "invalid int value: 'ten'"),
    (["missing.toml"], "missing.toml not found"),
    (["--reference-folder", "nowhere"], "reference.folder 'nowhere' is not a folder"),
    (["--reference-per-generation", "-1"], "'reference.per_generation' must be an integer >= 0"),
    (["--set", "reference.colour=1"], "unknown config key 'reference.colour'; valid: folder, per_generation"),
    (["--unscored", "later"], "invalid choice: 'later'"),
    (["--set", "reshow_attempts=0"], "'reshow_attempts' must be 1..10, got 0"),
    # former tracebacks (issue 15)
    (["--device", "gpu"], "unknown device 'gpu'; valid: cpu, cuda, cuda:N, mps"),
    (["--seed", "-1"], "'seed' must be an integer >= 0, got -1"),
    (["."], "is a folder; give a .toml file"),
    (["--generations", "2", "--budget", "100"], "--generations 2 and --budget 100 are mutually exclusive"),
    (["--population", "100000000"], "population 100000000 needs about"),
    (["--allow-changed", "seed"], "--allow-changed needs --resume RUN_DIR"),
    # a typo'd thread count: torch ended in std::bad_alloc (a traceback) or a segfault
    (["--threads", "100000"], "'threads' must be <= 1024"),
    # an empty weights path said "weights file . not found", a folder "not found"; an empty --output was ignored
    (["--set", "responder.weights=''"], "efficientnet_lite0: the weights file path is empty"),
    (["--generator", "dcgan-faces", "--set", "generator.weights=''"],
     "generator 'dcgan-faces': the weights file path is empty"),
    (["--target-weights", "."], "efficientnet_lite0: weights file . is a folder, not a file"),
    (["--generator", "dcgan-faces", "--generator-weights", "."], "generator 'dcgan-faces': weights file . is a folder"),
    (["--target-weights", ""], "argument --target-weights: the path is empty"),
    (["--output", ""], "argument --output: the path is empty"),
    # the config check named the key (init_image, init_characterisation), not the flag
    (["--init-image", ""], "argument --init-image: the path is empty"),
    (["--init-from-characterisation", ""], "argument --init-from-characterisation: the path is empty"),
    # the config check named its key: "unknown option 'verify' for generator 'dcgan-faces'; valid: weights"
    (["--generator", "dcgan-faces", "--no-verify"], "--no-verify: generator 'dcgan-faces' has no weights check to "
     "skip; generators that take it: biggan-deep-128, biggan-deep-256, biggan-deep-512, deepsim-conv3"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_input_one_line_exit_2_nothing_written(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # argparse keeps the last of a repeated flag, so the case's --generator wins over pixel
    assert main(["evolve", "--generator", "pixel", "--output", "out", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == [], "nothing may be written"


def test_an_empty_output_in_a_config_file_is_refused_not_ignored(tmp_path, monkeypatch, capsys):
    """output = "" (an unset variable in a generated config) fell back to a new folder under runs/."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.toml").write_text('output = ""\ngenerations = 1\n[generator]\nname = "pixel"\n')
    assert main(["evolve", "job.toml"]) == 2
    err = capsys.readouterr().err
    assert "config key 'output' is empty" in err and err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["job.toml"]


@pytest.mark.parametrize("argv", [["gradient", "--steps", "1", "--size", "32"], ["gradient", "--target-weights", ""],
                                  ["characterise", "efficientnet_lite0:_blocks.0:2"],
                                  ["characterise", "efficientnet_lite0:_blocks.0:2", "--target-weights", "."]])
def test_empty_output_or_weights_is_refused_not_ignored(argv, tmp_path, monkeypatch, capsys):
    """An empty --output fell back to a new folder under runs/, an empty --target-weights to the published weights."""
    monkeypatch.chdir(tmp_path)
    output = [] if "--target-weights" in argv else ["--output", ""]
    assert main([*argv, *output, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert ("the path is empty" in err or "is a folder" in err) and err.count("\n") == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_cuda_without_a_gpu_is_one_line_before_anything_is_built(tmp_path, monkeypatch, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU, so --device cuda is valid here")
    monkeypatch.chdir(tmp_path)
    assert main(["evolve", "--device", "cuda", "--output", "out"]) == 2
    err = capsys.readouterr().err
    assert "device 'cuda': no CUDA GPU is available" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_usage_errors_name_the_command(capsys):
    assert main(["evolve", "--generations"]) == 2
    assert "(see xdream evolve --help)" in capsys.readouterr().err
    assert main(["nonsense"]) == 2
    assert "(see xdream --help)" in capsys.readouterr().err


def test_version_and_python_m_xdream(xdream_cmd):
    import sys

    from xdream import __version__

    for cmd in ([sys.executable, "-m", "xdream", "--version"], [*xdream_cmd, "--version"]):
        result = subprocess.run(cmd, capture_output=True, text=True)
        assert result.returncode == 0 and result.stdout.strip() == f"xdream {__version__}", result


def test_real_process_exit_code_and_single_line(tmp_path, xdream_cmd):
    result = subprocess.run([*xdream_cmd, "evolve", "--target", "efficientnet_lite0:_blocks.2:9999"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("xdream: error: ")
    assert "9999" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_output_piped_into_a_reader_that_stops_early(xdream_cmd):
    """`xdream layers MODEL | head -1` when head has gone: exit 1, no traceback, no stderr noise."""
    lister = subprocess.Popen([*xdream_cmd, "layers", "efficientnet_lite0"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    lister.stdout.close()  # the reader is gone before the command prints anything
    err = lister.stderr.read()
    assert lister.wait() == 1
    assert err == ""


def test_resume_refuses_other_options(tmp_path, capsys):
    assert main(["evolve", "--resume", str(tmp_path), "--seed", "3"]) == 2
    assert "--seed" in capsys.readouterr().err
    assert main(["evolve", "job.toml", "--resume", str(tmp_path), "--seed", "3"]) == 2
    assert "; drop job.toml --seed" in capsys.readouterr().err  # everything to drop, the config file too


def test_existing_output_is_refused_and_kept(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep")
    assert main(["evolve", "--generator", "pixel", "--output", str(tmp_path / "out")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["precious.txt"]


def test_list_names_every_plugin(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("genetic", "cmaes", "dcgan-faces", "fourier", "pixel", "torch-unit", "poisson", "gaussian"):
        assert name in out


def test_layers_lists_module_paths(capsys):
    assert main(["layers", "efficientnet_lite0"]) == 0
    out = capsys.readouterr().out
    assert "_blocks.6" in out and "_fc" in out


def test_cli_run_with_overrides(tmp_path, fast_job, capsys):
    out = tmp_path / "run"
    code = main(["evolve", "--generator", "pixel", "--set", "generator.size=16", "--target",
                 "efficientnet_lite0:_blocks.2:5", "--set", "responder.input_size=64", "--population", "6",
                 "--generations", "3", "--optimizer", "genetic", "--set", "optimizer.mutation_rate=0.25",
                 "--output", str(out), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "first generation" in printed
    saved = (out / "config.toml").read_text()
    assert "mutation_rate = 0.25" in saved and "population = 6" in saved


def test_parse_value():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value('"x"') == "x" and parse_value("plain") == "plain"


@pytest.mark.parametrize("photos, message", [(0, "has no readable images"), (2, "has 2 images; allowed: 0..2")])
def test_reference_folder_is_read_before_anything_is_written(tmp_path, photos, message, capsys):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(photos):
        Image.new("RGB", (20, 20), (100 * i, 0, 0)).save(folder / f"p{i}.png")
    out = tmp_path / "run"
    assert main(["evolve", "--generator", "pixel", "--reference-folder", str(folder),
                 "--reference-per-generation", "3", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_cli_reference_and_reshow_flags(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["evolve", "--generator", "pixel", "--set", "generator.size=16", "--target",
                 "efficientnet_lite0:_blocks.2:5", "--set", "responder.input_size=64", "--population", "6",
                 "--generations", "2", "--reference-per-generation", "1", "--unscored", "reshow", "--set",
                 "reshow_attempts=2", "--output", str(out), "--quiet"]) == 0
    assert "2 generations, 12 evaluations (14 images shown)" in capsys.readouterr().out
    saved = (out / "config.toml").read_text()
    assert 'unscored = "reshow"' in saved and "reshow_attempts = 2" in saved
    assert "[reference]\nper_generation = 1" in saved


def test_abort_message_names_the_checkpointed_generation(tmp_path, fast_job):
    """A second Ctrl-C while generation 3 is in flight: the checkpoint holds 0-2."""
    from xdream import Experiment, ExperimentConfig
    from xdream.cli.evolve import abort_message

    experiment = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=tmp_path / "run")
    assert "no generation was checkpointed yet" in abort_message(experiment)
    for _ in range(3):
        experiment.step()
    experiment.generation += 1  # as when _save_generation has run but the checkpoint not yet
    assert "the checkpoint holds generations 0-2:" in abort_message(experiment)
    experiment.close()


@pytest.mark.parametrize("after", [0.3, 1.5])
def test_early_ctrl_c_is_one_line_without_traceback(tmp_path, xdream_cmd, after):
    """SIGINT while the command is still loading (imports, models): exit 130, one line."""
    import signal
    import sys
    import time

    # Ctrl-C as in a terminal, whatever this test runner inherited: a shell's background job
    # starts with SIGINT ignored, and Python then never raises KeyboardInterrupt
    process = subprocess.Popen([sys.executable, "-m", "xdream", "evolve", "--output", str(tmp_path / "run")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(after)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert "Traceback" not in err and err.count("\n") <= 2, err
    assert process.returncode in (130, -signal.SIGINT), err



def _parsers(parser, path=()):
    """(command path, parser) for the parser and every subcommand parser below it."""
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_options_are_matched_exactly_never_by_prefix(tmp_path, monkeypatch, capsys):
    """``--generation 3`` is an error, not ``--generations 3`` (argparse's prefix matching would
    run the typo); so for every command's parser, and for the rig tools' own parsers."""
    from xdream.cli.main import build_parser

    monkeypatch.chdir(tmp_path)
    assert main(["evolve", "--generation", "3", "--output", "out"]) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --generation " in err and err.count("\n") == 1
    parsers = dict(_parsers(build_parser()))
    assert {("evolve",), ("weights", "list"), ("compare",), ("report",)} <= set(parsers)
    assert [path for path, parser in parsers.items() if parser.allow_abbrev] == []
    for tool, prefix, *given in (("simulate", "--weight", "--target", "alexnet:features.0:1"),
                                 ("check", "--timeou", "tcp://127.0.0.1:9"), ("keygen", "--di")):
        assert main(["rig", tool, *given, prefix, "x"]) == 2, tool
        err = capsys.readouterr().err
        assert f"unrecognized arguments: {prefix}" in err and err.count("\n") == 1, tool  # one line, as every error
    assert list(tmp_path.iterdir()) == []


def test_plugin_flags_name_the_plugin_of_a_config_file_without_its_table(tmp_path, capsys):
    """A config file may leave [generator] and [optimizer] out (the defaults fill them in);
    --generator / --optimizer then give the table its name instead of being refused."""
    config = tmp_path / "job.toml"
    config.write_text('generations = 1\n[responder]\nname = "torch-unit"\ntarget = "efficientnet_lite0:_blocks.2:5"\n'
                      'input_size = 64\n')
    out = tmp_path / "run"
    assert main(["evolve", str(config), "--generator", "pixel", "--set", "generator.size=16", "--optimizer", "genetic",
                 "--population", "6", "--output", str(out), "--quiet"]) == 0, capsys.readouterr().err
    saved = (out / "config.toml").read_text()
    assert '[generator]\nname = "pixel"\nsize = 16' in saved
    assert '[optimizer]\nname = "genetic"\npopulation = 6' in saved
