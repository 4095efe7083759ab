"""``xdream gradient`` and ``xdream compare`` end to end on real models, and their bad input."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from xdream.core import registry
from xdream.cli import main
from xdream.runs.rundir import RunDir

QUICK = ["--preset", "quick", "--generator", "pixel", "--seed", "1", "--quiet"]


def test_compare_writes_table_report_and_consistent_scores(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", *QUICK, "--optimizers", "genetic", "--gradient", "featurevis,latent",
                 "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| genetic |" in printed and "report: " in printed
    data = json.loads((out / "compare.json").read_text())
    methods = {m["method"].split(" ")[0]: m for m in data["methods"]}
    assert set(methods) == {"genetic", "featurevis", "latent", "natural"}
    natural = methods["natural"]
    assert natural["cost"] == 70 and natural["ratio"] == pytest.approx(1.0)
    for m in methods.values():
        assert m["ratio"] == pytest.approx(m["best"] / natural["best"])
        assert m["best"] == pytest.approx(max(m["top_scores"]))
        assert (out / m["montage"]).is_file()
    # re-scoring the evolution's best codes reproduces the best score the run logged
    log = [json.loads(line) for line in (out / "evolution-genetic" / "log.jsonl").read_text().splitlines()]
    assert methods["genetic"]["best"] == pytest.approx(max(r["best"] for r in log), rel=1e-5)
    assert methods["genetic"]["cost"] == log[-1]["evaluations"]
    # the gradient folders' saved best images score as reported (up to 8-bit rounding)
    unit = registry.create("responder", "torch-unit", {"target": data["responder"]["target"], "input_size": 64})
    best = np.asarray(Image.open(out / "gradient-featurevis" / "best.png"), dtype=np.float32) / 255
    import torch

    rescored = unit.respond(torch.from_numpy(best).permute(2, 0, 1)[None])[0]
    assert rescored == pytest.approx(methods["featurevis"]["best"], abs=0.05 * abs(methods["featurevis"]["best"]) + 0.05)
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert [r["kind"] for r in rows] == ["evolution", "gradient", "gradient", "natural"]
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5 and "http-equiv" not in html
    for folder in ("evolution-genetic", "gradient-featurevis", "gradient-latent"):
        assert (out / folder / "report.html").is_file()
    assert (out / "trajectories.png").stat().st_size > 1000
    RunDir.open(out).lock.release()  # the comparison let go of its folder: this process can take it again


def test_compare_json_records_the_torch_threads_its_numbers_depend_on(tmp_path):
    """The table's activations (natural images, gradient baselines) differ bit-wise between 1 and
    2 torch threads: compare.json and each gradient folder's gradient.json say which count made
    them, as each evolution folder's config.toml does."""
    import tomllib

    import torch

    out, before = tmp_path / "cmp", torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert main(["compare", *QUICK, "--optimizers", "genetic", "--gradient", "featurevis",
                     "--output", str(out)]) == 0
    finally:
        torch.set_num_threads(before)
    assert json.loads((out / "compare.json").read_text())["threads"] == 1
    assert json.loads((out / "gradient-featurevis" / "gradient.json").read_text())["threads"] == 1
    assert tomllib.loads((out / "evolution-genetic" / "config.toml").read_text())["threads"] == 1


def test_gradient_command_writes_a_run(tmp_path, capsys):
    out = tmp_path / "g"
    assert main(["gradient", "--target", "efficientnet_lite0:_blocks.2:5", "--steps", "3", "--size", "32",
                 "--batch", "2", "--tv", "0.001", "--output", str(out), "--quiet"]) == 0
    data = json.loads((out / "gradient.json").read_text())
    assert data["method"] == "featurevis" and len(data["scores"]) == 2 and data["steps"] == 3
    assert "tv(input)" in data["objective"]
    assert data["best"] == max(data["scores"])
    assert sorted(p.name for p in (out / "images").iterdir()) == ["final_00.png", "final_01.png"]
    assert (out / "report.html").is_file() and "objective neuron(_blocks.2:5)" in capsys.readouterr().out


