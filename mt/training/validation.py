"""One validation pass of a training run: greedy BLEU and chrF, teacher-forced loss and
perplexity on the (possibly truncated) validation split, attention diagnostics of the greedy
outputs, the attention's AER against a gold alignment set (with `alignment.gold`), and what
TensorBoard shows of it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset

from mt.data.loaders import make_eval_loader
from mt.data.pipeline import PreparedData
from mt.evaluation.diagnostics import attention_diagnostics
from mt.evaluation.evaluate import plot_hypotheses
from mt.evaluation.gold_scores import GoldScorer
from mt.evaluation.metrics import quick_bleu
from mt.evaluation.tensorboard import TensorBoard
from mt.models.seq2seq import Seq2Seq
from mt.runtime import autocast, release_memory
from mt.search.base import Hypothesis, SearchConfig
from mt.search.translate import translate_split
from mt.training.gold_alignment import valid_alignment_scores


@dataclass
class Validation:
    """The scores of one validation and what produced them (for samples and plots)."""

    bleu: float
    chrf: float
    loss: float  # mean per-token NLL, teacher forced
    ds: Dataset  # the validation rows used
    hyps: list[list[Hypothesis]]
    outputs: list[str]  # detokenized best hypotheses
    refs: list[str]
    # attention_entropy, attention_max, monotonicity, dropped_words, repeated_words of the best
    # hypotheses' attention (mt.evaluation.diagnostics); with a gold set also aer, aer_precision,
    # aer_recall, aer_in_vocabulary (mt.training.gold_alignment)
    diagnostics: dict[str, float]

    @property
    def ppl(self) -> float:
        return math.exp(min(self.loss, 50))


def valid_split(data: PreparedData, max_sentences: int) -> Dataset:
    """The encoded validation split, its first `max_sentences` rows when > 0."""
    ds = data.encoded["validation"]
    return ds.select(range(min(max_sentences, len(ds)))) if max_sentences > 0 else ds


@torch.no_grad()
def valid_loss(model: Seq2Seq, ds: Dataset, data_cfg: Any, precision: str, device: torch.device) -> float:
    """Mean per-token NLL of `ds` (teacher forced)."""
    model.eval()
    total, tokens = 0.0, 0
    for batch in make_eval_loader(ds, data_cfg):
        batch = batch.to(device)
        with autocast(device, precision):
            _, nll = model.loss(batch)
        total += float(nll)
        tokens += batch.n_tgt_tokens
        release_memory()
    return total / max(tokens, 1)


def run_validation(
    model: Seq2Seq,
    data: PreparedData,
    data_cfg: Any,
    search: SearchConfig,
    device: torch.device,
    max_sentences: int,
    gold: GoldScorer | None = None,
) -> Validation:
    """Decode the validation split with `search`, score it, compute its loss and the attention
    diagnostics of the best hypotheses; with `gold`, the AER of the model's attention on its
    `alignment.valid_max_pairs` shortest pairs."""
    ds = valid_split(data, max_sentences)
    hyps = translate_split(model, ds, data_cfg, search, device)
    outputs = [data.tokenizer.decode_tgt(h[0].tokens) for h in hyps]
    refs = list(data.text["validation"]["tgt"][: len(ds)])
    bleu, chrf = quick_bleu(outputs, refs, lowercase=data.tokenizer.lowercase)
    nll = valid_loss(model, ds, data_cfg, search.precision, device)
    diagnostics = attention_diagnostics([h[0].attention for h in hyps])
    if gold is not None:
        diagnostics.update(valid_alignment_scores(gold, model, data.tokenizer, device, search.precision,
                                                  gold.cfg.valid_max_pairs))  # fmt: skip
    return Validation(bleu, chrf, nll, ds, hyps, outputs, refs, diagnostics)


def log_validation(
    tb: TensorBoard,
    v: Validation,
    data: PreparedData,
    step: int,
    samples: int,
    plots: list[int],
    run_dir: Path,
) -> None:
    """Scalars, source/reference/hypothesis samples and attention plots of one validation."""
    tb.scalars({"valid/bleu": v.bleu, "valid/chrf": v.chrf, "valid/loss": v.loss, "valid/ppl": v.ppl}, step)
    tb.scalars({f"valid/{k}": x for k, x in v.diagnostics.items()}, step)
    src_text = data.text["validation"]["src"]
    rows = [(src_text[i], v.refs[i], v.outputs[i]) for i in range(min(samples, len(v.ds)))]
    tb.samples("valid/samples", rows, step)
    plot_hypotheses(data.tokenizer, v.ds, v.hyps, plots, f"validation sentence {{i}}, step {step}",
                    run_dir / "plots" / f"valid_step{step:07d}", tb, "attention", step)  # fmt: skip
    tb.flush()
