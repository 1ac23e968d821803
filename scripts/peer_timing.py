#!/usr/bin/env python
"""Run one toolkit's own command line (mt-train, or `joeynmt train|test`) with the same
timers patched into both, so that scripts/peer_joeynmt.py compares like with like.

    python scripts/peer_timing.py --toolkit mt --record mt.json -- trainer.max_steps=60 ...
    peer-venv/bin/python scripts/peer_timing.py --toolkit joeynmt --record jn.json \
        --deadline-minutes 15 -- train config.yaml

Imports neither toolkit at module level, so it runs in either virtual environment.

Recorded (one JSON file, written at exit, also when the command exits with an error):
- `updates`: for each optimizer update, the perf_counter at its start and its target tokens
  (non-padding, end-of-sentence included). mt: `Trainer._update` (a list of batches);
  JoeyNMT: `TrainManager._train_step` (one batch; batch_multiplier stays 1). The interval
  between two starts holds everything one update costs: data loading, collation, forward,
  backward, clipping, the optimizer step, logging; validation is timed separately and
  subtracted by the caller.
- `validations`: the start and end of each validation.
- `searches`: seconds, sentences and beam size of each call of the search that decodes an
  evaluation split (mt: `mt.evaluation.evaluate.translate_split`, per split, as in its final
  evaluation; JoeyNMT: `joeynmt.prediction.search`, per batch, greedy in validations and the
  test beam in its final test; both include running the encoder).

`--deadline-minutes M` (JoeyNMT only; mt has trainer.max_minutes): training ends at the first
update that starts M minutes after the first update started, validation included, as mt's
max_minutes counts. The updates since the last validation are then validated, as mt does at the
end of its budget, and JoeyNMT tests its best checkpoint as it does after any training.

JoeyNMT 2.3 does not run unmodified with today's packages. Three fixes: peer_joeynmt.py installs
importlib-metadata, which joeynmt.helpers imports without declaring it; `joeynmt_compat` patches
the other two at run time (no file of the installed package is edited): torch's
ReduceLROnPlateau no longer takes `verbose`, and sentencepiece 0.2 has no SetVocabulary.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import json
import sys
import time
from pathlib import Path

RECORD: dict[str, list] = {"updates": [], "validations": [], "searches": []}


def timed(record: list, describe=None):
    """Wrap a function: append {start, seconds, **describe(args)} to `record` at each call."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            entry = {"start": start, "seconds": time.perf_counter() - start}
            if describe is not None:
                entry.update(describe(*args, **kwargs))
            record.append(entry)
            return out

        return inner

    return wrap


def patch_mt() -> None:
    """Timers on mt's update, validation and test-split search."""
    import mt.evaluation.evaluate as evaluate
    from mt.training.trainer import Trainer

    update = Trainer._update

    @functools.wraps(update)
    def _update(self, batches, n_tokens=None):
        tokens = sum(b.n_tgt_tokens for b in batches)
        RECORD["updates"].append({"start": time.perf_counter(), "tokens": int(tokens)})
        return update(self, batches, n_tokens)

    Trainer._update = _update
    Trainer.validate = timed(RECORD["validations"])(Trainer.validate)

    def describe(model, ds, data_cfg, search, *rest, **kwargs):
        return {"sentences": len(ds), "beam_size": search.beam_size}

    evaluate.translate_split = timed(RECORD["searches"], describe)(evaluate.translate_split)


def spm_set_vocabulary(sp, pieces) -> int:
    """JoeyNMT's SentencePieceProcessor.SetVocabulary for sentencepiece 0.2: a vocabulary holding
    every normal piece of the model restricts nothing (returns 0); any other is refused."""
    wanted = set(pieces)
    missing = [
        sp.id_to_piece(i)
        for i in range(sp.get_piece_size())
        if not (sp.is_control(i) or sp.is_unknown(i)) and sp.id_to_piece(i) not in wanted
    ]
    if missing:
        raise ValueError(f"the vocabulary lacks {len(missing)} pieces of the model, e.g. {missing[:3]}")
    return 0


