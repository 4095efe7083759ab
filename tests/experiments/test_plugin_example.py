"""experiments/plugin_example: a third-party package, put on the path with its entry points as an
installed distribution would be, runs through the CLI end to end (weights list, download,
verify; evolve), passes the registry-wide contract tests, and shares the weights catalogue with
the built-in plugins (a clashing file name is an error naming both plugins); plugins that break
the contract fail those tests.

Nothing is installed into the test environment: the package and a ``.dist-info`` holding its
entry points (read from its ``pyproject.toml``) go on ``PYTHONPATH`` of the subprocesses (the
download and one evolution: the command as a user runs it), and on ``sys.path`` only for the
length of one in-process test (``monkeypatch``, the other commands through ``xdream.cli.main``,
cheaper than a new interpreter each), so other tests' registries never see the example plugins."""

import ast
import hashlib
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from xdream.core import registry
from xdream.core.errors import WeightsError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "experiments" / "plugin_example"
SHIPPED = EXAMPLE / "xdream_plugin_example" / "data" / "example_decoder.pt"
PLUGINS = {"generator": "example-decoder", "responder": "example-gabor", "noise": "example-additive"}


def write_dist_info(site: Path, project: dict) -> None:
    """``site/NAME-VERSION.dist-info`` with METADATA and ``project``'s entry points."""
    dist = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = []
    for group, points in project["entry-points"].items():
        lines += [f"[{group}]", *(f"{name} = {value}" for name, value in points.items()), ""]
    (dist / "entry_points.txt").write_text("\n".join(lines))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A folder holding the example's .dist-info; with EXAMPLE, the path entries of the package."""
    site = tmp_path_factory.mktemp("site")
    write_dist_info(site, tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"])
    return site


@pytest.fixture(scope="module")
def env(site, tmp_path_factory):
    """The environment of a subprocess that sees the example plugins, with its own weights cache."""
    env = {k: v for k, v in os.environ.items() if k not in ("XDREAM_WEIGHTS_MIRROR", "PYTHONPATH")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(EXAMPLE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["XDREAM_HOME"] = str(tmp_path_factory.mktemp("home"))
    return env


def xdream(env, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", "xdream.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture
def in_process(site, env, monkeypatch, capsys):
    """``in_process(*args, home=None)``: (exit code, stdout, stderr) of ``xdream ARGS`` run in
    this process with the example on ``sys.path`` (for this test only) and ``env``'s weights cache."""
    from xdream.cli import main

    for entry in (str(site), str(EXAMPLE)):
        monkeypatch.syspath_prepend(entry)
    monkeypatch.delenv("XDREAM_WEIGHTS_MIRROR", raising=False)

    def run(*args, home=None):
        monkeypatch.setenv("XDREAM_HOME", str(home or env["XDREAM_HOME"]))
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture(scope="module")
def downloaded(env):
    """``xdream weights download example-decoder``: the file:// URL the plugin declares, offline."""
    result = xdream(env, "weights", "download", "example-decoder", "--quiet")
    assert result.returncode == 0, result.stderr
    return Path(env["XDREAM_HOME"]) / "weights" / "example_decoder.pt"


def test_not_registered_in_this_process():
    for kind, name in PLUGINS.items():
        assert name not in registry.available(kind)


def test_weights_list_download_verify_and_a_bad_copy(env, downloaded, in_process):
    code, listing, err = in_process("weights", "list")
    assert code == 0, err
    sha = hashlib.sha256(SHIPPED.read_bytes()).hexdigest()
    assert f"{sha}  example_decoder.pt" in listing  # the full hash, to check a copy by hand
    assert "example-decoder" in listing and "deepsim-fc6" in listing  # one catalogue for all
    assert downloaded.read_bytes() == SHIPPED.read_bytes()
    code, verify, err = in_process("weights", "verify", "example-decoder")
    assert code == 0 and "example-decoder    ok" in verify, err
    code, path, _ = in_process("weights", "path", "example-decoder")
    assert code == 0 and path.strip() == str(downloaded)

    bad_home = Path(env["XDREAM_HOME"]).with_name("bad-home")
    (bad_home / "weights").mkdir(parents=True)
    (bad_home / "weights" / "example_decoder.pt").write_bytes(SHIPPED.read_bytes()[:-1] + b"x")
    code, bad, err = in_process("weights", "verify", "example-decoder", home=bad_home)
    assert code == 2 and "example-decoder    BAD" in bad
    assert err.count("\n") == 1 and "failed verification: example-decoder" in err


CONFIG = """\
seed = 1
generations = 4
[generator]
name = "example-decoder"
[responder]
name = "example-gabor"
orientation = 30.0
[optimizer]
name = "genetic"
population = 10
[noise]
name = "example-additive"
sd = 0.05
"""


def test_evolve_end_to_end_through_the_cli(env, downloaded, tmp_path, in_process, monkeypatch):
    (tmp_path / "job.toml").write_text(CONFIG)
    result = xdream(env, "evolve", "job.toml", "--output", "run", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["generations"] == 4 and summary["evaluations"] == 40
    assert summary["final_best"] > summary["initial_best"]  # the cell's response climbs
    assert summary["config"]["noise"] == {"name": "example-additive", "sd": 0.05}
    assert (tmp_path / "run" / "best.png").is_file()
    # the same job again (in this process): one seed fixes the run
    monkeypatch.chdir(tmp_path)
    code, _, err = in_process("evolve", "job.toml", "--output", "again", "--quiet")
    assert code == 0, err
    assert json.loads((tmp_path / "again" / "summary.json").read_text())["final_best"] == summary["final_best"]


def test_generator_weights_flag_goes_to_the_generator(tmp_path, in_process, monkeypatch):
    (tmp_path / "job.toml").write_text(CONFIG.replace("generations = 4", "generations = 1"))
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "empty-home"
    code, _, err = in_process("evolve", "job.toml", "--generator-weights", str(SHIPPED), "--output", "run", "--quiet", home=empty)
    assert code == 0, err  # loaded from --generator-weights FILE, not the (empty) cache
    saved = tomllib.loads((tmp_path / "run" / "config.toml").read_text())
    assert saved["generator"]["weights"] == str(SHIPPED) and "weights" not in saved["responder"]
    code, _, err = in_process("evolve", "job.toml", "--output", "run2", home=empty)
    assert code == 2 and "xdream weights download example-decoder" in err
    assert not (tmp_path / "run2").exists()


def contract_tests(path: Path, fixtures: set[str]) -> set[str]:
    """The test functions of a contract test file that take one of ``fixtures`` (run per plugin)."""
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
            and fixtures & {arg.arg for arg in node.args.args}}


def test_contract_tests_pass_for_every_example_plugin(env, downloaded):
    files = {"generator": (ROOT / "tests/generators/test_generator_contract.py", {"gen"}),
             "responder": (ROOT / "tests/responders/test_responder_contract.py", {"responder", "name"}),
             "noise": (ROOT / "tests/responders/test_noise_contract.py", {"noise"})}
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-k", "example",
                             *(str(path) for path, _ in files.values())],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:]
    passed = [line for line in result.stdout.splitlines() if line.endswith("PASSED") or " PASSED " in line]
    for kind, (path, fixtures) in files.items():
        ran = {line.split("::")[1].split("[")[0] for line in passed
               if f"{path.name}::" in line and PLUGINS[kind] in line}
        assert ran == contract_tests(path, fixtures), kind


# Plugins that break the contract in ways the other tests here cannot see: each must fail the
# contract test named, run by a plugin author's command (the contract files with -k NAME).
BROKEN = {
    "lab-unseeded": ("xdream.generators", "lab_broken:Unseeded", "test_generator_contract.py",
                     "test_two_builds_decode_alike"),
    "lab-no-device": ("xdream.responders", "lab_broken:NoDevice", "test_responder_contract.py",
                      "test_constructor_takes_the_device_a_run_passes"),
}
BROKEN_SOURCE = """\
import torch

from xdream.core.generator import Generator
from xdream.core.responder import Responder


class Unseeded(Generator):  # forgot to load its weights: drawn from torch's global RNG at each build
    name = "lab-unseeded"
    latent_shape = (8,)
    image_size = 16

    def __init__(self, *, device: str = "cpu"):
        super().__init__(device=device)
        self.net = torch.nn.Linear(8, 3 * 16 * 16).to(self.device)

    def decode_tensor(self, codes):
        return torch.sigmoid(self.net(codes)).reshape(len(codes), 3, 16, 16)


class NoDevice(Responder):  # no device parameter: a run builds it with device=... and fails
    name = "lab-no-device"

    def respond(self, images):
        return images.mean(dim=(1, 2, 3)).double().numpy()
"""


def test_contract_tests_fail_a_plugin_that_breaks_the_contract(tmp_path):
    """A generator whose construction draws from a global RNG (two runs of one seed differ); a
    responder whose constructor takes no ``device`` (every run fails to build it)."""
    (tmp_path / "lab_broken.py").write_text(BROKEN_SOURCE)
    points = {}
    for name, (group, target, _, _) in BROKEN.items():
        points.setdefault(group, {})[name] = target
    write_dist_info(tmp_path, {"name": "lab-broken", "version": "1.0", "entry-points": points})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    files = sorted({ROOT / "tests" / ("generators" if f.startswith("test_generator") else "responders") / f
                    for _, _, f, _ in BROKEN.values()})
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-k",
                             " or ".join(BROKEN), *map(str, files)],
                            env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    failed = {line.split("::")[1].split(" ")[0] for line in result.stdout.splitlines() if line.endswith("FAILED")
              or " FAILED " in line}
    for name, (_, _, _, test) in BROKEN.items():
        assert f"{test}[{name}]" in failed, result.stdout[-3000:]


def test_a_file_name_clash_with_another_package_names_both(site, tmp_path, monkeypatch):
    """In process: the registry sees the example and a second package whose generator declares a
    different file under the example's cache file name."""
    from xdream.weights.catalogue import registered

    (tmp_path / "lab_clash.py").write_text(
        "import dataclasses\n"
        "from xdream_plugin_example.decoder import WEIGHTS, ExampleDecoder\n"
        "class Clash(ExampleDecoder):\n"
        "    name = 'lab-clash'\n"
        "    weights_files = (dataclasses.replace(WEIGHTS, name='lab-clash', sha256='0' * 64),)\n")
    write_dist_info(tmp_path, {"name": "lab-clash", "version": "1.0",
                               "entry-points": {"xdream.generators": {"lab-clash": "lab_clash:Clash"}}})
    for entry in (str(site), str(EXAMPLE)):
        monkeypatch.syspath_prepend(entry)
    assert "example-decoder" in registered()
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(WeightsError) as info:
        registered()
    message = str(info.value)
    assert "weights file name 'example_decoder.pt' is declared by both" in message
    assert "'example-decoder' (xdream_plugin_example.decoder.ExampleDecoder)" in message
    assert "'lab-clash' (lab_clash.Clash)" in message
    monkeypatch.undo()
    assert "example-decoder" not in registry.available("generator")
    assert "example-decoder" not in registered()
