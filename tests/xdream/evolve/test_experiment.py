"""The closed loop end to end on real components, its run directory, and crash-safe resume."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from responders.torch_unit import TorchUnit
from xdream import Experiment, ExperimentConfig
from xdream.core.errors import ConfigError, RunDirError


def run_job(job, path, **kwargs):
    experiment = Experiment(ExperimentConfig.from_dict(job), run_dir=path)
    summary = experiment.run(progress=False, **kwargs)
    experiment.close()
    return experiment, summary


def all_arrays(path, generations):
    out = {}
    for g in range(generations):
        with np.load(path / "generations" / f"gen_{g:04d}.npz") as data:
            out[g] = {k: data[k] for k in data.files}
    return out


def assert_same_run(a, b, generations):
    arrays_a, arrays_b = all_arrays(a, generations), all_arrays(b, generations)
    for g in range(generations):
        assert arrays_a[g].keys() == arrays_b[g].keys()
        for key in arrays_a[g]:
            np.testing.assert_array_equal(arrays_a[g][key], arrays_b[g][key], err_msg=f"gen {g} {key}")
    log_a = [json.loads(line) for line in (a / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(line) for line in (b / "log.jsonl").read_text().splitlines()]
    assert [r["scores"] for r in log_a] == [r["scores"] for r in log_b]
    assert [r["generation"] for r in log_a] == list(range(generations))


def test_run_writes_every_generation(tmp_path, fast_job):
    experiment, summary = run_job(fast_job, tmp_path / "run")
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert len(records) == 6 and summary.generations == 6 and summary.evaluations == 48
    for g, record in enumerate(records):
        arrays = np.load(run / "generations" / f"gen_{g:04d}.npz")
        assert arrays["codes"].shape == (8, 3 * 16 * 16) and arrays["codes"].dtype == np.float32
        np.testing.assert_array_equal(arrays["scores"], record["scores"])
        assert record["best"] == max(record["scores"]) and record["best_index"] == int(np.argmax(record["scores"]))
        assert set(record["timings"]) == {"ask", "decode", "respond", "tell", "save"}
        for kind in ("best", "montage"):
            assert (run / "images" / f"{kind}_{g:04d}.png").stat().st_size > 0
    for name in ("config.toml", "best.png", "trajectory.png", "summary.json", "checkpoint.pkl"):
        assert (run / name).is_file(), name
    saved = json.loads((run / "summary.json").read_text())
    assert saved["final_best"] == max(r["best"] for r in records) == summary.final_best
    assert saved["initial_best"] == records[0]["best"]
    # the saved config reproduces the run
    Experiment.from_toml(run / "config.toml", run_dir=tmp_path / "again").run(progress=False)
    assert_same_run(run, tmp_path / "again", 6)


def test_seed_fixes_the_run(tmp_path, fast_job):
    run_job(fast_job, tmp_path / "a")
    run_job(fast_job, tmp_path / "b")
    assert_same_run(tmp_path / "a", tmp_path / "b", 6)
    fast_job["seed"] = 4
    run_job(fast_job, tmp_path / "c")
    assert not np.array_equal(all_arrays(tmp_path / "a", 1)[0]["codes"], all_arrays(tmp_path / "c", 1)[0]["codes"])


def test_output_dir_is_never_overwritten(tmp_path, fast_job):
    run_job(fast_job, tmp_path / "run")
    before = (tmp_path / "run" / "log.jsonl").read_bytes()
    with pytest.raises(RunDirError, match="already exists"):
        Experiment(ExperimentConfig.from_dict(fast_job), run_dir=tmp_path / "run")
    assert (tmp_path / "run" / "log.jsonl").read_bytes() == before


def test_budget_counts_evaluations_and_is_never_exceeded(tmp_path, fast_job):
    del fast_job["generations"]
    fast_job["budget"] = 20  # population 8 -> 8 + 8 + the last generation trimmed to 4
    _, summary = run_job(fast_job, tmp_path / "run")
    assert summary.generations == 3 and summary.evaluations == 20
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [len(r["scores"]) for r in log] == [8, 8, 4] and log[-1]["evaluations"] == 20
    assert len(np.load(tmp_path / "run" / "generations" / "gen_0002.npz")["codes"]) == 4


def test_budget_and_generations_together_are_refused(fast_job):
    from xdream.core.errors import ConfigError

    fast_job["budget"] = 20
    with pytest.raises(ConfigError, match="mutually exclusive"):
        ExperimentConfig.from_dict(fast_job)


def test_noise_records_clean_scores(tmp_path, fast_job):
    fast_job["noise"] = {"name": "gaussian", "level": 0.5}
    run_job(fast_job, tmp_path / "run")
    arrays = all_arrays(tmp_path / "run", 6)
    for g in range(6):
        clean, noisy = arrays[g]["clean_scores"], arrays[g]["scores"]
        assert clean.shape == noisy.shape and not np.array_equal(clean, noisy)


@pytest.mark.parametrize("optimizer", ["genetic", "cmaes"])
def test_stop_and_resume_in_process_is_identical(tmp_path, fast_job, optimizer):
    fast_job["optimizer"]["name"] = optimizer
    fast_job["noise"] = {"name": "poisson"}
    run_job(fast_job, tmp_path / "whole")
    calls = iter(range(100))
    experiment, summary = run_job(fast_job, tmp_path / "split", should_stop=lambda: next(calls) >= 2)
    assert summary.stopped_early and summary.generations == 2
    resumed = Experiment.resume(tmp_path / "split")
    assert resumed.generation == 2
    resumed.run(progress=False)
    assert_same_run(tmp_path / "whole", tmp_path / "split", 6)


def test_resume_discards_a_half_written_generation(tmp_path, fast_job):
    run_job(fast_job, tmp_path / "whole")
    calls = iter(range(100))
    run_job(fast_job, tmp_path / "split", should_stop=lambda: next(calls) >= 3)
    split = tmp_path / "split"
    # A crash after generation 3's files and a torn log line, before its checkpoint:
    (split / "generations" / "gen_0003.npz").write_bytes(b"garbage")
    (split / "images" / "best_0003.png").write_bytes(b"garbage")
    with open(split / "log.jsonl", "a") as f:
        f.write('{"generation": 3, "scor')
    Experiment.resume(split).run(progress=False)
    assert_same_run(tmp_path / "whole", split, 6)


def test_resume_rejects_a_non_run_directory(tmp_path):
    with pytest.raises(RunDirError, match="not an xdream run directory"):
        Experiment.resume(tmp_path)


def _count_lines(path):
    try:
        return sum(1 for line in path.read_text().splitlines() if line.endswith("}"))
    except FileNotFoundError:
        return 0


def test_sigkill_mid_run_resumes_bit_identically(tmp_path, fast_job, xdream_cmd, xdream_main, monkeypatch):
    """A real process killed with SIGKILL part-way, resumed, equals an uninterrupted run (the
    uninterrupted run and the resume by the command in this process: the kill is what needs a process)."""
    generations = 14
    flags = ["--generator", "pixel", "--set", "generator.size=16", "--target", "efficientnet_lite0:_blocks.2:5",
             "--set", "responder.input_size=64", "--optimizer", "cmaes", "--population", "8",
             "--generations", str(generations), "--seed", "11", "--noise", "gaussian", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the count the runs record (default_threads)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert xdream_main("evolve", *flags, "--output", whole).returncode == 0
    process = subprocess.Popen([*xdream_cmd, "evolve", *flags, "--output", str(killed)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _count_lines(killed / "log.jsonl") < 5 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    done = _count_lines(killed / "log.jsonl")
    assert 5 <= done < generations, "the run must be killed part-way"
    resumed = xdream_main("evolve", "--resume", killed, "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    assert_same_run(whole, killed, generations)
    assert json.loads((killed / "summary.json").read_text())["final_best"] == \
        json.loads((whole / "summary.json").read_text())["final_best"]


def test_python_api_with_a_users_module(tmp_path, fast_job):
    """Any nn.Module through the Python API: a tiny random CNN's unit, evolved by CMA-ES."""
    import torch
    from torch import nn

    from responders.torch_unit import TorchUnit

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.Conv2d(8, 4, 3), nn.ReLU())
    unit = TorchUnit.from_module(net, layer="2", channel=1, input_size=32)
    fast_job["optimizer"] = {"name": "cmaes", "population": 10}
    fast_job["generations"] = 15
    experiment = Experiment(ExperimentConfig.from_dict(fast_job), responder=unit, run_dir=tmp_path / "run")
    summary = experiment.run(progress=False)
    assert summary.final_best > summary.initial_best
    resumed = Experiment.resume(tmp_path / "run", responder=unit)
    assert resumed.done and resumed.generation == 15
    resumed.close()


