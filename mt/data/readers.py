"""Reading parallel text from plain or gzipped files: line-aligned pairs, TSV and JSONL.

Every reader returns Python strings with these guarantees:

- Files are UTF-8 (a leading byte-order mark is dropped). Invalid UTF-8 raises
  :class:`~mt.errors.DataError` naming the file and the 1-based line.
- Gzip is detected from the file's magic bytes, so ``.gz`` files and renamed ones both work.
- Only the line terminator is removed (``\\n`` and any ``\\r`` before it); leading and trailing
  spaces are kept.
- Control characters other than tab and newline (U+0000-U+001F, U+007F-U+009F, including a
  stray ``\\r`` inside a line) are replaced with a space: they are invisible, break terminals and
  TSV files, and the tokenizer would map them to unknown pieces anyway.
- Lines are split on ``\\n`` only (never on U+2028, form feed, ... as ``str.splitlines`` would),
  so line numbers agree with ``wc -l`` and ``sed -n Np``. (U+2028 and U+2029 are not control
  characters: they stay in the text, inside their line.)

`iter_lines` yields the same lines one at a time (memory holds one line), from a file or a stream.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain, islice
from pathlib import Path
from typing import IO, TypeVar

from mt.errors import DataError, DataFileNotFoundError
from mt.io import unreadable_reason

PathLike = str | Path

_GZIP_MAGIC = b"\x1f\x8b"
T = TypeVar("T")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    """Return ``text`` with control characters other than tab and newline replaced by a space."""
    return _CONTROL.sub(" ", text)


def read_bytes(path: PathLike) -> bytes:
    """Return the content of ``path``, decompressed when it is gzip."""
    path = Path(path)
    what = unreadable_reason(path)
    if what is not None:
        raise DataFileNotFoundError(
            f"data file {path} {what}. Check the path in the data config (data.files / data.data_dir) "
            f"or the current directory ({Path.cwd()})."
        )
    data = path.read_bytes()
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(
                f"{path} looks like a gzip file but cannot be decompressed ({e}); it is probably "
                f"truncated or corrupt. Download or copy it again."
            ) from e
    return data


def decode_utf8(data: bytes, path: Path) -> str:
    """Decode UTF-8 (a leading BOM dropped); invalid bytes are a DataError naming file and line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_no = data.count(b"\n", 0, e.start) + 1
        line_start = data.rfind(b"\n", 0, e.start) + 1
        raise DataError(
            f"{path}:{line_no}: invalid UTF-8 (byte 0x{data[e.start]:02x} at byte {e.start - line_start + 1} "
            f"of line {line_no}). Data files must be UTF-8: convert the file (e.g. "
            f"`iconv -f latin1 -t utf-8 {path.name} > fixed.txt`) or fix line {line_no}."
        ) from e
    return text[1:] if text.startswith("\ufeff") else text


def read_lines(path: PathLike) -> list[str]:
    """Return the lines of a UTF-8 text file (plain or gzip), cleaned as described in the module doc."""
    return [line for block in iter_line_blocks(path) for line in block]


def iter_line_blocks(path: PathLike, block_bytes: int = 1 << 22) -> Iterator[list[str]]:
    """Yield the lines of a UTF-8 file (plain or gzip) as `read_lines` returns them, a block of
    about ``block_bytes`` at a time: memory holds one block, whatever the file's size."""
    path = Path(path)
    yield from _decompressed(path, lambda f: _blocks(f, path, block_bytes))


def _decompressed(path: Path, read: Callable[[IO[bytes]], Iterator[T]]) -> Iterator[T]:
    """Yield what ``read`` yields from the bytes of ``path`` (decompressed when gzip); a file that
    cannot be opened or decompressed raises the DataError that names it and the fix."""
    try:
        raw = path.open("rb")
    except OSError:
        read_bytes(path)  # raises the data-file error that says what is wrong and the fix
        raise
    with raw:
        if raw.peek(2)[:2] != _GZIP_MAGIC:
            yield from read(raw)
            return
        try:
            yield from read(gzip.GzipFile(fileobj=raw))
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(
                f"{path} looks like a gzip file but cannot be decompressed to the end ({e}); it is "
                f"probably truncated or corrupt. Download or copy it again."
            ) from e


