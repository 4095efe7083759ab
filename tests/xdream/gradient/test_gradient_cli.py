"""``xdream gradient`` names what each of its numbers measures: the objective the ascent
maximised (on transformed images, with penalties) and the target unit's re-scored activation of
the best final image; the command's output and the page agree with gradient.json."""

from __future__ import annotations

import json
import re

from xdream.cli import main

UNIT = "efficientnet_lite0:_blocks.4:3"  # as tests/xdream/gradient/conftest.py


def test_objective_and_unit_activation_are_labelled_printed_and_on_the_page(tmp_path, capsys):
    out = tmp_path / "grad"
    assert main(["gradient", "--target", UNIT, "--steps", "3", "--size", "32", "--tv", "0.001", "--quiet",
                 "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads((out / "gradient.json").read_text())
    objective = re.search(r"^  objective (.+) at the last step: (\S+) \((.+)\)$", printed, re.M)
    activation = re.search(r"^  unit activation of the best final image: (\S+) \((.+)\)$", printed, re.M)
    assert objective and activation, printed
    assert float(objective[2]) == float(f"{data['final_objective']:.4g}")
    assert float(activation[1]) == float(f"{data['best']:.4g}")
    assert "randomly transformed" in objective[3] and "minus the tv penalties" in objective[3]
    assert "untransformed" in activation[2] and data["objective_meaning"] == objective[3]
    page = (out / "report.html").read_text()
    assert "<th>objective at the last step</th><th>unit activation of the best final image</th>" in page
    assert data["objective_meaning"] in page and data["activation_meaning"] in page
    assert "best activation" not in page  # the old unlabelled column


def test_gradient_json_records_the_torch_threads_its_numbers_depend_on(tmp_path):
    """One seed repeats a gradient run only at the same torch thread count (1 and 2 threads sum
    in different orders: 8 featurevis steps at 32 px re-scored an image 2.07 with 2 threads and
    5.06 with 1): gradient.json says which count made its numbers."""
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert main(["gradient", "--target", UNIT, "--steps", "2", "--size", "32", "--quiet",
                     "--output", str(tmp_path / "grad")]) == 0
    finally:
        torch.set_num_threads(before)
    assert json.loads((tmp_path / "grad" / "gradient.json").read_text())["threads"] == 1


def test_missing_generator_weights_name_only_flags_that_exist(tmp_path, monkeypatch, capsys):
    """``xdream gradient --method latent`` with the generator's weights missing: one line saying
    how to get them; the local-file flag is named as ``xdream evolve``'s (gradient has none)."""
    monkeypatch.setenv("XDREAM_HOME", str(tmp_path / "home"))
    assert main(["gradient", "--method", "latent", "--generator", "deepsim-fc6", "--target", UNIT, "--steps", "2",
                 "--quiet", "--output", str(tmp_path / "grad")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "xdream weights download deepsim-fc6" in err
    assert "give xdream evolve --generator-weights FILE" in err and not (tmp_path / "grad").exists()


def test_image_size_out_of_range_is_refused_before_the_folder_is_created(tmp_path, capsys):
    """``--size 4`` (or beyond 2048) on an image parameterisation: one line naming the size and
    the allowed range, exit 2, and no run folder left behind (checks happen before anything is written)."""
    for size in ("4", "4096"):
        out = tmp_path / f"grad{size}"
        assert main(["gradient", "--target", UNIT, "--size", size, "--steps", "2", "--quiet",
                     "--output", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and size in err and "[8, 2048]" in err
        assert not out.exists()



def test_negative_seed_is_refused_before_the_folder_is_created(tmp_path, capsys):
    """``--seed -1``: one line naming the seed and what is allowed, exit 2, no run folder (it was
    numpy's ValueError traceback after the folder had been made)."""
    out = tmp_path / "grad"
    assert main(["gradient", "--target", UNIT, "--seed", "-1", "--steps", "2", "--size", "32", "--quiet",
                 "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("seed must be an integer >= 0, got -1") and "\n" not in err
    assert not out.exists()



def test_infinite_learning_rate_or_penalty_weight_is_refused_before_the_folder_is_created(tmp_path, capsys):
    """``--lr inf`` (or an infinite penalty weight) ran to NaN images and a run folder of NaN
    scores; now one line naming the value and what is allowed, exit 2, nothing written."""
    for flag, said in (("--lr", "learning rate must be a finite number > 0, got inf"),
                       ("--tv", "tv weight must be a finite number >= 0, got inf")):
        out = tmp_path / flag.strip("-")
        assert main(["gradient", "--target", UNIT, flag, "inf", "--steps", "2", "--size", "32", "--quiet",
                     "--output", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.endswith(said) and "\n" not in err
        assert not out.exists()


NUMPY_GENERATOR = '''
import numpy as np
import torch

from xdream.core.generator import Generator


class NumpyBlobs(Generator):
    """Real images rendered with numpy: no gradient reaches the codes."""

    name = "numpy-blobs"
    latent_shape = (3,)
    image_size = 16

    def decode_tensor(self, codes):
        colours = 1 / (1 + np.exp(-codes.detach().cpu().numpy()))
        images = np.broadcast_to(colours[:, :, None, None], (len(codes), 3, 16, 16))
        return torch.from_numpy(np.ascontiguousarray(images))
'''


def test_latent_ascent_through_a_generator_without_gradients_is_refused_before_the_folder_is_created(
        tmp_path, monkeypatch, capsys):
    """An installed generator plugin whose decode is not a torch computation (allowed: it still
    evolves): ``xdream gradient --method latent`` with it is one line naming the generator, exit 2,
    and leaves no run folder behind."""
    from tests.xdream.core.test_registry import install_distribution

    (tmp_path / "lab_numpy_generator.py").write_text(NUMPY_GENERATOR)
    install_distribution(tmp_path, "lab-numpy-generator",
                         {"xdream.generators": {"numpy-blobs": "lab_numpy_generator:NumpyBlobs"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "grad"
    assert main(["gradient", "--method", "latent", "--generator", "numpy-blobs", "--target", UNIT, "--steps", "2",
                 "--quiet", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "generator 'numpy-blobs' is not differentiable" in err
    assert not out.exists()


def test_config_toml_records_the_target_and_only_the_settings_the_method_used(tmp_path, lite_unit):
    """``--method pixel``'s config.toml listed ``[generator]``, ``octaves`` and ``octave_scale``, which
    pixel does not use, and not the target; now the target and the settings its method uses (``USED_BY``),
    also in a folder written by ``write_gradient_dir`` alone (as ``xdream compare`` writes its own)."""
    import tomllib

    from xdream.gradient.baselines import GradientSettings, prepare, run_gradient, write_gradient_dir

    out = tmp_path / "grad"
    assert main(["gradient", "--method", "pixel", "--target", UNIT, "--steps", "2", "--size", "32", "--quiet",
                 "--output", str(out)]) == 0
    config = tomllib.loads((out / "config.toml").read_text())
    used = {"method": "pixel", "objective": "unit", "steps": 2, "lr": 0.05, "size": 32, "batch": 1, "seed": 0,
            "transforms": True, "tv": 0.0, "l1": 0.0, "blur": 0.0, "score_every": 16}  # defaults resolved: what ran
    assert config == {"kind": "gradient", "target": UNIT, **used}
    assert json.loads((out / "gradient.json").read_text())["settings"] == used  # not lr/transforms null
    settings = GradientSettings(method="latent", steps=1, score_every=1)
    outcome = run_gradient(lite_unit, settings, prepare(lite_unit, settings))
    write_gradient_dir(tmp_path / "latent", settings, lite_unit, outcome)
    config = tomllib.loads((tmp_path / "latent" / "config.toml").read_text())
    assert config["target"] == UNIT and config["generator"] == {"name": "dcgan-faces"}
    assert not {"size", "image", "octaves", "octave_scale"} & set(config)


def test_gradient_json_is_written_last_so_a_cut_run_is_not_taken_for_a_finished_one(tmp_path, lite_unit, capsys):
    """gradient.json, the file ``xdream report`` takes for a finished run, was written before
    trajectory.png: a run killed (or stopped by a full disk) between the two got a page, with no
    trajectory and no word of it. A failed last write (here: a folder in trajectory.png's place,
    which os.replace cannot replace) now leaves no gradient.json, and the report says not finished."""
    import pytest

    from xdream.core.errors import RunDirError
    from xdream.gradient.baselines import GradientSettings, create_dir, prepare, run_gradient, write_gradient_dir

    settings = GradientSettings(method="pixel", steps=1, size=32, score_every=1)
    outcome = run_gradient(lite_unit, settings, prepare(lite_unit, settings))
    run = create_dir(tmp_path / "grad", settings, UNIT)
    (run.path / "trajectory.png").mkdir()
    with pytest.raises(RunDirError, match="cannot write .*trajectory.png"):
        write_gradient_dir(run.path, settings, lite_unit, outcome, run=run)
    run.lock.release()
    assert not (run.path / "gradient.json").exists()
    assert main(["report", str(run.path)]) == 2
    assert "has not finished (no gradient.json)" in capsys.readouterr().err
