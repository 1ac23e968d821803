"""Caches are verified on load: a damaged, foreign or unvouched-for cache file is rebuilt with a warning."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest
from clihelpers import run, tiny_corpus_args
from conftest import synthetic_sentences
from datasets import Dataset

from mt.config import TokenizerConfig
from mt.data.encode import encode_split
from mt.data.tokenizer import Tokenizer

SRC, TGT = synthetic_sentences(300, 3), synthetic_sentences(300, 4)
CFG = TokenizerConfig(vocab_size=60)


def damage(path: Path, how: str) -> None:
    """Damage a file: cut it, replace it by garbage of the same size, or flip one byte."""
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "garbage":
        data = bytearray(b"\x5a" * len(data))
    else:  # one flipped byte: same size, only the digest tells
        data[len(data) // 2] ^= 0x01
    put(path, bytes(data))


def put(path: Path, data: bytes) -> None:
    """Replace ``path`` by a new file holding ``data`` (datasets may still map the old one in this process)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    tmp.replace(path)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def one_warning(caplog: pytest.LogCaptureFixture) -> str:
    found = warnings_of(caplog)
    assert len(found) == 1, f"expected one warning, got {found}"
    return found[0]


def messages(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records)


def arrow_files(cache: Path) -> list[Path]:
    return sorted((cache / "encoded").glob("*.arrow"))


@pytest.fixture
def built(tmp_path: Path):
    """A cache with a joint tokenizer and one encoded split: (cache dir, tokenizer, text split, encoded)."""
    cache = tmp_path / "cache"
    tok = Tokenizer.train_or_load(SRC, TGT, CFG, cache)
    text = Dataset.from_dict({"src": SRC[:120], "tgt": TGT[:120]})
    return cache, tok, text, encode_split(text, tok, cache, "train")


# -- tokenizer cache ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["truncated", "garbage", "flipped"])
@pytest.mark.parametrize("joint", [True, False])
def test_damaged_model_is_rebuilt_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str, joint: bool
) -> None:
    cfg = TokenizerConfig(vocab_size=60, joint=joint)
    fresh = Tokenizer.train_or_load(SRC, TGT, cfg, tmp_path / "fresh")
    first = Tokenizer.train_or_load(SRC, TGT, cfg, tmp_path / "cache")
    model = first.cache_path / ("joint.model" if joint else "tgt.model")
    damage(model, how)
    with caplog.at_level(logging.INFO):
        tok = Tokenizer.train_or_load(SRC, TGT, cfg, tmp_path / "cache")
    warning = one_warning(caplog)
    assert f"tokenizer cache {model} is damaged (" in warning and warning.endswith("; rebuilding")
    assert "training" in messages(caplog)
    assert tok.fingerprint == fresh.fingerprint == first.fingerprint
    assert tok.encode_src(SRC[:20]) == fresh.encode_src(SRC[:20])
    caplog.clear()
    with caplog.at_level(logging.INFO):  # the cache is whole again
        again = Tokenizer.train_or_load(SRC, TGT, cfg, tmp_path / "cache")
    assert not warnings_of(caplog) and "reusing cached" in messages(caplog)
    assert again.fingerprint == fresh.fingerprint


def test_unreadable_meta_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = Tokenizer.train_or_load(SRC, TGT, CFG, tmp_path)
    meta = first.cache_path / "meta.json"
    meta.write_bytes(b'{"format": "mt-cache-rec')
    with caplog.at_level(logging.WARNING):
        tok = Tokenizer.train_or_load(SRC, TGT, CFG, tmp_path)
    warning = one_warning(caplog)
    assert f"tokenizer cache {meta} is damaged (unreadable record" in warning
    assert json.loads(meta.read_text())["files"]["joint.model"]["sha256"]
    assert tok.fingerprint == first.fingerprint


