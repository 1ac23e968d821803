"""Typed configuration schemas (dataclasses) of training, and their range checks.

Every YAML file under ``mt/configs/`` is merged onto these schemas, so an unknown key or a
value of the wrong type fails at start-up with Hydra's message naming it. Checks that a
type cannot express (allowed names, positive sizes, language pairs) live in the
``validate_*`` functions (:func:`validate_train`, :func:`validate_data`, ...), which every entry
point calls before doing any work; the range of every numeric key is one table, in
`mt.config_ranges`. The other commands' schemas are in `mt.command_config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mt.config_ranges import check_length_limit, check_section
from mt.errors import ConfigError

MULTI30K_LANGS = ("en", "de", "fr", "cs")
MULTI30K_TEST_SPLITS = ("test_2016_flickr", "test_2017_flickr")
# Multi30k has no Czech for the 2017 test set.
MULTI30K_MISSING = {("test_2017_flickr", "cs")}


DEFAULT_MAX_RSS_MB = 2600  # MiB; resident-memory cap of training and decoding (issue 7: under 3 GiB)
# Hard cap on decoded output length (incl. EOS), whatever the source length: a pathological
# input (say a 100,000-character line) must not turn into tens of thousands of decoder steps.
DEFAULT_MAX_OUTPUT_TOKENS = 400
# Beam search of the final test, mt-evaluate and mt-translate (mt.search.SearchConfig and the
# trainer's / mt-translate's keys of the same meaning): beam width, GNMT length penalty alpha,
# and the length limit a * source length + b tokens.
DEFAULT_BEAM_SIZE = 5
DEFAULT_LENGTH_PENALTY = 1.0
DEFAULT_MAX_LEN_A = 1.5
DEFAULT_MAX_LEN_B = 10
# Vocabulary shortlist (mt.search.shortlist; off unless mt-evaluate / mt-translate get
# shortlist=FILE): translations kept per source subword by mt-shortlist, and what a batch's
# candidates take of them: the most frequent target subwords and the best translations of each
# source subword. Chosen on validation (en->de, beam 5, docs/performance.md "Vocabulary
# shortlist"): 100:20 kept BLEU (+0.05) at 1.43x the sentences/s; 100:10 was faster (1.61x)
# but lost 0.21, 100:50 and 500-1000 frequent were slower for no gain.
DEFAULT_SHORTLIST_KEEP = 100
DEFAULT_SHORTLIST_FREQUENT = 100
DEFAULT_SHORTLIST_PER_SOURCE = 20
# Word links from attention: every pair whose word-level weight reaches the threshold. Chosen
# on the first 500 CzEnAli pairs over the five global mechanisms (en->cs, 400 updates): mean AER
# 84.5% at 0.1 against 86.8% for argmax (Luong et al., 2015), 84.8% at 0.08 and 85.6% at 0.15;
# lower for every mechanism (docs/attention.md, the selection table).
ALIGN_METHODS = ("argmax", "threshold")
DEFAULT_ALIGN_METHOD = "threshold"
DEFAULT_ALIGN_THRESHOLD = 0.1
GOLD_FORMATS = ("czenali", "pharaoh")


@dataclass
class DataConfig:
    """Where the parallel corpus comes from and how it is filtered and batched."""

    source: str = "multi30k"  # multi30k | hub | local
    src_lang: str = "de"
    tgt_lang: str = "en"
    # multi30k: folder holding multi30k/*.gz; default $MT_DATA_DIR, then data/
    data_dir: str | None = None
    download: bool = True  # multi30k: fetch the raw files when they are absent
    # Test splits to load; null = every test split the source has for this pair.
    test_splits: list[str] | None = None
    # hub: a HuggingFace hub dataset (flat language columns or a `translation` dict)
    hub_name: str | None = None
    hub_config: str | None = None
    hub_revision: str | None = None
    hub_split_map: dict[str, str] = field(default_factory=dict)  # our split -> hub split
    # local: split -> path. A .tsv / .jsonl file (optionally .gz), or a prefix P with
    # files P.<src_lang> and P.<tgt_lang> (optionally .gz).
    files: dict[str, str | None] = field(default_factory=dict)
    limit_train: int = 0  # > 0: use only the first N training pairs (tokenizer included)
    max_len: int = 100  # train pairs longer than this (subwords, either side) are dropped
    cache_dir: str = "data/cache"  # tokenizer models and cached id datasets
    # batching
    batch_tokens: int = 6000  # token budget per batch (padded, larger of src/tgt)
    batch_sentences: int = 0  # > 0: fixed number of sentences instead of a token budget
    # Validation / test batches (sorted by source length): eval_batch_sentences > 0 fixes the
    # sentences per batch; 0 sizes them to about eval_batch_rows decoder rows, i.e.
    # eval_batch_rows // beam_size sentences (greedy search and the loss: eval_batch_rows).
    eval_batch_sentences: int = 0
    eval_batch_rows: int = 500
    bucket_chunk_batches: int = 64  # batches' worth of examples sorted together per chunk


@dataclass
class TokenizerConfig:
    """Sentencepiece subword model settings."""

    model_type: str = "unigram"  # unigram | bpe
    vocab_size: int = 8000
    joint: bool = True  # one model for both languages (else one per side)
    character_coverage: float = 1.0
    # Subword regularisation on train batches only (unigram: alpha in (0, 1]).
    sampling_alpha: float = 0.0
    sampling_nbest: int = -1
    # pairs the tokenizer is trained on, drawn at random with `seed` (every pair of a smaller
    # train split, in order); bounds its memory and time on large corpora. 0 = every pair
    input_sentence_size: int = 300_000
    seed: int = 1
    # lowercase all text before it is split into subwords (training, validation, test and
    # mt-translate input): outputs are lowercase and every score ignores case (sacreBLEU case:lc),
    # as in the lowercased Multi30k recipes; rides in the checkpoint with the tokenizer
    lowercase: bool = False


# the mechanisms whose general (or dot) score AttentionConfig.scaled divides by sqrt(Hq)
SCALED_MECHANISMS = ("luong_general", "local_m", "local_p")


@dataclass
class AttentionConfig:
    """Attention mechanism, chosen by name from the registry in mt.models.attention."""

    name: str = "bahdanau"
    hidden_size: int = 0  # additive / concat energy size; 0 = decoder hidden size
    # local_m, local_p (Luong et al. 2015): D, the half-width of the window [p_t - D, p_t + D]
    # (the paper's 10), and the score inside it: dot | general (the paper's best) | concat
    window: int = 10
    score: str = "general"
    # luong_location: the source positions W_a scores (W_a: dec_hidden -> max_src_len), keep it
    # data.max_len + 1 (the source EOS); positions past it get weight 0 (longer test sentences)
    max_src_len: int = 101
    # See et al. (2017): the coverage vector (sum of past attention weights per source position)
    # as an input to the energies; bahdanau, luong_concat, local_m / local_p with score=concat
    coverage: bool = False
    # luong_general (and local_m / local_p's general score): divide the energies q^T W k by
    # sqrt(Hq), as scaled_dot divides q^T k by sqrt(Hk) (Vaswani et al. 2017; a local dot score
    # becomes scaled dot); docs/attention.md "The dot/general gap" for why
    scaled: bool = False


@dataclass
class ModelConfig:
    """RNN encoder-decoder sizes and structure."""

    rnn_type: str = "gru"  # gru | lstm
    emb_size: int = 256
    enc_hidden: int = 256  # per direction
    enc_layers: int = 1
    bidirectional: bool = True
    dec_hidden: int = 512
    dec_layers: int = 1
    dropout: float = 0.3
    emb_dropout: float = 0.3
    # word dropout (whole source / target-input tokens' embeddings zeroed with this probability
    # in training, Nematus' dropout_source / dropout_target); 0 = off
    src_word_dropout: float = 0.0
    tgt_word_dropout: float = 0.0
    bridge: str = "bridge"  # bridge | last | zero
    decoder_style: str = "luong"  # luong (attention from h_i, input feeding) | bahdanau (from h_{i-1})
    input_feeding: bool = True  # luong style only
    tie_embeddings: bool = False  # tie target embeddings and output layer
    attention: AttentionConfig = field(default_factory=AttentionConfig)


COOLDOWN_SHAPES = ("linear", "1-sqrt")  # optim.cooldown_shape: f(x) = 1 - x, 1 - sqrt(x)


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule."""

    name: str = "adam"  # adam | adamw
    lr: float = 2e-3  # chosen on validation BLEU: 35.3 vs 32.4 (1e-3) after 15 min, docs/performance.md
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    clip_grad_norm: float = 1.0  # 0 = no clipping
    # plateau | inverse_sqrt | budget (linear decay to min_lr over the training budget:
    # trainer.max_steps, max_minutes and max_epochs, whichever ends first) | none
    schedule: str = "plateau"
    warmup_steps: int = 0  # inverse_sqrt, budget: linear warm-up length
    plateau_factor: float = 0.5
    # patience N: decay on the N-th validation in a row without a BLEU gain, then count again
    # (the rule of trainer.early_stopping_patience; torch's ReduceLROnPlateau patience N - 1)
    plateau_patience: int = 3
    min_lr: float = 1e-5
    # fraction of the training budget (trainer.max_steps / max_minutes / max_epochs, whichever
    # ends first) over whose end the schedule's rate is cooled down to min_lr; 0 = off. 0.5 chosen
    # on validation BLEU for the default budget in all six Multi30k directions (-0.07 to +1.45,
    # docs/results.md); a budget of a few hundred updates (ten minutes) does better with 0
    cooldown: float = 0.5
    cooldown_shape: str = "linear"  # linear (1 - x) | 1-sqrt (1 - sqrt(x)), x the cooldown's progress


