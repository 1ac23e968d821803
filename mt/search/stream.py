"""Translating a stream of lines chunk by chunk, so memory does not grow with the input.

`stream_chunks` reads `chunk_lines` lines, hands them to a translate function (which batches
them as it likes, e.g. sorted by length), writes what it returns, one line per input line, in
input order to each `LineSink`, flushes, and only then reads the next chunk. The sinks:

- standard output: written and flushed after each chunk;
- a file PATH: written, and flushed after each chunk, as ``PATH.partial`` (created when the
  first chunk is written), renamed to PATH (after an fsync) once every line is written. A run
  that fails or is killed never touches an earlier PATH; its ``PATH.partial`` keeps the lines
  translated before it stopped. Side files (``.align``, ``.attention.jsonl``) are renamed
  before the main output, so a new main output means its side files are new too.

Every line written is exactly one line: a line holding a newline is a bug (ValueError), and
texts pass through `one_line`, which removes every character some reader takes for a line end.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO, TypeVar

from mt.errors import OutputError
from mt.io import write_problem

log = logging.getLogger(__name__)
T = TypeVar("T")

# What str.splitlines() and some editors or JSON-lines readers end a line at, and tab (the
# column separator of n-best and alignment output).
_BREAKS = re.compile("[\t\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """`text` with tabs and line-ending characters (\\n, \\r, \\x0b, \\x0c, \\x1c-\\x1e, U+0085,
    U+2028, U+2029) replaced by a space: all are whitespace to `str.split`, so its words stay."""
    return _BREAKS.sub(" ", text)


def json_line(text: str) -> str:
    """A JSON text (``json.dumps(..., ensure_ascii=False)``) with U+0085, U+2028 and U+2029,
    which JSON leaves raw inside strings, escaped: then `str.splitlines` sees one line."""
    return text.replace("\x85", "\\u0085").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last may be shorter), read lazily."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


class LineSink:
    """One output, one line per input line: standard output (`path` None) or a file written as
    ``PATH.partial`` and renamed to PATH by `commit` (see the module doc)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self.partial = Path(f"{path}.partial") if path is not None else None
        self.lines = 0
        self._file: IO[bytes] | None = None

    def write(self, lines: list[str]) -> None:
        """Append `lines` (each without a newline) and flush them to the file or stream."""
        text = "".join(f"{line}\n" for line in lines)
        if text.count("\n") != len(lines):
            raise ValueError("an output line holds a newline; it would shift every later line")
        if self.path is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            self._guard(lambda: self._open().write(text.encode("utf-8")))
            self._guard(self._open().flush)
        self.lines += len(lines)

    def commit(self) -> None:
        """Make the file final: fsync ``PATH.partial`` and rename it over PATH."""
        if self.path is None:
            return

        def finish() -> None:
            f = self._open()
            f.flush()
            os.fsync(f.fileno())
            f.close()
            os.replace(self.partial, self.path)

        self._guard(finish)
        self._file = None

    def abandon(self) -> None:
        """Close the file after a failure: PATH stays as it was, ``PATH.partial`` (if any) holds the lines so far."""
        if self._file is not None:
            self._file.close()
            self._file = None
            log.warning(
                "%d translated lines kept in %s; %s is unchanged", self.lines, self.partial, self.path
            )

    def _open(self) -> IO[bytes]:
        if self._file is None:
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.partial.open("wb")
        return self._file

    def _guard(self, action: Callable[[], object]) -> None:
        try:
            action()
        except OSError as e:
            raise OutputError(
                f"could not write {self.partial}: {write_problem(self.partial, e)}. {self.path} is unchanged; free disk "
                f"space or choose another output directory."
            ) from e


def stream_chunks(
    lines: Iterable[str],
    translate_chunk: Callable[[list[str], int], dict[str, list[str]]],
    sinks: dict[str, LineSink],
    chunk_lines: int,
    progress: Callable[[int], object] | None = None,
) -> int:
    """Translate `lines` `chunk_lines` at a time and return how many there were.

    `translate_chunk(chunk, first)` gets a chunk and the 0-based number of its first line and
    returns, for each key of `sinks`, one output line per line of the chunk, in its order;
    each sink gets its lines written and flushed before the next chunk is read. `progress`
    is called with each chunk's size. The sinks are committed at the end, the one named
    "output" last; on any failure they are abandoned (the earlier files stay intact).
    """
    done = 0
    try:
        for chunk in chunked(lines, chunk_lines):
            out = translate_chunk(chunk, done)
            for key, sink in sinks.items():
                if len(out[key]) != len(chunk):
                    raise ValueError(f"{key}: {len(out[key])} output lines for {len(chunk)} input lines")
                sink.write(out[key])
            done += len(chunk)
            if progress is not None:
                progress(len(chunk))
        for key in sorted(sinks, key=lambda k: k == "output"):  # the main output last
            sinks[key].commit()
    except BaseException:
        for sink in sinks.values():
            sink.abandon()
        raise
    return done
