"""`mt-translate checkpoint=PATH`: translate sentences, one per line, in order.

    echo "Ein Hund rennt." | mt-translate checkpoint=RUN/checkpoints/best.pt
    mt-translate checkpoint=... input=in.de output=out.en beam_size=5 n_best=3 +attention=true
    mt-translate checkpoint=... max_output_tokens=100 max_rss_mb=4000

Empty input lines give empty output lines. Inputs longer than `max_src_len` subwords are
cut (a warning says which), and no output is longer than `max_output_tokens` (EOS included).
With n_best > 1 each line holds the n hypotheses, best first, separated by tabs.
`+attention=true` writes the attention matrices as JSON lines next to the output
(OUTPUT.attention.jsonl, or translate.attention.jsonl for standard output).

`+alignment=true` (or `alignment=true`) writes the word alignment of each hypothesis, as
`fairseq-generate --print-alignment` does: Pharaoh links `i-j`, source word i (0-based, of the
input line's whitespace-separated words) and output word j (of the hypothesis's), from the
attention the search used, pooled to words and extracted like `mt-align` does it
(by default every pair whose word-level weight reaches `align_threshold`, 0.1;
`align_method=argmax`: each output word to its most attended source word). With
`output=FILE` they go to FILE.align, line k for input line k (written atomically); on standard
output each line becomes `hypothesis<TAB>links`. An empty input line gives an empty hypothesis
and no links; with n_best > 1 every hypothesis is aligned: FILE.align holds their links
tab-separated in the same order, standard output `hyp1<TAB>links1<TAB>hyp2<TAB>links2...`.
A key of the schema may be given with or without a leading `+`; an unknown key is an error.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

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
from mt.command_config import TranslateConfig, validate_translate

if TYPE_CHECKING:
    from mt.data.tokenizer import Tokenizer
    from mt.search.base import Hypothesis

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

    validate_translate(cfg)
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
    by_line = dict(zip(todo, hyps, strict=True))
    src_by_line = dict(zip(todo, ids, strict=True))
    texts = {i: [tok.decode_tgt(h.tokens) for h in nbest] for i, nbest in by_line.items()}
    out_lines = ["\t".join(texts.get(i, [])) for i in range(len(lines))]
    if cfg.alignment:
        links = alignment_links(tok, lines, by_line, texts, src_by_line, cfg)
        if not cfg.output:  # standard output: hypothesis<TAB>links for each hypothesis of the line
            pairs = [zip(texts.get(i, [""]), links[i], strict=True) for i in range(len(lines))]
            out_lines = ["\t".join(f"{hyp}\t{align}" for hyp, align in line) for line in pairs]
    text = "".join(line + "\n" for line in out_lines)
    if cfg.output:
        atomic_write_bytes(cfg.output, text.encode())
        if cfg.alignment:
            align_path = f"{cfg.output}.align"
            atomic_write_bytes(align_path, "".join("\t".join(k) + "\n" for k in links).encode())
            log.info("word alignments written to %s", align_path)
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


def alignment_links(
    tok: Tokenizer,
    lines: list[str],
    by_line: dict[int, list[Hypothesis]],
    texts: dict[int, list[str]],
    src_by_line: dict[int, list[int]],
    cfg: TranslateConfig,
) -> list[list[str]]:
    """Per input line, the Pharaoh links of each of its hypotheses (one empty string for an
    empty line): a hypothesis's attention without the EOS row and column, pooled to the words
    of the source line and of its text (`mt.evaluation.alignment`, as `mt-align` does), then
    extracted with `cfg.align_method`. `src_by_line` holds the ids the model read (maybe cut)."""
    import numpy as np

    from mt.data.tokenizer import UNK_ID
    from mt.evaluation.alignment import (
        extract_links,
        format_pharaoh,
        word_attention,
        words_of_output,
        words_of_pieces,
    )

    todo = sorted(by_line)
    spans = tok.encode_spans([lines[i] for i in todo], "src")
    out: list[list[str]] = [[] if i in by_line else [""] for i in range(len(lines))]
    for i, (_, src_spans) in zip(todo, spans, strict=True):
        s_real = len(src_by_line[i]) - 1  # source pieces the model read, without EOS (cut ones dropped)
        src_words = np.asarray(words_of_pieces(lines[i], src_spans)[:s_real], dtype=np.int64)
        n_src = len(lines[i].split())
        for h, text in zip(by_line[i], texts[i], strict=True):
            pieces = [
                "▁⁇▁" if t == UNK_ID else p for t, p in zip(h.tokens, tok.tgt_pieces(h.tokens), strict=True)
            ]
            tgt_words = words_of_output(pieces, text)  # <unk> decodes as " ⁇ "
            if not tgt_words:  # no output words: nothing to link
                out[i].append("")
                continue
            att = h.attention[: len(h.tokens), :s_real].float().numpy()  # (T, S) without EOS
            pooled = word_attention(att, src_words, np.asarray(tgt_words), n_src, len(text.split()))
            out[i].append(format_pharaoh(extract_links(pooled, cfg.align_method, cfg.align_threshold)))
    return out


def schema_overrides(argv: list[str]) -> list[str]:
    """Overrides of the schema's keys in the form Hydra accepts, with or without `+`: `+key=v`
    for a key translate.yaml leaves out (`alignment`, `attention`, ...), `key=v` for one it
    sets. An unknown key, `+`-prefixed or not, exits with status 2 naming it and the closest key."""
    from omegaconf import OmegaConf

    fields = [f.name for f in dataclasses.fields(TranslateConfig)]
    in_yaml = set(OmegaConf.load(Path(CONFIG_DIR) / "translate.yaml").keys())
    out = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        bare = key.lstrip("+")
        if not eq or arg.startswith(("-", "~")) or bare.startswith("hydra"):
            out.append(arg)  # Hydra's flags, deletions and settings: Hydra checks them
        elif bare in fields:
            out.append(f"{'' if bare in in_yaml else '+'}{bare}={value}")
        else:
            close = difflib.get_close_matches(bare, fields, n=1, cutoff=0.6)
            hint = f"Did you mean {close[0]}?" if close else "See TranslateConfig in mt/command_config.py."
            print(f"error: bad override `{arg}`: mt-translate has no key '{bare}'. {hint}", file=sys.stderr)
            sys.exit(2)
    return out


def to_config(cfg: DictConfig) -> TranslateConfig:
    """Merge onto the schema: unknown keys (typos) and wrong types are ConfigErrors."""
    return typed_config(cfg, TranslateConfig, "translate")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="translate")
@friendly_errors
def hydra_main(cfg: DictConfig) -> None:
    translate(to_config(cfg))


def main() -> None:
    """The `mt-translate` command: bad overrides are reported before Hydra starts."""
    sys.argv[1:] = schema_overrides(sys.argv[1:])
    sys.argv[1:] = quote_paths(sys.argv[1:])  # a job directory's name holds = and ,
    preflight("translate", sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    main()
