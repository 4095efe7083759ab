"""The registry against real installed distributions: a second package on the path that
registers a name already taken is refused, naming both packages and both targets."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from xdream.core import registry
from xdream.core.errors import PluginConflictError, UnknownNameError
from xdream.core.optimizer import Optimizer


def install_distribution(root, name: str, entry_points: dict[str, dict[str, str]]) -> None:
    """A minimal installed distribution: ``NAME-1.0.dist-info`` with METADATA and
    entry_points.txt, as pip writes it, in the folder ``root``."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = []
    for group, names in entry_points.items():
        lines += [f"[{group}]", *(f"{n} = {target}" for n, target in names.items()), ""]
    (info / "entry_points.txt").write_text("\n".join(lines))


def test_a_name_registered_by_two_packages_is_an_error_naming_both(tmp_path, monkeypatch):
    assert issubclass(registry.load("optimizer", "genetic"), Optimizer)  # one package: fine
    install_distribution(tmp_path, "rival-plugins", {
        "xdream.optimizers": {"genetic": "rival_plugins.ga:Genetic", "rival-only": "rival_plugins.ga:Other"},
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginConflictError) as info:
        registry.load("optimizer", "genetic")
    message = str(info.value)
    for part in ("'genetic'", f"xdream {version('xdream')}", "xdream.optimizers.genetic:GeneticAlgorithm",
                 "rival-plugins 1.0", "rival_plugins.ga:Genetic"):
        assert part in message, f"{part!r} not in {message!r}"
    assert "\n" not in message
    with pytest.raises(PluginConflictError):
        registry.create("optimizer", "genetic", {}, dim=4, rng=None)
    # Names only one package registers are unaffected; listing names each once.
    assert issubclass(registry.load("optimizer", "cmaes"), Optimizer)
    assert registry.available("optimizer").count("genetic") == 1
    assert "rival-only" in registry.available("optimizer")


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="no-such-optimizer.*valid: .*genetic"):
        registry.load("optimizer", "no-such-optimizer")


BROKEN = {  # entry point target, module source: the three ways a plugin package fails to import
    "missing module": ("lab_gone.generator:LabGenerator", None),
    "missing class": ("lab_broken_class:LabGenerator", "class Other:\n    pass\n"),
    "exception at import": ("lab_raises:LabGenerator", "raise RuntimeError('no GPU driver on this machine')\n"),
}


@pytest.mark.parametrize("case", BROKEN)
@pytest.mark.parametrize("command", [["weights", "list"], ["evolve", "--generator", "lab-gen", "--generations", "1"]])
def test_a_plugin_that_cannot_be_imported_is_one_line_naming_package_entry_point_and_error(
        case, command, tmp_path, monkeypatch, capsys):
    """``xdream weights list`` loads every generator; ``xdream evolve`` the one it is given: a
    broken package is one line (exit 2) naming it, its entry point and the error; nothing is written."""
    from xdream.cli.main import main

    target, source = BROKEN[case]
    install_distribution(tmp_path, "lab-plugins", {"xdream.generators": {"lab-gen": target}})
    if source is not None:
        (tmp_path / f"{target.split(':')[0]}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--output", "out"] if command[0] == "evolve" else command) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for part in ("lab-plugins 1.0", f"lab-gen = {target}", "xdream.generators",
                 {"missing module": "ModuleNotFoundError: No module named 'lab_gone'",
                  "missing class": "AttributeError", "exception at import": "RuntimeError: no GPU driver"}[case]):
        assert part in err, f"{part!r} not in {err!r}"
    assert not (tmp_path / "out").exists()