def test_a_custom_module_is_recorded_and_needed_to_resume(tmp_path, fast_job):
    """The run records the module it used (class, layer, channel, a weights fingerprint), not
    the config's unit; a resume without the module, or with other weights, is refused."""
    import torch
    from torch import nn

    from xdream.core.errors import RunDirError

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.Conv2d(8, 4, 3), nn.ReLU())
    unit = TorchUnit.from_module(net, layer="2", channel=1, input_size=32)
    run = tmp_path / "run"
    calls = iter(range(100))
    experiment = Experiment(ExperimentConfig.from_dict(fast_job), responder=unit, run_dir=run)
    experiment.run(progress=False, should_stop=lambda: next(calls) >= 2)
    experiment.close()
    summary = json.loads((run / "summary.json").read_text())
    record = summary["components"]["responder"]
    assert record["class"] == "responders.torch_unit.TorchUnit" and record["target"] == "Sequential:2:1"
    assert record["layer"] == "2" and record["channel"] == 1 and len(record["weights_sha256"]) == 64
    assert summary["custom_components"] == ["responder"]
    assert "# This run used its own responder object" in (run / "config.toml").read_text()
    with pytest.raises(RunDirError, match=r"started through the Python API with its own responder .*Sequential:2:1"):
        Experiment.resume(run)
    with torch.no_grad():
        other = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.Conv2d(8, 4, 3), nn.ReLU())
    with pytest.raises(RunDirError, match="weights_sha256"):
        Experiment.resume(run, responder=TorchUnit.from_module(other, layer="2", channel=1, input_size=32))
    resumed = Experiment.resume(run, responder=unit)
    assert resumed.generation == 2
    resumed.close()


