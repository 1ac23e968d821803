"""Typed schemas of the commands other than `mt-train` (mt-evaluate, mt-translate, mt-data,
mt-align) with their range checks, and the registration of every schema with Hydra's
ConfigStore. The training schemas and their checks are in `mt.config`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mt.config import (
    ALIGN_METHODS,
    DEFAULT_ALIGN_METHOD,
    DEFAULT_ALIGN_THRESHOLD,
    DEFAULT_BEAM_SIZE,
    DEFAULT_LENGTH_PENALTY,
    DEFAULT_MAX_LEN_A,
    DEFAULT_MAX_LEN_B,
    DEFAULT_MAX_OUTPUT_TOKENS,
    DEFAULT_MAX_RSS_MB,
    DEFAULT_SHORTLIST_FREQUENT,
    DEFAULT_SHORTLIST_PER_SOURCE,
    GOLD_FORMATS,
    DataConfig,
    TokenizerConfig,
    TrainConfig,
    require,
    require_one_of,
)
from mt.config_ranges import SHORTLIST, between, check_decoding, check_section


def register_configs() -> None:
    """Register the schemas with Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="evaluate_schema", node=EvaluateConfig)
    cs.store(name="data_stats_schema", node=DataStatsConfig)
    cs.store(name="align_schema", node=AlignConfig)


@dataclass
class EvaluateConfig:
    """Schema of `mt-evaluate` (mt/configs/evaluate.yaml)."""

    checkpoint: str = "???"
    ensemble: list[str] = field(default_factory=list)  # more checkpoints, decoded with it as one ensemble
    # also write each reference's log-probability under the model (outputs/<split>.ref_scores)
    score_references: bool = False
    splits: list[str] | None = None  # null = every test split of the checkpoint's data
    # Decoding settings; null = what the run used for its final test scores
    # (trainer.test_beam_size, length_penalty, max_len_a/b, max_output_tokens, precision), so
    # they reproduce.
    beam_size: int | None = None
    length_penalty: float | None = None
    max_len_a: float | None = None
    max_len_b: int | None = None
    max_output_tokens: int | None = None  # hard cap on output length (incl. EOS)
    min_length: int | None = None  # the search rules of mt.search.rules (0, 0, 1.0: off)
    no_repeat_ngram_size: int | None = None
    repetition_penalty: float | None = None
    precision: str | None = None
    # a vocabulary shortlist (mt-shortlist's file; null = the whole vocabulary): each batch
    # writes only its candidates (mt.search.shortlist), faster and a different output
    shortlist: str | None = None
    shortlist_frequent: int = DEFAULT_SHORTLIST_FREQUENT
    shortlist_per_source: int = DEFAULT_SHORTLIST_PER_SOURCE
    max_rss_mb: int = DEFAULT_MAX_RSS_MB  # free heap pages go back to the OS above this; 0 = never
    device: str = "auto"
    plot_sentences: list[int] = field(default_factory=lambda: [0, 1, 2])
    data_dir: str | None = None  # where the corpus is now, if not where training found it
    # split -> where its text is now (as data.files: .tsv/.jsonl or a prefix P with P.<lang>);
    # replaces the run's file for that split, or adds a split: `+files.test=new/test`
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class TranslateConfig:
    """Schema of `mt-translate` (mt/configs/translate.yaml)."""

    checkpoint: str = "???"
    ensemble: list[str] = field(default_factory=list)  # more checkpoints, decoded with it as one ensemble
    input: str | None = None  # a file; null = standard input
    output: str | None = None  # a file; null = standard output
    beam_size: int = DEFAULT_BEAM_SIZE
    n_best: int = 1  # > 1: n tab-separated hypotheses per line, best first
    length_penalty: float = DEFAULT_LENGTH_PENALTY
    max_len_a: float = DEFAULT_MAX_LEN_A
    max_len_b: int = DEFAULT_MAX_LEN_B
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS  # hard cap on output length (incl. EOS)
    min_length: int = 0  # the search rules of mt.search.rules, off by default
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0
    max_src_len: int = 250  # longer inputs are cut to this many subwords (output capped with it)
    batch_sentences: int = 0  # 0: about 500 decoder rows per batch (500 // beam_size sentences)
    chunk_lines: int = 5000  # lines read, translated (sorted by length) and written at a time
    precision: str = "bf16"
    shortlist: str | None = None  # a vocabulary shortlist (mt-shortlist's file), as mt-evaluate's
    shortlist_frequent: int = DEFAULT_SHORTLIST_FREQUENT
    shortlist_per_source: int = DEFAULT_SHORTLIST_PER_SOURCE
    max_rss_mb: int = DEFAULT_MAX_RSS_MB  # free heap pages go back to the OS above this; 0 = never
    device: str = "auto"
    attention: bool = False  # write attention matrices (JSON lines) next to the output
    alignment: bool = False  # word links of each hypothesis: OUTPUT.align, or `hyp<TAB>links` on stdout
    align_method: str = DEFAULT_ALIGN_METHOD  # threshold (weight >= align_threshold) | argmax (the top word)
    align_threshold: float = DEFAULT_ALIGN_THRESHOLD  # align_method=threshold: link where weight >= this


