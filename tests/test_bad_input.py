"""Bad corpora through the real `mt-data` command: a clear message, a non-zero exit, no stack trace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clihelpers import run

GOOD_DE = [f"ein Hund {i} läuft über die Wiese" for i in range(60)]
GOOD_EN = [f"a dog {i} runs over the meadow" for i in range(60)]


def write(path: Path, lines: list[str] | bytes) -> Path:
    path.write_bytes(lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode())
    return path


def corpus(root: Path, train_de=GOOD_DE, train_en=GOOD_EN) -> list[str]:
    write(root / "train.de", train_de)
    write(root / "train.en", train_en)
    write(root / "dev.de", GOOD_DE[:5])
    write(root / "dev.en", GOOD_EN[:5])
    return [
        "data=local", f"data.files.train={root / 'train'}", f"data.files.validation={root / 'dev'}",
        f"data.cache_dir={root / 'cache'}", "tokenizer.vocab_size=40", f"hydra.run.dir={root / 'out'}",
    ]  # fmt: skip


def mt_data(root: Path, args: list[str]):
    proc = run("mt-data", args, cwd=root, timeout=180)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


@pytest.mark.parametrize(
    "case, expected",
    [
        ("mismatched", ["train.de", "60", "train.en", "59"]),
        ("invalid_utf8", ["train.en:3: invalid UTF-8", "iconv"]),
        ("missing", ["train.en"]),
        ("empty", ["empty"]),
    ],
)
def test_bad_corpus_is_a_clear_error(tmp_path: Path, case: str, expected: list[str]):
    if case == "mismatched":
        args = corpus(tmp_path, train_en=GOOD_EN[:59])
    elif case == "invalid_utf8":
        bad = (
            ("\n".join(GOOD_EN[:2]) + "\n").encode()
            + b"caf\xe9 au lait\n"
            + ("\n".join(GOOD_EN[3:]) + "\n").encode()
        )
        args = corpus(tmp_path, train_en=bad)
    elif case == "missing":
        args = corpus(tmp_path)
        (tmp_path / "train.en").unlink()
    else:
        args = corpus(tmp_path, train_de=b"", train_en=b"")
    code, out, err = mt_data(tmp_path, args)
    assert code == 2, err[-2000:]
    for text in expected:
        assert text in err, (text, err[-2000:])
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "data_stats.json").exists()


def test_long_line_and_control_characters_are_handled(tmp_path: Path):
    """A 100,000-character pair is dropped from train (and counted); control characters become spaces."""
    de = GOOD_DE[:-2] + ["Hund " * 20000, "ein\x07 Hund\x1b bellt"]
    en = GOOD_EN[:-2] + ["dog " * 25000, "a\x07 dog\x1b barks"]
    code, out, err = mt_data(tmp_path, corpus(tmp_path, de, en))
    assert code == 0, err[-2000:]
    stats = json.loads((tmp_path / "out" / "data_stats.json").read_text())
    assert stats["train_dropped"]["pairs"] == 1
    assert stats["splits"]["train"]["sentences"] == 60  # split sizes are before the train filter
