#!/usr/bin/env python
"""Combine the word alignments of two opposite directions and score them against gold.

    mt-align checkpoint=EN_CS/checkpoints/best.pt gold=$G output=en-cs.align
    mt-align checkpoint=CS_EN/checkpoints/best.pt gold=$G output=cs-en.align
    python scripts/symmetrize.py --forward en-cs.align --reverse cs-en.align \\
        --method grow-diag-final-and --output sym.align --gold $G --langs en cs

`--forward` holds Pharaoh links `i-j` with i a word of the first language (the forward model's
source) and j of the second; `--reverse` the links of the opposite model, `j-i` in its own
source-first order, which are flipped before they are combined
(`mt.evaluation.aer.symmetrize`: intersection, union, grow-diag-final-and). The two files must
have the same number of lines. With `--gold` (a CzEnAli TSV; `--langs` names the forward
direction) the forward, reverse and combined links are scored by the same code as `mt-align`
(AER, precision, recall) and printed as JSON; bad input is one `error:` line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from mt.errors import USER_ERRORS, DataError
from mt.evaluation.aer import SYMMETRIZE_METHODS, alignment_scores, symmetrize
from mt.evaluation.alignment import format_pharaoh, parse_pharaoh
from mt.evaluation.gold import read_gold_set
from mt.io import write_lines


def read_links(path: str) -> list[frozenset[tuple[int, int]]]:
    """One set of (i, j) links per line of a Pharaoh file (0-based); DataError naming file and line."""
    from mt.data.readers import read_lines

    out = []
    for k, line in enumerate(read_lines(path), start=1):
        try:
            out.append(parse_pharaoh(line)[0])  # predicted links are all sure
        except ValueError as e:
            raise DataError(f"{path}:{k}: {e}; expected links like 0-0 1-2") from None
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--forward", required=True, help="Pharaoh links, first language's word first")
    p.add_argument("--reverse", required=True, help="Pharaoh links of the opposite model, its source first")
    p.add_argument("--method", choices=SYMMETRIZE_METHODS, default="grow-diag-final-and")
    p.add_argument("--output", help="the combined links (Pharaoh); default: standard output")
    p.add_argument("--gold", help="CzEnAli-shaped TSV to score against")
    p.add_argument("--langs", nargs=2, default=["en", "cs"], help="the forward direction's languages")
    args = p.parse_args()
    try:
        forward, reverse = read_links(args.forward), read_links(args.reverse)
        if len(forward) != len(reverse):
            raise DataError(f"{args.forward} has {len(forward)} lines but {args.reverse} has {len(reverse)}; "
                            "align the same pairs in both directions")  # fmt: skip
        flipped = [frozenset((i, j) for j, i in links) for links in reverse]
        combined = [symmetrize(f, r, args.method) for f, r in zip(forward, flipped, strict=True)]
        lines = [format_pharaoh(links) for links in combined]
        if args.output:
            write_lines(args.output, lines)
        else:
            sys.stdout.write("".join(line + "\n" for line in lines))
        if args.gold:
            gold, warnings = read_gold_set(args.gold, "czenali", args.langs[0], args.langs[1])
            if len(gold) != len(combined):
                raise DataError(
                    f"{args.gold} has {len(gold)} pairs but the alignments have {len(combined)} lines"
                )
            scores = {name: alignment_scores(links, gold) for name, links in
                      (("forward", forward), ("reverse", flipped), (args.method, combined))}  # fmt: skip
            print(json.dumps({"scores": scores, "gold_warnings": len(warnings)}, indent=2),
                  file=sys.stderr if not args.output else sys.stdout)  # fmt: skip
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
