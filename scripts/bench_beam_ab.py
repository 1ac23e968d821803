#!/usr/bin/env python
"""Beam search of this tree against the beam search of another commit, in one process.

    python scripts/bench_beam_ab.py --checkpoint RUN/checkpoints/best.pt --baseline fccb80d
    python scripts/bench_beam_ab.py --checkpoint ... --baseline HEAD~1 --rounds 5 --beam 5

The two versions of ``mt/search/beam.py`` (this tree's and ``git show BASELINE:mt/search/beam.py``)
decode the same batches of the split (as `mt-evaluate` batches them) in turn, batch by batch,
alternating which goes first; the model, encoder and decoder are this tree's for both. Taking
turns per batch cancels the drift in machine speed that separate runs suffer (on these machines
the same command varies by 15% within minutes), so the ratio is the change's. It also reports
how many sentences get the same tokens, score and attention from both (bitwise), and exits
with status 1 when any differs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import torch

import mt.search.beam as current
from mt.data.loaders import eval_batch_size, make_eval_loader
from mt.data.pipeline import prepare_data
from mt.runtime import autocast, tune_allocator
from mt.search.base import SearchConfig
from mt.training.checkpoint import load_model

ROOT = Path(__file__).resolve().parents[1]


def baseline_module(rev: str) -> ModuleType:
    """``mt/search/beam.py`` as it was at commit `rev`, run as a module of another name."""
    proc = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:mt/search/beam.py"], capture_output=True, text=True
    )
    if proc.returncode != 0:
        print(f"error: --baseline {rev}: git has no mt/search/beam.py there ({proc.stderr.strip()}); "
              "give a commit of this repository", file=sys.stderr)  # fmt: skip
        sys.exit(2)
    module = ModuleType("baseline_beam")
    module.__file__ = f"{rev}:mt/search/beam.py"
    exec(compile(proc.stdout, module.__file__, "exec"), module.__dict__)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--baseline", required=True, help="the commit whose beam search is the baseline")
    ap.add_argument("--split", default="test_2016_flickr")
    ap.add_argument("--beam", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3, help="passes over the split per version")
    args = ap.parse_args()
    versions = {"baseline": baseline_module(args.baseline), "this tree": current}  # a bad commit fails first

    loaded = load_model(args.checkpoint, torch.device("cpu"))
    cfg = loaded.config
    tune_allocator(cfg.trainer.max_rss_mb)  # as mt-evaluate does
    model = loaded.model.eval()
    data = prepare_data(cfg.data, cfg.tokenizer, tokenizer=loaded.tokenizer)
    if args.split not in data.encoded:
        print(
            f"error: --split {args.split}: the checkpoint's data has {sorted(data.encoded)}", file=sys.stderr
        )
        sys.exit(2)
    ds = data.encoded[args.split].select_columns(["src_ids", "src_len"])
    search = SearchConfig.from_trainer(cfg.trainer, beam_size=args.beam)
    batches = list(make_eval_loader(ds, cfg.data, batch_sentences=eval_batch_size(cfg.data, args.beam)))
    seconds = dict.fromkeys(versions, 0.0)
    same = 0
    with autocast(torch.device("cpu"), search.precision):
        for module in versions.values():  # warm-up: one batch each, untimed
            module.beam_search(model, batches[0], search)
        for r in range(args.rounds):
            for i, batch in enumerate(batches):
                order = list(versions) if (i + r) % 2 == 0 else list(reversed(versions))
                outputs = {}
                for name in order:
                    t0 = time.perf_counter()
                    outputs[name] = versions[name].beam_search(model, batch, search)
                    seconds[name] += time.perf_counter() - t0
                if r == 0:
                    for a, b in zip(outputs["baseline"], outputs["this tree"], strict=True):
                        x, y = a[0], b[0]
                        same += (
                            x.tokens == y.tokens
                            and x.score == y.score
                            and torch.equal(x.attention, y.attention)
                        )
    sentences = args.rounds * len(ds)
    rates = {name: sentences / s for name, s in seconds.items()}
    print(f"beam {args.beam}, {len(ds)} sentences of {args.split}, {args.rounds} rounds, "
          f"{torch.get_num_threads()} threads: baseline {args.baseline} {rates['baseline']:.1f} sentences/s, "
          f"this tree {rates['this tree']:.1f} ({rates['this tree'] / rates['baseline']:.3f}x); "
          f"identical tokens, score and attention: {same} of {len(ds)}")  # fmt: skip
    sys.exit(0 if same == len(ds) else 1)


if __name__ == "__main__":
    main()
