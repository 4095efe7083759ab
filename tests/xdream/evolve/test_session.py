"""Sessions of several evolution threads (xdream.evolve.experiment with [[thread]] tables), on real CNN units."""

import copy
import json
import pickle

import numpy as np
import pytest

from xdream.config import ExperimentConfig, read_toml
from xdream.core.errors import ConfigError
from xdream import Experiment
from xdream.evolve.presentation import interleaving
from xdream.runs.rundir import RunDir

LAYER = "efficientnet_lite0:_blocks.2"
SESSION = {
    "seed": 5,
    "generations": 3,
    "optimizer": {"name": "genetic", "population": 6},
    "reference": {"per_generation": 2},
    "thread": [
        {"name": "pix", "generator": {"name": "pixel", "size": 16}, "target": f"{LAYER}:5"},
        {"name": "four", "generator": {"name": "fourier", "size": 32},
         "optimizer": {"name": "cmaes", "population": 5}, "target": [f"{LAYER}:3", f"{LAYER}:4"]},
    ],
}


def layer():
    from responders.torch_layer import TorchLayer

    return TorchLayer(LAYER, input_size=64)


def run_session(path, data=None, generations=None, **kwargs):
    data = copy.deepcopy(data or SESSION)
    if generations is not None:
        data["generations"] = generations
    session = Experiment(ExperimentConfig.from_dict(data), responder=layer(), run_dir=path, **kwargs)
    try:
        return session.run(progress=False)
    finally:
        session.close()


def thread_arrays(run, name, key="codes"):
    r = RunDir(run / "threads" / name)
    return [r.load_arrays(g)[key] for g in r.finished_generations()]


def test_one_call_per_generation_interleaves_every_thread_and_the_references(tmp_path):
    summary = run_session(tmp_path / "s")
    run = tmp_path / "s"
    log = RunDir(run).read_log()
    assert [r["generation"] for r in log] == [0, 1, 2]
    for record in log:
        g = record["generation"]
        ids = [f"g{g}-pix-{i}" for i in range(6)] + [f"g{g}-four-{i}" for i in range(5)]
        assert sorted(record["order"]) == sorted(ids + [i for i in record["order"] if "-ref" in i])
        assert sum("-ref" in i for i in record["order"]) == 2
        assert record["order"] != sorted(record["order"], key=lambda i: (("-ref" in i), i))  # shuffled
        assert record["shown"] == 6 + 5 + 2
    # The order is the seeded one: a function of the seed and the generation only.
    first = [*(f"g0-pix-{i}" for i in range(6)), *(f"g0-four-{i}" for i in range(5))]
    refs = [i for i in log[0]["order"] if "-ref" in i]
    refs.sort(key=lambda i: int(i.split("ref")[1]))
    assert log[0]["order"] == [(first + refs)[k] for k in interleaving(5, 0, 13)]
    assert [len(c) for c in thread_arrays(run, "pix")] == [6, 6, 6]
    assert [len(c) for c in thread_arrays(run, "four")] == [5, 5, 5]
    assert thread_arrays(run, "four")[0].shape[1] != thread_arrays(run, "pix")[0].shape[1]  # own latent spaces
    results = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert [r["name"] for r in results] == ["pix", "four"]
    assert results[1]["target"] == [f"{LAYER}:3", f"{LAYER}:4"] and results[1]["optimizer"] == "cmaes"
    for name in ("pix", "four"):
        assert (run / "threads" / name / "best.png").is_file()
        assert (run / "threads" / name / "trajectory.png").is_file()
        assert len(RunDir(run / "threads" / name).read_log()) == 3
    assert (run / "trajectory.png").is_file()
    assert json.loads((run / "summary.json").read_text())["status"] == "finished"
    assert summary.presented == 3 * 13 and summary.evaluations == 3 * 11
    assert RunDir.kind_of(run) == "session"
    assert "[[thread]]" in (run / "config.toml").read_text()


