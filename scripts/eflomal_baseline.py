"""Statistical word-aligner baseline for attention AER: eflomal on Multi30k en-cs + CzEnAli.

The aligner is trained (unsupervised) on Multi30k en-cs train plus the 2,501 CzEnAli sentence
pairs, as in the reference figure of ``data/alignment/README.md`` (AER 20.8 en->cs, 20.6
intersection); the links of the last 2,501 lines are scored against the gold with the project's
own scorer (:mod:`mt.evaluation.aer`), for the forward (en->cs) and reverse directions and their
intersection and grow-diag-final-and symmetrizations.

- Multi30k lines are tokenized with sacremoses ``MosesTokenizer(lang).tokenize(escape=False)``,
  since the gold is already PTB-style tokenized (English first, Czech second).
- Case: the text is passed to eflomal cased, and eflomal lowercases every token itself (its
  ``Aligner`` always calls ``read_text(..., lowercase=True)``), so the aligner sees lowercased
  words: right for word alignment, where "The" and "the" must share statistics, and the links
  index the original cased tokens.
- Randomness: eflomal 2.0 has no seed option (its sampler seeds itself from /dev/urandom), so
  ``--seed`` is only recorded; repeated runs differ by a few tenths of a point of AER.
- eflomal is GPLv3 and therefore an optional extra: ``pip install -e .[align]``.

Usage (writes scores.json and the Pharaoh links of the gold pairs under --out)::

    nice -n 10 python scripts/eflomal_baseline.py --data-dir $MT_DATA_DIR --out runs/eflomal_baseline
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from mt.data.paths import resolve_input, resolve_output
from mt.data.readers import read_lines
from mt.errors import DataError, OutputError
from mt.evaluation.aer import alignment_scores, symmetrize
from mt.evaluation.alignment import Links, format_pharaoh, parse_pharaoh
from mt.evaluation.gold import GoldPair, read_gold_czenali
from mt.io import write_json, write_lines

INSTALL_HINT = 'eflomal is not installed; install the optional aligner extra: pip install -e ".[align]"'
GOLD_FILE = Path("alignment") / "czenali-en-cs" / "czenali.gz"
METHODS = ("forward", "reverse", "intersection", "grow-diag-final-and")


def import_eflomal() -> ModuleType:
    """Return the eflomal module, or exit 2 with the install hint."""
    try:
        import eflomal
    except ImportError:
        print(f"error: {INSTALL_HINT}", file=sys.stderr)
        raise SystemExit(2) from None
    return eflomal


def moses_tokenize(lines: Sequence[str], lang: str, desc: str = "") -> list[str]:
    """PTB-like tokens separated by single spaces (sacremoses, no XML escaping)."""
    from sacremoses import MosesTokenizer
    from tqdm import tqdm

    tok = MosesTokenizer(lang=lang)
    return [
        tok.tokenize(line, escape=False, return_str=True)
        for line in tqdm(lines, desc=desc or f"tokenize {lang}", unit="line", mininterval=2.0)
    ]


def run_eflomal(
    eflomal: ModuleType, src: Sequence[str], tgt: Sequence[str], n_samplers: int = 3
) -> tuple[list[Links], list[Links]]:
    """Align tokenized sentence pairs; return forward and reverse links per line, 0-based (src i, tgt j).

    Forward is eflomal's source->target direction (each target word picks a source word, as in
    fast_align); both directions are written as ``src-tgt``.
    """
    if len(src) != len(tgt):
        raise ValueError(f"{len(src)} source lines but {len(tgt)} target lines")
    with tempfile.TemporaryDirectory(prefix="eflomal_") as tmp:
        fwd_path, rev_path = Path(tmp) / "forward.align", Path(tmp) / "reverse.align"
        aligner = eflomal.Aligner(n_samplers=n_samplers)
        aligner.align(
            list(src), list(tgt), links_filename_fwd=str(fwd_path), links_filename_rev=str(rev_path)
        )
        fwd = [parse_pharaoh(line)[0] for line in read_lines(fwd_path)]
        rev = [parse_pharaoh(line)[0] for line in read_lines(rev_path)]
    if not len(fwd) == len(rev) == len(src):
        raise RuntimeError(
            f"eflomal wrote {len(fwd)} forward and {len(rev)} reverse lines for {len(src)} pairs"
        )
    return fwd, rev


def multi30k_train(data_dir: Path) -> tuple[list[str], list[str]]:
    """Moses-tokenized Multi30k en-cs train pairs, pairs with an empty side dropped."""
    files = [data_dir / "multi30k" / f"train.{lang}.gz" for lang in ("en", "cs")]
    for f in files:
        if not f.is_file():
            raise DataError(f"{f} not found; pass --data-dir DIR where DIR/multi30k/train.en.gz exists")
    en, cs = (read_lines(f) for f in files)
    if len(en) != len(cs):
        raise DataError(f"{files[0]} has {len(en)} lines but {files[1]} has {len(cs)}")
    pairs = [(e, c) for e, c in zip(en, cs, strict=True) if e.strip() and c.strip()]
    return moses_tokenize([e for e, _ in pairs], "en"), moses_tokenize([c for _, c in pairs], "cs")


def score_all(
    fwd: list[Links], rev: list[Links], gold: list[GoldPair], keep=None
) -> tuple[dict[str, dict], dict[str, list[Links]]]:
    """Scores (AER / precision / recall) and links of both directions and their symmetrizations."""
    preds = {
        "forward": fwd,
        "reverse": rev,
        **{m: [symmetrize(f, r, m) for f, r in zip(fwd, rev, strict=True)] for m in METHODS[2:]},
    }
    return {m: alignment_scores(preds[m], gold, keep) for m in METHODS}, preds


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=os.environ.get("MT_DATA_DIR", "data"),
                   help="folder with multi30k/train.{en,cs}.gz and alignment/czenali-en-cs/czenali.gz "
                        "(default $MT_DATA_DIR, then data/)")  # fmt: skip
    p.add_argument("--out", default="runs/eflomal_baseline", help="output folder (scores.json, *.align)")
    p.add_argument("--seed", type=int, default=1,
                   help="recorded only: eflomal 2.0 seeds its sampler from /dev/urandom")  # fmt: skip
    p.add_argument("--n-samplers", type=int, default=3, help="eflomal independent samplers (default 3)")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for eflomal (default: as set)")
    args = p.parse_args(argv)
    eflomal = import_eflomal()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    t0 = time.perf_counter()
    data_dir, out = resolve_input(args.data_dir), resolve_output(args.out)
    try:
        gold_path = data_dir / GOLD_FILE
        if not gold_path.is_file():
            raise DataError(f"{gold_path} not found; pass --data-dir DIR where DIR/{GOLD_FILE} exists")
        gold, warnings = read_gold_czenali(gold_path, "en", "cs")
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        train_en, train_cs = multi30k_train(data_dir)
        t_tok = time.perf_counter() - t0
        src = train_en + [" ".join(g.src_words) for g in gold]
        tgt = train_cs + [" ".join(g.tgt_words) for g in gold]
        print(f"eflomal: aligning {len(src)} pairs ({len(train_en)} Multi30k + {len(gold)} CzEnAli), "
              f"forward and reverse ...", file=sys.stderr)  # fmt: skip
        t1 = time.perf_counter()
        fwd, rev = run_eflomal(eflomal, src, tgt, args.n_samplers)
        t_align = time.perf_counter() - t1
        fwd, rev = fwd[-len(gold) :], rev[-len(gold) :]
        en_voc = {w.lower() for line in train_en for w in line.split()}
        cs_voc = {w.lower() for line in train_cs for w in line.split()}

        def in_vocab(pair: GoldPair, i: int, j: int) -> bool:
            return pair.src_words[i].lower() in en_voc and pair.tgt_words[j].lower() in cs_voc

        scores, preds = score_all(fwd, rev, gold)
        scores_in_vocab, _ = score_all(fwd, rev, gold, in_vocab)
        result = {
            "aligner": f"eflomal {_version()}",
            "train": {"multi30k_en_cs_pairs": len(train_en), "czenali_pairs": len(gold)},
            "tokenization": "sacremoses MosesTokenizer(escape=False) for Multi30k; gold tokens as given",
            "lowercased": "by eflomal itself (Aligner always lowercases); links index the cased tokens",
            "n_samplers": args.n_samplers,
            "seed": args.seed,
            "seed_note": "eflomal 2.0 has no seed option; its sampler reads /dev/urandom",
            "scores": scores,
            "scores_both_words_in_multi30k_train": scores_in_vocab,
            "gold_warnings": warnings,
            "wall_s": {"tokenize_and_read": t_tok, "align": t_align, "total": time.perf_counter() - t0},
        }
        for m in METHODS:
            write_lines(out / f"czenali.{m}.align", [format_pharaoh(links) for links in preds[m]])
        write_json(out / "scores.json", result)
    except (DataError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"{'method':<22}{'AER':>7}{'P':>7}{'R':>7}   (x100; in-vocab AER)")
    for m in METHODS:
        s, v = scores[m], scores_in_vocab[m]
        print(
            f"{m:<22}{100 * s['aer']:7.1f}{100 * s['precision']:7.1f}{100 * s['recall']:7.1f}   {100 * v['aer']:.1f}"
        )
    print(f"eflomal baseline: AER en->cs {100 * scores['forward']['aer']:.1f}, intersection "
          f"{100 * scores['intersection']['aer']:.1f} on {len(gold)} CzEnAli pairs in "
          f"{result['wall_s']['total']:.0f} s; wrote {out / 'scores.json'}")  # fmt: skip
    return result


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eflomal")
    except PackageNotFoundError:
        return "unknown"


if __name__ == "__main__":
    main()