@pytest.mark.parametrize("what", ["model", "folder"])
def test_cache_of_another_key_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, what: str
) -> None:
    """A model (or a whole entry, record included) copied from another key's folder is refused."""
    mine = Tokenizer.train_or_load(SRC, TGT, CFG, tmp_path)
    other = Tokenizer.train_or_load(SRC[:-50], TGT[:-50], CFG, tmp_path)
    assert other.cache_path != mine.cache_path and other.fingerprint != mine.fingerprint
    for name in ["joint.model"] + (["meta.json"] if what == "folder" else []):
        put(mine.cache_path / name, (other.cache_path / name).read_bytes())
    with caplog.at_level(logging.WARNING):
        tok = Tokenizer.train_or_load(SRC, TGT, CFG, tmp_path)
    warning = one_warning(caplog)
    reason = "built for other data or settings" if what == "folder" else "is damaged ("
    assert str(mine.cache_path / "joint.model") in warning and reason in warning
    assert tok.fingerprint == mine.fingerprint


def test_cache_without_checksums_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An entry written by an older mt (meta.json without checksums) is not trusted."""
    first = Tokenizer.train_or_load(SRC, TGT, CFG, tmp_path)
    meta = first.cache_path / "meta.json"
    old = {"settings": {"model_type": "unigram", "vocab_size": 60}, "sentencepiece": "0.2.0", "n_src": 300}
    meta.write_text(json.dumps(old))
    with caplog.at_level(logging.WARNING):
        tok = Tokenizer.train_or_load(SRC, TGT, CFG, tmp_path)
    warning = one_warning(caplog)
    assert f"tokenizer cache {meta} is from an older version" in warning and "rebuilding" in warning
    assert "sha256" in json.loads(meta.read_text())["files"]["joint.model"]
    assert tok.fingerprint == first.fingerprint


# -- encoded-ids cache -------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["truncated", "garbage", "flipped"])
def test_damaged_arrow_file_is_rebuilt(built, caplog: pytest.LogCaptureFixture, how: str) -> None:
    cache, tok, text, first = built
    (arrow,) = arrow_files(cache)
    ids = first.to_dict()
    damage(arrow, how)
    with caplog.at_level(logging.INFO):
        again = encode_split(text, tok, cache, "train")
    warning = one_warning(caplog)
    assert f"encoded-data cache {arrow} is damaged (" in warning and warning.endswith("; rebuilding")
    assert "reusing encoded" not in messages(caplog)
    assert again.to_dict() == ids
    caplog.clear()
    with caplog.at_level(logging.INFO):  # whole again: reused, no warning
        third = encode_split(text, tok, cache, "train")
    assert not warnings_of(caplog) and "reusing encoded train split" in messages(caplog)
    assert third.to_dict() == ids


@pytest.mark.parametrize("with_record", [False, True])
def test_arrow_file_of_another_key_is_not_used(
    built, caplog: pytest.LogCaptureFixture, with_record: bool
) -> None:
    cache, tok, text, first = built
    (mine,) = arrow_files(cache)
    expected = first.to_dict()
    other_text = Dataset.from_dict({"src": SRC[120:240], "tgt": TGT[120:240]})
    encode_split(other_text, tok, cache, "train")
    (other,) = [p for p in arrow_files(cache) if p != mine]
    put(mine, other.read_bytes())
    if with_record and Path(f"{other}.json").exists():
        put(Path(f"{mine}.json"), Path(f"{other}.json").read_bytes())
    with caplog.at_level(logging.WARNING):
        again = encode_split(text, tok, cache, "train")
    warning = one_warning(caplog)
    reason = "built for other data or settings" if with_record else "is damaged ("
    assert str(mine) in warning and reason in warning
    assert again.to_dict() == expected


def test_arrow_file_without_record_is_rebuilt(built, caplog: pytest.LogCaptureFixture) -> None:
    """An encoded file from an older mt (no record beside it) is not trusted, even when it is foreign."""
    cache, tok, text, first = built
    (mine,) = arrow_files(cache)
    Path(f"{mine}.json").unlink(missing_ok=True)
    with caplog.at_level(logging.WARNING):
        again = encode_split(text, tok, cache, "train")
    warning = one_warning(caplog)
    assert f"encoded-data cache {mine} is from an older version" in warning
    assert json.loads(Path(f"{mine}.json").read_text())["files"][mine.name]["size"] == mine.stat().st_size
    assert again["src_ids"] == first["src_ids"]


def test_vouched_for_arrow_file_that_does_not_load_is_rebuilt(
    built, caplog: pytest.LogCaptureFixture
) -> None:
    """Checksums are not the last word: a file whose record matches but that fails to load is rebuilt."""
    cache, tok, text, first = built
    (mine,) = arrow_files(cache)
    expected = first.to_dict()
    record = Path(f"{mine}.json")
    meta = json.loads(record.read_text()) if record.exists() else {"files": {}}
    garbage = b"garbage that a record vouches for"
    put(mine, garbage)
    meta["files"][mine.name] = {"size": len(garbage), "sha256": hashlib.sha256(garbage).hexdigest()}
    record.write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING):
        again = encode_split(text, tok, cache, "train")
    assert f"encoded-data cache {mine} is damaged (cannot be loaded: " in one_warning(caplog)
    assert again.to_dict() == expected


def test_rebuilt_caches_equal_a_fresh_build(built, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Both caches damaged at once: the rebuilt tokenizer and ids are those of a build from scratch."""
    cache, tok, text, _ = built
    (arrow,) = arrow_files(cache)
    damage(tok.cache_path / "joint.model", "garbage")
    damage(arrow, "garbage")
    with caplog.at_level(logging.WARNING):
        tok2 = Tokenizer.train_or_load(SRC, TGT, CFG, cache)
        rebuilt = encode_split(text, tok2, cache, "train")
    assert len(warnings_of(caplog)) == 2
    fresh_tok = Tokenizer.train_or_load(SRC, TGT, CFG, tmp_path / "fresh")
    fresh = encode_split(text, fresh_tok, tmp_path / "fresh", "train")
    assert tok2.fingerprint == fresh_tok.fingerprint
    assert rebuilt.to_dict() == fresh.to_dict()
    assert arrow.read_bytes() == arrow_files(tmp_path / "fresh")[0].read_bytes()


