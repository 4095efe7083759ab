"""``xdream weights ...`` end to end: the cache from $XDREAM_HOME, downloads from a mirror on a
real 127.0.0.1 server, one-line errors with exit 2, and nothing written on bad input."""

import hashlib
import subprocess

import pytest

from xdream.cli import main
from xdream.weights.catalogue import registered

CATALOG = registered()


@pytest.fixture
def home(tmp_path, monkeypatch, file_server):
    monkeypatch.setenv("XDREAM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDREAM_WEIGHTS_MIRROR", file_server.base)
    return tmp_path / "home"


def test_path_and_list(home, capsys):
    assert main(["weights", "path", "deepsim-fc6"]) == 0
    assert capsys.readouterr().out.strip() == str(home / "weights" / "upconvGAN_fc6.pt")
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for name in CATALOG:
        assert name in out
    assert "missing" in out and "MIT" in out


def test_download_of_an_unpublished_hash_entry_succeeds(home, file_server, capsys):
    file_server.files["upconvGAN_pool5.pt"] = b"pool5 bytes" * 1000
    assert main(["weights", "download", "deepsim-pool5", "--quiet"]) == 0
    path = home / "weights" / "upconvGAN_pool5.pt"
    assert path.read_bytes() == b"pool5 bytes" * 1000
    assert "no published SHA-256" in capsys.readouterr().out


def test_wrong_file_from_mirror_is_rejected_exit_2_one_line(home, file_server, capsys):
    file_server.files["upconvGAN_norm1.pt"] = b"\0" * CATALOG["deepsim-norm1"].size  # right size, wrong bytes
    assert main(["weights", "download", "deepsim-norm1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "download rejected" in err and CATALOG["deepsim-norm1"].sha256 in err
    assert not (home / "weights" / "upconvGAN_norm1.pt").exists()
    assert len(list((home / "weights" / "quarantine").iterdir())) == 1


def test_unknown_name_writes_nothing(home, capsys):
    assert main(["weights", "download", "deepsim-pool5", "stylegan"]) == 2
    assert "unknown weights 'stylegan'" in capsys.readouterr().err
    assert not home.exists()


def test_verify_reports_a_bad_cached_file(home, capsys):
    (home / "weights").mkdir(parents=True)
    (home / "weights" / "upconvGAN_fc8.pt").write_bytes(b"truncated")
    assert main(["weights", "verify", "deepsim-fc8", "deepsim-fc7"]) == 2
    captured = capsys.readouterr()
    assert "deepsim-fc8        BAD" in captured.out and "deepsim-fc7        missing" in captured.out
    assert "1 cached file(s) failed verification: deepsim-fc8" in captured.err
    assert (home / "weights" / "upconvGAN_fc8.pt").read_bytes() == b"truncated"  # reported, not deleted


def test_real_process_shows_progress_then_one_error_line(home, file_server, xdream_cmd):
    data = b"conv3" * 5000
    file_server.files["upconvGAN_conv3.pt"] = data
    result = subprocess.run([*xdream_cmd, "weights", "download", "deepsim-conv3"], capture_output=True, text=True)
    # conv3's published hash is of the real file, so this stand-in is refused and quarantined
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "100%" in result.stderr  # the progress bar, then the verdict
    assert lines[-1].startswith("xdream: error: deepsim-conv3: download rejected")
    assert hashlib.sha256(data).hexdigest() in lines[-1] and "Traceback" not in result.stderr


def test_list_shows_every_expected_sha256_in_full(home, capsys):
    """An air-gapped rig PC: the user compares ``sha256sum FILE`` with this line by hand."""
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for entry in CATALOG.values():
        if entry.sha256 is not None:
            assert f"{entry.sha256}  {entry.file_name}\n" in out
        else:
            assert "(no published SHA-256)" in out and entry.file_name in out


def test_list_says_what_is_pinned_hashed_and_sized(home, capsys):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    fc6, deep512 = CATALOG["deepsim-fc6"], CATALOG["biggan-deep-512"]
    assert f"    {fc6.url}  [pinned to a commit, SHA-256 published, 224398749 bytes]\n" in out
    assert (f"    {deep512.url}  [NOT pinned (the host has no revision to pin), NO published SHA-256, "
            "exact size not published, 225 MiB checked]\n") in out
    assert f"    {CATALOG['deepsim-pool5'].url}  [pinned to a commit, NO published SHA-256, size not published]" in out


def test_dry_run_without_preset_is_refused_and_fetches_nothing(home, file_server, capsys):
    """``--dry-run`` lists a preset's files; given with catalogue names it must not download them."""
    file_server.files["upconvGAN_pool5.pt"] = b"pool5 bytes" * 1000
    assert main(["weights", "download", "deepsim-pool5", "--dry-run", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--dry-run" in err and "--preset" in err
    assert not (home / "weights" / "upconvGAN_pool5.pt").exists()
