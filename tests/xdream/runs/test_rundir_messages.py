"""What a run folder's errors tell the user: a folder that does not exist says so, and the hint
to resume names ``xdream evolve --resume`` only for a folder that command can continue."""

from __future__ import annotations

import pytest

from xdream.core.errors import RunDirError
from xdream.runs.rundir import RunDir, os_error


def test_a_folder_that_does_not_exist_says_so(tmp_path):
    with pytest.raises(RunDirError, match=r"^run directory \S*nosuchdir does not exist$"):
        RunDir.open(tmp_path / "nosuchdir")


@pytest.mark.parametrize("kind, hint", [("evolution", True), ("session", True), ("gradient", False),
                                        ("compare", False), ("characterise", False)])
def test_an_occupied_output_names_resume_only_where_it_applies(tmp_path, kind, hint):
    RunDir.create(tmp_path / "old", 'kind = "x"\n', subdirs=(), kind=kind).lock.release()
    with pytest.raises(RunDirError, match="already exists and is not empty") as error:
        RunDir.create(tmp_path / "old", "", subdirs=(), kind="gradient")
    assert ("xdream evolve --resume" in str(error.value)) is hint
    assert "resume it with --resume" not in str(error.value)  # the old hint named no command


def test_a_folder_without_a_run_is_still_told_apart(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match=r"not an xdream run directory \(no config.toml\)"):
        RunDir.open(tmp_path / "x")
    with pytest.raises(RunDirError, match="choose another$"):
        RunDir.create(tmp_path / "x", "", subdirs=())


@pytest.mark.parametrize("files, hint", [
    ({"config.toml": 'kind = "gradient"\n', "gradient.json": "{}"}, False),
    ({"config.toml": 'kind = "compare"\n', "compare.json": "{}"}, False),
    ({"config.toml": 'kind = "characterise"\n', "classification.csv": "", "summary.json": "{}"}, False),
    ({"config.toml": "generations = 2\n", "log.jsonl": ""}, True),
], ids=["gradient", "compare", "characterise", "evolution"])
def test_a_folder_from_before_run_json_names_resume_only_for_an_evolution(tmp_path, files, hint):
    """A folder written before runs recorded their kind is told apart by its files: an old gradient
    run (whose config.toml ``xdream evolve --resume`` refuses: unknown key 'kind') gets no resume hint."""
    old = tmp_path / "old"
    old.mkdir()
    for name, text in files.items():
        (old / name).write_text(text)
    with pytest.raises(RunDirError, match="already exists and is not empty") as error:
        RunDir.create(old, "", subdirs=(), kind="gradient")
    assert ("xdream evolve --resume" in str(error.value)) is hint
    assert sorted(p.name for p in old.iterdir()) == sorted(files)


@pytest.mark.parametrize("kind, where, hint", [("evolution", "generations/gen_0003.npz", True),
                                               ("session", "log.jsonl", True), ("gradient", "gradient.json", False),
                                               ("compare", "table.csv", False),
                                               ("compare", "evolution-genetic/images/montage_0000.png", False),
                                               ("characterise", "summary.json", False)])
def test_a_full_disk_says_resume_only_where_it_applies(tmp_path, kind, where, hint):
    """A full disk told a gradient, compare or characterise run to "free some space, then resume
    the run", which no command can do for them (their folder is refused as taken); so did a full
    disk in one of a comparison's evolution runs (resuming that run alone leaves the comparison cut)."""
    import errno
    import os

    RunDir.create(tmp_path / "run", 'kind = "x"\n', kind=kind).lock.release()
    if where.startswith("evolution-"):  # a comparison's own evolution run: xdream compare has no resume
        RunDir.create(tmp_path / "run" / where.split("/")[0], 'kind = "x"\n').lock.release()
    fd = os.open("/dev/full", os.O_WRONLY)  # a real full device: every write fails with ENOSPC
    try:
        with pytest.raises(OSError) as raised:
            os.write(fd, b"x")
    finally:
        os.close(fd)
    assert raised.value.errno == errno.ENOSPC
    message = str(os_error(tmp_path / "run" / where, raised.value))
    assert message.startswith(f"cannot write {tmp_path / 'run' / where}: No space left on device; free some space")
    assert ("resume" in message.rpartition("No space left on device")[2]) is hint, message