def test_gradient_prints_and_plots_the_objective_it_optimised(tmp_path, capsys):
    """--objective class:N optimises a logit: that is what is printed and recorded, and the
    unit's own activation is named as such."""
    out = tmp_path / "g"
    assert main(["gradient", "--target", "efficientnet_lite0:_blocks.2:5", "--objective", "class:285", "--steps", "3",
                 "--size", "32", "--output", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    data = json.loads((out / "gradient.json").read_text())
    assert data["objective"] == "class_logit(285)"
    assert f"objective class_logit(285) at the last step: {data['final_objective']:.4g}" in printed
    assert f"unit activation of the best final image: {data['best']:.4g}" in printed
    assert data["final_objective"] == data["history"][-1]["objective"]


BAD = [
    (["compare", "--reference", "{empty}"], "has no readable images"),
    # an empty path (an unset shell variable) was read as the current folder, "."
    (["compare", "--reference", ""], "argument --reference-folder/--reference: the path is empty"),
    (["compare", "--from-session", ""], "argument --from-session: the path is empty"),
    (["gradient", "--method", "deepdream", "--image", ""], "argument --image: the path is empty"),
    (["compare", "--optimizers", "adam"], "unknown optimizer 'adam'"),
    (["compare", "--gradient", "cppn"], "unknown gradient method 'cppn'; valid: featurevis, pixel, latent, deepdream"),
    (["compare", "--preset", "huge"], "unknown compare preset 'huge'; valid: default, quick"),
    (["compare", "--target", "efficientnet_lite0:_blocks.2:999"], "999"),
    (["gradient", "--method", "latent", "--generator", "stylegan"], "unknown generator 'stylegan'"),
    (["gradient", "--objective", "everything"], "unknown objective 'everything'; valid: unit, channel, layer, class:N"),
    (["gradient", "--method", "deepdream", "--image", "{text}"], "is not a readable image file"),
    (["gradient", "--steps", "0"], "steps must be >= 1, got 0"),
    (["gradient", "--objective", "class:5000"], "objective class:5000 cannot be computed on"),
    (["gradient", "--lr", "-1"], "learning rate must be a finite number > 0, got -1.0"),
    (["gradient", "--method", "deepdream", "--octave-scale", "1"], "octave_scale must be > 1"),
    # an option the method does not use is refused, naming it, the method and the methods that use it
    (["gradient", "--method", "deepdream", "--batch", "2"], "batch 2 is not used by method 'deepdream'; methods that "
     "use it: featurevis, pixel, latent"),
    (["gradient", "--method", "deepdream", "--transforms"], "transforms True is not used by method 'deepdream'"),
    (["gradient", "--method", "deepdream", "--no-transforms"], "transforms False is not used by method 'deepdream'"),
    (["gradient", "--image", "{text}"], "image '{text}' is not used by method 'featurevis'; methods that use it: "
     "deepdream"),
    (["gradient", "--method", "latent", "--octaves", "2"], "octaves 2 is not used by method 'latent'"),
    (["gradient", "--method", "pixel", "--octave-scale", "2"], "octave_scale 2.0 is not used by method 'pixel'"),
    (["gradient", "--generator", "pixel"], "generator {{'name': 'pixel'}} is not used by method "
     "'featurevis'; methods that use it: latent"),
    (["gradient", "--method", "latent", "--size", "64"], "size 64 is not used by method 'latent'; methods that "
     "use it: featurevis, pixel, deepdream"),
    (["report", "{empty}"], "is not an xdream run"),
    # ended in a torch "can't allocate memory" traceback after the output folder was made
    (["gradient", "--batch", "99999999999"], "gradient batch 99999999999 needs about"),
    (["gradient", "--method", "pixel", "--batch", "99999999999"], "gradient batch 99999999999 needs about"),
    (["gradient", "--method", "latent", "--batch", "99999999999"], "gradient batch 99999999999 needs about"),
    (["compare", "--preset", "quick", "--batch", "99999999999"], "gradient batch 99999999999 needs about"),
    (["gradient", "--method", "deepdream", "--size", "99999999"], "gradient image size must be in [1, 2048] px for "
     "deepdream, got 99999999"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_one_line_exit_2_nothing_written(argv, message, tmp_path, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("words")
    monkeypatch.chdir(tmp_path)
    argv = [a.format(empty=tmp_path / "empty", text=tmp_path / "notes.txt") for a in argv]
    message = message.format(text=tmp_path / "notes.txt")
    extra = ["--output", "out"] if argv[0] != "report" else []
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "notes.txt"]
    assert not any((tmp_path / "empty").iterdir())


@pytest.mark.parametrize("flags, message", [
    (["--optimizers", "genetic,genetic", "--gradient", ""], "compare names optimizer 'genetic' twice"),
    (["--optimizers", "", "--gradient", "latent,featurevis,latent"], "compare names gradient method 'latent' twice"),
])
def test_compare_refuses_a_method_named_twice_before_anything_is_written(flags, message, tmp_path, capsys):
    """A repeated method would run again into its own folder, after the first run: refused up front."""
    out = tmp_path / "cmp"
    assert main(["compare", *QUICK, *flags, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("methods", [["--optimizers", "genetic", "--gradient", "featurevis"],
                                     ["--optimizers", "", "--gradient", "latent"]], ids=["evolution", "latent"])
def test_compare_refuses_missing_generator_weights_before_writing(methods, tmp_path, monkeypatch, capsys):
    """A generator whose weights are not in the cache: one line naming the file and how compare
    gets it (the cache; compare has no --generator-weights), and no folder is left to block a rerun."""
    monkeypatch.setenv("XDREAM_HOME", str(tmp_path / "home"))
    out = tmp_path / "cmp"
    assert main(["compare", "--preset", "quick", "--generator", "deepsim-fc6", *methods, "--quiet",
                 "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(tmp_path / "home" / "weights" / "upconvGAN_fc6.pt") in err
    assert "xdream weights download deepsim-fc6" in err and "XDREAM_HOME" in err
    assert "--generator-weights" not in err and "--target-weights" not in err
    assert not out.exists()
