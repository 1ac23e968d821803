"""Peak memory and progressive output of `mt-translate` as the input grows.

    python scripts/translate_memory.py                        # a tiny model trained here (~20 s)
    python scripts/translate_memory.py --checkpoint RUN/checkpoints/best.pt --lines 5000 50000

For each line count, writes that many input lines (Multi30k's train.de repeated when
$MT_DATA_DIR/multi30k/train.de.gz exists, synthetic sentences otherwise), runs `mt-translate`
(greedy by default) in a subprocess with output=FILE, and measures:

- peak RSS of that process (its own `ru_maxrss`, from `os.wait4`), and its ratio to the first run's;
- when its first output line appeared (polling OUTPUT.partial, then OUTPUT, every 20 ms)
  against the end of the run: streaming output appears long before the end;
- that the output has one line per input line.

Prints one JSON object (`--json FILE` also writes it) and a markdown table. Trains nothing
when given `--checkpoint`; otherwise a short real `mt-train` run (data=local) in a temp dir.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
TINY_MODEL = [
    "model.emb_size=32", "model.enc_hidden=32", "model.dec_hidden=64", "data.batch_tokens=1500",
    "trainer.max_steps=30", "trainer.val_every=15", "trainer.log_every=5", "trainer.test_beam_size=1",
    "trainer.plot_sentences=[0]", "trainer.progress=false", "trainer.precision=fp32",
]  # fmt: skip


def command(name: str) -> list[str]:
    """argv of an installed mt command (or its module when the script is not installed)."""
    exe = BIN / name
    return [str(exe)] if exe.exists() else [sys.executable, "-m", f"mt.cli.{name.split('-')[1]}"]


def multi30k() -> Path | None:
    env = os.environ.get("MT_DATA_DIR")
    repo = Path(__file__).resolve().parents[1]
    for cand in ([Path(env)] if env else []) + [repo.parent / "shared" / "data"]:
        if (cand / "multi30k" / "train.de.gz").is_file():
            return cand / "multi30k"
    return None


def sentences(lang: str, n: int, seed: int = 0, source: Path | None = None) -> list[str]:
    """`n` lines of `source` (repeated), else Multi30k sentences (repeated as needed), else
    synthetic ones of 3-15 words."""
    if source is not None:
        pool = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
        return list(itertools.islice(itertools.cycle(pool), n))
    folder = multi30k()
    if folder is not None:
        with gzip.open(folder / f"train.{lang}.gz", "rt", encoding="utf-8") as f:
            pool = [line.rstrip("\n") for line in itertools.islice(f, min(n, 29000))]
        return list(itertools.islice(itertools.cycle(pool), n))
    rng = random.Random(seed)
    words = [f"w{k}" for k in range(200)]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 15))) for _ in range(n)]


def train_tiny(root: Path) -> Path:
    """A 30-step model on 400 sentence pairs (data=local); returns its best checkpoint."""
    files = {}
    for split, n in (("train", 400), ("valid", 40)):
        for lang in ("de", "en"):
            (root / f"{split}.{lang}").write_text("\n".join(sentences(lang, n)) + "\n", encoding="utf-8")
        files[{"valid": "validation"}.get(split, split)] = str(root / split)
    vocab = 400 if multi30k() is not None else 100
    args = ["data=local", f"data.cache_dir={root / 'cache'}", f"tokenizer.vocab_size={vocab}",
            f"hydra.run.dir={root / 'run'}"] + [f"data.files.{k}={v}" for k, v in files.items()]  # fmt: skip
    proc = subprocess.run(command("mt-train") + args + TINY_MODEL, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"mt-train failed:\n{proc.stderr[-3000:]}")
    return root / "run" / "checkpoints" / "best.pt"


def measure(argv: list[str], output: Path, poll_s: float = 0.02) -> dict:
    """Run `argv`; its wall time, peak RSS (MiB) and when OUTPUT(.partial) first held a line."""
    partial = Path(f"{output}.partial")
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = None
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if first is None and any(p.exists() and p.stat().st_size > 0 for p in (partial, output)):
            first = time.perf_counter() - t0
        time.sleep(poll_s)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"mt-translate failed ({proc.returncode}):\n{proc.stderr.read().decode()[-3000:]}")
    proc.stderr.close()
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "first_output_s": None if first is None else round(first, 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="a trained model; default: train a tiny one here")
    ap.add_argument("--lines", type=int, nargs="+", default=[5000, 50000], help="input sizes, smallest first")
    ap.add_argument(
        "--input",
        type=Path,
        help="repeat the lines of this file (default: Multi30k train.de): "
        "with a fixed pool, every size has the same longest sentence, and only the count grows",
    )
    ap.add_argument("--beam-size", type=int, default=1)
    ap.add_argument("--chunk-lines", type=int, help="mt-translate chunk_lines (default: its own)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="translate_memory_") as tmp:
        root = Path(tmp)
        ckpt = Path(args.checkpoint) if args.checkpoint else train_tiny(root)
        rows = []
        for n in args.lines:
            src, out = root / f"in{n}.de", root / f"out{n}.en"
            src.write_text(
                "".join(f"{line}\n" for line in sentences("de", n, source=args.input)), encoding="utf-8"
            )
            argv = command("mt-translate") + [f"checkpoint={ckpt}", f"input={src}", f"output={out}",
                                              f"beam_size={args.beam_size}", f"device={args.device}"]  # fmt: skip
            argv += [f"chunk_lines={args.chunk_lines}"] if args.chunk_lines else []
            row = {"lines": n, **measure(argv, out)}
            with out.open("rb") as f:
                row["output_lines"] = sum(1 for _ in f)
            row["ratio_to_first"] = round(row["peak_rss_mib"] / rows[0]["peak_rss_mib"], 3) if rows else 1.0
            rows.append(row)
    result = {
        "command": " ".join(["python", "scripts/translate_memory.py", *sys.argv[1:]]),
        "checkpoint": args.checkpoint or "tiny (trained here)",
        "beam_size": args.beam_size,
        "chunk_lines": args.chunk_lines,
        "rows": rows,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    print("\n| lines | wall s | peak RSS MiB | ratio to first | first output at s | output lines |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['lines']} | {r['wall_s']} | {r['peak_rss_mib']} | {r['ratio_to_first']} | "
              f"{r['first_output_s']} | {r['output_lines']} |")  # fmt: skip


if __name__ == "__main__":
    main()