@dataclass
class TrainerConfig:
    """The training loop: length, cadence, precision, regularisation."""

    # The default run ends on an update budget, so the same command and seed give the same model
    # on any machine: 1950 updates take about 42 minutes on 2 CPU cores (docs/performance.md).
    max_steps: int = 1950  # 0 = no step limit
    max_epochs: int = 50
    max_minutes: float = 0.0  # wall-clock budget for time-boxed runs (incl. validation); 0 = none
    val_every: int = 150  # steps between validations
    valid_max_sentences: int = 0  # 0 = the whole validation split
    # patience N: stop on the N-th validation in a row without a BLEU gain (the rule of
    # optim.plateau_patience); 0 = off
    early_stopping_patience: int = 8
    label_smoothing: float = 0.1
    teacher_forcing: float = 1.0  # probability of feeding the gold previous token
    # weight of the coverage loss of See et al. (2017) (their 1.0) in the training loss; 0 = off;
    # > 0 needs model.attention.coverage=true
    coverage_loss_weight: float = 0.0
    # updates trained without the coverage loss before it is added (See et al. added it for a
    # short final phase); 0 = from the first update
    coverage_loss_after: int = 0
    # batches summed into one update (gradient accumulation): the update of one batch holding
    # them all (loss over their target tokens); an epoch's last update may take fewer
    accumulate_batches: int = 1
    precision: str = "bf16"  # fp32 | bf16 (autocast)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    log_every: int = 50
    checkpoint_every: int = 0  # steps between checkpoints besides validations; 0 = off
    keep_last: int = 2
    max_nonfinite: int = 10  # consecutive non-finite losses before the run stops
    max_rss_mb: int = (
        DEFAULT_MAX_RSS_MB  # free heap pages go back to the OS above this resident size; 0 = never
    )
    plot_sentences: list[int] = field(default_factory=lambda: [0, 1, 2])
    sample_sentences: int = 5  # source / reference / hypothesis rows in TensorBoard
    test_beam_size: int = DEFAULT_BEAM_SIZE
    length_penalty: float = DEFAULT_LENGTH_PENALTY
    max_len_a: float = DEFAULT_MAX_LEN_A  # decode at most a * source length + b tokens
    max_len_b: int = DEFAULT_MAX_LEN_B
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS  # hard cap on output length (incl. EOS)
    # rules of the search (mt.search.rules), off by default: no EOS before min_length tokens, no
    # n-gram twice, repeated tokens' logits divided (if > 0) or multiplied by repetition_penalty
    min_length: int = 0
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0
    progress: bool = True


