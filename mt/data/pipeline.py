"""One call from data and tokenizer configs to everything training needs: text, tokenizer, encoded splits."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, DatasetDict

from mt.config import DataConfig, TokenizerConfig
from mt.data.encode import encode_splits, filter_train
from mt.data.paths import resolve_output
from mt.data.sources import load_parallel
from mt.data.text_store import first_rows
from mt.data.tokenizer import Tokenizer

logger = logging.getLogger("mt.data")


@dataclass
class PreparedData:
    """The corpus of a run: text splits, tokenizer, encoded splits and the filtered train split."""

    text: DatasetDict  # splits -> columns src, tgt
    tokenizer: Tokenizer
    encoded: DatasetDict  # splits -> src, tgt, src_ids, tgt_ids, src_len, tgt_len (nothing dropped)
    train: Dataset  # encoded["train"] after filter_train
    n_dropped: int  # train pairs removed by filter_train
    cache_dir: Path


def prepare_data(
    data_cfg: DataConfig, tok_cfg: TokenizerConfig, tokenizer: Tokenizer | None = None
) -> PreparedData:
    """Load the corpus, train or load the tokenizer (unless given, e.g. from a checkpoint), encode, filter train."""
    cache_dir = resolve_output(data_cfg.cache_dir)
    text = load_parallel(data_cfg)
    if data_cfg.limit_train > 0 and data_cfg.limit_train < len(text["train"]):
        text["train"] = first_rows(text["train"], data_cfg.limit_train)
        logger.info("data: using the first %d training pairs (data.limit_train)", data_cfg.limit_train)
    if tokenizer is None:
        tokenizer = Tokenizer.for_corpus(text["train"], tok_cfg, cache_dir)
    encoded = encode_splits(text, tokenizer, cache_dir)
    train, n_dropped = filter_train(encoded["train"], data_cfg.max_len)
    return PreparedData(text, tokenizer, encoded, train, n_dropped, cache_dir)
