"""Corpora of any size in bounded memory: streamed reading, memory-mapped text and ids, a sampled
tokenizer, lazy batches (issue 19)."""

from __future__ import annotations

import gzip
import logging
import os
import random
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from clihelpers import BIN
from conftest import synthetic_sentences

from mt.config import DataConfig, TokenizerConfig
from mt.data import loaders
from mt.data.collate import collate
from mt.data.encode import encode_split
from mt.data.loaders import PairBatches
from mt.data.readers import iter_line_blocks, iter_pairs, read_lines
from mt.data.sources import load_parallel
from mt.data.text_store import is_keyed, pairs_to_dataset, sample_rows, text_key
from mt.data.tokenizer import Tokenizer
from mt.errors import DataError


def _write(path: Path, lines: list[str], gz: bool = False) -> Path:
    data = "".join(f"{line}\n" for line in lines).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


# -- streamed reading ---------------------------------------------------------------------


@pytest.mark.parametrize("block_bytes", [7, 64, 1 << 22])
def test_blocks_read_what_read_lines_reads(tmp_path: Path, block_bytes: int):
    text = "\ufeffeins\r\nzwei\x01drei\nvier\u2028fünf\n\nsechs ünd sieben\rx\nlast-without-newline"
    path = tmp_path / "t.txt"
    path.write_text(text, encoding="utf-8")
    want = ["eins", "zwei drei", "vier\u2028fünf", "", "sechs ünd sieben x", "last-without-newline"]
    assert read_lines(path) == want
    blocks = list(iter_line_blocks(path, block_bytes=block_bytes))
    assert [line for b in blocks for line in b] == want
    if block_bytes == 7:
        assert len(blocks) > 1  # really read a block at a time


def test_invalid_utf8_in_a_later_block_names_its_line(tmp_path: Path):
    path = tmp_path / "bad.de"
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(1, 1000)) + b"caf\xe9\n")
    with pytest.raises(DataError, match=r"bad\.de:1000: invalid UTF-8"):
        list(iter_line_blocks(path, block_bytes=100))


def test_pairs_come_in_batches_and_a_short_file_is_found_with_both_counts(tmp_path: Path):
    src = _write(tmp_path / "a.de", [f"satz {i}" for i in range(25)], gz=True)
    tgt = _write(tmp_path / "a.en", [f"sentence {i}" for i in range(25)])
    batches = list(iter_pairs(src, tgt, rows=10))
    assert [len(s) for s, _ in batches] == [10, 10, 5]
    assert batches[2][1][-1] == "sentence 24"
    short = _write(tmp_path / "b.en", [f"sentence {i}" for i in range(23)])
    with pytest.raises(DataError, match=r"a\.de has 25 lines but .*b\.en has 23"):
        list(iter_pairs(src, short, rows=10))


# -- memory-mapped text, keyed by its files ------------------------------------------------


def _local(tmp_path: Path, n: int = 200) -> DataConfig:
    for split, size in (("train", n), ("dev", 20)):
        _write(tmp_path / f"{split}.de", [f"das ist satz {i}" for i in range(size)])
        _write(tmp_path / f"{split}.en", [f"this is sentence {i}" for i in range(size)])
    return DataConfig(
        source="local",
        files={"train": str(tmp_path / "train"), "validation": str(tmp_path / "dev")},
        cache_dir=str(tmp_path / "cache"),
    )


def test_local_text_is_memory_mapped_reused_and_rebuilt_when_the_file_changes(tmp_path: Path, caplog):
    cfg = _local(tmp_path)
    first = load_parallel(cfg)
    train = first["train"]
    assert is_keyed(train) and train.cache_files  # a file on disk, not an in-memory table
    assert train[3] == {"src": "das ist satz 3", "tgt": "this is sentence 3"}
    (arrow,) = (tmp_path / "cache" / "text").glob("train-*.arrow")
    mtime = arrow.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="mt.data"):
        again = load_parallel(cfg)
    assert "reusing the train text" in caplog.text and arrow.stat().st_mtime_ns == mtime
    assert text_key(again["train"], "src") == text_key(train, "src")
    _write(tmp_path / "train.de", [f"das ist satz {i}" for i in range(199)] + ["geändert"])
    changed = load_parallel(cfg)["train"]
    assert changed[199]["src"] == "geändert"
    assert text_key(changed, "src") != text_key(train, "src")


def test_a_damaged_text_cache_is_rebuilt(tmp_path: Path, caplog):
    cfg = _local(tmp_path)
    load_parallel(cfg)
    (arrow,) = (tmp_path / "cache" / "text").glob("train-*.arrow")
    arrow.write_bytes(arrow.read_bytes()[:-100])
    with caplog.at_level(logging.WARNING, logger="mt.data.cache"):
        rebuilt = load_parallel(cfg)["train"]
    assert "text cache" in caplog.text and "rebuilding" in caplog.text
    assert len(rebuilt) == 200 and rebuilt[199]["tgt"] == "this is sentence 199"


# -- the tokenizer's sample ---------------------------------------------------------------


