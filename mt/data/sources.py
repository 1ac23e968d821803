"""Loading a parallel corpus into a ``DatasetDict`` with string columns ``src`` and ``tgt``.

Splits are ``train``, ``validation`` and zero or more test splits (any other name). Three
sources, chosen by ``data.source``:

- ``multi30k``: the raw Multi30k task-1 files (see :mod:`mt.data.multi30k` for where they are
  looked up and downloaded). Tests: ``test_2016_flickr`` and ``test_2017_flickr`` (the latter has
  no Czech).
- ``hub``: ``datasets.load_dataset(hub_name, hub_config, revision=hub_revision)``; ``hub_name``
  may also be a local folder of data files (parquet / jsonl / csv ...) or a ``save_to_disk``
  folder. Flat language columns (``{"en": .., "de": ..}``), a ``translation`` dict column
  (WMT style) and ready ``src``/``tgt`` columns are accepted. Hub text is used as stored.
- ``local``: ``data.files`` maps split -> ``.tsv`` / ``.jsonl`` file (optionally ``.gz``) or a
  prefix ``P`` with ``P.<src_lang>`` and ``P.<tgt_lang>`` (optionally ``.gz``).

Files are streamed, never read whole, into memory-mapped Arrow files (:mod:`mt.data.text_store`).

Nothing is filtered or truncated here; only the train split is filtered, later, by
:func:`mt.data.encode.filter_train`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import datasets
from datasets import Dataset, DatasetDict
from huggingface_hub.utils import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

from mt.config import DataConfig, validate_data
from mt.data import multi30k
from mt.data.paths import input_candidates, resolve_input, resolve_output
from mt.data.readers import iter_jsonl, iter_pairs, iter_tsv, join_batches
from mt.data.text_store import TEXT_FEATURES, Batches, cached_text, pairs_to_dataset
from mt.errors import DataError, DataFileNotFoundError
from mt.io import unreadable_reason

logger = logging.getLogger("mt.data")

VALIDATION_ALIASES = ("validation", "valid", "val", "dev")
__all__ = ["load_parallel", "map_hub_splits", "pairs_to_dataset", "read_local", "to_src_tgt"]


def load_parallel(cfg: DataConfig) -> DatasetDict:
    """Return the corpus described by ``cfg``: splits train, validation, tests; columns src, tgt.

    Multi30k and local splits are memory-mapped text files under ``data.cache_dir/text/``
    (see :mod:`mt.data.text_store`); hub splits are the hub cache's own Arrow files.
    """
    validate_data(cfg)
    cache_dir = resolve_output(cfg.cache_dir)
    if cfg.source == "multi30k":
        dsd = _load_multi30k(cfg, cache_dir)
    elif cfg.source == "hub":
        dsd = _load_hub(cfg)
    else:
        dsd = _load_local(cfg, cache_dir)
    sizes = ", ".join(f"{name} {len(ds)}" for name, ds in dsd.items())
    logger.info("data: %s %s-%s: %s", cfg.source, cfg.src_lang, cfg.tgt_lang, sizes)
    for split, ds in dsd.items():  # every split, tests included: found now, not after training
        if len(ds) == 0:
            where = (
                cfg.files.get(split)
                if cfg.source == "local"
                else cfg.hub_name or cfg.data_dir or "$MT_DATA_DIR"
            )
            need = ("training needs at least one sentence pair there" if split in ("train", "validation")
                    else f"it could not be evaluated after training; leave it out with ~data.files.{split} "
                    f"(data.test_splits for multi30k/hub)")  # fmt: skip
            raise DataError(
                f"the {split} split of data.source={cfg.source} is empty (read from {where}); {need}: "
                f"check the file(s) or data.files.{split}"
            )
    return dsd


def _select_tests(available: list[str], requested: list[str] | None, what: str) -> list[str]:
    if requested is None:
        return available
    missing = [s for s in requested if s not in available]
    if missing:
        raise DataError(
            f"{what} has no test split(s) {missing}; it has {available or 'none'}. "
            f"Fix data.test_splits (or set it to null to use every test split)."
        )
    return list(requested)


# -- multi30k -----------------------------------------------------------------------------


def _load_multi30k(cfg: DataConfig, cache_dir: Path) -> DatasetDict:
    tests = _select_tests(
        multi30k.available_test_splits(cfg.src_lang, cfg.tgt_lang),
        cfg.test_splits,
        f"Multi30k {cfg.src_lang}-{cfg.tgt_lang}",
    )
    out = {}
    for split in ["train", "validation", *tests]:
        paths = [
            multi30k.locate(split, lang, cfg.data_dir, cfg.download) for lang in (cfg.src_lang, cfg.tgt_lang)
        ]
        out[split] = cached_text(cache_dir, split, paths, {"format": "lines"}, lambda p=paths: iter_pairs(*p))
    return DatasetDict(out)


# -- local --------------------------------------------------------------------------------


def _prefix_files(prefix: str, lang: str) -> list[Path]:
    return [Path(f"{c}.{lang}{gz}") for c in input_candidates(prefix) for gz in ("", ".gz")]


def local_reader(
    path: str, src_lang: str, tgt_lang: str
) -> tuple[list[Path], dict[str, str], Callable[[], Batches]]:
    """Return the files that ``path`` names (a .tsv / .jsonl file, optionally .gz, or a prefix P
    with P.<lang> files), how they are read, and a function streaming their ``(src, tgt)`` batches."""
    lower = path.lower()
    if lower.endswith((".tsv", ".tsv.gz")):
        file = resolve_input(path)
        return [file], {"format": "tsv"}, lambda: iter_tsv(file)
    if lower.endswith((".jsonl", ".jsonl.gz")):
        file = resolve_input(path)
        how = {"format": "jsonl", "src_lang": src_lang, "tgt_lang": tgt_lang}
        return [file], how, lambda: iter_jsonl(file, src_lang, tgt_lang)
    found = []
    for lang in (src_lang, tgt_lang):
        candidates = _prefix_files(path, lang)
        hit = next((c for c in candidates if c.is_file()), None)
        there = next((c for c in candidates if os.path.lexists(c)), None)  # but not a readable file
        if hit is None and there is not None:
            raise DataFileNotFoundError(f"data file {there} {unreadable_reason(there)}; fix it or point data.files "
                                        f"at another prefix ({path!r} now)")  # fmt: skip
        if hit is None:
            raise DataFileNotFoundError(
                f"no data for {path!r}: it is not a .tsv/.jsonl file, and as a prefix none of "
                f"{', '.join(map(str, candidates))} exists. Give a .tsv or .jsonl path (optionally .gz), "
                f"or a prefix P such that P.{src_lang} and P.{tgt_lang} exist."
            )
        found.append(hit)
    return found, {"format": "lines"}, lambda: iter_pairs(*found)


def read_local(path: str, src_lang: str, tgt_lang: str) -> tuple[list[str], list[str]]:
    """Return ``(src, tgt)`` from a .tsv / .jsonl file (optionally .gz) or a prefix P with P.<lang> files."""
    return join_batches(local_reader(path, src_lang, tgt_lang)[2]())


def _load_local(cfg: DataConfig, cache_dir: Path) -> DatasetDict:
    files = {split: path for split, path in cfg.files.items() if path}  # null entries are unset splits
    tests = _select_tests(
        [s for s in files if s not in ("train", "validation")], cfg.test_splits, "data.files"
    )
    out = {}
    for split in ["train", "validation", *tests]:
        inputs, how, batches = local_reader(files[split], cfg.src_lang, cfg.tgt_lang)
        out[split] = cached_text(cache_dir, split, inputs, how, batches)
    return DatasetDict(out)


# -- hub ----------------------------------------------------------------------------------


def _open_hub(cfg: DataConfig) -> DatasetDict:
    """The hub dataset (or local folder) of ``cfg``; a missing or unreachable one is a DataError
    saying what to check, any other error propagates."""
    assert cfg.hub_name
    local = resolve_input(cfg.hub_name)
    what = f"hub dataset {cfg.hub_name!r} (config {cfg.hub_config!r}, revision {cfg.hub_revision!r})"
    try:
        if local.is_dir() and (local / "dataset_dict.json").is_file():
            return datasets.load_from_disk(str(local))
        if local.is_dir() and (local / "state.json").is_file():
            return DatasetDict({"train": datasets.load_from_disk(str(local))})
        name = str(local) if local.is_dir() else cfg.hub_name
        loaded = datasets.load_dataset(name, cfg.hub_config, revision=cfg.hub_revision)
    # datasets raises DatasetNotFoundError (a FileNotFoundError) for a dataset or revision that
    # does not exist, is gated or private, DataFilesNotFoundError for a folder without data files
    except (FileNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as e:
        raise DataFileNotFoundError(
            f"could not load {what}: it does not exist or is not accessible ({type(e).__name__}: {e}). "
            f"Check data.hub_name (OWNER/NAME on huggingface.co, or a local folder of data files), "
            f"data.hub_config and data.hub_revision; a gated or private dataset needs `hf auth login`."
        ) from e
    # a config name the dataset does not have (or none where it has several): datasets says which exist
    except ValueError as e:
        if "config" not in str(e).lower():
            raise
        raise DataError(
            f"could not load {what}: {str(e).strip().splitlines()[0]} Set data.hub_config to one of "
            f"the dataset's configs (null for a dataset with one)."
        ) from e
    # ... and a ConnectionError when the hub cannot be reached (offline included)
    except (ConnectionError, TimeoutError, HfHubHTTPError) as e:
        raise DataError(
            f"could not load {what}: could not reach the HuggingFace hub ({type(e).__name__}: {e}). "
            f"Check the network; without one, use a dataset already in the HuggingFace cache "
            f"(HF_HUB_OFFLINE=1) or point data.hub_name at a local folder of data files."
        ) from e
    if not isinstance(loaded, DatasetDict):
        raise DataError(f"hub dataset {cfg.hub_name!r} did not load as a set of splits; got {type(loaded)}")
    return loaded


def map_hub_splits(hub_splits: list[str], overrides: Mapping[str, str]) -> dict[str, str]:
    """Return our split -> hub split: train, validation (first of validation|valid|val|dev), the rest as tests.

    ``overrides`` (our split -> hub split) win; a hub split they name is not used again.
    """
    taken = set(overrides.values())
    mapping: dict[str, str] = {}
    ordered = sorted(hub_splits, key=lambda h: VALIDATION_ALIASES.index(h) if h in VALIDATION_ALIASES else -1)
    for h in ordered:
        ours = "validation" if h in VALIDATION_ALIASES else h
        if ours == "validation" and ("validation" in overrides or "validation" in mapping):
            ours = h  # a second validation-like split is kept as a test split
        if h in taken or ours in overrides or ours in mapping:
            continue
        mapping[ours] = h
    for ours, h in overrides.items():
        if h not in hub_splits:
            raise DataError(
                f"data.hub_split_map.{ours}={h!r}, but the hub dataset has splits {hub_splits}. "
                f"Pick one of those."
            )
        mapping[ours] = h
    return mapping


def to_src_tgt(ds: Dataset, src_lang: str, tgt_lang: str, where: str) -> Dataset:
    """Return ``ds`` reduced to string columns ``src``/``tgt`` from language columns or a translation dict."""
    cols = ds.column_names
    trans = ds.features.get("translation")
    if src_lang in cols and tgt_lang in cols:
        ds = ds.select_columns([src_lang, tgt_lang]).rename_columns({src_lang: "src", tgt_lang: "tgt"})
    elif (
        trans is not None and src_lang in _translation_langs(trans) and tgt_lang in _translation_langs(trans)
    ):
        s, t = f"translation.{src_lang}", f"translation.{tgt_lang}"
        ds = ds.select_columns(["translation"]).flatten().select_columns([s, t])
        ds = ds.rename_columns({s: "src", t: "tgt"})
    elif "src" in cols and "tgt" in cols:
        ds = ds.select_columns(["src", "tgt"])
    else:
        found = f"columns {cols}"
        if trans is not None:
            found += f" (translation languages {_translation_langs(trans)})"
        raise DataError(
            f"{where}: cannot find languages {src_lang!r} and {tgt_lang!r}; found {found}. Expected flat "
            f"language columns, a 'translation' column of {{language: text}}, or src/tgt columns. "
            f"Check data.src_lang / data.tgt_lang (and data.hub_config, e.g. 'de-en')."
        )
    if ds.features != TEXT_FEATURES:
        ds = ds.cast(TEXT_FEATURES)
    if ds.data.column("src").null_count or ds.data.column("tgt").null_count:
        ds = ds.map(
            lambda b: {k: [x if x is not None else "" for x in b[k]] for k in ("src", "tgt")},
            batched=True,
            desc="replace missing text",
        )
    return ds


def _translation_langs(feature: object) -> list[str]:
    if isinstance(feature, datasets.Translation):
        return list(feature.languages)
    if isinstance(feature, Mapping):
        return list(feature)
    return []


def _load_hub(cfg: DataConfig) -> DatasetDict:
    raw = _open_hub(cfg)
    hub_splits = list(raw)
    mapping = map_hub_splits(hub_splits, cfg.hub_split_map)
    for need in ("train", "validation"):
        if need not in mapping:
            raise DataError(
                f"hub dataset {cfg.hub_name!r} has splits {hub_splits}; none is used as {need}. "
                f"Name one with ++data.hub_split_map.{need}=SPLIT."
            )
    tests = _select_tests(
        [s for s in mapping if s not in ("train", "validation")],
        cfg.test_splits,
        f"hub dataset {cfg.hub_name!r}",
    )
    return DatasetDict(
        {
            ours: to_src_tgt(
                raw[mapping[ours]], cfg.src_lang, cfg.tgt_lang, f"{cfg.hub_name} split {mapping[ours]!r}"
            )
            for ours in ["train", "validation", *tests]
        }
    )