def test_each_thread_is_told_only_its_own_scores_on_its_own_target(tmp_path):
    run_session(tmp_path / "s", generations=1)
    responder = layer()
    import torch

    for name, cols in (("pix", [5]), ("four", [3, 4])):
        from xdream.core import registry

        table = next(t for t in SESSION["thread"] if t["name"] == name)["generator"]
        generator = registry.create("generator", table["name"], {k: v for k, v in table.items() if k != "name"})
        codes = thread_arrays(tmp_path / "s", name)[0]
        with torch.no_grad():
            images = generator.decode(codes.astype(np.float64))
            if images.shape[-1] != 32:
                images = torch.nn.functional.interpolate(images, size=(32, 32), mode="bilinear",
                                                         align_corners=False, antialias=True).clamp_(0, 1)
        expected = responder.respond_units(images)[:, cols].mean(axis=1)
        scores = thread_arrays(tmp_path / "s", name, "scores")[0]
        np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)
        refs = thread_arrays(tmp_path / "s", name, "reference_scores")[0]
        assert refs.shape == (2,) and np.isfinite(refs).all()
    pix, four = (thread_arrays(tmp_path / "s", n, "reference_scores")[0] for n in ("pix", "four"))
    assert not np.allclose(pix, four)  # the references are scored on each thread's own target


def test_threads_do_not_leak_into_each_other(tmp_path):
    """Thread pix's codes are the same when thread four runs another optimiser setting (and
    another noise level draws from four's stream only)."""
    a = copy.deepcopy(SESSION)
    a["noise"] = {"name": "gaussian", "level": 0.3}
    b = copy.deepcopy(a)
    b["thread"][1]["optimizer"] = {"name": "cmaes", "population": 5, "sigma0": 0.9}
    run_session(tmp_path / "a", a)
    run_session(tmp_path / "b", b)
    for x, y in zip(thread_arrays(tmp_path / "a", "pix"), thread_arrays(tmp_path / "b", "pix")):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(thread_arrays(tmp_path / "a", "four")[1], thread_arrays(tmp_path / "b", "four")[1])


def test_a_reference_presentation_has_one_noisy_response_per_target(tmp_path):
    """Two threads on one unit under simulated noise: each natural reference shown in a
    generation gets one response on that unit, the same for both threads (its noise keyed by
    the presentation, not the thread); the threads' own images keep their own streams."""
    data = copy.deepcopy(SESSION)
    data["noise"] = {"name": "gaussian", "level": 0.3}
    data["thread"][1]["target"] = f"{LAYER}:5"  # both threads on the same unit
    run_session(tmp_path / "s", data)
    for pix, four in zip(thread_arrays(tmp_path / "s", "pix", "reference_scores"),
                         thread_arrays(tmp_path / "s", "four", "reference_scores")):
        assert pix.shape == (2,)
        np.testing.assert_array_equal(pix, four)
    noisy, clean = (np.concatenate(thread_arrays(tmp_path / "s", "pix", key))
                    for key in ("reference_scores", "reference_clean_scores"))
    assert not np.allclose(noisy, clean)  # the noise acted on the references
    # A thread's own images' noise does not depend on the other thread: pix is unchanged when
    # four runs another optimiser setting.
    other = copy.deepcopy(data)
    other["thread"][1]["optimizer"] = {"name": "cmaes", "population": 5, "sigma0": 0.9}
    run_session(tmp_path / "o", other)
    for key in ("codes", "scores", "reference_scores"):
        for x, y in zip(thread_arrays(tmp_path / "s", "pix", key), thread_arrays(tmp_path / "o", "pix", key)):
            np.testing.assert_array_equal(x, y)


def test_resume_after_a_crash_continues_bit_identically(tmp_path):
    run_session(tmp_path / "whole", generations=4)
    data = copy.deepcopy(SESSION)
    data["generations"] = 4
    session = Experiment(ExperimentConfig.from_dict(data), responder=layer(), run_dir=tmp_path / "cut")
    session.step()
    session.step()
    # A crash in generation 2: its files are written but the checkpoint still holds 2 generations.
    checkpoint = (tmp_path / "cut" / "checkpoint.pkl").read_bytes()
    session.step()
    (tmp_path / "cut" / "checkpoint.pkl").write_bytes(checkpoint)
    session.responder.close()
    session.run_dir.lock.release()
    resumed = Experiment.resume(tmp_path / "cut", responder=layer())
    assert resumed.generation == 2
    try:
        resumed.run(progress=False)
    finally:
        resumed.close()
    for name in ("pix", "four"):
        for key in ("codes", "scores", "reference_scores"):
            whole, cut = thread_arrays(tmp_path / "whole", name, key), thread_arrays(tmp_path / "cut", name, key)
            assert len(whole) == len(cut) == 4
            for x, y in zip(whole, cut):
                np.testing.assert_array_equal(x, y)
    assert (tmp_path / "whole" / "log.jsonl").read_text().count("\n") == 4
    assert [r["order"] for r in RunDir(tmp_path / "whole").read_log()] == \
        [r["order"] for r in RunDir(tmp_path / "cut").read_log()]


