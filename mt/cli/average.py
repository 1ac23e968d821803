"""`mt-average`: one checkpoint whose parameters are the mean of several of one run's.

    mt-average runs/de-en/default/DATE/checkpoints/step_*.pt          # -> checkpoints/averaged.pt
    mt-average --run runs/de-en/default/DATE --last 5                  # the 5 newest step_*.pt
    mt-average --run runs/de-en/default/DATE --best 5                  # the 5 best by validation BLEU
    mt-average a.pt b.pt c.pt --output avg.pt
    mt-evaluate checkpoint=runs/de-en/default/DATE/checkpoints/averaged.pt

Step checkpoints are kept by `trainer.checkpoint_every=N trainer.keep_last=K`; `--best` ranks the
ones the run still holds by the validation BLEU at their step (run history, in the newest
checkpoint), so it needs checkpoint steps that were validated (`checkpoint_every` a multiple of
`val_every`). The output is
written atomically and never replaces an existing file (exit code 2 names it). Checkpoints of
other models, languages or tokenizers are refused by name (exit code 2).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from mt.errors import CheckpointError

AVERAGED_NAME = "averaged.pt"
STEP_FILE = re.compile(r"step_\d+\.pt")  # the trainer's rotated step checkpoints (step_00001950.pt)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mt-average", description=__doc__.splitlines()[0].split(": ", 1)[1])
    p.add_argument("checkpoints", nargs="*", type=Path, metavar="CHECKPOINT", help="checkpoints to average")
    p.add_argument("--run", type=Path, help="a run directory: average its step_*.pt (--last or --best)")
    p.add_argument(
        "--last", type=int, default=0, metavar="N", help="with --run: the N newest step checkpoints"
    )
    p.add_argument(
        "--best", type=int, default=0, metavar="N", help="with --run: the N best by validation BLEU"
    )
    p.add_argument("--output", type=Path, help=f"where to write (default: {AVERAGED_NAME} beside the first)")
    return p.parse_args(argv)


def chosen_checkpoints(args: argparse.Namespace) -> list[Path]:
    """The files to average: the positional ones, or the --last newest / --best best-validated
    step_*.pt of --run (in step order)."""
    if args.run is None:
        if args.last or args.best:
            raise CheckpointError(
                "--last N and --best N need --run RUN_DIR (or list the checkpoints themselves)"
            )
        if not args.checkpoints:
            raise CheckpointError("give the checkpoints to average, or --run RUN_DIR --last N (or --best N)")
        return list(args.checkpoints)
    if args.checkpoints:
        raise CheckpointError("give either checkpoints or --run RUN_DIR --last N / --best N, not both")
    if bool(args.last) == bool(args.best):
        raise CheckpointError("with --run give one of --last N or --best N (N at least 1)")
    n, how = (args.last, "--last") if args.last else (args.best, "--best")
    if n < 1:
        raise CheckpointError(f"{how} must be at least 1, got {n}")
    steps = sorted(p for p in (args.run / "checkpoints").glob("step_*.pt") if STEP_FILE.fullmatch(p.name))
    if len(steps) < n:
        raise CheckpointError(
            f"{args.run / 'checkpoints'} holds {len(steps)} step checkpoints, not {n}: lower {how}, or "
            "train with trainer.checkpoint_every=N trainer.keep_last=K to keep them"
        )
    if args.last:
        return steps[-n:]
    return best_validated(steps, n)


def best_validated(steps: list[Path], n: int) -> list[Path]:
    """The `n` step checkpoints with the highest validation BLEU at their own step, by the run
    history of the newest one; ties go to the later step. Returned in step order."""
    from mt.training.checkpoint import load_checkpoint

    history = load_checkpoint(steps[-1], mmap=True).get("progress", {}).get("history", [])
    bleu = {int(r["step"]): float(r["bleu"]) for r in history}
    step_of = {path: int(path.stem[len("step_") :]) for path in steps}
    scored = [path for path in steps if step_of[path] in bleu]
    if len(scored) < n:
        raise CheckpointError(
            f"{steps[-1].parent}: only {len(scored)} of its {len(steps)} step checkpoints were validated at "
            f"their step, not {n}: lower --best, or train with trainer.checkpoint_every a multiple of "
            "trainer.val_every"
        )
    best = sorted(scored, key=lambda path: (bleu[step_of[path]], step_of[path]), reverse=True)[:n]
    return sorted(best, key=step_of.__getitem__)


def main(argv: list[str] | None = None) -> None:
    """Average, write atomically, print one line; exit code 2 with one `error:` line otherwise."""
    from mt.cli.common import exit_on_user_error
    from mt.training.averaging import average_checkpoints
    from mt.training.checkpoint import atomic_torch_save

    args = parse_args(argv)

    def write() -> tuple[list[Path], Path, dict]:
        paths = chosen_checkpoints(args)
        output = args.output or paths[0].parent / AVERAGED_NAME
        if output.exists():
            raise CheckpointError(f"{output} exists and is kept: remove it or give --output NEW_FILE")
        averaged = average_checkpoints(paths)
        atomic_torch_save(averaged, output)
        return paths, output, averaged

    paths, output, averaged = exit_on_user_error("mt-average", write)
    steps = ", ".join(str(s) for s in averaged["averaged_steps"])
    print(f"averaged {len(paths)} checkpoints (steps {steps}) into {output}")


if __name__ == "__main__":
    main()
