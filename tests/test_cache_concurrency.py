"""Runs sharing one cache folder build each entry once and never remove one another's entries.

The jobs of a joblib sweep start together on one cache: before entries were locked, one job
took another's half-written entry (file written, record not yet) for an interrupted one,
removed it, and the other job failed opening its own file.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import time
from pathlib import Path

import pytest
from conftest import synthetic_sentences
from datasets import Dataset

from mt.config import TokenizerConfig
from mt.data.cache import entry_lock
from mt.data.encode import encode_split, int_column
from mt.data.text_store import cached_text
from mt.data.tokenizer import Tokenizer

SRC, TGT = synthetic_sentences(400, 5), synthetic_sentences(400, 6)
CFG = TokenizerConfig(vocab_size=60)
WORKERS = 4


def _lines(folder: Path) -> list[Path]:
    """Write the corpus as two text files (the inputs of the text cache)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "train.src", folder / "train.tgt"]
    for path, lines in zip(paths, (SRC, TGT), strict=True):
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def _text(cache: Path, inputs: list[Path]) -> Dataset:
    def batches():
        src, tgt = (p.read_text(encoding="utf-8").splitlines() for p in inputs)
        for i in range(0, len(src), 50):  # several batches: the write takes a while
            yield src[i : i + 50], tgt[i : i + 50]

    return cached_text(cache, "train", inputs, {"format": "test"}, batches)


def _whole_chain(cache: Path, inputs: list[Path], start: mp.synchronize.Barrier) -> str:
    """Text, tokenizer and encoded ids from ``cache``, started with the other workers; a digest of the ids."""
    start.wait()
    text = _text(cache, inputs)
    tok = Tokenizer.for_corpus(text, CFG, cache)
    enc = encode_split(text, tok, cache, "train")
    columns = [enc.with_format("arrow")[name].to_pylist() for name in ("src", "src_ids", "tgt_ids")]
    lengths = [int_column(enc, name).tolist() for name in ("src_len", "tgt_len")]
    return hashlib.sha256(repr((columns, lengths, tok.fingerprint)).encode()).hexdigest()


def _worker(args: tuple[str, list[str], mp.synchronize.Barrier]) -> str:
    cache, inputs, start = args
    return _whole_chain(Path(cache), [Path(p) for p in inputs], start)


@pytest.mark.parametrize("round_", range(6))  # the race shows in about one round in three
def test_workers_started_together_on_one_cache_all_succeed_alike(tmp_path: Path, round_: int) -> None:
    inputs = _lines(tmp_path / "corpus")
    ctx = mp.get_context("fork")
    with ctx.Manager() as manager, ctx.Pool(WORKERS) as pool:
        start = manager.Barrier(WORKERS)
        digests = pool.map(_worker, [(str(tmp_path / "cache"), [str(p) for p in inputs], start)] * WORKERS)
    alone = _whole_chain(tmp_path / "alone", inputs, _NoBarrier())
    assert digests == [alone] * WORKERS
    # one entry of each kind, each vouched for, and no temporary files left behind
    cache = tmp_path / "cache"
    assert (
        len(list((cache / "text").glob("*.arrow"))) == len(list((cache / "text").glob("*.arrow.json"))) == 1
    )
    assert (
        len(list((cache / "encoded").glob("*.arrow")))
        == len(list((cache / "encoded").glob("*.arrow.json")))
        == 1
    )
    assert len([p for p in (cache / "spm").iterdir() if p.is_dir()]) == 1
    assert not list(cache.rglob("*.tmp"))


class _NoBarrier:
    def wait(self) -> None:
        pass


def _build_text(cache: str, inputs: list[str], done: mp.synchronize.Event) -> None:
    _text(Path(cache), [Path(p) for p in inputs])
    done.set()


def test_a_run_waits_for_the_entry_another_run_holds(tmp_path: Path) -> None:
    inputs = _lines(tmp_path / "corpus")
    _text(tmp_path / "first", inputs)  # learn the entry's file name
    (entry,) = (tmp_path / "first" / "text").glob("*.arrow")
    held = tmp_path / "cache" / "text" / entry.name
    ctx = mp.get_context("fork")
    done = ctx.Event()
    with entry_lock("text cache", held):
        child = ctx.Process(
            target=_build_text, args=(str(tmp_path / "cache"), [str(p) for p in inputs], done)
        )
        child.start()
        time.sleep(1.5)
        assert not done.is_set(), "the run built the entry while another run held its lock"
        assert not list((tmp_path / "cache" / "text").glob("*.arrow"))
    child.join(60)
    assert child.exitcode == 0 and done.is_set()
    assert held.is_file() and held.with_name(held.name + ".lock").is_file()


def test_a_cache_where_no_lock_can_be_made_is_used_unlocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only cache folder (here: every lock refused) still serves its entries."""
    inputs = _lines(tmp_path / "corpus")
    first = _text(tmp_path / "cache", inputs)

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", "x.lock")

    monkeypatch.setattr("filelock.FileLock.acquire", refuse)
    again = _text(tmp_path / "cache", inputs)
    assert again["src"] == first["src"] == SRC
