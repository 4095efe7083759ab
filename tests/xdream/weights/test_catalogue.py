"""The catalogue is collected from what plugins declare: every registered generator's and
responder's ``weights_files`` are listed, and two plugins declaring different files under one
name or one cache file name are one error naming both."""

import pytest

from generators.deepsim import DeePSiMFc6, DeePSiMFc7
from xdream.core import registry
from xdream.core.errors import WeightsError
from xdream.core.generator import Generator
from xdream.weights.catalogue import WEIGHTS_KINDS, collect, registered
from xdream.weights.entry import WeightsEntry


def entry(name="net", file_name="net.pt", sha256="0" * 64):
    return WeightsEntry(name, f"https://example.org/{file_name}", file_name, sha256, None, "MIT", "a test file")


def plugin(entries, qualname):
    return type(qualname, (Generator,), {"weights_files": tuple(entries), "__module__": "lab_plugins"})


def test_registered_is_exactly_what_registered_plugins_declare():
    declared = {}
    for kind in WEIGHTS_KINDS:
        for name in registry.available(kind):
            for item in registry.load(kind, name).weights_files:
                declared[item.name] = item
    catalogue = registered()
    assert dict(catalogue) == declared
    assert "deepsim-fc6" in catalogue and catalogue["deepsim-fc6"] is DeePSiMFc6.weights_files[0]
    assert all(e.citation for e in catalogue.values())  # the built-in plugins cite their sources


def test_plugins_without_weights_declare_none():
    assert registry.load("generator", "pixel").weights_files == ()
    assert Generator.weights_files == ()


def test_the_same_entry_declared_twice_is_one_file():
    class MyFc6(DeePSiMFc6):  # a lab's subclass inherits the file of its parent
        pass

    catalogue = collect([("generator", "deepsim-fc6", DeePSiMFc6), ("generator", "my-fc6", MyFc6),
                         ("generator", "deepsim-fc7", DeePSiMFc7)])
    assert list(catalogue) == ["deepsim-fc6", "deepsim-fc7"]


@pytest.mark.parametrize("clash", ["file name", "name"])
def test_two_plugins_declaring_different_files_under_one_name_is_an_error_naming_both(clash):
    first = entry()
    # the same cache file under another name and hash, or the same name for another file
    second = entry(name="net-2", sha256="1" * 64) if clash == "file name" else entry(file_name="other.pt")
    plugins = [("generator", "lab-a", plugin([first], "LabA")), ("responder", "lab-b", plugin([second], "LabB"))]
    with pytest.raises(WeightsError) as info:
        collect(plugins)
    message = str(info.value)
    value = "net.pt" if clash == "file name" else "net"
    assert f"weights {clash} {value!r} is declared by both" in message
    assert "generator 'lab-a' (lab_plugins.LabA)" in message and "responder 'lab-b' (lab_plugins.LabB)" in message
    assert "\n" not in message


def test_a_declaration_that_is_not_an_entry_is_an_error():
    with pytest.raises(WeightsError, match="generator 'lab-a' .* declares weights_files item 'net.pt'"):
        collect([("generator", "lab-a", plugin(["net.pt"], "LabA"))])
