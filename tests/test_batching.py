"""Encoding, filtering, bucketed sampling, collation and loaders."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import synthetic_sentences
from datasets import DatasetDict
from hypothesis import given, settings
from hypothesis import strategies as st

from mt.config import DataConfig
from mt.data.encode import int_column
from mt.data.loaders import (
    Batch,
    BucketBatchSampler,
    collate,
    encode_splits,
    eval_batches,
    filter_train,
    make_eval_loader,
    make_train_loader,
    padding_stats,
    restore_order,
)
from mt.data.sources import pairs_to_dataset
from mt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizer


@pytest.fixture
def text_splits() -> DatasetDict:
    src, tgt = synthetic_sentences(120, 11), synthetic_sentences(120, 12)
    src[5], tgt[7] = "   ", ""  # empty pairs, dropped from train only
    return DatasetDict(
        {"train": pairs_to_dataset(src, tgt), "validation": pairs_to_dataset(src[:30], tgt[:30])}
    )


@pytest.fixture
def encoded(text_splits: DatasetDict, small_tokenizer: Tokenizer, tmp_path: Path) -> DatasetDict:
    return encode_splits(text_splits, small_tokenizer, tmp_path)


# -- encode / filter ----------------------------------------------------------------------------


def test_encode_columns(encoded: DatasetDict, small_tokenizer: Tokenizer) -> None:
    row = encoded["train"][0]
    assert set(encoded["train"].column_names) == {
        "src",
        "tgt",
        "src_ids",
        "tgt_ids",
        "src_len",
        "tgt_len",
        "blank",
    }
    assert row["src_ids"] == small_tokenizer.encode_src([row["src"]])[0] and row["src_ids"][-1] == EOS_ID
    assert row["tgt_ids"] == small_tokenizer.encode_tgt([row["tgt"]])[0]
    assert (row["src_len"], row["tgt_len"]) == (len(row["src_ids"]), len(row["tgt_ids"]))
    assert len(encoded["validation"]) == 30


def test_encode_cache_is_reused(
    text_splits: DatasetDict, small_tokenizer: Tokenizer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = encode_splits(text_splits, small_tokenizer, tmp_path)
    files = sorted((tmp_path / "encoded").glob("*.arrow"))
    assert [f.name.split("-")[0] for f in files] == ["train", "validation"]
    mtimes = [f.stat().st_mtime_ns for f in files]
    with caplog.at_level(logging.INFO, logger="mt.data"):
        second = encode_splits(text_splits, small_tokenizer, tmp_path)
    assert sum("reusing encoded" in r.message for r in caplog.records) == 2
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    assert second["train"]["src_ids"][:] == first["train"]["src_ids"][:]
    # changed text -> new cache file
    changed = DatasetDict({"train": pairs_to_dataset(["x y"], ["z"])})
    encode_splits(changed, small_tokenizer, tmp_path)
    assert len(list((tmp_path / "encoded").glob("train-*.arrow"))) == 2


def test_filter_train(encoded: DatasetDict, caplog: pytest.LogCaptureFixture) -> None:
    train = encoded["train"]
    lens = np.maximum(int_column(train, "src_len") - 1, int_column(train, "tgt_len"))
    max_len = int(np.sort(lens)[-10])  # a few pairs are longer
    n_long = int((lens > max_len).sum())
    with caplog.at_level(logging.INFO, logger="mt.data"):
        kept, dropped = filter_train(train, max_len)
    assert dropped == n_long + 2 and len(kept) == len(train) - dropped
    assert all(s.strip() and t.strip() for s, t in zip(kept["src"], kept["tgt"], strict=True))
    assert max(int_column(kept, "src_len").max() - 1, int_column(kept, "tgt_len").max()) <= max_len
    assert any(f"dropped {dropped} of 120" in r.message for r in caplog.records if r.name == "mt.data")
    same, zero = filter_train(kept, max_len)
    assert zero == 0 and same is kept


# -- collate --------------------------------------------------------------------------------------


def test_collate_layout() -> None:
    src = [[5, 6, 7, EOS_ID], [8, EOS_ID]]
    tgt = [[9], [10, 11, 12]]
    b = collate(src, tgt, indices=[4, 1])
    assert b.src.tolist() == [[5, 6, 7, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]]
    assert b.src_lens.tolist() == [4, 2]
    assert b.src_mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert b.tgt_in.tolist() == [[BOS_ID, 9, PAD_ID, PAD_ID], [BOS_ID, 10, 11, 12]]
    assert b.tgt_out.tolist() == [[9, EOS_ID, PAD_ID, PAD_ID], [10, 11, 12, EOS_ID]]
    assert b.tgt_mask.tolist() == [[True, True, False, False], [True] * 4]
    assert b.n_tgt_tokens == 6 and len(b) == 2
    assert b.indices.tolist() == [4, 1]
    for t in (b.src, b.src_lens, b.tgt_in, b.tgt_out, b.indices):
        assert t.dtype == torch.long
    assert b.src_mask.dtype == b.tgt_mask.dtype == torch.bool


def test_collate_source_only_and_device() -> None:
    b = collate([[5, EOS_ID]])
    assert b.tgt_in is None and b.tgt_out is None and b.tgt_mask is None and b.n_tgt_tokens == 0
    moved = b.to("cpu")
    assert isinstance(moved, Batch) and moved.src.tolist() == [[5, EOS_ID]] and moved.tgt_in is None
    if torch.cuda.is_available():
        assert b.pin_memory().src.is_pinned()


# -- sampler --------------------------------------------------------------------------------------


def _lens(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    src = rng.integers(2, 60, n)
    return src, np.clip(src + rng.integers(-8, 8, n), 0, None)


def _cost(b: list[int], src: np.ndarray, tgt: np.ndarray) -> int:
    return len(b) * max(int(src[b].max()), int(tgt[b].max()) + 1)


def test_sampler_every_index_once_within_budget() -> None:
    src, tgt = _lens(3000)
    src[17] = 500  # over budget on its own
    s = BucketBatchSampler(src, tgt, batch_tokens=400, seed=3, chunk_batches=8)
    batches = list(s)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(3000)) and len(s) == len(batches)
    assert [17] in batches
    assert all(_cost(b, src, tgt) <= 400 for b in batches if b != [17])


def test_sampler_is_deterministic_per_seed_and_epoch() -> None:
    src, tgt = _lens(2000)

    def epoch(seed: int, e: int) -> list[list[int]]:
        s = BucketBatchSampler(src, tgt, batch_tokens=500, seed=seed)
        s.set_epoch(e)
        return list(s)

    assert epoch(1, 0) == epoch(1, 0) and epoch(1, 5) == epoch(1, 5)
    assert epoch(1, 0) != epoch(1, 1)
    assert epoch(1, 0) != epoch(2, 0)


def test_sampler_resume_skips_batches() -> None:
    src, tgt = _lens(1000)
    s = BucketBatchSampler(src, tgt, batch_tokens=300, seed=0)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, start_batch=5)
    assert list(s) == full[5:] and len(s) == len(full) - 5


def test_sampler_fixed_sentences_and_no_shuffle() -> None:
    src, tgt = _lens(103)
    s = BucketBatchSampler(src, tgt, batch_tokens=0, batch_sentences=10, shuffle=False)
    batches = list(s)
    assert [len(b) for b in batches] == [10] * 10 + [3]
    assert batches == list(BucketBatchSampler(src, tgt, batch_tokens=0, batch_sentences=10, shuffle=False))


@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_shards_across_ranks(drop_last: bool) -> None:
    src, tgt = _lens(1500)
    all_batches = BucketBatchSampler(src, tgt, batch_tokens=700, seed=4).epoch_batches(0)
    ranks = [
        list(
            BucketBatchSampler(src, tgt, batch_tokens=700, seed=4, rank=r, world_size=3, drop_last=drop_last)
        )
        for r in range(3)
    ]
    assert len({len(r) for r in ranks}) == 1
    seen = [i for r in ranks for b in r for i in b]
    if drop_last:
        assert len(seen) == len(set(seen))
        assert sum(map(len, ranks)) == len(all_batches) // 3 * 3
    else:
        assert set(seen) == set(range(1500))


@settings(max_examples=40, deadline=None)
@given(
    lens=st.lists(st.tuples(st.integers(1, 80), st.integers(0, 80)), min_size=1, max_size=300),
    budget=st.integers(20, 2000),
    chunk=st.integers(1, 20),
    seed=st.integers(0, 1000),
    epoch=st.integers(0, 5),
)
def test_sampler_property(
    lens: list[tuple[int, int]], budget: int, chunk: int, seed: int, epoch: int
) -> None:
    src = np.array([a for a, _ in lens])
    tgt = np.array([b for _, b in lens])
    s = BucketBatchSampler(src, tgt, batch_tokens=budget, seed=seed, chunk_batches=chunk)
    s.set_epoch(epoch)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(len(lens)))
    assert all(len(b) == 1 or _cost(b, src, tgt) <= budget for b in batches)


# -- loaders --------------------------------------------------------------------------------------


def test_train_loader(encoded: DatasetDict, small_tokenizer: Tokenizer) -> None:
    train, _ = filter_train(encoded["train"], 100)
    cfg = DataConfig(batch_tokens=300)
    loader = make_train_loader(train, small_tokenizer, cfg, seed=1, sample=False)
    loader.sampler.set_epoch(1)
    batches = list(loader)
    assert all(isinstance(b, Batch) for b in batches) and len(batches) == len(loader)
    assert sorted(i for b in batches for i in b.indices.tolist()) == list(range(len(train)))
    b = batches[0]
    rows = [train[i] for i in b.indices.tolist()]
    assert b.src[0, : b.src_lens[0]].tolist() == rows[0]["src_ids"]
    assert b.tgt_out[0, : rows[0]["tgt_len"]].tolist() == rows[0]["tgt_ids"]
    assert all(b.src.numel() <= 300 or len(b) == 1 for b in batches)


def test_train_loader_with_sampling(encoded: DatasetDict, small_tokenizer: Tokenizer) -> None:
    train, _ = filter_train(encoded["train"], 100)
    loader = make_train_loader(
        train, small_tokenizer, DataConfig(batch_tokens=300), seed=1
    )  # alpha 0.1 -> sampling
    batches = list(loader)
    assert sorted(i for b in batches for i in b.indices.tolist()) == list(range(len(train)))
    for b in batches:
        for row, ids, n in zip(b.indices.tolist(), b.src.tolist(), b.src_lens.tolist(), strict=True):
            assert small_tokenizer.decode_src(ids[:n]) == small_tokenizer.normalize(train[row]["src"], "src")
            assert ids[n - 1] == EOS_ID


def test_eval_loader_keeps_everything_and_order_is_restorable(encoded: DatasetDict) -> None:
    val = encoded["validation"]
    loader = make_eval_loader(val, DataConfig(eval_batch_sentences=7))
    idx, texts = [], []
    prev_max = None
    for b in loader:
        assert len(b) <= 7
        if prev_max is not None:
            assert int(b.src_lens.max()) <= prev_max  # longest first
        prev_max = int(b.src_lens.min())
        idx += b.indices.tolist()
        texts += [val[i]["src"] for i in b.indices.tolist()]
    assert len(idx) == len(val) == 30  # includes the empty source pair
    assert restore_order(idx, texts) == val["src"][:]
    with pytest.raises(ValueError, match="exactly once"):
        restore_order([0, 0], ["a", "b"])


def test_eval_batches() -> None:
    assert eval_batches([3, 9, 1, 9], 3) == [[1, 3, 0], [2]]


# -- real data ------------------------------------------------------------------------------------


def test_padding_on_multi30k_de_en(multi30k_deen) -> None:
    cfg, dsd, tok, enc = multi30k_deen
    train, dropped = filter_train(enc["train"], cfg.max_len)
    src, tgt = int_column(train, "src_len"), int_column(train, "tgt_len")
    sampler = BucketBatchSampler(
        src, tgt, cfg.batch_tokens, cfg.batch_sentences, seed=1, chunk_batches=cfg.bucket_chunk_batches
    )
    for epoch in range(2):
        sampler.set_epoch(epoch)
        stats = padding_stats(sampler, src, tgt)
        assert stats["src_pad_per_token"] <= 0.15 and stats["tgt_pad_per_token"] <= 0.15, stats
        assert stats["max_batch_tokens"] <= cfg.batch_tokens
    assert {k: len(v) for k, v in enc.items()} == {k: len(v) for k, v in dsd.items()}  # eval sets untouched


def test_prepare_data_end_to_end(tmp_path: Path) -> None:
    from conftest import write_lines

    from mt.config import TokenizerConfig
    from mt.data.pipeline import prepare_data

    write_lines(tmp_path / "train.de", synthetic_sentences(200, 1) + [""])
    write_lines(tmp_path / "train.en", synthetic_sentences(200, 2) + ["x"])
    write_lines(tmp_path / "dev.de", ["", "abc"])
    write_lines(tmp_path / "dev.en", ["y", "def"])
    cfg = DataConfig(
        source="local",
        files={"train": str(tmp_path / "train"), "validation": str(tmp_path / "dev")},
        cache_dir=str(tmp_path / "cache"),
    )
    prep = prepare_data(cfg, TokenizerConfig(vocab_size=100))
    assert prep.n_dropped == 1 and len(prep.train) == 200
    assert len(prep.encoded["validation"]) == 2  # never filtered
    assert prep.tokenizer.cache_path.parent.parent == tmp_path / "cache"
    again = prepare_data(cfg, TokenizerConfig(vocab_size=100), tokenizer=prep.tokenizer)
    assert again.encoded["train"]["src_ids"][:] == prep.encoded["train"]["src_ids"][:]


def test_eval_batches_give_a_very_long_source_its_own_batch() -> None:
    """Never filtered, never truncated, but one huge line must not pad a whole batch to its length."""
    batches = eval_batches([5, 20000, 5, 6, 5], 4, max_tokens=12000)
    assert batches == [[1], [3, 0, 2, 4]]
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3, 4]


def test_eval_batches_are_sized_in_decoder_rows(
    encoded: DatasetDict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Default: about eval_batch_rows hypotheses per batch, so greedy search takes beam-size
    times more sentences than beam search; a fixed eval_batch_sentences wins over rows."""
    import mt.search.translate as inference
    from mt.data.loaders import eval_batch_size

    assert eval_batch_size(DataConfig()) == 500
    assert eval_batch_size(DataConfig(), 5) == 100
    assert eval_batch_size(DataConfig(eval_batch_rows=12), 5) == 2
    assert eval_batch_size(DataConfig(eval_batch_rows=3), 5) == 1
    assert eval_batch_size(DataConfig(eval_batch_sentences=7, eval_batch_rows=12), 5) == 7

    seen: list[int] = []

    def fake_decode(model, batch, search, shortlist=None):  # records each batch size instead of decoding
        seen.append(len(batch))
        return [[f"hyp {i}"] for i in batch.indices.tolist()]

    monkeypatch.setattr(inference, "decode_batch", fake_decode)
    val = encoded["validation"]  # 30 rows
    for beam, expect in ((1, [12, 12, 6]), (4, [3] * 10)):
        seen.clear()
        cfg = DataConfig(eval_batch_rows=12)
        out = inference.translate_split(
            torch.nn.Module(), val, cfg, inference.SearchConfig(beam), torch.device("cpu")
        )
        assert seen == expect
        assert out == [[f"hyp {i}"] for i in range(30)]
