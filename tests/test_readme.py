"""The README's examples run as written, so they cannot rot: its Python blocks run, its command
lines parse (and `xdream evolve` lines build their configs), its config example runs."""

import re
import shlex
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples write runs/ under the working directory
    namespace = {"__name__": f"readme_block{index}"}
    exec(compile(BLOCKS[index], f"README.md python block {index}", "exec"), namespace)


# -- the command lines and the config example ----------------------------------------------------
ROOT = README.parent
TEXT = README.read_text()
COMMANDS = [shlex.split(line, comments=True)
            for block in re.findall(r"```bash\n(.*?)```", TEXT, flags=re.S)
            for line in block.replace("\\\n", " ").splitlines()
            if shlex.split(line, comments=True)[:1] == ["xdream"]]
CONFIG_EXAMPLE = TEXT.split("### Config files", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]


@pytest.fixture
def readme_dir(tmp_path, monkeypatch):
    """A working folder holding README's `job.toml` (its config example) and the repository's
    experiments/, as a reader following README has."""
    (tmp_path / "job.toml").write_text(CONFIG_EXAMPLE)
    (tmp_path / "experiments").symlink_to(ROOT / "experiments")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_readme_command_line_parses():
    """Every `xdream ...` line of README's shell blocks is accepted by the command's parser."""
    from xdream.cli.main import build_parser

    assert len(COMMANDS) >= 30
    for tokens in COMMANDS:
        try:
            build_parser().parse_args(tokens[1:])
        except SystemExit as exc:
            pytest.fail(f"README command {' '.join(tokens)!r} does not parse (exit {exc.code})")


def test_every_readme_evolve_command_makes_a_valid_config(readme_dir):
    """Each `xdream evolve` line (but --resume) builds its config as the command would, so a
    flag or --set value that the default plugins do not take fails here, not for a reader."""
    from xdream.cli.evolve import config_from_args
    from xdream.cli.main import build_parser

    evolve = [t for t in COMMANDS if t[:2] == ["xdream", "evolve"] and "--resume" not in t]
    assert len(evolve) >= 10 and ["xdream", "evolve", "job.toml"] in evolve
    for tokens in evolve:
        args = build_parser().parse_args(tokens[1:])
        try:
            config_from_args(args)
        except Exception as exc:
            pytest.fail(f"README command {' '.join(tokens)!r}: {exc}")


def test_readme_config_example_runs_as_written(readme_dir):
    """README's config example (`job.toml`) runs verbatim but for its length and folder; its
    references come from the default photographs, as its comment says."""
    from xdream.cli import main

    assert main(["evolve", "job.toml", "--generations", "1", "--output", "run", "--quiet"]) == 0
    log = (readme_dir / "run" / "log.jsonl").read_text().splitlines()
    assert len(log) == 1 and '"reference_mean"' in log[0]


def test_readme_layout_names_every_experiment():
    """The Layout section's experiments/ entry names each folder and script there, and nothing else."""
    layout = TEXT.split("## Layout", 1)[1].split("```", 2)[1]
    entry = layout.split("experiments/", 1)[1].split("\nrigkit/", 1)[0]
    named = set(re.findall(r"([A-Za-z0-9_]+(?:\.py|/))", entry))
    present = {p.name + ("/" if p.is_dir() else "") for p in (ROOT / "experiments").iterdir()
               if not p.name.startswith((".", "__"))}
    assert named == present