def validate_search(cfg: Any, prefix: str = "") -> None:
    """Raise :class:`ConfigError` for invalid decoding settings of evaluate / translate (the
    ranges, shared with the trainer's final test: `mt.config_ranges.DECODING`)."""
    check_decoding(cfg, prefix)
    check_section(cfg, "", SHORTLIST)
    require_one_of(cfg.precision, ("fp32", "bf16"), f"{prefix}precision")
    require(
        cfg.device == "auto" or cfg.device == "cpu" or cfg.device.startswith("cuda"),
        f"{prefix}device",
        f"{cfg.device!r} is not auto, cpu, cuda or cuda:N",
    )
    if hasattr(cfg, "n_best"):
        require(
            1 <= cfg.n_best <= cfg.beam_size, "n_best", f"must be between 1 and beam_size ({cfg.beam_size})"
        )
        require(cfg.max_src_len >= 2, "max_src_len", "must be at least 2")
        require(cfg.batch_sentences >= 0, "batch_sentences", "must be >= 0 (0 = automatic)")


# mt-translate's own ranges (its decoding ones are `mt.config_ranges.DECODING`).
TRANSLATE_RANGES = {"chunk_lines": between(1, 1_000_000, note="memory holds one chunk")}


def validate_translate(cfg: TranslateConfig) -> None:
    """Raise :class:`ConfigError` for invalid `mt-translate` settings."""
    validate_search(cfg)
    check_section(cfg, "", TRANSLATE_RANGES)
    require_one_of(cfg.align_method, ALIGN_METHODS, "align_method")
    require(0.0 < cfg.align_threshold <= 1.0, "align_threshold", "must be in (0, 1]")


@dataclass
class DataStatsConfig:
    """Schema of `mt-data` (mt/configs/data_stats.yaml)."""

    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    seed: int = 1


@dataclass
class AlignConfig:
    """Schema of `mt-align` (mt/configs/align.yaml): forced alignment, optionally scored."""

    checkpoint: str = "???"
    src: str | None = None  # source sentences, one per line (null with gold: the gold's sentences)
    tgt: str | None = None  # target sentences, same number of lines
    output: str | None = None  # Pharaoh links, one line per pair; null = standard output
    method: str = DEFAULT_ALIGN_METHOD  # threshold: each pair with weight >= threshold | argmax
    threshold: float = DEFAULT_ALIGN_THRESHOLD  # method=threshold: link where the word-level weight >= this
    gold: str | None = None  # gold alignments to score against (AER, precision, recall)
    gold_format: str = "czenali"  # czenali (4-column TSV) | pharaoh (sentence files + links)
    gold_src: str | None = None  # pharaoh format: tokenized sentences of the model's source side
    gold_tgt: str | None = None  # pharaoh format: tokenized sentences of the model's target side
    gold_one_based: bool = True  # pharaoh format: links count from 1
    gold_src_first: bool = True  # pharaoh format: a link's first index is on the source side
    gold_langs: list[str] | None = None  # czenali: languages of its two columns; null = [en, cs]
    results: str | None = None  # JSON scores; null = OUTPUT.results.json, or align.results.json
    device: str = "auto"
    precision: str = "bf16"  # fp32 | bf16: the same AER within 0.1, 1.25x faster (docs/attention.md)
    batch_sentences: int = 0  # 0: about 4000 tokens per batch
    max_src_len: int = 250  # longer sources are cut to this many subwords (counted, reported)


def validate_align(cfg: AlignConfig) -> None:
    """Raise :class:`ConfigError` for invalid `mt-align` settings (which files: `mt.cli.align`)."""
    require_one_of(cfg.method, ALIGN_METHODS, "method")
    require_one_of(cfg.gold_format, GOLD_FORMATS, "gold_format")
    require_one_of(cfg.precision, ("fp32", "bf16"), "precision")
    require(0.0 < cfg.threshold <= 1.0, "threshold", "must be in (0, 1]")
    require(cfg.max_src_len >= 2, "max_src_len", "must be at least 2")
    require(cfg.batch_sentences >= 0, "batch_sentences", "must be >= 0 (0 = automatic)")
    require(cfg.device.split(":")[0] in ("auto", "cpu", "cuda"), "device", "must be auto, cpu or cuda[:N]")
