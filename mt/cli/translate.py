"""`mt-translate checkpoint=PATH`: translate sentences, one per line, in order.

    echo "Ein Hund rennt." | mt-translate checkpoint=RUN/checkpoints/best.pt
    mt-translate checkpoint=... input=in.de output=out.en beam_size=5 n_best=3 +attention=true
    mt-translate checkpoint=... max_output_tokens=100 max_rss_mb=4000
    mt-translate checkpoint=... shortlist=RUN/shortlist.pt    # a vocabulary shortlist (mt-shortlist)

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
`output=FILE` they go to FILE.align, line k for input line k; on standard
output each line becomes `hypothesis<TAB>links`. An empty input line gives an empty hypothesis
and no links; with n_best > 1 every hypothesis is aligned: FILE.align holds their links
tab-separated in the same order, standard output `hyp1<TAB>links1<TAB>hyp2<TAB>links2...`.
A key of the schema may be given with or without a leading `+`; an unknown key is an error.

Streaming (`mt.search.stream`): the input is read `chunk_lines` lines at a time (default 5000);
a chunk is translated (batched longest first within the chunk), its lines are written in
input order and flushed, then the next chunk is read, so memory does not grow with the input
and output appears as it is made. OUTPUT (and OUTPUT.align, OUTPUT.attention.jsonl) is written
as OUTPUT.partial and renamed to OUTPUT at the end: a run that fails or is killed leaves an
earlier OUTPUT intact, and OUTPUT.partial holds the lines done so far (a warning says so).
Standard output gets each chunk's lines as soon as they are made. Every input line (split at
\n only: U+2028, \x0c, \r ... stay inside their line) gives exactly one output line;
tabs and line-ending characters in a hypothesis are written as spaces.
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
    from collections.abc import Iterator

    import torch

    from mt.data.tokenizer import Tokenizer
    from mt.models.seq2seq import Seq2Seq
    from mt.search.base import Hypothesis
    from mt.search.shortlist import Shortlist

register_resolvers()
log = logging.getLogger("mt.translate")


def input_lines(path: str | None) -> Iterator[str]:
    """Lines of `path` (plain or .gz) or of standard input, read as they are needed; invalid
    UTF-8 is a DataError naming the file (or <stdin>) and the line, when that line is reached."""
    from mt.data.readers import iter_lines

    return iter_lines(path) if path is not None else iter_lines(sys.stdin.buffer, "<stdin>")


def translate(cfg: TranslateConfig) -> int:
    """Library entry: translate cfg.input to cfg.output, chunk by chunk; returns the number of lines."""
    from tqdm import tqdm

    from mt.runtime import resolve_device, tune_allocator
    from mt.search.shortlist import from_settings as load_shortlist
    from mt.search.stream import LineSink, stream_chunks
    from mt.training.checkpoint import load_ensemble, load_model

    validate_translate(cfg)
    tune_allocator(cfg.max_rss_mb)
    device = resolve_device(cfg.device)
    loaded = load_model(cfg.checkpoint, device)
    model = load_ensemble(loaded, cfg.checkpoint, cfg.ensemble, device)
    shortlist = load_shortlist(cfg, loaded.tokenizer.to_bytes())
    sinks = {"output": LineSink(cfg.output)}
    if cfg.alignment and cfg.output:
        sinks["align"] = LineSink(f"{cfg.output}.align")
    if cfg.attention:
        sinks["attention"] = LineSink(
            f"{cfg.output}.attention.jsonl" if cfg.output else "translate.attention.jsonl"
        )
    chunks = ChunkTranslator(model, loaded.tokenizer, cfg, device, shortlist)
    with tqdm(desc="translate", unit="line", disable=None, leave=False) as bar:
        n_lines = stream_chunks(input_lines(cfg.input), chunks, sinks, cfg.chunk_lines, bar.update)
    if "align" in sinks:
        log.info("word alignments written to %s", sinks["align"].path)
    if "attention" in sinks:
        log.info("attention matrices written to %s", sinks["attention"].path)
    rate = chunks.translated / chunks.seconds if chunks.seconds > 0 else 0.0
    log.info("translated %d lines (%d empty) in %.1fs, %.0f sentences/s, beam %d",
             n_lines, n_lines - chunks.translated, chunks.seconds, rate, cfg.beam_size)  # fmt: skip
    if shortlist is not None:
        log.info("shortlist %s: %.0f candidate target subwords per batch on average",
                 cfg.shortlist, shortlist.describe()["mean_candidates"])  # fmt: skip
    return n_lines


class ChunkTranslator:
    """`(chunk of input lines, number of its first line) -> output lines by sink` for
    `stream_chunks`: "output" (hypotheses, or `hyp<TAB>links` on standard output with
    alignment), "align" (links, with an output file) and "attention" (JSON), one per input
    line. Counts the non-empty lines translated and the seconds spent decoding. With a
    `shortlist`, each batch writes only its candidate target subwords."""

    def __init__(
        self,
        model: Seq2Seq,
        tok: Tokenizer,
        cfg: TranslateConfig,
        device: torch.device,
        shortlist: Shortlist | None = None,
    ) -> None:
        from mt.search.base import SearchConfig

        self.model, self.tok, self.cfg, self.device = model, tok, cfg, device
        self.shortlist = shortlist
        self.search = SearchConfig.from_settings(cfg)
        self.translated = 0
        self.seconds = 0.0

    def __call__(self, lines: list[str], first: int) -> dict[str, list[str]]:
        from mt.data.tokenizer import EOS_ID
        from mt.search.stream import json_line, one_line
        from mt.search.translate import translate_ids

        cfg, tok = self.cfg, self.tok
        todo = [i for i, line in enumerate(lines) if line.strip()]  # chunk positions to translate
        ids = tok.encode_src([lines[i] for i in todo])  # once; each ends with EOS
        for k, (i, src) in enumerate(zip(todo, ids, strict=True)):
            if len(src) > cfg.max_src_len:
                log.warning("input line %d has %d subwords; cut to max_src_len=%d",
                            first + i + 1, len(src), cfg.max_src_len)  # fmt: skip
                ids[k] = src[: cfg.max_src_len - 1] + [EOS_ID]
        t0 = time.perf_counter()
        hyps = translate_ids(self.model, ids, self.search, self.device, batch_sentences=cfg.batch_sentences,
                             shortlist=self.shortlist)  # fmt: skip
        self.seconds += time.perf_counter() - t0
        self.translated += len(todo)
        by_line = dict(zip(todo, hyps, strict=True))
        src_by_line = dict(zip(todo, ids, strict=True))
        texts = {i: [one_line(tok.decode_tgt(h.tokens)) for h in nbest] for i, nbest in by_line.items()}
        out = {"output": ["\t".join(texts.get(i, [])) for i in range(len(lines))]}
        if cfg.alignment:
            links = alignment_links(tok, lines, by_line, texts, src_by_line, cfg)
            if cfg.output:
                out["align"] = ["\t".join(k) for k in links]
            else:  # standard output: hypothesis<TAB>links for each hypothesis of the line
                pairs = [zip(texts.get(i, [""]), links[i], strict=True) for i in range(len(lines))]
                out["output"] = ["\t".join(f"{hyp}\t{align}" for hyp, align in line) for line in pairs]
        if cfg.attention:
            out["attention"] = [json_line(json.dumps({
                "line": first + i + 1,
                "source": tok.src_pieces(src_by_line[i]) if i in by_line else [],
                "hypotheses": [{"output": tok.tgt_pieces(h.tokens) + (["</s>"] if h.finished else []),
                                "score": round(h.score, 4),
                                "weights": [[round(w, 4) for w in row] for row in h.attention.tolist()]}
                               for h in by_line.get(i, [])],
            }, ensure_ascii=False)) for i in range(len(lines))]  # fmt: skip
        return out


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