@dataclass
class AlignmentConfig:
    """A gold word-alignment set the run's attention is scored on (AER); off while `gold` is null."""

    gold: str | None = None  # CzEnAli TSV, or a Pharaoh links file (with src / tgt)
    format: str = "czenali"  # czenali (4-column TSV) | pharaoh (sentence files + i-j / ipj links)
    src: str | None = None  # pharaoh: tokenized sentences of the model's source side
    tgt: str | None = None  # pharaoh: tokenized sentences of the model's target side
    one_based: bool = True  # pharaoh: links count from 1
    src_first: bool = True  # pharaoh: a link's first index is on the source side
    langs: list[str] | None = None  # czenali: the languages of its two columns; null = [en, cs]
    method: str = DEFAULT_ALIGN_METHOD
    threshold: float = DEFAULT_ALIGN_THRESHOLD
    valid_max_pairs: int = 100  # the N shortest pairs scored at each validation (0 = all); final: all


@dataclass
class TrainConfig:
    """Top-level schema of `mt-train` (mt/configs/train.yaml)."""

    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    seed: int = 1
    resume: str | None = None  # a run directory to continue
    experiment_name: str = "default"  # names the run directory (mt/configs/train.yaml)


def require(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"config error at `{key}`: {msg}")


def require_one_of(value: Any, allowed: tuple, key: str) -> None:
    require(value in allowed, key, f"{value!r} is not one of {', '.join(map(repr, allowed))}")


