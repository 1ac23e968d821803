"""The text and ids of the splits an evaluation decodes, read without the training data.

`mt-evaluate` needs only what the checkpoint holds (the model, its tokenizer, its config) and
the splits being evaluated: the training corpus and the run's data cache may have moved or
been deleted since. So the evaluated splits alone are read (from where the run's config says,
or where `files` / `data_dir` say they are now) and encoded in memory with the checkpoint's
tokenizer. A split that cannot be found is one DataFileNotFoundError naming the path looked at
and the override that points to its new place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from datasets import Dataset

from mt.config import DataConfig
from mt.data import multi30k
from mt.data.encode import ENCODED_FEATURES, encode_columns, text_column
from mt.data.readers import read_text_pair
from mt.data.sources import load_parallel, pairs_to_dataset, read_local
from mt.data.tokenizer import Tokenizer
from mt.errors import ConfigError, DataError, DataFileNotFoundError

HELD_OUT = "validation"


@dataclass
class EvalData:
    """What `evaluate_splits` reads of a corpus: the tokenizer, text and encoded splits."""

    tokenizer: Tokenizer
    text: dict[str, Dataset]  # split -> columns src, tgt
    encoded: dict[str, Dataset]  # split -> src, tgt, src_ids, tgt_ids, src_len, tgt_len


def _run_splits(cfg: DataConfig) -> list[str]:
    """The validation and test splits the run's data config names (not those of a hub dataset)."""
    if cfg.source == "local":
        named = [s for s, path in cfg.files.items() if path and s not in ("train", HELD_OUT)]
        tests = named if cfg.test_splits is None else [s for s in named if s in cfg.test_splits]
        return ([HELD_OUT] if cfg.files.get(HELD_OUT) else []) + tests
    tests = multi30k.available_test_splits(cfg.src_lang, cfg.tgt_lang)
    return [HELD_OUT, *(tests if cfg.test_splits is None else cfg.test_splits)]


def _hint(cfg: DataConfig, split: str) -> str:
    """How to tell mt-evaluate where a split is now."""
    where = f"a .tsv/.jsonl file or a prefix P with P.{cfg.src_lang} and P.{cfg.tgt_lang}"
    hint = f"point mt-evaluate to where it is now with +files.{split}=PATH ({where})"
    if cfg.source == "multi30k":
        hint += " or data_dir=DIR (the folder holding multi30k/)"
    return hint


def _read_split(cfg: DataConfig, split: str, files: Mapping[str, str | None]) -> Dataset:
    """The text of one split, from `files` when it names it, else from the run's data config."""
    path = files.get(split)
    if path:
        return pairs_to_dataset(*read_local(path, cfg.src_lang, cfg.tgt_lang))
    if cfg.source == "local":
        return pairs_to_dataset(*read_local(str(cfg.files[split]), cfg.src_lang, cfg.tgt_lang))
    paths = [
        multi30k.locate(split, lang, cfg.data_dir, cfg.download) for lang in (cfg.src_lang, cfg.tgt_lang)
    ]
    return pairs_to_dataset(*read_text_pair(*paths))


def read_splits(
    cfg: DataConfig, splits: list[str] | None, files: Mapping[str, str | None]
) -> dict[str, Dataset]:
    """{split: text} of `splits` only (None: every test split, those of `files` included); an
    unknown split is a ConfigError, a missing file a DataFileNotFoundError with the override to use."""
    files = {s: p for s, p in files.items() if p}
    hub: dict[str, Dataset] = {}
    if cfg.source == "hub" and (splits is None or any(s not in files for s in splits)):
        hub = dict(load_parallel(dataclasses.replace(cfg, test_splits=None)))  # one dataset, opened whole
        known = [s for s in hub if s != "train"]
    else:
        known = [] if cfg.source == "hub" else _run_splits(cfg)
    available = known + [s for s in files if s != "train" and s not in known]
    if splits is None:
        splits = [s for s in available if s != HELD_OUT]
    unknown = [s for s in splits if s not in available]
    if unknown:
        raise ConfigError(
            f"config error at `splits`: {unknown} not in this data; choose from {available}, "
            f"or add a split with +files.NAME=PATH"
        )
    text = {}
    for split in splits:
        try:
            text[split] = (
                hub[split] if split in hub and split not in files else _read_split(cfg, split, files)
            )
        except DataFileNotFoundError as e:
            raise DataFileNotFoundError(
                f"the {split} split to evaluate is not there: {e} To use it, {_hint(cfg, split)}."
            ) from e
    return text


def encode_in_memory(ds: Dataset, tokenizer: Tokenizer) -> Dataset:
    """`ds` (src, tgt) with the id and length columns of `mt.data.encode`, built in memory, no cache."""
    src, tgt = text_column(ds, "src"), text_column(ds, "tgt")
    columns = {"src": src, "tgt": tgt, **encode_columns(src, tgt, tokenizer)}
    return Dataset.from_dict(columns, features=ENCODED_FEATURES)


def load_eval_data(
    cfg: DataConfig, tokenizer: Tokenizer, splits: list[str] | None, files: Mapping[str, str | None]
) -> EvalData:
    """The text and in-memory encoding of `splits` (None: every test split; see :func:`read_splits`)
    with the checkpoint's `tokenizer`."""
    text = read_splits(cfg, splits, files)
    for split, ds in text.items():
        if len(ds) == 0:
            raise DataError(f"the {split} split to evaluate is empty; {_hint(cfg, split)}")
    return EvalData(tokenizer, text, {split: encode_in_memory(ds, tokenizer) for split, ds in text.items()})
