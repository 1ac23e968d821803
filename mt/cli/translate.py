"""`mt-translate checkpoint=PATH`: translate sentences, one per line, in order.

    echo "Ein Hund rennt." | mt-translate checkpoint=RUN/checkpoints/best.pt
    mt-translate checkpoint=... input=in.de output=out.en beam_size=5 n_best=3 +attention=true
    mt-translate checkpoint=... max_output_tokens=100 max_rss_mb=4000

Empty input lines give empty output lines. Inputs longer than `max_src_len` subwords are
cut (a warning says which), and no output is longer than `max_output_tokens` (EOS included).
With n_best > 1 each line holds the n hypotheses, best first, separated by tabs.
`+attention=true` writes the attention matrices as JSON lines next to the output
(OUTPUT.attention.jsonl, or translate.attention.jsonl for standard output).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

from mt.cli.common import CONFIG_DIR, friendly_errors, preflight, register_resolvers, typed_config
from mt.command_config import TranslateConfig, validate_search

register_resolvers()
log = logging.getLogger("mt.translate")


def read_input(path: str | None) -> list[str]:
    """Lines of `path` (plain or .gz) or of standard input; invalid UTF-8 is a DataError with the line."""
    from mt.data.readers import clean_text, decode_utf8, read_lines

    if path is not None:
        return read_lines(path)
    text = decode_utf8(sys.stdin.buffer.read(), Path("<stdin>"))
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [clean_text(line.rstrip("\r")) for line in lines]


def translate(cfg: TranslateConfig) -> int:
    """Library entry: translate cfg.input to cfg.output; returns the number of lines."""
    from mt.data.tokenizer import EOS_ID
    from mt.io import atomic_write_bytes
    from mt.runtime import resolve_device, tune_allocator
    from mt.search.base import SearchConfig
    from mt.search.translate import translate_ids
    from mt.training.checkpoint import load_model

    validate_search(cfg)
    tune_allocator(cfg.max_rss_mb)
    device = resolve_device(cfg.device)
    loaded = load_model(cfg.checkpoint, device)
    tok = loaded.tokenizer
    lines = read_input(cfg.input)
    todo = [i for i, line in enumerate(lines) if line.strip()]
    ids = tok.encode_src([lines[i] for i in todo])  # once; each ends with EOS
    for k, (i, src) in enumerate(zip(todo, ids, strict=True)):
        if len(src) > cfg.max_src_len:
            log.warning(
                "input line %d has %d subwords; cut to max_src_len=%d", i + 1, len(src), cfg.max_src_len
            )
            ids[k] = src[: cfg.max_src_len - 1] + [EOS_ID]
    search = SearchConfig(beam_size=cfg.beam_size, n_best=cfg.n_best, length_penalty=cfg.length_penalty,
                          max_len_a=cfg.max_len_a, max_len_b=cfg.max_len_b, precision=cfg.precision,
                          max_output_tokens=cfg.max_output_tokens)  # fmt: skip
    t0 = time.perf_counter()
    hyps = translate_ids(loaded.model, ids, search, device, batch_sentences=cfg.batch_sentences)
    seconds = time.perf_counter() - t0
    out_lines = [""] * len(lines)
    by_line = dict(zip(todo, hyps, strict=True))
    src_by_line = dict(zip(todo, ids, strict=True))
    for i, nbest in by_line.items():
        out_lines[i] = "\t".join(tok.decode_tgt(h.tokens) for h in nbest)
    text = "".join(line + "\n" for line in out_lines)
    if cfg.output:
        atomic_write_bytes(cfg.output, text.encode())
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    if cfg.attention:
        att_path = Path(f"{cfg.output}.attention.jsonl" if cfg.output else "translate.attention.jsonl")
        records = []
        for i in range(len(lines)):
            nbest = by_line.get(i, [])
            src = tok.src_pieces(src_by_line[i]) if nbest else []
            records.append(json.dumps({
                "line": i + 1,
                "source": src,
                "hypotheses": [{"output": tok.tgt_pieces(h.tokens) + (["</s>"] if h.finished else []),
                                "score": round(h.score, 4),
                                "weights": [[round(w, 4) for w in row] for row in h.attention.tolist()]}
                               for h in nbest],
            }, ensure_ascii=False))  # fmt: skip
        atomic_write_bytes(att_path, ("\n".join(records) + "\n").encode())
        log.info("attention matrices written to %s", att_path)
    rate = len(todo) / seconds if seconds > 0 else 0.0
    log.info("translated %d lines (%d empty) in %.1fs, %.0f sentences/s, beam %d",
             len(lines), len(lines) - len(todo), seconds, rate, cfg.beam_size)  # fmt: skip
    return len(lines)


def to_config(cfg: DictConfig) -> TranslateConfig:
    """Merge onto the schema: unknown keys (typos) and wrong types are ConfigErrors."""
    return typed_config(cfg, TranslateConfig, "translate")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="translate")
@friendly_errors
def hydra_main(cfg: DictConfig) -> None:
    translate(to_config(cfg))


def main() -> None:
    """The `mt-translate` command: bad overrides are reported before Hydra starts."""
    preflight("translate", sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    main()