def test_a_thread_stops_on_its_own_criterion_while_the_others_go_on(tmp_path):
    data = copy.deepcopy(SESSION)
    data["generations"] = 6
    data["thread"][0]["patience"] = 1
    data["thread"][1]["generations"] = 2
    summary = run_session(tmp_path / "s", data)
    pix, four = summary.threads
    assert four["generations"] == 2 and four["stopped"] == "generations"
    assert pix["stopped"] in ("patience", "generations")
    if pix["stopped"] == "patience":
        assert pix["generations"] - 1 - pix["best_generation"] >= 1 and pix["generations"] < 6
    log = RunDir(tmp_path / "s").read_log()
    assert all(set(r["threads"]) == {"pix"} for r in log[2:])  # four shows nothing after its end


def test_budgets_per_thread_and_per_session_are_never_exceeded(tmp_path):
    data = copy.deepcopy(SESSION)
    data.pop("generations")
    data["budget"] = 23  # all pix's: four has a budget of its own
    data["thread"][1]["budget"] = 7
    summary = run_session(tmp_path / "s", data)
    pix, four = summary.threads
    assert pix["evaluations"] == 23 and four["evaluations"] == 7
    assert [len(c) for c in thread_arrays(tmp_path / "s", "pix")] == [6, 6, 6, 5]
    assert [len(c) for c in thread_arrays(tmp_path / "s", "four")] == [5, 2]
    data["thread"][1].pop("budget")
    config = ExperimentConfig.from_dict(data)
    assert [config.thread_length(i) for i in (0, 1)] == [(None, 12), (None, 11)]
    with pytest.raises(ConfigError, match="budget 1 is split among 2 threads"):
        ExperimentConfig.from_dict({**data, "budget": 1})


@pytest.mark.parametrize("change, message", [
    (lambda d: d["thread"].append(copy.deepcopy(d["thread"][0])), "two threads are named 'pix'"),
    (lambda d: d["thread"][0].update(name="a b"), "needs name = a plain folder name: 1-32 characters"),
    (lambda d: d["thread"][0].update(target=[]), "needs target"),
    (lambda d: d["thread"][0].update(colour=1), "unknown key 'colour' in \\[\\[thread\\]\\] 0"),
    (lambda d: d["thread"][0].update(optimizer={"name": "nope"}), "nope"),
    (lambda d: d.update(init_image="x.png"), "init_image"),
])
def test_bad_session_configs_are_one_line_errors(change, message):
    data = copy.deepcopy(SESSION)
    change(data)
    with pytest.raises(ConfigError, match=message) as info:
        ExperimentConfig.from_dict(data)
    assert "\n" not in str(info.value)


