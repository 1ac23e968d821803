"""Reading text files: encodings, gzip, line handling and error messages."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from conftest import write_lines

from mt.data.readers import clean_text, read_jsonl, read_lines, read_text_pair, read_tsv
from mt.errors import DataError, DataFileNotFoundError


def test_plain_and_gzip_read_the_same(tmp_path: Path) -> None:
    lines = ["Ein Mann.", "Zwei Hunde, drei Katzen.", "Größe ß é"]
    plain = write_lines(tmp_path / "a.txt", lines)
    gz = write_lines(tmp_path / "a.txt.gz", lines)
    renamed = write_lines(tmp_path / "gzip_without_suffix", lines, gz=True)
    assert read_lines(plain) == read_lines(gz) == read_lines(renamed) == lines


def test_only_line_terminators_are_stripped(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_bytes(b"  lead and trail  \r\nsecond\r\n\nlast without newline")
    assert read_lines(p) == ["  lead and trail  ", "second", "", "last without newline"]


def test_control_characters_become_spaces_and_do_not_split_lines(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_bytes("a\x00b\tc\x0cd\x1be\rf\x85g\u2028h\n\ufeffsecond\n".encode())
    # tab and U+2028 (not a control character) are kept; U+0085 and a stray \r become spaces
    assert read_lines(p) == ["a b\tc d e f g\u2028h", "\ufeffsecond"]
    assert clean_text("x\x7fy\x9fz") == "x y z"


def test_bom_is_dropped_and_empty_file_has_no_lines(tmp_path: Path) -> None:
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfhello\n")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert read_lines(bom) == ["hello"]
    assert read_lines(empty) == []


@pytest.mark.parametrize("gz", [False, True])
def test_invalid_utf8_names_file_and_line(tmp_path: Path, gz: bool) -> None:
    data = b"ok line\nanother ok\nbad \xe9t\xe9 line\n"
    p = tmp_path / ("latin1.txt.gz" if gz else "latin1.txt")
    p.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(DataError) as exc:
        read_lines(p)
    msg = str(exc.value)
    assert f"{p}:3:" in msg
    assert "UTF-8" in msg and "iconv" in msg


def test_missing_file_names_path(tmp_path: Path) -> None:
    p = tmp_path / "nope" / "train.de"
    with pytest.raises(DataFileNotFoundError) as exc:
        read_lines(p)
    assert str(p) in str(exc.value)
    assert isinstance(exc.value, FileNotFoundError) and isinstance(exc.value, ValueError)


def test_corrupt_gzip_is_a_data_error(tmp_path: Path) -> None:
    p = tmp_path / "cut.gz"
    p.write_bytes(gzip.compress(b"hello\n" * 1000)[:40])
    with pytest.raises(DataError, match="cut.gz"):
        read_lines(p)


def test_mismatched_line_counts_name_both_files_and_counts(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "train.de", ["a", "b", "c"])
    tgt = write_lines(tmp_path / "train.en.gz", ["a", "b"])
    with pytest.raises(DataError) as exc:
        read_text_pair(src, tgt)
    msg = str(exc.value)
    assert str(src) in msg and str(tgt) in msg
    assert "3 lines" in msg and "has 2" in msg


def test_text_pair(tmp_path: Path) -> None:
    src = write_lines(tmp_path / "x.de", ["eins", "zwei"])
    tgt = write_lines(tmp_path / "x.en", ["one", "two"])
    assert read_text_pair(src, tgt) == (["eins", "zwei"], ["one", "two"])


def test_tsv(tmp_path: Path) -> None:
    p = write_lines(tmp_path / "a.tsv.gz", ["eins\tone", " zwei \t two ", "\t"])
    assert read_tsv(p) == (["eins", " zwei ", ""], ["one", " two ", ""])


@pytest.mark.parametrize("bad, found", [("a\tb\tc", 3), ("no tab", 1), ("", 1)])
def test_tsv_wrong_column_count_names_file_and_line(tmp_path: Path, bad: str, found: int) -> None:
    p = write_lines(tmp_path / "a.tsv", ["eins\tone", bad])
    with pytest.raises(DataError) as exc:
        read_tsv(p)
    assert f"{p}:2:" in str(exc.value) and f"found {found}" in str(exc.value)


def test_jsonl_shapes(tmp_path: Path) -> None:
    records = [
        {"src": "eins", "tgt": "one"},
        {"translation": {"de": "zwei", "en": "two", "fr": "deux"}},
        {"de": "drei\u0001", "en": "three", "id": 3},
    ]
    p = write_lines(
        tmp_path / "a.jsonl.gz", [json.dumps(r) for r in records[:2]] + ["", json.dumps(records[2])]
    )
    assert read_jsonl(p, "de", "en") == (["eins", "zwei", "drei "], ["one", "two", "three"])


def test_jsonl_bad_json_names_file_and_line(tmp_path: Path) -> None:
    p = write_lines(tmp_path / "a.jsonl", ['{"src": "a", "tgt": "b"}', '{"src": "a", "tgt": '])
    with pytest.raises(DataError) as exc:
        read_jsonl(p, "de", "en")
    assert f"{p}:2:" in str(exc.value) and "invalid JSON" in str(exc.value)


def test_jsonl_missing_language_lists_keys(tmp_path: Path) -> None:
    p = write_lines(tmp_path / "a.jsonl", ['{"de": "a", "fr": "b"}'])
    with pytest.raises(DataError) as exc:
        read_jsonl(p, "de", "en")
    assert f"{p}:1:" in str(exc.value) and "['de', 'fr']" in str(exc.value)


def test_jsonl_non_string_text(tmp_path: Path) -> None:
    p = write_lines(tmp_path / "a.jsonl", ['{"src": "a", "tgt": 5}'])
    with pytest.raises(DataError, match="target text is int"):
        read_jsonl(p, "de", "en")
