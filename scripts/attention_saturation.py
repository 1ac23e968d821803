#!/usr/bin/env python
"""How saturated is each model's attention softmax? The energies' scale and what it does to the
weights and to the gradient that flows back through the softmax, at initialisation and after
training, measured with teacher forcing on validation pairs.

    python scripts/attention_saturation.py multirun/align_table_en-cs/*/checkpoints/best.pt --init

For each checkpoint (and with --init, a fresh model of the same config, seeded like the run),
over the first N validation pairs of its language pair (Multi30k from $MT_DATA_DIR), every
decoder step's energies e (over the real source positions) and weights a = softmax(e):

    energy_std      mean over steps of the standard deviation of e over source positions
    energy_range    mean of max(e) - min(e)
    attention_max   mean of max_s a_s (1 = one-hot)
    entropy         mean of -sum_s a_s ln a_s, in nats
    one_hot_share   share of steps with max_s a_s > 0.99
    softmax_jacobian mean Frobenius norm of d a / d e = diag(a) - a a^T: the gradient the softmax
                    lets through to the energies (0 when one-hot; about 1/sqrt(S) when uniform)
    query_norm, key_norm  mean L2 norm of the decoder query and of the keys the energies use

Prints one JSON line per model and a markdown table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
from pathlib import Path

import torch

from mt.data.collate import collate
from mt.data.tokenizer import EOS_ID
from mt.models.seq2seq import build_model
from mt.training.checkpoint import load_model

KEYS = ("energy_std", "energy_range", "attention_max", "entropy", "one_hot_share", "softmax_jacobian",
        "query_norm", "key_norm")  # fmt: skip


def validation_pairs(src_lang: str, tgt_lang: str, n: int) -> tuple[list[str], list[str]]:
    root = Path(os.environ.get("MT_DATA_DIR", "../shared/data")) / "multi30k"
    read = lambda lang: gzip.open(root / f"val.{lang}.gz", "rt", encoding="utf-8").read().splitlines()[:n]  # noqa: E731
    return read(src_lang), read(tgt_lang)


class Recorder:
    """Wraps a mechanism's `score`: sums the statistics of every call's energies."""

    def __init__(self, attention: torch.nn.Module) -> None:
        self.sums = dict.fromkeys(KEYS, 0.0)
        self.steps = 0
        self.mask: torch.Tensor | None = None  # (B, S) of the batch being decoded
        score = attention.score

        def recorded(query: torch.Tensor, keys: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
            energies = score(query, keys, *rest)  # (B, S)
            self.add(energies.float(), query.float(), keys.float())
            return energies

        attention.score = recorded

    def add(self, e: torch.Tensor, query: torch.Tensor, keys: torch.Tensor) -> None:
        mask = self.mask  # (B, S)
        n = mask.sum(-1).clamp(min=1)  # (B,)
        mean = (e * mask).sum(-1) / n
        std = (((e - mean[:, None]) ** 2 * mask).sum(-1) / n).sqrt()
        big, small = e.masked_fill(~mask, -torch.inf).amax(-1), e.masked_fill(~mask, torch.inf).amin(-1)
        a = e.masked_fill(~mask, -torch.inf).softmax(-1)  # (B, S)
        amax = a.amax(-1)
        entropy = -(a * a.clamp(min=1e-30).log()).sum(-1)
        p2, p3 = (a**2).sum(-1), (a**3).sum(-1)
        jac = (p2 - 2 * p3 + p2**2).clamp(min=0).sqrt()  # ||diag(a) - a a^T||_F
        key_norm = (
            (keys.flatten(2).norm(dim=-1) * mask).sum(-1) / n if keys.dim() == 3 else torch.zeros_like(n)
        )
        for k, v in (("energy_std", std), ("energy_range", big - small), ("attention_max", amax),
                     ("entropy", entropy), ("one_hot_share", (amax > 0.99).float()), ("softmax_jacobian", jac),
                     ("query_norm", query.norm(dim=-1)), ("key_norm", key_norm)):  # fmt: skip
            self.sums[k] += float(v.sum())
        self.steps += e.shape[0]

    def result(self) -> dict[str, float]:
        return {k: round(v / max(self.steps, 1), 4) for k, v in self.sums.items()}


@torch.no_grad()
def measure(
    model: torch.nn.Module, tokenizer, src: list[str], tgt: list[str], batch: int = 64
) -> dict[str, float]:
    """Teacher-forced pass over the pairs, step by step through the decoder's attention."""
    model.eval()
    rec = Recorder(model.decoder.attention)
    src_ids = [ids[:100] + [EOS_ID] for ids in tokenizer.encode_src(src, add_eos=False)]
    tgt_ids = tokenizer.encode_tgt(tgt)
    for i in range(0, len(src_ids), batch):
        b = collate(
            src_ids[i : i + batch], tgt_ids[i : i + batch], list(range(i, min(i + batch, len(src_ids))))
        )
        rec.mask = b.src_mask
        model(b)
    return rec.result()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument(
        "--init", action="store_true", help="also a fresh model of each config (seeded as the run)"
    )
    ap.add_argument("--pairs", type=int, default=500)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    rows = []
    for path in args.checkpoints:
        loaded = load_model(path, torch.device("cpu"))
        cfg = loaded.config
        src, tgt = validation_pairs(cfg.data.src_lang, cfg.data.tgt_lang, args.pairs)
        models = [(f"step {loaded.step}", loaded.model)]
        if args.init:
            torch.manual_seed(cfg.seed)
            models.insert(0, ("init", build_model(cfg.model, loaded.tokenizer.src_vocab_size,
                                                  loaded.tokenizer.tgt_vocab_size)))  # fmt: skip
        a = cfg.model.attention
        name = a.name + ("+coverage" if a.coverage else "") + (" scaled" if a.scaled else "")
        for when, model in models:
            row = {
                "mechanism": name,
                "when": when,
                "lr": cfg.optim.lr,
                **measure(model, loaded.tokenizer, src, tgt),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    print("\n| mechanism | when | " + " | ".join(KEYS) + " |")
    print("|---|---|" + "---|" * len(KEYS))
    for r in rows:
        print(f"| {r['mechanism']} | {r['when']} | " + " | ".join(f"{r[k]:.3g}" for k in KEYS) + " |")


if __name__ == "__main__":
    main()
