"""Decode evaluation splits, score them, and write hypotheses, plots and results.json."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from mt.data.pipeline import PreparedData
from mt.evaluation.eval_data import EvalData
from mt.evaluation.metrics import score_corpus, summary_line
from mt.evaluation.plots import alignment_figure, save_figure
from mt.evaluation.tensorboard import TensorBoard
from mt.io import write_lines
from mt.models.ensemble import Ensemble
from mt.models.seq2seq import Seq2Seq
from mt.search.base import SearchConfig
from mt.search.shortlist import Shortlist
from mt.search.translate import translate_split

log = logging.getLogger("mt.eval")


def evaluate_splits(
    model: Seq2Seq | Ensemble,
    data: PreparedData | EvalData,
    data_cfg: Any,
    splits: list[str],
    search: SearchConfig,
    device: torch.device,
    out_dir: Path,
    tgt_lang: str,
    plot_sentences: list[int] | None = None,
    tb: TensorBoard | None = None,
    step: int = 0,
    shortlist: Shortlist | None = None,
) -> dict[str, Any]:
    """For each split: decode, score against the raw references, write `outputs/<split>.hyp`
    (one detokenized line per source line), `outputs/<split>.ref` (the references as read, for
    paired significance tests across runs) and alignment plots -> {split: scores}. Scores are
    computed on Unicode NFC text (`score_corpus`), whatever form the reference file is in, and
    ignore case when the tokenizer lowercases. With a `shortlist`, each batch is decoded over
    its candidate target ids only."""
    results: dict[str, Any] = {}
    tok = data.tokenizer
    for split in splits:
        ds = data.encoded[split]
        t0 = time.perf_counter()
        batches_before = len(shortlist.sizes) if shortlist is not None else 0
        hyps = translate_split(model, ds, data_cfg, search, device, shortlist)
        seconds = time.perf_counter() - t0
        outputs = [tok.decode_tgt(h[0].tokens) for h in hyps]
        refs = list(data.text[split]["tgt"])
        scores = score_corpus(outputs, refs, tgt_lang, lowercase=tok.lowercase)
        scores["search"] = {"beam_size": search.beam_size, "length_penalty": search.length_penalty,
                            "max_len_a": search.max_len_a, "max_len_b": search.max_len_b,
                            "max_output_tokens": search.max_output_tokens, "min_length": search.min_length,
                            "no_repeat_ngram_size": search.no_repeat_ngram_size,
                            "repetition_penalty": search.repetition_penalty,
                            "shortlist": None if shortlist is None else shortlist.describe(batches_before)}  # fmt: skip
        scores["sentences"] = len(outputs)
        scores["decode_seconds"] = round(seconds, 2)
        results[split] = scores
        write_lines(out_dir / "outputs" / f"{split}.hyp", outputs)
        write_lines(out_dir / "outputs" / f"{split}.ref", refs)
        log.info(
            "%s  (%d sentences, beam %d, %.1fs)",
            summary_line(split, scores),
            len(outputs),
            search.beam_size,
            seconds,
        )
        plot_hypotheses(tok, ds, hyps, plot_sentences or [], f"{split} sentence {{i}}", out_dir / "plots" / split,
                        tb, f"attention_{split}", step)  # fmt: skip
    return results


def plot_hypotheses(
    tok,
    ds,
    hyps,
    indices: list[int],
    title: str,
    path_prefix: Path,
    tb: TensorBoard | None,
    tag: str,
    step: int,
) -> None:
    """Alignment heatmaps of the best hypothesis of rows `indices` of an encoded split: saved as
    `<path_prefix>_sent<i>.png` and logged as `<tag>/<i>` (`title` may use {i})."""
    for i in indices:
        if i >= len(ds):
            continue
        h = hyps[i][0]
        out = tok.tgt_pieces(h.tokens) + (["</s>"] if h.finished else [])
        fig = alignment_figure(tok.src_pieces(ds[i]["src_ids"]), out, h.attention, title=title.format(i=i))
        if tb:
            tb.figure(f"{tag}/{i}", fig, step)
        save_figure(fig, f"{path_prefix}_sent{i}.png")