def validate_data(cfg: DataConfig) -> None:
    """Raise :class:`ConfigError` for an invalid data section."""
    require_one_of(cfg.source, ("multi30k", "hub", "local"), "data.source")
    require(cfg.src_lang != cfg.tgt_lang, "data.tgt_lang", "source and target language are the same")
    if cfg.source == "multi30k":
        for key, lang in (("data.src_lang", cfg.src_lang), ("data.tgt_lang", cfg.tgt_lang)):
            require(
                lang in MULTI30K_LANGS,
                key,
                f"unknown language {lang!r} for Multi30k; choose from {', '.join(MULTI30K_LANGS)}",
            )
        for split in cfg.test_splits or []:
            require_one_of(split, MULTI30K_TEST_SPLITS, "data.test_splits")
            for lang in (cfg.src_lang, cfg.tgt_lang):
                require(
                    (split, lang) not in MULTI30K_MISSING,
                    "data.test_splits",
                    f"Multi30k has no {lang!r} for {split}; drop it from data.test_splits "
                    f"(e.g. data.test_splits=[test_2016_flickr])",
                )
    if cfg.source == "hub":
        require(bool(cfg.hub_name), "data.hub_name", "data=hub needs data.hub_name=OWNER/NAME")
    if cfg.source == "local":
        for split in ("train", "validation"):
            require(
                bool(cfg.files.get(split)), f"data.files.{split}", f"data=local needs data.files.{split}=PATH"
            )
    check_section(cfg, "data")
    require(cfg.batch_tokens > 0 or cfg.batch_sentences > 0, "data.batch_tokens",
            "must be positive unless data.batch_sentences > 0 (e.g. data.batch_tokens=6000)")  # fmt: skip


def validate_tokenizer(cfg: TokenizerConfig) -> None:
    """Raise :class:`ConfigError` for an invalid tokenizer section."""
    require_one_of(cfg.model_type, ("unigram", "bpe"), "tokenizer.model_type")
    check_section(cfg, "tokenizer")
    require(
        cfg.sampling_alpha == 0.0 or cfg.model_type == "bpe" or cfg.sampling_nbest not in (0, 1),
        "tokenizer.sampling_nbest",
        "0 and 1 turn unigram sampling off; use -1 (all segmentations) or a value > 1",
    )