def test_a_config_saved_by_a_custom_module_run_is_refused_without_it(tmp_path, fast_job, capsys):
    """config.toml of a run given its own responder carries a real key (python_objects), so
    `xdream evolve RUN/config.toml --output RUN2` refuses on one line naming what to pass,
    writes nothing, and runs once the responder is named (--target)."""
    import tomllib

    import torch
    from torch import nn

    from xdream.cli import main

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.Conv2d(8, 4, 3), nn.ReLU())
    unit = TorchUnit.from_module(net, layer="2", channel=1, input_size=32)
    run = tmp_path / "run"
    Experiment(ExperimentConfig.from_dict({**fast_job, "generations": 1}), responder=unit, run_dir=run).run(progress=False)
    saved = tomllib.loads((run / "config.toml").read_text())
    assert saved["python_objects"] == "responder"
    assert main(["evolve", str(run / "config.toml"), "--output", str(tmp_path / "run2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "its own responder object" in err
    assert "Experiment(config, responder=...)" in err and "--target MODEL:LAYER:CHANNEL" in err
    assert not (tmp_path / "run2").exists()
    with pytest.raises(ConfigError, match="python_objects = 'responder'"):
        Experiment(ExperimentConfig.from_dict(saved), run_dir=tmp_path / "run3")
    assert not (tmp_path / "run3").exists()
    assert main(["evolve", str(run / "config.toml"), "--target", fast_job["responder"]["target"],
                 "--output", str(tmp_path / "run4"), "--quiet"]) == 0
    assert "python_objects" not in tomllib.loads((tmp_path / "run4" / "config.toml").read_text())


def test_default_job_climbs_at_least_twofold(tmp_path):
    """The embedded default (what `make demo` runs: DCGAN faces -> an EfficientNet-Lite0 unit)
    doubles its first generation's best within the first third of its generations (the run
    itself, stopped there as Ctrl-C stops it, and resumable to its end)."""
    config = ExperimentConfig()
    first = config.generations // 3
    experiment = Experiment(config, run_dir=tmp_path / "demo")
    summary = experiment.run(progress=False, should_stop=lambda: experiment.generation >= first)
    experiment.close()
    assert summary.generations == first and summary.stopped_early
    assert summary.initial_best > 0
    assert summary.final_best >= 2 * summary.initial_best, summary.lines()


def test_ctrl_c_stops_cleanly_after_saving(tmp_path, xdream_cmd, xdream_main):
    """SIGINT (Ctrl-C) finishes the generation in flight, saves, summarises as stopped and
    exits 130 (the convention for an interrupted command); the run then resumes to the same result as an uninterrupted one."""
    flags = ["--generator", "pixel", "--set", "generator.size=16", "--target", "efficientnet_lite0:_blocks.2:5",
             "--set", "responder.input_size=64", "--population", "8", "--generations", "20", "--seed", "5", "--quiet",
             "--threads", "1"]  # both runs alike whatever the load (the auto count follows it)
    run = tmp_path / "run"
    process = subprocess.Popen([*xdream_cmd, "evolve", *flags, "--output", str(run)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _count_lines(run / "log.jsonl") < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "stopped before its end" in out and f"--resume {run}" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["stopped_early"] is True
    done = summary["generations"]
    assert 3 <= done < 20 and _count_lines(run / "log.jsonl") == done
    # the resume and the uninterrupted run by the command in this process (the signal needed a process)
    assert xdream_main("evolve", "--resume", run, "--quiet").returncode == 0
    assert xdream_main("evolve", *flags, "--output", tmp_path / "whole").returncode == 0
    assert_same_run(tmp_path / "whole", run, 20)


@pytest.mark.parametrize("save_images, files", [("all", {"best", "montage"}), ("best", {"best"}), ("none", set())])
def test_save_images_controls_the_per_generation_pngs(tmp_path, fast_job, save_images, files):
    run_job({**fast_job, "save_images": save_images}, tmp_path / "run")
    written = {p.name.split("_")[0] for p in (tmp_path / "run" / "images").glob("*.png")}
    assert written == files
    assert (tmp_path / "run" / "best.png").is_file()  # the run's best image is always kept


def test_save_images_rejects_an_unknown_value(fast_job):
    from xdream.core.errors import ConfigError

    with pytest.raises(ConfigError, match="'save_images' must be one of all, best, none, got 'some'"):
        ExperimentConfig.from_dict({**fast_job, "save_images": "some"})


# -- natural reference images and the unscored policy -------------------------------------------

def test_reference_images_are_scored_but_never_told(tmp_path, fast_job):
    """With references the optimiser sees exactly what it sees without them; the references'
    scores are the unit's responses to the cycled, resized photographs."""
    from xdream.config import ReferenceConfig
    from xdream.evolve.reference import ReferenceCycle

    fast_job["generations"] = 4
    run_job(fast_job, tmp_path / "plain")
    experiment, summary = run_job({**fast_job, "reference": {"per_generation": 3}}, tmp_path / "ref")
    plain, ref = all_arrays(tmp_path / "plain", 4), all_arrays(tmp_path / "ref", 4)
    cycle = ReferenceCycle.load(ReferenceConfig(None, 3), size=16)
    unit = TorchUnit(fast_job["responder"]["target"], input_size=64)
    records = [json.loads(line) for line in (tmp_path / "ref" / "log.jsonl").read_text().splitlines()]
    for g in range(4):
        np.testing.assert_array_equal(ref[g]["codes"], plain[g]["codes"])
        np.testing.assert_allclose(ref[g]["scores"], plain[g]["scores"], rtol=1e-5)
        assert ref[g]["reference_index"].tolist() == [(3 * g + j) % len(cycle.names) for j in range(3)]
        np.testing.assert_allclose(ref[g]["reference_scores"], unit.respond(cycle.images[ref[g]["reference_index"]]),
                                   rtol=1e-5, atol=1e-6)
        assert records[g]["reference_names"] == [cycle.names[k] for k in ref[g]["reference_index"]]
        assert records[g]["reference_mean"] == pytest.approx(ref[g]["reference_scores"].mean())
        assert records[g]["evaluations"] == 8 * (g + 1) and records[g]["presented"] == 11 * (g + 1)
    assert "reference_scores" not in plain[0]
    assert [h["reference_mean"] for h in experiment.history] == [r["reference_mean"] for r in records]
    saved = json.loads((tmp_path / "ref" / "summary.json").read_text())
    assert saved["evaluations"] == summary.evaluations == 32 and saved["presented"] == 44
    # as a session's thread record: the references' mean over the generations; no noise, no clean_best
    assert saved["reference_mean"] == pytest.approx(np.mean([r["reference_mean"] for r in records]))
    assert saved["clean_best"] is None
    assert "(44 images shown)" in summary.lines()[0]


class FlakyUnit(TorchUnit):
    """A real CNN unit behind a link that loses the first showing of every third evolved image
    (``unscored`` images of a rig): deterministic, so runs can be compared."""

    def __init__(self, target):
        super().__init__(target, input_size=64)
        self.seen, self.ids = set(), None

    def prepare(self, run_dir, generation, image_ids=None):
        self.ids = image_ids

    def respond(self, images):
        scores = super().respond(images)
        lost = [i not in self.seen and "ref" not in i and int(i.split("-")[1]) % 3 == 0 for i in self.ids]
        self.seen.update(self.ids)
        return np.where(lost, np.nan, scores)


def test_reshow_scores_every_image_before_telling(tmp_path, fast_job):
    fast_job["generations"] = 3
    target = fast_job["responder"]["target"]
    config = ExperimentConfig.from_dict({**fast_job, "unscored": "reshow"})
    experiment = Experiment(config, responder=FlakyUnit(target), run_dir=tmp_path / "reshow")
    experiment.run(progress=False)
    nan_policy = Experiment(ExperimentConfig.from_dict(fast_job), responder=FlakyUnit(target), run_dir=tmp_path / "nan")
    nan_policy.run(progress=False)
    plain = all_arrays(tmp_path / "reshow", 3)
    records = [json.loads(line) for line in (tmp_path / "reshow" / "log.jsonl").read_text().splitlines()]
    for g in range(3):
        lost = np.arange(8) % 3 == 0
        assert plain[g]["shown"].tolist() == np.where(lost, 2, 1).tolist()  # re-shown once, the others never
        assert np.isfinite(plain[g]["scores"]).all() and records[g]["n_nan"] == 0 and records[g]["reshown"] == 3
    assert records[-1]["presented"] == 3 * (8 + 3) and records[-1]["evaluations"] == 24
    first = all_arrays(tmp_path / "nan", 1)[0]  # the same losses under nan-policy reach the optimiser
    assert np.isnan(first["scores"]).sum() == 3 and "shown" not in first


def test_resume_with_references_and_reshow_is_identical(tmp_path, fast_job):
    fast_job.update(noise={"name": "poisson"}, unscored="reshow", reshow_attempts=2, reference={"per_generation": 2})
    target = fast_job["responder"]["target"]
    config = ExperimentConfig.from_dict(fast_job)
    Experiment(config, responder=FlakyUnit(target), run_dir=tmp_path / "whole").run(progress=False)
    calls = iter(range(100))
    Experiment(config, responder=FlakyUnit(target), run_dir=tmp_path / "split").run(
        progress=False, should_stop=lambda: next(calls) >= 2)
    resumed = Experiment.resume(tmp_path / "split", responder=FlakyUnit(target))
    assert resumed.generation == 2 and resumed.presented == 2 * (8 + 2 + 3)
    resumed.run(progress=False)
    assert_same_run(tmp_path / "whole", tmp_path / "split", 6)
    assert all_arrays(tmp_path / "split", 6)[5]["reference_index"].tolist() == [10 % 14, 11 % 14]


def test_resume_refuses_a_changed_reference_folder(tmp_path, fast_job):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (80 * i, 0, 0)).save(photos / f"p{i}.png")
    fast_job.update(generations=2, reference={"folder": str(photos), "per_generation": 1})
    run_job(fast_job, tmp_path / "run")
    Image.new("RGB", (20, 20)).save(photos / "p3.png")
    with pytest.raises(RunDirError, match=r"changed since the run started \(3 images then, 4 now\)"):
        Experiment.resume(tmp_path / "run")


def test_an_allowed_change_of_the_references_continues_with_them(tmp_path, fast_job):
    """A [reference] table added to a run's config.toml is refused naming the --allow-changed
    that continues with it; that resume shows the references from then on (it was refused as
    a changed reference folder: "restore the folder to resume")."""
    fast_job["generations"] = 3
    run = tmp_path / "run"
    experiment = Experiment(ExperimentConfig.from_dict(fast_job), run_dir=run)
    experiment.step()
    experiment.close()
    config = run / "config.toml"
    config.write_text(config.read_text() + "\n[reference]\nper_generation = 2\n")
    with pytest.raises(RunDirError, match="per_generation None -> 2; .* --allow-changed reference.per_generation$"):
        Experiment.resume(run)
    resumed = Experiment.resume(run, allow_changed=["reference.per_generation"])
    try:
        resumed.run(progress=False)
    finally:
        resumed.close()
    arrays = all_arrays(run, 3)
    assert "reference_scores" not in arrays[0]
    assert [arrays[g]["reference_index"].tolist() for g in (1, 2)] == [[2, 3], [4, 5]]
    assert [h.get("reference_mean") is not None for h in resumed.history] == [False, True, True]


def test_decoding_in_chunks_changes_nothing(tmp_path, fast_job, monkeypatch):
    """A population larger than the decode chunk is decoded piecewise, bit-identically."""
    import xdream.evolve.experiment as experiment_module

    fast_job["generations"] = 2
    run_job(fast_job, tmp_path / "whole")
    monkeypatch.setattr(experiment_module, "DECODE_CHUNK", 3)  # 8 codes: 3 + 3 + 2
    run_job(fast_job, tmp_path / "chunked")
    assert_same_run(tmp_path / "whole", tmp_path / "chunked", 2)