def test_sample_rows_is_reproducible_from_the_seed():
    a, b, c = sample_rows(1000, 100, 1), sample_rows(1000, 100, 1), sample_rows(1000, 100, 2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert len(np.unique(a)) == 100 and np.all(np.diff(a) > 0) and a.max() < 1000
    assert np.array_equal(sample_rows(50, 100, 1), np.arange(50))  # a smaller split: every row, in order
    assert np.array_equal(sample_rows(50, 0, 1), np.arange(50))


def test_the_tokenizer_trains_on_a_seeded_sample(tmp_path: Path, caplog):
    src, tgt = synthetic_sentences(2000, 3), synthetic_sentences(2000, 4)
    train = pairs_to_dataset(src, tgt)
    cfg = TokenizerConfig(vocab_size=60, input_sentence_size=300, seed=1)
    with caplog.at_level(logging.INFO, logger="mt.data.tokenizer"):
        one = Tokenizer.for_corpus(train, cfg, tmp_path / "a")
    assert "on 300 of 2000 pairs" in caplog.text
    same = Tokenizer.for_corpus(train, cfg, tmp_path / "b")  # another cache: trained again
    assert same.fingerprint == one.fingerprint
    other_seed = Tokenizer.for_corpus(train, TokenizerConfig(vocab_size=60, input_sentence_size=300, seed=2),
                                      tmp_path / "c")  # fmt: skip
    everything = Tokenizer.for_corpus(
        train, TokenizerConfig(vocab_size=60, input_sentence_size=0), tmp_path / "d"
    )
    assert other_seed.fingerprint != one.fingerprint and everything.fingerprint != one.fingerprint
    # a split no larger than the sample: every pair, as with input_sentence_size=0
    small = pairs_to_dataset(src[:250], tgt[:250])
    assert (
        Tokenizer.for_corpus(small, cfg, tmp_path / "e").fingerprint
        == Tokenizer.for_corpus(small, TokenizerConfig(vocab_size=60, input_sentence_size=0), tmp_path / "f").fingerprint
    )  # fmt: skip


# -- lazy batches from memory-mapped ids --------------------------------------------------


@pytest.mark.parametrize("preload", [True, False], ids=["read-once", "read-per-batch"])
def test_batches_read_from_the_mapped_ids_equal_batches_built_from_lists(
    tmp_path: Path, monkeypatch, preload: bool
):
    if not preload:  # a corpus over the preload size: ids read from the mapped file per batch
        monkeypatch.setattr(loaders, "PRELOAD_BYTES", 0)
    cfg = _local(tmp_path, n=300)
    text = load_parallel(cfg)
    tok = Tokenizer.for_corpus(text["train"], TokenizerConfig(vocab_size=40), tmp_path / "cache")
    enc = encode_split(text["train"], tok, tmp_path / "cache", "train")
    assert {Path(f["filename"]).parent.name for f in enc.cache_files} == {"text", "encoded"}
    src_ids = tok.encode_src(text["train"]["src"])
    tgt_ids = tok.encode_tgt(text["train"]["tgt"])
    rows = [299, 3, 150, 7, 42]
    batches = PairBatches(enc)
    assert (batches.loaded is not None) == preload
    got = batches[rows]
    want = collate([src_ids[i] for i in rows], [tgt_ids[i] for i in rows], rows)
    for name in ("src", "src_lens", "tgt_in", "tgt_out", "tgt_mask", "indices"):
        assert getattr(got, name).tolist() == getattr(want, name).tolist(), name
    kept = enc.select([5, 9, 11])  # a filtered split (row mapping) reads the right rows
    assert PairBatches(kept)[[2, 0]].src.tolist() == collate([src_ids[11], src_ids[5]]).src.tolist()


# -- the memory bound, through the real command -------------------------------------------


def _peak_rss_mib(argv: list[str], cwd: Path) -> tuple[int, float, str]:
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "2"})  # fmt: skip
    out = proc.stdout.read().decode() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, out[-3000:]
    return usage.ru_maxrss // 1024, time.perf_counter() - started, out


@pytest.mark.slow
def test_preparing_400k_pairs_stays_under_a_fixed_memory_bound(tmp_path: Path):
    """400k short pairs: before streaming and sampling this took about 1.9 GB (2.7 GB per
    million pairs, SCALE_NOTES); the bound holds whatever the size (docs/performance.md)."""
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyzäöü"
    words_de = ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(3000)]
    words_en = ["".join(rng.choices(letters[:26], k=rng.randint(2, 10))) for _ in range(3000)]
    n = 400_000
    with gzip.open(tmp_path / "train.de.gz", "wt", compresslevel=1) as fde, \
            gzip.open(tmp_path / "train.en.gz", "wt", compresslevel=1) as fen:  # fmt: skip
        for _ in range(n):
            k = rng.randint(3, 12)
            idx = [rng.randrange(3000) for _ in range(k)]
            fde.write(" ".join(words_de[i] for i in idx) + "\n")
            fen.write(" ".join(words_en[i] for i in idx) + "\n")
    _write(tmp_path / "dev.de", ["wort1 wort2"] * 10)
    _write(tmp_path / "dev.en", ["word1 word2"] * 10)
    argv = [str(BIN / "mt-data"), "data=local", f"data.files.train={tmp_path / 'train'}",
            f"data.files.validation={tmp_path / 'dev'}", f"data.cache_dir={tmp_path / 'cache'}",
            f"hydra.run.dir={tmp_path / 'out'}", "tokenizer.vocab_size=2000"]  # fmt: skip
    peak, seconds, out = _peak_rss_mib(argv, tmp_path)
    assert "on 300000 of 400000 pairs" in out  # the default sample, not the whole split
    assert peak < 1300, f"mt-data on {n} pairs peaked at {peak} MiB ({seconds:.0f} s)"
    cached, _, _ = _peak_rss_mib(argv, tmp_path)
    assert cached < 700, f"a cached mt-data on {n} pairs peaked at {cached} MiB"