def _blocks(f: IO[bytes], path: Path, block_bytes: int) -> Iterator[list[str]]:
    carry = b""
    done = 0  # lines yielded so far
    while data := f.read(block_bytes):
        data = carry + data
        cut = data.rfind(b"\n") + 1
        carry, data = data[cut:], data[:cut]
        if data:
            lines = _block_lines(data, path, done)
            done += len(lines)
            yield lines
    if carry:  # the last line has no newline
        lines = _block_lines(carry, path, done)
        if lines != [""]:  # a byte-order mark alone
            yield lines


def _block_lines(data: bytes, path: Path, before: int) -> list[str]:
    """The cleaned lines of ``data`` (whole lines of a file, ``before`` lines after its start)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:  # the one invalid-UTF-8 message, numbered as in the file
        decode_utf8(b"\n" * before + data, path)
        raise
    if before == 0 and text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    if "\r" in text:
        lines = [line.rstrip("\r") for line in lines]
    return [clean_text(line) for line in lines] if _CONTROL.search(text) else lines


def iter_lines(source: PathLike | IO[bytes], name: str | None = None) -> Iterator[str]:
    """Yield the lines of a UTF-8 file (plain or gzip) or of a binary stream such as
    ``sys.stdin.buffer`` (read as it is, never decompressed) one at a time, each as `read_lines`
    returns it. Invalid UTF-8 raises DataError naming ``name`` (default: the path, or
    ``<stream>``) and the line, when that line is reached: the lines before it were yielded."""
    if not isinstance(source, str | Path):
        yield from _stream_lines(source, Path(name or "<stream>"))
        return
    path = Path(source)
    yield from _decompressed(path, lambda f: _stream_lines(f, Path(name) if name else path))


def _stream_lines(f: IO[bytes], path: Path) -> Iterator[str]:
    for line_no, raw in enumerate(f, start=1):  # binary lines end at b"\n" only
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:  # the one invalid-UTF-8 message, numbered as this line
            decode_utf8(b"\n" * (line_no - 1) + raw, path)
            raise
        if line_no == 1 and text.startswith("\ufeff"):
            text = text[1:]
            if not text:  # a byte-order mark alone: an empty file
                return
        yield clean_text(text.removesuffix("\n").rstrip("\r"))


PAIR_ROWS = 20_000  # sentence pairs per batch of the streaming readers


def iter_pairs(
    src_path: PathLike, tgt_path: PathLike, rows: int = PAIR_ROWS
) -> Iterator[tuple[list[str], list[str]]]:
    """Yield the line-aligned sentences of two files as ``(src, tgt)`` batches of at most ``rows``
    pairs; a difference in line count raises DataError when the shorter file ends."""
    src_it = chain.from_iterable(iter_line_blocks(src_path))
    tgt_it = chain.from_iterable(iter_line_blocks(tgt_path))
    done = 0
    while True:
        src, tgt = list(islice(src_it, rows)), list(islice(tgt_it, rows))
        if len(src) != len(tgt):
            n_src = done + len(src) + sum(1 for _ in src_it)
            n_tgt = done + len(tgt) + sum(1 for _ in tgt_it)
            raise DataError(
                f"parallel files have different line counts: {src_path} has {n_src} lines but "
                f"{tgt_path} has {n_tgt}. Line i of one file must translate line i of the other; "
                f"re-create or re-download the shorter file (look for missing or extra newlines)."
            )
        if not src:
            return
        done += len(src)
        yield src, tgt


def join_batches(batches: Iterable[tuple[list[str], list[str]]]) -> tuple[list[str], list[str]]:
    """Return the ``(src, tgt)`` batches of a streaming reader as two whole lists."""
    src: list[str] = []
    tgt: list[str] = []
    for s, t in batches:
        src += s
        tgt += t
    return src, tgt


def read_text_pair(src_path: PathLike, tgt_path: PathLike) -> tuple[list[str], list[str]]:
    """Return the line-aligned ``(src, tgt)`` sentences of two files; their line counts must agree."""
    return join_batches(iter_pairs(src_path, tgt_path))


def iter_tsv(path: PathLike, rows: int = PAIR_ROWS) -> Iterator[tuple[list[str], list[str]]]:
    """Yield ``(src, tgt)`` batches of at most ``rows`` pairs from a file of ``source<TAB>target`` lines."""
    src: list[str] = []
    tgt: list[str] = []
    for line_no, line in enumerate(chain.from_iterable(iter_line_blocks(path)), start=1):
        cols = line.split("\t")
        if len(cols) != 2:
            raise DataError(
                f"{path}:{line_no}: expected 2 tab-separated columns (source<TAB>target), found "
                f"{len(cols)}. Remove extra tabs from the text or fix the line; blank lines are not "
                f"allowed in TSV files."
            )
        src.append(cols[0])
        tgt.append(cols[1])
        if len(src) == rows:
            yield src, tgt
            src, tgt = [], []
    if src:
        yield src, tgt


def read_tsv(path: PathLike) -> tuple[list[str], list[str]]:
    """Return ``(src, tgt)`` from a file of ``source<TAB>target`` lines."""
    return join_batches(iter_tsv(path))


def _pair_from_record(record: object, src_lang: str, tgt_lang: str) -> tuple[object, object] | None:
    if not isinstance(record, Mapping):
        return None
    if "src" in record and "tgt" in record:
        return record["src"], record["tgt"]
    trans = record.get("translation")
    if isinstance(trans, Mapping) and src_lang in trans and tgt_lang in trans:
        return trans[src_lang], trans[tgt_lang]
    if src_lang in record and tgt_lang in record:
        return record[src_lang], record[tgt_lang]
    return None


def read_jsonl(path: PathLike, src_lang: str, tgt_lang: str) -> tuple[list[str], list[str]]:
    """Return ``(src, tgt)`` from a JSON-lines file (see `iter_jsonl`)."""
    return join_batches(iter_jsonl(path, src_lang, tgt_lang))


def iter_jsonl(
    path: PathLike, src_lang: str, tgt_lang: str, rows: int = PAIR_ROWS
) -> Iterator[tuple[list[str], list[str]]]:
    """Yield ``(src, tgt)`` batches of at most ``rows`` pairs from a JSON-lines file; blank lines are skipped.

    Each line is an object in one of three shapes: ``{"src": .., "tgt": ..}``,
    ``{"translation": {"<src_lang>": .., "<tgt_lang>": ..}}`` or ``{"<src_lang>": .., "<tgt_lang>": ..}``.
    """
    src: list[str] = []
    tgt: list[str] = []
    shapes = (
        f'{{"src": "..", "tgt": ".."}}, {{"translation": {{"{src_lang}": "..", "{tgt_lang}": ".."}}}} '
        f'or {{"{src_lang}": "..", "{tgt_lang}": ".."}}'
    )
    for line_no, line in enumerate(chain.from_iterable(iter_line_blocks(path)), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{path}:{line_no}: invalid JSON ({e.msg} at column {e.colno}). Each line of a .jsonl "
                f"file must be one complete JSON object; fix or remove line {line_no}."
            ) from e
        pair = _pair_from_record(record, src_lang, tgt_lang)
        if pair is None:
            found = sorted(record) if isinstance(record, Mapping) else type(record).__name__
            raise DataError(
                f"{path}:{line_no}: cannot find the {src_lang}-{tgt_lang} pair in this record (found "
                f"{found}). Each line must be an object shaped {shapes}; check data.src_lang / data.tgt_lang."
            )
        for side, value in zip(("source", "target"), pair, strict=True):
            if not isinstance(value, str):
                raise DataError(
                    f"{path}:{line_no}: the {side} text is {type(value).__name__}, not a string. "
                    f"Fix line {line_no} so both sides are JSON strings."
                )
        src.append(clean_text(pair[0]))
        tgt.append(clean_text(pair[1]))
        if len(src) == rows:
            yield src, tgt
            src, tgt = [], []
    if src:
        yield src, tgt
