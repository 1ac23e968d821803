"""Forced alignment: attention over the source while the model reads a given target.

Each target sentence is force-decoded through the model (teacher forcing, batched like
training: one `model.forward(batch, return_attention=True)` per batch, no loop over sentences
inside the model). The subword attention of each pair, (T, S) without the EOS row and column,
becomes word-level attention (`mt.evaluation.alignment.word_attention`: pieces mapped to the
whitespace-separated words they came from) and then links (`extract_links`).

Lines are split on whitespace into words, so tokenized gold sets and raw text work the same;
each side is encoded with the model's own sentencepiece model, with character spans that tell
which word each piece belongs to. A source longer than `max_src_len` subwords (EOS included)
is cut like `mt-translate` cuts it: its last words get no attention and no links; such pairs
are counted in `AlignResult.truncated`. A pair with an empty side is skipped (no links, an
all-zero matrix) and counted in `AlignResult.empty`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from mt.config import DEFAULT_ALIGN_METHOD, DEFAULT_ALIGN_THRESHOLD, DataConfig
from mt.data.collate import collate
from mt.data.loaders import eval_batches
from mt.data.sources import load_parallel
from mt.data.tokenizer import EOS_ID, Tokenizer
from mt.evaluation.alignment import Links, extract_links, word_attention, words_of_pieces
from mt.models.seq2seq import Seq2Seq
from mt.runtime import autocast, release_memory


@dataclass
class AlignResult:
    """Per pair (input order) its word-level attention (n_tgt_words, n_src_words) and links."""

    attention: list[np.ndarray]
    links: list[Links]
    empty: int = 0  # pairs skipped because a side has no words
    truncated: int = 0  # pairs whose source was cut to max_src_len subwords
    seconds: float = 0.0  # encoding, batching and model time (model loading excluded)
    src_words: list[list[str]] = field(default_factory=list)
    tgt_words: list[list[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.links)


@dataclass
class _Side:
    """One side of the pairs to align: words, piece ids and the word of each piece."""

    words: list[list[str]]
    ids: list[list[int]]
    piece_words: list[list[int]]


def _encode(tokenizer: Tokenizer, lines: list[list[str]], side: str) -> _Side:
    texts = [" ".join(words) for words in lines]
    encoded = tokenizer.encode_spans(texts, side)
    piece_words = [words_of_pieces(text, spans) for text, (_, spans) in zip(texts, encoded, strict=True)]
    return _Side(lines, [ids for ids, _ in encoded], piece_words)


@torch.no_grad()
def force_align(
    model: Seq2Seq,
    tokenizer: Tokenizer,
    src_lines: list[str],
    tgt_lines: list[str],
    device: torch.device,
    precision: str = "fp32",
    batch_sentences: int = 0,
    batch_tokens: int = 4000,
    max_src_len: int = 250,
    method: str = DEFAULT_ALIGN_METHOD,
    threshold: float = DEFAULT_ALIGN_THRESHOLD,
    progress: bool = True,
) -> AlignResult:
    """Word alignments of each (source, target) line pair from the model's attention.

    `device` is where `model` lives; `precision` is fp32 or bf16 (autocast). Returns the
    pairs in input order (see the module docstring for long and empty lines).
    """
    if len(src_lines) != len(tgt_lines):
        raise ValueError(f"force_align got {len(src_lines)} source but {len(tgt_lines)} target lines")
    t0 = time.perf_counter()
    src = _encode(tokenizer, [line.split() for line in src_lines], "src")
    tgt = _encode(tokenizer, [line.split() for line in tgt_lines], "tgt")
    n = len(src_lines)
    todo = [i for i in range(n) if src.words[i] and tgt.words[i]]
    # As training sees them: ending with EOS; cut like mt-translate cuts them.
    src_ids = [ids[: max_src_len - 1] + [EOS_ID] for ids in src.ids]
    truncated = sum(len(src.ids[i]) + 1 > max_src_len for i in todo)
    src_lens = [len(ids) for ids in src_ids]
    tgt_lens = [len(ids) for ids in tgt.ids]
    attention = [np.zeros((len(tgt.words[i]), len(src.words[i])), dtype=np.float32) for i in range(n)]
    links: list[Links] = [frozenset() for _ in range(n)]
    was_training = model.training
    model.eval()
    bar = tqdm(total=len(todo), desc="align", unit="pair", disable=not progress, leave=False)
    try:
        # longest first, `batch_sentences` pairs each or (0) under `batch_tokens` padded tokens
        widths = [max(src_lens[i], tgt_lens[i] + 1) for i in todo]  # target: + BOS / EOS
        for part in eval_batches(widths, batch_sentences or max(len(todo), 1), max_tokens=batch_tokens):
            rows = [todo[k] for k in part]
            batch = collate([src_ids[i] for i in rows], [tgt.ids[i] for i in rows], rows).to(device)
            with autocast(device, precision):
                _, att = model(batch, return_attention=True)  # (B, T, S)
            att = att.float().cpu().numpy()
            for b, i in enumerate(rows):
                s_real, t_real = src_lens[i] - 1, tgt_lens[i]  # without the EOS column and row
                words_att = word_attention(
                    att[b, :t_real, :s_real],
                    np.asarray(src.piece_words[i][:s_real]),
                    np.asarray(tgt.piece_words[i]),
                    len(src.words[i]),
                    len(tgt.words[i]),
                )
                attention[i] = words_att
                links[i] = extract_links(words_att, method=method, threshold=threshold)
            bar.update(len(rows))
            release_memory()
    finally:
        bar.close()
        model.train(was_training)
    seconds = time.perf_counter() - t0
    return AlignResult(attention, links, n - len(todo), truncated, seconds, src.words, tgt.words)


def training_vocabulary(data_cfg: DataConfig) -> tuple[set[str], set[str]]:
    """The lowercased words of a model's training text, (source, target), tokenized like gold
    sets are (Moses, `sacremoses`, escape=False): the base of "in-vocabulary" scores."""
    from sacremoses import MosesTokenizer  # deferred: only the in-vocabulary scores need it

    train = load_parallel(data_cfg)["train"]
    vocab = []
    for column, lang in (("src", data_cfg.src_lang), ("tgt", data_cfg.tgt_lang)):
        moses = MosesTokenizer(lang=lang)
        vocab.append({w.lower() for line in train[column] for w in moses.tokenize(line, escape=False)})
    return vocab[0], vocab[1]


def in_vocabulary(src_vocab: set[str], tgt_vocab: set[str]):
    """`keep(pair, i, j)` for `alignment_scores`: both words of link (i, j) occur (lowercased) in training."""

    def keep(pair, i: int, j: int) -> bool:
        return (i < len(pair.src_words) and j < len(pair.tgt_words)
                and pair.src_words[i].lower() in src_vocab and pair.tgt_words[j].lower() in tgt_vocab)  # fmt: skip

    return keep
