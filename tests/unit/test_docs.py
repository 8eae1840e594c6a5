"""What the docs and the Makefile promise a new user (issue 15, items 14 and 17)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.acceptance_plugin import CRITERIA

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "Makefile", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_docs_cite_no_spec_section_the_repository_lacks():
    """The specification is not shipped: a reader cannot look up 'SPEC §13'."""
    cited = [
        f"{path.name}:{n}: {line.strip()}"
        for path in DOCS
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"SPEC §\d", line)
    ]
    assert not cited, "\n".join(cited)


def test_the_acceptance_doc_lists_every_criterion_the_tests_prove():
    text = (ROOT / "docs" / "acceptance.md").read_text(encoding="utf-8")
    for criterion_id, criterion in CRITERIA.items():
        assert f"| {criterion_id} | {criterion.replace('|', chr(92) + '|')} |" in text


def test_make_demo_installs_ratelord_without_the_dev_tools(tmp_path: Path):
    plan = subprocess.run(
        ["make", "-n", "demo", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    installs = [line for line in plan.splitlines() if "pip install" in line and " -e " in line]
    assert installs, plan
    assert not any("[dev]" in line for line in installs), plan
    assert "ratelord-d --demo" in plan
