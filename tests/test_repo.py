"""The repository's promises: README's test command is what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README.md must open with a bash block of set-up commands"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    commands = readme_commands()
    assert len(commands) == 2
    train, test = commands
    assert "mt-train" in train and "pytest" in test
    for cmd in commands:  # torch is pinned and installed before the project
        assert cmd.index("torch==2.13.0") < cmd.index("install -q -e")
    ci = [line for line in (ROOT / ".ci/run").read_text().splitlines() if line and not line.startswith("#")]
    assert test in ci


def test_no_corpus_or_large_files_tracked():
    """Corpora are read from MT_DATA_DIR (../shared/data), never committed."""
    import subprocess

    try:
        files = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        import pytest

        pytest.skip("not a git checkout")
    corpus = re.compile(r"(^|/)(train|val|test_\d{4}_\w+)\.(en|de|fr|cs)(\.gz)?$")
    assert [f for f in files if corpus.search(f)] == []
    assert [f for f in files if (ROOT / f).is_file() and (ROOT / f).stat().st_size > 1_000_000] == []
