"""`mt-translate` streams: chunks of `chunk_lines` lines are translated and written in input
order as they come, an earlier OUTPUT survives a failed run, one output line per input line
whatever it contains, and peak memory does not grow with the input."""

from __future__ import annotations

import importlib.util
import io
import json
import queue
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from clihelpers import BIN, TINY_MODEL, run, tiny_corpus_args

from mt.data.readers import iter_lines
from mt.errors import DataError
from mt.search.stream import LineSink, json_line, one_line, stream_chunks

BREAKS = "\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e\r"  # str.splitlines() ends a line at each


# -- the library ------------------------------------------------------------------------------------


def upper_chunk(chunk: list[str], first: int) -> dict[str, list[str]]:
    return {"output": [line.upper() for line in chunk], "side": [str(first + k) for k in range(len(chunk))]}


def test_each_chunk_is_written_before_the_next_is_read(tmp_path: Path):
    out = tmp_path / "out.txt"
    out.write_text("old\n")
    seen: list[tuple[int, list[str], str]] = []

    def lines() -> Iterator[str]:  # records what was on disk when each chunk's first line is read
        for k in range(10):
            if k % 3 == 0:
                partial = Path(f"{out}.partial")
                seen.append(
                    (k, partial.read_text().splitlines() if partial.exists() else [], out.read_text())
                )
            yield f"line {k}"

    sinks = {"output": LineSink(out), "side": LineSink(f"{out}.side")}
    assert stream_chunks(lines(), upper_chunk, sinks, chunk_lines=3) == 10
    assert seen == [(k, [f"LINE {j}" for j in range(k)], "old\n") for k in (0, 3, 6, 9)]
    assert out.read_text().splitlines() == [f"LINE {k}" for k in range(10)]
    assert Path(f"{out}.side").read_text().splitlines() == [str(k) for k in range(10)]
    assert not list(tmp_path.glob("*.partial"))


def test_a_failed_run_keeps_the_earlier_output_and_the_partial_one(tmp_path: Path):
    out = tmp_path / "out.txt"
    out.write_text("old\n")

    def lines() -> Iterator[str]:
        yield from ("a", "b", "c", "d")
        raise DataError("line 5 is bad")

    with pytest.raises(DataError, match="line 5"):
        stream_chunks(lines(), upper_chunk, {"output": LineSink(out)}, chunk_lines=3)
    assert out.read_text() == "old\n"
    assert Path(f"{out}.partial").read_text() == "A\nB\nC\n"
    with pytest.raises(ValueError, match="newline"):  # a line break inside a line is a bug
        stream_chunks(["x"], lambda c, f: {"output": ["a\nb"]}, {"output": LineSink(out)}, chunk_lines=3)
    assert out.read_text() == "old\n"


def test_line_breaking_characters_neither_split_nor_get_written():
    text = "".join(f"w{k}{ch}" for k, ch in enumerate(BREAKS + "\t\n"))
    assert len(one_line(text).splitlines()) == 1 and one_line(text).split() == text.split()
    assert one_line(text).replace(" ", "") == "".join(f"w{k}" for k in range(len(BREAKS) + 2))
    record = json_line(json.dumps({"s": text}, ensure_ascii=False))
    assert len(record.splitlines()) == 1 and json.loads(record) == {"s": text}
    data = "".join(f"{k}{BREAKS}{k}\n" for k in range(5)).encode()
    assert [line.split()[0] for line in iter_lines(io.BytesIO(data))] == [str(k) for k in range(5)]
    assert all("\u2028" in line for line in iter_lines(io.BytesIO(data)))  # not a control character


# -- the command ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A real 30-step mt-train run on the tiny corpus; returns its checkpoint."""
    root = tmp_path_factory.mktemp("stream")
    proc = run("mt-train", tiny_corpus_args(root) + [f"hydra.run.dir={root / 'run'}"] + TINY_MODEL, cwd=root)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return root / "run" / "checkpoints" / "best.pt"


