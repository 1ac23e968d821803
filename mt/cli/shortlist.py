"""`mt-shortlist`: the lexical table of a vocabulary shortlist for a trained model.

    mt-shortlist runs/de-en/default/DATE/checkpoints/best.pt       # -> runs/de-en/default/DATE/shortlist.pt
    mt-shortlist CHECKPOINT --output lex.pt --keep 100 --iterations 5
    mt-evaluate checkpoint=CHECKPOINT shortlist=runs/.../shortlist.pt shortlist_frequent=100 shortlist_per_source=20   # the defaults
    mt-translate checkpoint=CHECKPOINT shortlist=runs/.../shortlist.pt < in.de

Reads the model's training corpus through its data config (the data cache, `MT_DATA_DIR`, or
`--data-dir`), encodes it with the model's own tokenizer, estimates IBM Model 1 by EM and
keeps each source subword's `--keep` most probable target subwords and the target subwords
by frequency (`mt.search.shortlist`). The output is written atomically and never replaces an
existing file (exit code 2 names it).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path

from mt.config import DEFAULT_SHORTLIST_KEEP
from mt.errors import CheckpointError

SHORTLIST_NAME = "shortlist.pt"
log = logging.getLogger("mt.shortlist")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mt-shortlist", description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("checkpoint", type=Path, help="a checkpoint of the model (its tokenizer and data config)")
    p.add_argument("--output", type=Path, help=f"where to write (default: RUN/{SHORTLIST_NAME})")
    p.add_argument("--keep", type=int, default=DEFAULT_SHORTLIST_KEEP, metavar="K",
                   help=f"translations kept per source subword (default {DEFAULT_SHORTLIST_KEEP}); "
                   "decoding uses up to K of them")  # fmt: skip
    p.add_argument("--iterations", type=int, default=5, help="EM iterations of IBM Model 1 (default 5)")
    p.add_argument("--max-sentences", type=int, default=0, metavar="N",
                   help="estimate on the first N training pairs (0 = all)")  # fmt: skip
    p.add_argument("--data-dir", help="where the corpus is now, if not where training found it")
    return p.parse_args(argv)


def default_output(checkpoint: Path) -> Path:
    """RUN/shortlist.pt for RUN/checkpoints/X.pt, else shortlist.pt beside the checkpoint."""
    folder = checkpoint.parent
    return (folder.parent if folder.name == "checkpoints" else folder) / SHORTLIST_NAME


def build(args: argparse.Namespace) -> tuple[Path, dict]:
    """Build and write the table; returns where, and a few facts for the summary line."""
    import torch

    from mt.data.pipeline import prepare_data
    from mt.search.shortlist import build_table, save_table, tokenizer_sha256
    from mt.training.checkpoint import load_model

    for name, value, low in (("--keep", args.keep, 1), ("--iterations", args.iterations, 1),
                             ("--max-sentences", args.max_sentences, 0)):  # fmt: skip
        if value < low:
            raise CheckpointError(f"{name} must be at least {low}, got {value}")
    output = args.output or default_output(args.checkpoint)
    if output.exists():
        raise CheckpointError(f"{output} exists and is kept: remove it or give --output NEW_FILE")
    loaded = load_model(args.checkpoint, torch.device("cpu"))
    data_cfg = loaded.config.data
    if args.data_dir:
        data_cfg = dataclasses.replace(data_cfg, data_dir=args.data_dir)
    data = prepare_data(data_cfg, loaded.config.tokenizer, tokenizer=loaded.tokenizer)
    train = data.train
    if args.max_sentences and args.max_sentences < len(train):
        train = train.select(range(args.max_sentences))
    columns = train.select_columns(["src_ids", "tgt_ids"]).to_dict()
    t0 = time.perf_counter()
    tok = loaded.tokenizer
    table = build_table(columns["src_ids"], columns["tgt_ids"], tok.src_vocab_size, tok.tgt_vocab_size,
                        args.keep, args.iterations, tokenizer_sha256=tokenizer_sha256(tok.to_bytes()),
                        src_lang=data_cfg.src_lang, tgt_lang=data_cfg.tgt_lang)  # fmt: skip
    save_table(table, output)
    return output, {"sentences": len(train), "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> None:
    """Build, write atomically, print one line; exit code 2 with one `error:` line otherwise."""
    from mt.cli.common import exit_on_user_error

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    args = parse_args(argv)
    output, facts = exit_on_user_error("mt-shortlist", lambda: build(args))
    print(f"IBM Model 1 on {facts['sentences']} pairs ({args.iterations} iterations, {facts['seconds']:.1f}s): "
          f"{args.keep} translations per source subword written to {output}")  # fmt: skip


if __name__ == "__main__":
    main()