def validate_model(cfg: ModelConfig) -> None:
    """Raise :class:`ConfigError` for an invalid model section (the attention name is checked
    against the registry by `mt.models.attention.check_attention_name`, which knows the names)."""
    require_one_of(cfg.rnn_type, ("gru", "lstm"), "model.rnn_type")
    require_one_of(cfg.bridge, ("bridge", "last", "zero"), "model.bridge")
    require_one_of(cfg.decoder_style, ("luong", "bahdanau"), "model.decoder_style")
    check_section(cfg, "model")  # sizes, dropout; the attention's keys below
    require(cfg.attention.hidden_size >= 0, "model.attention.hidden_size", "must be >= 0")
    a = cfg.attention
    require(a.window >= 1, "model.attention.window",
            f"must be >= 1, got {a.window}; e.g. model.attention.window=10 (the default)")  # fmt: skip
    require_one_of(a.score, ("dot", "general", "concat"), "model.attention.score")
    require(a.max_src_len >= 1, "model.attention.max_src_len",
            f"must be >= 1, got {a.max_src_len}; e.g. model.attention.max_src_len=101 (data.max_len + 1)")  # fmt: skip
    require(not a.scaled or a.name in SCALED_MECHANISMS, "model.attention.scaled",
            f"applies to {', '.join(SCALED_MECHANISMS)} only, not {a.name} (scaled_dot is luong_dot "
            "scaled); drop it")  # fmt: skip


def validate_train(cfg: TrainConfig) -> None:
    """Raise :class:`ConfigError` for any invalid value in a training config."""
    validate_data(cfg.data)
    validate_tokenizer(cfg.tokenizer)
    validate_model(cfg.model)
    o, t = cfg.optim, cfg.trainer
    require_one_of(o.name, ("adam", "adamw"), "optim.name")
    require_one_of(o.schedule, ("plateau", "inverse_sqrt", "budget", "none"), "optim.schedule")
    require_one_of(o.cooldown_shape, COOLDOWN_SHAPES, "optim.cooldown_shape")
    require(len(o.betas) == 2, "optim.betas", f"needs two values, got {len(o.betas)}: e.g. optim.betas=[0.9,0.999]")  # fmt: skip
    require_one_of(t.precision, ("fp32", "bf16"), "trainer.precision")
    require(
        t.device == "auto" or t.device == "cpu" or t.device.startswith("cuda"),
        "trainer.device",
        f"{t.device!r} is not auto, cpu, cuda or cuda:N",
    )
    for section, values in (("optim", o), ("trainer", t), ("", cfg)):  # ranges: mt/config_ranges.py
        check_section(values, section)
    require(o.min_lr <= o.lr, "optim.min_lr", f"must be <= optim.lr ({o.lr}), got {o.min_lr}: lower "
            "optim.min_lr (the schedules' floor) or raise optim.lr")  # fmt: skip
    warms = o.schedule in ("inverse_sqrt", "budget")
    require(o.warmup_steps == 0 or warms, "optim.warmup_steps", f"optim.schedule={o.schedule} has no "
            "warm-up: set optim.warmup_steps=0, or optim.schedule=inverse_sqrt or budget")  # fmt: skip
    require(o.cooldown == 0 or o.schedule != "budget", "optim.cooldown", "optim.schedule=budget decays "
            "over the whole budget already and takes no cooldown: add optim.cooldown=0, or choose another "
            "optim.schedule")  # fmt: skip
    check_length_limit(t.max_len_a, t.max_len_b, "trainer.max_len_b")
    require(t.coverage_loss_weight == 0 or cfg.model.attention.coverage, "trainer.coverage_loss_weight",
            "the coverage loss needs a coverage attention: set model.attention.coverage=true or "
            "trainer.coverage_loss_weight=0")  # fmt: skip
    require(t.coverage_loss_after == 0 or t.coverage_loss_weight > 0, "trainer.coverage_loss_after",
            "delays a coverage loss that is off: set trainer.coverage_loss_weight > 0 or "
            "trainer.coverage_loss_after=0")  # fmt: skip
    validate_alignment(cfg.alignment)


def validate_alignment(cfg: AlignmentConfig) -> None:
    """Raise :class:`ConfigError` for an invalid alignment section (files are checked when read)."""
    require_one_of(cfg.format, GOLD_FORMATS, "alignment.format")
    require_one_of(cfg.method, ALIGN_METHODS, "alignment.method")
    check_section(cfg, "alignment")
    require(cfg.langs is None or len(cfg.langs) == 2, "alignment.langs", "give two languages, e.g. [en,cs]")
    if cfg.gold is not None and cfg.format == "pharaoh":
        require(None not in (cfg.src, cfg.tgt), "alignment.src",
                "alignment.format=pharaoh needs alignment.src=FILE and alignment.tgt=FILE, the tokenized "
                "sentences of the model's source and target sides")  # fmt: skip
