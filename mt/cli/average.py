"""`mt-average`: one checkpoint whose parameters are the mean of several of one run's.

    mt-average runs/de-en/default/DATE/checkpoints/step_*.pt          # -> checkpoints/averaged.pt
    mt-average --run runs/de-en/default/DATE --last 5                  # the 5 newest step_*.pt
    mt-average a.pt b.pt c.pt --output avg.pt
    mt-evaluate checkpoint=runs/de-en/default/DATE/checkpoints/averaged.pt

Step checkpoints are kept by `trainer.checkpoint_every=N trainer.keep_last=K`. The output is
written atomically and never replaces an existing file (exit code 2 names it). Checkpoints of
other models, languages or tokenizers are refused by name (exit code 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mt.errors import USER_ERRORS, CheckpointError

AVERAGED_NAME = "averaged.pt"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mt-average", description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("checkpoints", nargs="*", type=Path, metavar="CHECKPOINT", help="checkpoints to average")
    p.add_argument("--run", type=Path, help="a run directory: average its newest --last step_*.pt")
    p.add_argument("--last", type=int, default=0, metavar="N", help="with --run: how many step checkpoints")
    p.add_argument("--output", type=Path, help=f"where to write (default: {AVERAGED_NAME} beside the first)")
    return p.parse_args(argv)


def chosen_checkpoints(args: argparse.Namespace) -> list[Path]:
    """The files to average: the positional ones, or the --last newest step_*.pt of --run."""
    if args.run is None:
        if args.last:
            raise CheckpointError("--last N needs --run RUN_DIR (or list the checkpoints themselves)")
        if not args.checkpoints:
            raise CheckpointError("give the checkpoints to average, or --run RUN_DIR --last N")
        return list(args.checkpoints)
    if args.checkpoints:
        raise CheckpointError("give either checkpoints or --run RUN_DIR --last N, not both")
    if args.last < 1:
        raise CheckpointError(f"--last must be at least 1, got {args.last}")
    steps = sorted((args.run / "checkpoints").glob("step_*.pt"))
    if len(steps) < args.last:
        raise CheckpointError(
            f"{args.run / 'checkpoints'} holds {len(steps)} step checkpoints, not {args.last}: lower --last, or "
            "train with trainer.checkpoint_every=N trainer.keep_last=K to keep them"
        )
    return steps[-args.last :]


def main(argv: list[str] | None = None) -> None:
    """Average, write atomically, print one line; exit code 2 with one `error:` line otherwise."""
    from mt.errors import os_error_message
    from mt.training.averaging import average_checkpoints
    from mt.training.checkpoint import atomic_torch_save

    args = parse_args(argv)
    try:
        paths = chosen_checkpoints(args)
        output = args.output or paths[0].parent / AVERAGED_NAME
        if output.exists():
            raise CheckpointError(f"{output} exists and is kept: remove it or give --output NEW_FILE")
        averaged = average_checkpoints(paths)
        atomic_torch_save(averaged, output)
    except USER_ERRORS as e:
        print(f"mt-average: error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        print(f"mt-average: error: {os_error_message(e) or e}", file=sys.stderr)
        sys.exit(2)
    steps = ", ".join(str(s) for s in averaged["averaged_steps"])
    print(f"averaged {len(paths)} checkpoints (steps {steps}) into {output}")


if __name__ == "__main__":
    main()