# -- the real command --------------------------------------------------------------------------


@pytest.mark.slow  # about 10 s: the full run's time budget
def test_mt_data_rebuilds_a_corrupted_cache(tmp_path: Path) -> None:
    """`mt-data` run twice with the caches corrupted in between: exit 0, one warning per file, caches whole."""
    args = tiny_corpus_args(tmp_path) + [f"hydra.run.dir={tmp_path / 'out'}"]
    first = run("mt-data", args, cwd=tmp_path, timeout=180)
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    stats = tmp_path / "out" / "data_stats.json"
    before = json.loads(stats.read_text())["splits"]
    cache = tmp_path / "cache"
    (model,) = (cache / "spm").glob("*/joint.model")
    (train,) = (cache / "encoded").glob("train-*.arrow")
    damage(model, "truncated")
    train.unlink()
    train.write_bytes(b"not an arrow file")

    second = run("mt-data", args, cwd=tmp_path, timeout=180)
    out = second.stdout.decode() + second.stderr.decode()  # Hydra logs to stdout unless told otherwise
    assert second.returncode == 0, out[-2000:]
    assert "Traceback" not in out
    assert f"tokenizer cache {model} is damaged (" in out
    assert f"encoded-data cache {train} is damaged (" in out
    assert json.loads(stats.read_text())["splits"] == before  # same ids as the first build

    third = run("mt-data", args, cwd=tmp_path, timeout=180)
    out = third.stdout.decode() + third.stderr.decode()
    assert third.returncode == 0, out[-2000:]
    assert "rebuilding" not in out and "WARNING" not in out
    assert "reusing cached sentencepiece" in out and "reusing encoded train split" in out
