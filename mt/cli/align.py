"""`mt-align checkpoint=PATH src=FILE tgt=FILE`: word alignments from the model's attention.

    mt-align checkpoint=RUN/checkpoints/best.pt src=test.de tgt=test.en output=test.align
    mt-align checkpoint=... src=... tgt=... method=threshold threshold=0.3
    mt-align checkpoint=EN_CS_RUN/checkpoints/best.pt gold=$MT_DATA_DIR/alignment/czenali-en-cs/czenali.gz
    mt-align checkpoint=... gold=gold.align gold_format=pharaoh gold_src=gold.de gold_tgt=gold.en

Each target sentence is force-decoded through the model (teacher forcing) and each target
word is linked to source words by its attention (`mt.evaluation.force_align`). One line of
Pharaoh links (`i-j`, 0-based source word i, target word j) per pair goes to `output`
(standard output by default); an empty side gives an empty line. Words are the
whitespace-separated tokens of each line.

With `gold=FILE` the sentences come from the gold set (unless src/tgt are given) and the links
are scored: AER, precision and recall over all gold pairs and over the in-vocabulary ones,
printed as one line and written as JSON to `results` (default OUTPUT.results.json, or
align.results.json in the current directory). The CzEnAli TSV holds English and Czech columns
(`gold_langs` names them for another TSV of that shape); the model's source language, from
its checkpoint, decides which column is the source.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from mt.cli.common import (
    CONFIG_DIR,
    friendly_errors,
    preflight,
    quote_paths,
    register_resolvers,
    typed_config,
)
from mt.command_config import AlignConfig, register_configs, validate_align
from mt.errors import ConfigError, DataError

register_resolvers()
register_configs()
log = logging.getLogger("mt.align")


def check_inputs(cfg: AlignConfig) -> None:
    """Which files the settings name: src and tgt together, or gold; the pharaoh gold's sentences."""
    if (cfg.src is None) != (cfg.tgt is None) or (cfg.src is None and cfg.gold is None):
        raise ConfigError("config error at `src`: give src=FILE and tgt=FILE (one sentence per line), "
                          "or gold=FILE, whose sentences are then aligned")  # fmt: skip
    if cfg.gold and cfg.gold_format == "pharaoh" and None in (cfg.gold_src, cfg.gold_tgt):
        raise ConfigError("config error at `gold_src`: gold_format=pharaoh needs gold_src=FILE and "
                          "gold_tgt=FILE, the tokenized sentences of the model's source and target sides")  # fmt: skip
    if cfg.gold_langs is not None and len(cfg.gold_langs) != 2:
        raise ConfigError(
            "config error at `gold_langs`: give the two columns' languages, e.g. gold_langs=[en,cs]"
        )


def read_gold(cfg: AlignConfig, src_lang: str, tgt_lang: str) -> tuple[list, list[str]]:
    """The gold pairs (sentences and links, i on the model's source side) and reader warnings."""
    from mt.evaluation.gold import read_gold_set

    try:
        return read_gold_set(cfg.gold, cfg.gold_format, src_lang, tgt_lang, cfg.gold_src, cfg.gold_tgt,
                             one_based=cfg.gold_one_based, src_first=cfg.gold_src_first, langs=cfg.gold_langs)  # fmt: skip
    except ConfigError as e:
        if "holds" not in str(e):
            raise
        raise ConfigError(f"config error at `gold_langs`: {e} (gold_langs=[LANG1,LANG2])") from None


def align(cfg: AlignConfig) -> dict:
    """Library entry: align the pairs, write the links and, with gold, the scores; returns a summary."""
    from mt.data.readers import read_text_pair
    from mt.evaluation.alignment import format_pharaoh
    from mt.evaluation.force_align import force_align
    from mt.io import atomic_write_text
    from mt.runtime import resolve_device
    from mt.training.checkpoint import load_model

    validate_align(cfg)
    check_inputs(cfg)
    device = resolve_device(cfg.device)
    loaded = load_model(cfg.checkpoint, device)
    src_lang, tgt_lang = loaded.config.data.src_lang, loaded.config.data.tgt_lang
    gold, warnings = read_gold(cfg, src_lang, tgt_lang) if cfg.gold else ([], [])
    for warning in warnings:  # each names the gold file and line; the link is skipped and counted
        log.warning("%s", warning)
    if cfg.src is not None:
        src_lines, tgt_lines = read_text_pair(cfg.src, cfg.tgt)  # DataError naming both on a mismatch
        if gold and len(gold) != len(src_lines):
            raise DataError(f"{cfg.src} has {len(src_lines)} lines but the gold file {cfg.gold} has "
                            f"{len(gold)} pairs; give the gold set's own sentences or leave src/tgt out")  # fmt: skip
    else:
        src_lines = [" ".join(p.src_words) for p in gold]
        tgt_lines = [" ".join(p.tgt_words) for p in gold]
    result = force_align(loaded.model, loaded.tokenizer, src_lines, tgt_lines, device, precision=cfg.precision,
                         batch_sentences=cfg.batch_sentences, max_src_len=cfg.max_src_len, method=cfg.method,
                         threshold=cfg.threshold)  # fmt: skip
    text = "".join(format_pharaoh(links) + "\n" for links in result.links)
    if cfg.output:
        atomic_write_text(cfg.output, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    n = len(result)
    rate = n / result.seconds if result.seconds > 0 else 0.0
    log.info("aligned %d pairs in %.1fs (%.0f pairs/s); %d empty skipped, %d sources cut to max_src_len=%d, "
             "method %s", n, result.seconds, rate, result.empty, result.truncated, cfg.max_src_len,
             cfg.method)  # fmt: skip
    summary = {"pairs": n, "empty": result.empty, "truncated": result.truncated,
               "seconds": round(result.seconds, 3), "pairs_per_s": round(rate, 1)}  # fmt: skip
    if gold:
        summary = score(cfg, loaded, result.links, gold, warnings, summary)
    return summary


def score(cfg: AlignConfig, loaded, links: list, gold: list, warnings: list[str], facts: dict) -> dict:
    """AER / precision / recall over all and in-vocabulary links: one printed line and a JSON file."""
    from mt.evaluation.force_align import in_vocabulary, training_vocabulary
    from mt.evaluation.gold_scores import alignment_record, score_links, scores_line
    from mt.io import write_json
    from mt.training.checkpoint import describe

    scores = score_links(links, gold, in_vocabulary(*training_vocabulary(loaded.config.data)))
    path = Path(cfg.results or (f"{cfg.output}.results.json" if cfg.output else "align.results.json"))
    settings = {k: getattr(cfg, k) for k in ("checkpoint", "src", "tgt", "gold", "gold_format", "gold_langs",
                                             "method", "threshold", "precision", "max_src_len")}  # fmt: skip
    results = alignment_record({**scores, **facts}, len(warnings), settings, describe(loaded))
    write_json(path, results)
    line = f"{scores_line(scores)} | {len(gold)} pairs, {len(warnings)} gold warnings; results in {path}"
    print(line, file=sys.stdout if cfg.output else sys.stderr)
    return results


def to_config(cfg: DictConfig) -> AlignConfig:
    """Merge onto the schema: unknown keys (typos) and wrong types are ConfigErrors."""
    return typed_config(cfg, AlignConfig, "align")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="align")
@friendly_errors
def hydra_main(cfg: DictConfig) -> None:
    align(to_config(cfg))


def main() -> None:
    """The `mt-align` command: bad overrides are reported before Hydra starts."""
    sys.argv[1:] = quote_paths(sys.argv[1:])  # a job directory's name holds = and ,
    preflight("align", sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    main()