def test_a_target_the_responder_does_not_record_writes_nothing(tmp_path):
    data = copy.deepcopy(SESSION)
    data["thread"][1]["target"] = [f"{LAYER}:3", "efficientnet_lite0:_blocks.9:4"]
    with pytest.raises(ConfigError, match="thread 'four': unit 'efficientnet_lite0:_blocks.9:4' is not recorded"):
        Experiment(ExperimentConfig.from_dict(data), responder=layer(), run_dir=tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_thread_seeds_depend_on_the_session_seed_and_the_name_only():
    config = ExperimentConfig.from_dict(SESSION)
    other = copy.deepcopy(SESSION)
    other["thread"] = [other["thread"][1], other["thread"][0], {"name": "x", "target": f"{LAYER}:1"}]
    again = ExperimentConfig.from_dict(other)
    seeds = {t.name: t.seed for t in config.thread}
    assert {t.name: t.seed for t in again.thread if t.name in seeds} == seeds
    assert seeds["pix"] != seeds["four"]
    reseeded = ExperimentConfig.from_dict({**SESSION, "seed": 6})
    assert reseeded.thread[0].seed != seeds["pix"]
    written = pickle.loads(pickle.dumps(config.to_dict()))
    assert [t["seed"] for t in written["thread"]] == [seeds["pix"], seeds["four"]]


def test_config_round_trips_through_toml(tmp_path):
    from xdream.config import to_toml

    config = ExperimentConfig.from_dict(SESSION)
    (tmp_path / "c.toml").write_text(to_toml(config.to_dict()))
    assert ExperimentConfig.from_dict(read_toml(tmp_path / "c.toml")).to_dict() == config.to_dict()


def test_cnn_units_are_scored_in_one_forward_pass_per_generation(tmp_path):
    """Without a responder object the session asks the threads' responder for all their units
    at once (Responder.for_units): one respond_units call per generation for every thread."""
    data = copy.deepcopy(SESSION)
    data["responder"] = {"name": "torch-unit", "input_size": 64}
    session = Experiment(ExperimentConfig.from_dict(data), run_dir=tmp_path / "s")
    inner = session.responder.inner
    assert inner.name == "torch-units" and inner.unit_labels() == [f"{LAYER}:5", f"{LAYER}:3", f"{LAYER}:4"]
    calls = []
    respond_units = inner.respond_units
    inner.respond_units = lambda images: calls.append(len(images)) or respond_units(images)
    try:
        session.run(progress=False)
    finally:
        session.close()
    assert calls == [6 + 5 + 2] * 3
    run_session(tmp_path / "layer", generations=1)  # the same session read through torch-layer
    np.testing.assert_allclose(thread_arrays(tmp_path / "s", "four", "scores")[0],
                               thread_arrays(tmp_path / "layer", "four", "scores")[0], rtol=1e-5, atol=1e-5)



def test_a_generation_that_went_unscored_leaves_the_summary_to_the_others(tmp_path):
    """On a rig a whole generation may come back unscored (NaN: no valid trial); its log
    record's reference_mean and clean_best are NaN, and the thread's reference_mean and
    clean_best in results.jsonl and summary.json are those of the other generations (they were
    null, from a NaN first generation)."""
    from responders.torch_layer import TorchLayer

    class LosesFirstGeneration(TorchLayer):
        """The session's real layer behind a link that loses every trial of generation 0."""

        def prepare(self, run_dir, generation, image_ids=None):
            self.ids = image_ids

        def respond_units(self, images):
            full = super().respond_units(images)
            full[[i.startswith("g0-") for i in self.ids]] = np.nan
            return full

    data = copy.deepcopy(SESSION)
    data["noise"] = {"name": "gaussian", "level": 0.3}
    session = Experiment(ExperimentConfig.from_dict(data), responder=LosesFirstGeneration(LAYER, input_size=64),
                         run_dir=tmp_path / "s")
    try:
        summary = session.run(progress=False)
    finally:
        session.close()
    saved = json.loads((tmp_path / "s" / "summary.json").read_text())["threads"]
    results = [json.loads(line) for line in (tmp_path / "s" / "results.jsonl").read_text().splitlines()]
    for index, name in enumerate(("pix", "four")):
        log = RunDir(tmp_path / "s" / "threads" / name).read_log()
        means, cleans = ([r[key] for r in log] for key in ("reference_mean", "clean_best"))
        assert means[0] is None and cleans[0] is None and None not in means[1:] + cleans[1:]  # NaN written as null
        for record in (summary.threads[index], saved[index], results[index]):
            assert record["reference_mean"] == pytest.approx(np.mean(means[1:]))
            assert record["clean_best"] == max(cleans[1:])


def test_a_session_config_saved_with_its_own_responder_names_a_flag_a_session_takes(tmp_path, capsys):
    """`xdream evolve RUN/config.toml` of a session given its own responder object is refused on
    one line naming what to pass: never --target, which a session config refuses (its targets
    are in its [[thread]] tables), but --set responder.KEY=VALUE, which runs."""
    from xdream.cli.main import main

    run_session(tmp_path / "s", generations=1)
    config = str(tmp_path / "s" / "config.toml")
    assert main(["evolve", config, "--output", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "its own responder object" in err and "--target" not in err, err
    assert "(--set responder.KEY=VALUE)" in err and not (tmp_path / "t").exists()
    assert main(["evolve", config, "--set", "responder.input_size=64", "--output", str(tmp_path / "t"),
                 "--quiet"]) == 0