def joeynmt_compat() -> list[str]:
    """The run-time fixes JoeyNMT 2.3 needs with today's torch and sentencepiece; returns what was patched."""
    import inspect

    import torch

    fixed = []
    # 1. ReduceLROnPlateau lost its `verbose` argument (deprecated in torch 2.2, then removed)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau
    if "verbose" not in inspect.signature(plateau.__init__).parameters:

        class Plateau(plateau):
            def __init__(self, *args, verbose=None, **kwargs):
                super().__init__(*args, **kwargs)

        import joeynmt.builders as builders

        builders.ReduceLROnPlateau = Plateau
        fixed.append("ReduceLROnPlateau without `verbose`")
    # 2. sentencepiece 0.2 has no SetVocabulary, which JoeyNMT calls to restrict the model to
    # its vocabulary. Given a vocabulary that holds every piece of the model (as
    # peer_joeynmt.py writes it), restricting changes nothing; any other vocabulary is refused.
    import sentencepiece as spm

    if not hasattr(spm.SentencePieceProcessor, "SetVocabulary"):
        spm.SentencePieceProcessor.SetVocabulary = spm_set_vocabulary
        fixed.append(
            "sentencepiece SetVocabulary (absent in 0.2) as a check that the vocabulary holds every piece"
        )
    return fixed


def patch_joeynmt(deadline_minutes: float) -> None:
    """Timers (and the wall-clock deadline) on JoeyNMT's update, validation and search."""
    import joeynmt.prediction as prediction
    from joeynmt.training import TrainManager

    RECORD["compat"] = joeynmt_compat()
    step = TrainManager._train_step

    @functools.wraps(step)
    def _train_step(self, batch):
        now = time.perf_counter()
        updates = RECORD["updates"]
        if deadline_minutes and updates and now - updates[0]["start"] >= 60 * deadline_minutes:
            self.stats.is_max_update = True  # ends the loop after this update, as max_updates does
            RECORD["deadline_reached"] = True
        updates.append({"start": now, "tokens": int(batch.ntokens)})
        return step(self, batch)

    TrainManager._train_step = _train_step
    TrainManager._validate = timed(RECORD["validations"])(TrainManager._validate)
    train_and_validate = TrainManager.train_and_validate

    @functools.wraps(train_and_validate)
    def _train_and_validate(self, train_data, valid_data):
        train_and_validate(self, train_data, valid_data)
        if RECORD.get("deadline_reached") and self.stats.steps % self.args.validation_freq:
            # mt validates the updates after its last validation when its budget ends; without
            # this a budget shorter than one validation interval left JoeyNMT no best checkpoint
            valid_data.seed = self.seed + self.stats.steps
            self._validate(valid_data)

    TrainManager.train_and_validate = _train_and_validate

    def describe(model, batch, **kwargs):
        return {"sentences": int(batch.nseqs), "beam_size": kwargs["beam_size"]}

    prediction.search = timed(RECORD["searches"], describe)(prediction.search)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--toolkit", choices=["mt", "joeynmt"], required=True)
    ap.add_argument("--record", type=Path, required=True, help="JSON file of the timings")
    ap.add_argument("--deadline-minutes", type=float, default=0.0, help="JoeyNMT: training budget")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="-- then the toolkit's own arguments")
    a = ap.parse_args()
    args = a.args[1:] if a.args[:1] == ["--"] else a.args

    def write() -> None:
        a.record.write_text(json.dumps(RECORD, indent=1))

    atexit.register(write)
    if a.toolkit == "mt":
        patch_mt()
        from mt.cli.train import main as run

        sys.argv = ["mt-train", *args]
    else:
        patch_joeynmt(a.deadline_minutes)
        from joeynmt.__main__ import main as run

        sys.argv = ["joeynmt", *args]
    run()


if __name__ == "__main__":
    main()
