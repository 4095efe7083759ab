"""Docstrings and docs cite published sources or files of this repository, never notes that
live outside it (the repository must stand alone)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"REFERENCE\.md|REFERENCE section|\.\./shared/|rig-spec-review")


def test_no_file_cites_notes_outside_the_repository():
    found = []
    for folder in ("xdream", "generators", "responders", "experiments", "docs", "tests"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".py", ".md", ".toml", ".m") and path != Path(__file__):
                for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                    if OUTSIDE.search(line):
                        found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    found += [f"README.md: {m}" for m in OUTSIDE.findall((ROOT / "README.md").read_text())]
    assert found == []
