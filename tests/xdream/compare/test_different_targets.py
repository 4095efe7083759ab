"""``xdream compare --from-session`` of threads on different targets (different neurons) says so
and ranks methods only within their target, never one "Highest" across units."""

from __future__ import annotations

import json
import re

from xdream.cli import main

TARGET_A = "efficientnet_lite0:_blocks.2:5"  # pix and four (the session fixture, tests/xdream/conftest.py)
TARGET_B = "efficientnet_lite0:_blocks.2:3 + efficientnet_lite0:_blocks.2:4"  # avg


def test_threads_on_different_targets_are_ranked_within_their_target(finished_session, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--from-session", str(finished_session), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| target |" in printed.splitlines()[0] and f"| {TARGET_B} |" in printed
    methods = json.loads((out / "compare.json").read_text())["methods"]
    assert [m["target"] for m in methods] == [TARGET_A, TARGET_A, TARGET_B, TARGET_A, TARGET_B]
    page = (out / "report.html").read_text()
    assert "Highest:" not in page and "2 different targets" in page and "not comparable" in page
    for target in (TARGET_A, TARGET_B):
        best = max((m for m in methods if m["target"] == target), key=lambda m: m["best"])
        assert re.search(rf"on <b>{re.escape(target)}</b>: highest <b>{re.escape(best['method'])}</b>", page)


def test_threads_on_one_target_keep_one_highest(finished_session, tmp_path):
    out = tmp_path / "cmp"
    assert main(["compare", "--from-session", str(finished_session), "--threads", "pix,four", "--output", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert f"Target <b>{TARGET_A}</b>" in page and "Highest: <b>" in page and "different targets" not in page
    assert "<th>target</th>" not in page
