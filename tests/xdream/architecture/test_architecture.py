"""The architecture as tests: no import cycles, the layers import only downwards, and the core
names no plugin (plugins are found through the registry; defaults are data)."""

import ast
from pathlib import Path

import pytest

from imports import PACKAGE, cycles, graph, imported_modules, module_name
from xdream.core import registry

#: What each part of xdream may import (besides itself); anything else is a layering error.
#: ``core`` is the contract everything else builds on, ``cli`` the top that wires it together.
ALLOWED = {
    "xdream.core": set(),
    "xdream.runs": {"xdream.core"},
    "xdream.config": {"xdream.core"},
    "xdream.weights": {"xdream.core"},
    "xdream.rig": {"xdream.core"},
    "xdream.optimizers": {"xdream.core"},
    "xdream.images": {"xdream.core", "xdream.runs"},
    "xdream.characterise": {"xdream.core", "xdream.runs", "xdream.config", "xdream.images"},
    "xdream.gradient": {"xdream.core", "xdream.runs", "xdream.config", "xdream.images"},
    "xdream.evolve": {"xdream.core", "xdream.runs", "xdream.config", "xdream.images", "xdream.characterise"},
    "xdream.report": {"xdream.core", "xdream.runs", "xdream.images", "xdream.characterise"},
    "xdream.compare": {"xdream.core", "xdream.runs", "xdream.config", "xdream.images", "xdream.evolve",
                       "xdream.gradient"},
    "xdream.sweep": {"xdream.core", "xdream.runs", "xdream.config", "xdream.images", "xdream.evolve"},
}


def test_no_import_cycle_between_parts():
    assert cycles(graph()) == []


def test_no_import_cycle_between_modules():
    """Function-level imports included: a cycle hidden inside a function is still a cycle."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges = {m: {t for t in imported_modules(p) if t in modules and t != m} for m, p in modules.items()}
    assert cycles(edges) == []


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_part_imports_only_the_layers_below_it(part):
    assert graph().get(part, set()) - ALLOWED[part] == set()


def test_every_part_has_a_layering_rule():
    """A new subpackage states what it may import (add it to ALLOWED)."""
    parts = {p for p in graph() if p not in ("xdream", "xdream.cli", "xdream.__main__")}
    assert parts <= set(ALLOWED)


def test_nothing_imports_the_cli_or_the_plugin_packages():
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        for target in imported_modules(path):
            top = target.split(".")[0]
            assert top not in ("generators", "responders", "rigkit"), f"{name} imports {target}"
            if target.startswith("xdream.cli") and not name.startswith("xdream.cli"):
                assert name in ("xdream", "xdream.__main__"), f"{name} imports {target}"


# -- the core names no plugin ------------------------------------------------------------------
#: Plugin packages inside xdream (registered through entry points like any lab's package).
PLUGIN_PARTS = ("xdream.optimizers",)
#: Words that are plugin names and also names of something else in the core, where they mean
#: the other thing: (module, word) -> what the word means there.
HOMONYMS = {
    ("xdream.gradient.param", "fourier"): "Lucid's Fourier image parameterisation",
    ("xdream.gradient.param", "pixel"): "Lucid's pixel parameterisation",
    ("xdream.gradient.render", "fourier"): "the parameterisation of render()",
    ("xdream.gradient.baselines", "fourier"): "the featurevis parameterisation",
    ("xdream.gradient.baselines", "pixel"): "the pixel baseline's parameterisation",
    ("xdream.characterise.protocol", "gaussian"): "the Gaussian-spot stimulus family",
    ("xdream.characterise.outputs", "gaussian"): "the Gaussian-spot stimulus family",
}


def _code_strings(path: Path) -> list[str]:
    """String constants of a module's code (docstrings left out: docs may name plugins)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def _plugin_names() -> set[str]:
    return {name for kind in ("generator", "responder", "optimizer", "noise") for name in registry.available(kind)}


def _named(text: str, names: set[str]) -> set[str]:
    """Plugin names a string names: the whole string, or (for names no English word spells, like
    ``torch-unit``) a word of it; the default model's name counts too."""
    words = set(text.replace(",", " ").replace("(", " ").replace(")", " ").replace(":", " ").split())
    spelled = {n for n in names if "-" in n or "_" in n} | {"efficientnet_lite0"}
    return (names & {text}) | (spelled & words) | {n for n in ("efficientnet_lite0",) if n in text}


def test_the_core_names_no_plugin_in_its_code():
    names = _plugin_names()
    assert {"torch-unit", "torch-layer", "dcgan-faces", "genetic", "gaussian"} <= names  # the test sees them
    found = []
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path)
        if module.startswith(PLUGIN_PARTS):
            continue
        for text in _code_strings(path):
            for name in sorted(_named(text, names)):
                if (module, name) not in HOMONYMS:
                    found.append(f"{module}: {name!r} in {text[:60]!r}")
    assert found == []


def test_the_defaults_are_data_naming_registered_plugins():
    from xdream.config import defaults

    evolve = defaults("evolve")
    for kind in ("generator", "responder", "optimizer"):
        assert evolve[kind]["name"] in registry.available(kind)
    compare, gradient = defaults("compare"), defaults("gradient")
    assert set(compare["optimizers"]) <= set(registry.available("optimizer"))
    assert {compare["generator"], gradient["generator"]} <= set(registry.available("generator"))
    assert defaults("sweep")["noise"] in registry.available("noise")
    for spec in (compare["target"], compare["quick_target"], gradient["target"], evolve["responder"]["target"]):
        registry.responder_for_target(spec)  # some registered responder records it


@pytest.mark.parametrize("package, other", [("generators", "responders"), ("responders", "generators"),
                                            ("generators", "rigkit"), ("responders", "rigkit"),
                                            ("rigkit", "generators"), ("rigkit", "responders")])
def test_plugin_packages_depend_on_the_core_only(package, other):
    """generators, responders and rigkit (the rig-side kit) depend on xdream only, not on each other."""
    for path in (PACKAGE.parent / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            assert not any(n.split(".")[0] == other for n in names), f"{path} imports {other}"


def _absolute_imports(package: str) -> list[tuple[Path, str]]:
    """(file, module) for every absolute import of a top-level package, function level included."""
    found = []
    for path in (PACKAGE.parent / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [(path, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                found += [(path, f"{node.module}.{a.name}" if node.module == "xdream" else node.module)
                          for a in node.names]
    return found


def test_rigkit_imports_only_the_core_of_xdream():
    """rigkit runs on a rig PC beside the acquisition software: of xdream it uses xdream.core
    only (its errors), never a part that loads torch or the run machinery."""
    for path, module in _absolute_imports("rigkit"):
        if module.split(".")[0] == "xdream":
            assert module.startswith("xdream.core"), f"{path} imports {module}"


@pytest.mark.parametrize("package", ["generators", "responders", "rigkit"])
def test_no_plugin_package_imports_the_cli(package):
    """The command line is the top: nothing imports it, the plugin packages neither."""
    for path, module in _absolute_imports(package):
        assert not module.startswith("xdream.cli"), f"{path} imports {module}"
