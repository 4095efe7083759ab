import pytest

from xdream.config import ExperimentConfig, read_toml, set_dotted, to_toml
from xdream.core.errors import ConfigError, UnknownNameError


def test_defaults_are_the_embedded_demo_job():
    config = ExperimentConfig()
    assert config.generator.name == "dcgan-faces"
    assert config.responder.name == "torch-unit"
    assert config.responder.options["target"].startswith("efficientnet_lite0:")
    config.validate_options()


def test_toml_round_trip(tmp_path, fast_job):
    fast_job["noise"] = {"name": "gaussian", "level": 0.5}
    fast_job["optimizer"]["mutation_rate"] = 0.25
    config = ExperimentConfig.from_dict(fast_job)
    path = tmp_path / "c.toml"
    path.write_text(to_toml(config.to_dict()))
    again = ExperimentConfig.from_dict(read_toml(path))
    assert again == config
    assert again.noise.options == {"level": 0.5}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(colour="red"), "unknown config key 'colour'"),
        (lambda d: d.update(seed="one"), "'seed' must be int, got 'one'"),
        (lambda d: d.update(generations=0), "'generations' must be >= 1"),
        (lambda d: d["optimizer"].update(mutation_rate="high"), "option 'mutation_rate' must be float"),
        (lambda d: d["optimizer"].update(learning_rate=0.1), "unknown option 'learning_rate' for optimizer 'genetic'"),
        (lambda d: d["generator"].update(name="stylegan"), "unknown generator 'stylegan'; valid: "),
        (lambda d: d["optimizer"].pop("name"), "config [optimizer] needs name"),
        (lambda d: d.update(generator=3), "config [generator] must be a table"),
    ],
)
def test_bad_config_gives_one_line_error(fast_job, change, message):
    change(fast_job)
    with pytest.raises(ConfigError) as info:
        ExperimentConfig.from_dict(fast_job)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_plugin_lists_valid_names(fast_job):
    fast_job["optimizer"]["name"] = "adam"
    with pytest.raises(UnknownNameError, match="valid: .*cmaes, csa-es, genetic"):
        ExperimentConfig.from_dict(fast_job)


def test_set_dotted_overrides(fast_job):
    set_dotted(fast_job, "optimizer.population", 12)
    set_dotted(fast_job, "seed", 9)
    assert fast_job["optimizer"]["population"] == 12 and fast_job["seed"] == 9
    with pytest.raises(ConfigError, match="noise"):
        set_dotted(fast_job, "noise.level", 0.2)
    with pytest.raises(ConfigError, match="TABLE one of"):
        set_dotted(fast_job, "a.b.c", 1)


def test_bad_toml_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("seed = = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_toml(path)
    with pytest.raises(ConfigError, match="not found"):
        read_toml(tmp_path / "missing.toml")


def test_reference_and_unscored_round_trip(tmp_path, fast_job):
    (tmp_path / "photos").mkdir()
    fast_job.update(unscored="reshow", reshow_attempts=3, reference={"folder": str(tmp_path / "photos")})
    config = ExperimentConfig.from_dict(fast_job)
    assert config.reference.per_generation == 2 and config.reshow_attempts == 3  # the default N
    path = tmp_path / "c.toml"
    path.write_text(to_toml(config.to_dict()))
    assert ExperimentConfig.from_dict(read_toml(path)) == config
    plain = ExperimentConfig.from_dict({k: v for k, v in fast_job.items() if k != "reference"})
    assert plain.reference is None and "reference" not in plain.to_dict()
    assert ExperimentConfig().unscored == "nan-policy"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"reference": {"folder": "no/such/dir"}}, "reference.folder 'no/such/dir' is not a folder; give a folder"),
        ({"reference": {"folder": 7}}, "'reference.folder' must be a folder path (str), got 7"),
        ({"reference": {"per_generation": -1}}, "'reference.per_generation' must be an integer >= 0 (0: no "
                                                "reference images), got -1"),
        ({"reference": {"per_generation": True}}, "'reference.per_generation' must be an integer >= 0"),
        ({"reference": {"per_generation": 2.5}}, "got 2.5"),
        ({"reference": {"n": 2}}, "unknown config key 'reference.n'; valid: folder, per_generation"),
        ({"reference": "photos"}, "config [reference] must be a table"),
        ({"unscored": "later"}, "'unscored' must be one of nan-policy, reshow, got 'later'"),
        ({"reshow_attempts": 0}, "'reshow_attempts' must be 1..10, got 0"),
        ({"reshow_attempts": 11}, "'reshow_attempts' must be 1..10, got 11"),
    ],
)
def test_bad_reference_or_unscored_is_one_line(fast_job, change, message):
    with pytest.raises(ConfigError) as info:
        ExperimentConfig.from_dict({**fast_job, **change})
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("table, value", [("reference", 5), ("noise", [1]), ("reference", "photos")])
def test_set_dotted_in_a_value_that_is_not_a_table_is_one_line(fast_job, tmp_path, capsys, table, value):
    """``--set TABLE.KEY=...`` on a config whose TABLE is no table: the error from_dict gives
    for that value, not a TypeError (or, for a string [reference], a key 'reference.name'
    the user never wrote)."""
    fast_job[table] = value
    with pytest.raises(ConfigError, match=rf"^cannot set '{table}.level': config \[{table}\] must be a table, got "):
        set_dotted(fast_job, f"{table}.level", 1)
    from xdream.cli.main import main

    (tmp_path / "bad.toml").write_text(to_toml(fast_job))
    args = ["evolve", str(tmp_path / "bad.toml"), "--set", f"{table}.level=1", "--output", str(tmp_path / "r")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"config [{table}] must be a table" in err[0], err
    assert not (tmp_path / "r").exists()


def test_set_dotted_creates_the_reference_table(fast_job):
    set_dotted(fast_job, "reference.per_generation", 3)
    assert fast_job["reference"] == {"per_generation": 3}
    assert ExperimentConfig.from_dict(fast_job).reference.per_generation == 3


def test_a_session_of_many_threads_saves_only_best_images_unless_told(fast_job):
    """Up to 8 threads the default save_images is "all"; beyond, "best" (montages are most of
    the bytes: about 0.4 GB for 64 threads x 40 generations); a given value always wins, and the
    resolved value is what config.toml records."""
    from xdream.config.experiment import MANY_THREADS

    def session(n, **extra):
        threads = [{"name": f"u{i}", "target": f"efficientnet_lite0:_blocks.2:{i}"} for i in range(n)]
        return ExperimentConfig.from_dict({**{k: v for k, v in fast_job.items() if k != "responder"},
                                           "responder": {"name": "torch-unit"}, "thread": threads, **extra})

    assert ExperimentConfig.from_dict(fast_job).save_images == "all"
    assert session(MANY_THREADS).save_images == "all"
    many = session(MANY_THREADS + 1)
    assert many.save_images == "best" and many.to_dict()["save_images"] == "best"
    assert session(MANY_THREADS + 1, save_images="all").save_images == "all"