def varied(n: int) -> list[str]:
    """`n` lines of 1 to 40 words in no length order, and two empty ones."""
    words = "ein Hund läuft über die grüne Wiese und eine Frau sitzt im Park".split()
    lines = [" ".join(words[(k + j) % len(words)] for j in range(1 + (k * 7) % 40)) for k in range(n)]
    lines[3] = lines[n // 2] = ""
    return lines


@pytest.mark.slow  # with the trained model: 40 s of the full run's budget together
def test_output_is_in_input_order_across_chunks(ckpt: Path, tmp_path: Path):
    from mt.training.checkpoint import load_model

    lines = varied(23)
    (tmp_path / "in.de").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    args = [f"checkpoint={ckpt}", "input=in.de", "output=out.en", "device=cpu", "beam_size=2", "n_best=2",
            "chunk_lines=4", "batch_sentences=3", "+attention=true", "precision=fp32"]  # fmt: skip
    proc = run("mt-translate", args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    outputs = (tmp_path / "out.en").read_text(encoding="utf-8").split("\n")
    records = [json.loads(r) for r in (tmp_path / "out.en.attention.jsonl").read_text().split("\n")[:-1]]
    assert len(outputs) == len(lines) + 1 and outputs[-1] == "" and len(records) == len(lines)
    tok = load_model(ckpt, "cpu").tokenizer
    for k, (line, out, record) in enumerate(zip(lines, outputs, records, strict=False)):
        assert record["line"] == k + 1
        if not line:
            assert out == "" and record["source"] == [] and record["hypotheses"] == []
            continue
        assert record["source"] == tok.src_pieces(tok.encode_src([line])[0]), k  # line k's source
        assert len(out.split("\t")) == 2 == len(record["hypotheses"])


@pytest.mark.slow  # with the trained model: 40 s of the full run's budget together
def test_line_count_is_kept_whatever_the_line_holds(ckpt: Path, tmp_path: Path):
    lines = [f"ein Hund{ch}läuft {ch} über{ch}die Wiese" for ch in BREAKS] + ["", "\t", "ein\u2028"]
    src = "".join(f"{line}\n" for line in lines).encode()
    args = [f"checkpoint={ckpt}", "device=cpu", "beam_size=1", "chunk_lines=2", "+attention=true"]
    proc = run("mt-translate", args, cwd=tmp_path, stdin=src)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    outputs = proc.stdout.decode().split("\n")
    assert len(outputs) == len(lines) + 1 and outputs[-1] == ""
    assert not any(ch in out for out in outputs for ch in BREAKS + "\t")
    assert len((tmp_path / "translate.attention.jsonl").read_text().splitlines()) == len(lines)


@pytest.mark.slow  # with the trained model: 40 s of the full run's budget together
def test_standard_output_comes_before_the_input_ends(ckpt: Path, tmp_path: Path):
    exe = BIN / "mt-translate"
    argv = [str(exe), f"checkpoint={ckpt}", "device=cpu", "beam_size=1", "chunk_lines=3"]
    proc = subprocess.Popen(argv, cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    got: queue.Queue[bytes] = queue.Queue()
    threading.Thread(target=lambda: [got.put(line) for line in proc.stdout], daemon=True).start()
    try:
        proc.stdin.write(b"ein Hund\nzwei Katzen\ndrei Frauen im Park\nvier\n")
        proc.stdin.flush()
        first = [got.get(timeout=120) for _ in range(3)]  # the first chunk, stdin still open
        assert proc.poll() is None and got.empty()  # line 4 waits for its chunk
        proc.stdin.write(b"\nsechs\n")
        proc.stdin.close()
        assert proc.wait(timeout=120) == 0
    finally:
        proc.kill()
    rest = [got.get(timeout=10) for _ in range(3)]
    assert len(first) == 3 and rest[1] == b"\n" and got.empty()


@pytest.mark.slow  # with the trained model: 40 s of the full run's budget together
def test_a_failed_run_keeps_the_earlier_output_file(ckpt: Path, tmp_path: Path):
    (tmp_path / "out.en").write_text("old\n")
    (tmp_path / "in.de").write_bytes(b"ein Hund\nzwei\ndrei\nvier\n\xff kaputt\nsechs\n")
    args = [
        f"checkpoint={ckpt}",
        "input=in.de",
        "output=out.en",
        "device=cpu",
        "beam_size=1",
        "chunk_lines=2",
    ]
    proc = run("mt-translate", args, cwd=tmp_path)
    assert proc.returncode == 2 and b"in.de:5: invalid UTF-8" in proc.stderr
    assert (tmp_path / "out.en").read_text() == "old\n"
    assert len((tmp_path / "out.en.partial").read_text().split("\n")) == 5  # lines 1-4 and the end
    proc = run("mt-translate", args[:1] + ["input=/dev/null"] + args[2:], cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / "out.en").read_text() == ""  # empty input: empty output
    assert not (tmp_path / "out.en.partial").exists()


@pytest.mark.slow  # two real runs, 2,000 and 20,000 lines (main: ratio 1.44): about a minute
@pytest.mark.slow  # with the trained model: 40 s of the full run's budget together
def test_peak_memory_does_not_grow_with_the_input(ckpt: Path, tmp_path: Path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "translate_memory.py"
    spec = importlib.util.spec_from_file_location("translate_memory", script)
    tm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tm)
    peaks = {}
    for n in (2000, 20000):
        src, out = tmp_path / f"in{n}.de", tmp_path / f"out{n}.en"
        src.write_text("".join(f"{line}\n" for line in tm.sentences("de", n)), encoding="utf-8")
        argv = tm.command("mt-translate") + [f"checkpoint={ckpt}", f"input={src}", f"output={out}",
                                             "beam_size=1", "device=cpu", "chunk_lines=2000"]  # fmt: skip
        row = tm.measure(argv, out)
        if n > 2000:  # ten chunks: the first one is out long before the end
            assert row["first_output_s"] is not None and row["first_output_s"] < row["wall_s"] / 2, row
        assert len(out.read_text(encoding="utf-8").split("\n")) == n + 1
        peaks[n] = row["peak_rss_mib"]
    assert peaks[20000] < 1.2 * peaks[2000], peaks
