"""Scaling benchmark: what `mt-data` and a short `mt-train` cost as the training corpus grows.

    python scripts/scale_bench.py --sizes 29000 60000                  # a quick check (a few minutes)
    python scripts/scale_bench.py --json scale.json                    # 29k 300k 1M 4M (run it alone)
    python scripts/scale_bench.py --sizes 1000000 --extra tokenizer.input_sentence_size=200000
    python scripts/scale_bench.py --sizes 4000000 --skip-train --keep --workdir /data/scale

For each size N, builds (or reuses, when its line counts match) a synthetic corpus in
WORKDIR/corpus/N: Multi30k train (29k pairs), then seeded perturbed copies until N pairs (half-sentence
splices of two random pairs, source and target cut at the same relative point, or the words of one pair
shuffled on each side), streamed to gzipped `train.de.gz` / `train.en.gz`; validation and test are links
to the real Multi30k `val` and `test_2016_flickr`. Then runs, one after the other, as `data=local`:

1. `mt-data` with a fresh, empty `data.cache_dir` (tokenizer training, text and id caches);
2. `mt-data` again with the same cache (a cached start);
3. `mt-train trainer.max_steps=STEPS` on that cache (validation and greedy test decoding at the end).

Each command's wall time and peak RSS is its own (`ru_maxrss` from `os.wait4` on that child); logs go to
WORKDIR/runs/N/*.log. Columns of the table (the ones of SCALE_NOTES.md):

- text MB (gz): both sides of the train split, uncompressed (gzipped), 10^6 bytes;
- mt-data first run / cached: wall seconds / peak RSS (MiB) of runs 1 and 2;
- cache on disk: the size of the files in the cache dir after run 1 (MB);
- mt-train RSS: peak RSS of run 3 (whole process: data, training, final evaluation);
- first step: seconds from the process start to its first update (mt-train's log line; else when the
  first `step N` line appeared; – when neither did);
- s/step: the model-step seconds of results.json / steps.

Prints a markdown table and one JSON object (`--json FILE` also writes it, after every size). Each
size's cache is removed after its runs unless `--keep` (a 4M cache is over 1 GB).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
SPLITS = {"validation": "val", "test": "test_2016_flickr"}  # our split -> Multi30k file prefix
FIRST_UPDATE = re.compile(r"the first update of this process, ([\d.]+) s after it started")
STEP_LINE = re.compile(r"\bstep \d+")
DATA_READY = re.compile(r"data ready in ([\d.]+)s")
CHUNK = 20000  # pairs per write


def command(name: str) -> list[str]:
    """argv of an installed mt command (or its module when the script is not installed)."""
    exe = BIN / name
    return [str(exe)] if exe.exists() else [sys.executable, "-m", f"mt.cli.{name.split('-')[1]}"]


def multi30k() -> Path:
    env = os.environ.get("MT_DATA_DIR")
    for cand in ([Path(env)] if env else []) + [REPO / "data", REPO.parent / "shared" / "data"]:
        if (cand / "multi30k" / "train.de.gz").is_file():
            return cand / "multi30k"
    sys.exit(
        "error: no Multi30k raw files (multi30k/train.de.gz); set MT_DATA_DIR to the folder holding multi30k/"
    )


def read_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def pair_stream(src: list[str], tgt: list[str], seed: int):
    """The real pairs, then endless perturbed ones (seeded: a smaller corpus is a prefix of a larger)."""
    yield from zip(src, tgt, strict=True)
    pool = [(s.split(), t.split()) for s, t in zip(src, tgt, strict=True)]
    rng = random.Random(seed)
    while True:
        if rng.random() < 0.5:  # splice: the head of one pair, the tail of another, cut at the same point
            (a_src, a_tgt), (b_src, b_tgt) = rng.choice(pool), rng.choice(pool)
            cut = rng.uniform(0.3, 0.7)
            yield splice(a_src, b_src, cut), splice(a_tgt, b_tgt, cut)
        else:  # the words of one pair, shuffled on each side
            s, t = rng.choice(pool)
            s, t = s[:], t[:]
            rng.shuffle(s)
            rng.shuffle(t)
            yield " ".join(s), " ".join(t)


def splice(a: list[str], b: list[str], cut: float) -> str:
    return " ".join(a[: max(1, round(cut * len(a)))] + b[round(cut * len(b)) :])


def count_lines(path: Path) -> tuple[int, int]:
    """(lines, uncompressed bytes) of a gzipped file."""
    lines = size = 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            lines += chunk.count(b"\n")
            size += len(chunk)
    return lines, size


def build_corpus(folder: Path, n: int, source: Path, seed: int) -> dict:
    """WORKDIR/corpus/N: train.{de,en}.gz of `n` pairs (reused when both hold `n` lines), links to
    Multi30k val and test; the train text's size and how long building took."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix in SPLITS.values():
        for lang in ("de", "en"):
            link = folder / f"{prefix}.{lang}.gz"
            if not link.exists():
                link.unlink(missing_ok=True)  # a dangling link
                link.symlink_to(source / f"{prefix}.{lang}.gz")
    paths = [folder / f"train.{lang}.gz" for lang in ("de", "en")]
    t0 = time.perf_counter()
    counts = [count_lines(p) for p in paths if p.is_file()]
    reused = len(counts) == 2 and all(lines == n for lines, _ in counts)
    if not reused:
        print(f"[{short(n)}] building {n} pairs in {folder}", file=sys.stderr, flush=True)
        src, tgt = (read_lines(source / f"train.{lang}.gz") for lang in ("de", "en"))
        tmps = [p.with_name(p.name + ".tmp") for p in paths]
        stream = itertools.islice(pair_stream(src, tgt, seed), n)
        sizes = [0, 0]
        with gzip.open(tmps[0], "wb", compresslevel=1) as fs, gzip.open(tmps[1], "wb", compresslevel=1) as ft:
            while chunk := list(itertools.islice(stream, CHUNK)):
                for k, (f, side) in enumerate(((fs, 0), (ft, 1))):
                    data = "".join(f"{pair[side]}\n" for pair in chunk).encode("utf-8")
                    sizes[k] += len(data)
                    f.write(data)
        for tmp, path in zip(tmps, paths, strict=True):
            tmp.replace(path)
        counts = [(n, size) for size in sizes]
    return {"text_mb": round(sum(size for _, size in counts) / 1e6, 1),
            "text_gz_mb": round(sum(p.stat().st_size for p in paths) / 1e6, 1),
            "corpus": "reused" if reused else f"built in {time.perf_counter() - t0:.1f} s"}  # fmt: skip


def run(name: str, argv: list[str], log_path: Path, env: dict[str, str], cwd: Path) -> dict:
    """Run `argv` alone; its wall time, peak RSS (MiB) and log lines with their times since start.
    Exits with its last 20 log lines when it fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd
    )
    lines: list[tuple[float, str]] = []

    def read() -> None:
        for line in proc.stdout:
            lines.append((time.perf_counter() - t0, line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    proc.stdout.close()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(" ".join(argv) + "\n" + "".join(f"[{t:8.2f}] {line}\n" for t, line in lines))
    if proc.returncode != 0:
        tail = "\n".join(line for _, line in lines[-20:])
        sys.exit(
            f"error: {name} failed (exit {proc.returncode}); its last 20 log lines (all in {log_path}):\n{tail}"
        )
    return {"wall_s": round(wall, 1), "peak_rss_mib": round(usage.ru_maxrss / 1024), "lines": lines}


def first_step(lines: list[tuple[float, str]]) -> tuple[float | None, str]:
    """Seconds to the first update: mt-train's own line, else when the first `step N` line appeared."""
    for _, line in lines:
        if m := FIRST_UPDATE.search(line):
            return float(m.group(1)), "logged"
    for t, line in lines:
        if STEP_LINE.search(line):
            return round(t, 1), "first step line"
    return None, "unavailable"


def dir_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6, 1)


def short(n: int) -> str:
    return f"{n // 10**6}M" if n % 10**6 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def bench_size(n: int, args: argparse.Namespace, source: Path, env: dict[str, str]) -> dict:
    """The three runs of one size (two without training); one row of the table."""
    corpus, runs = args.workdir / "corpus" / str(n), args.workdir / "runs" / str(n)
    row = {"pairs": n, **build_corpus(corpus, n, source, args.seed)}
    cache = args.workdir / "cache" / str(n)
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(runs, ignore_errors=True)
    data = ["data=local", f"data.files.train={corpus / 'train'}", "data.src_lang=de", "data.tgt_lang=en",
            f"data.cache_dir={cache}"] + [f"data.files.{k}={corpus / v}" for k, v in SPLITS.items()]  # fmt: skip
    for key, label in (("data_first", "first run"), ("data_cached", "cached")):
        argv = command("mt-data") + data + [f"hydra.run.dir={runs / key}"] + args.extra
        result = run(f"mt-data ({label})", argv, runs / f"{key}.log", env, args.workdir)
        row[key] = {k: v for k, v in result.items() if k != "lines"}
        if key == "data_first":
            row["cache_mb"] = dir_mb(cache)
        print(f"[{short(n)}] mt-data ({label}): {result['wall_s']} s / {result['peak_rss_mib']} MiB",
              file=sys.stderr, flush=True)  # fmt: skip
    row["train"] = None
    if not args.skip_train:
        s = args.steps
        trainer = [f"trainer.max_steps={s}", f"trainer.val_every={s}", "trainer.test_beam_size=1",
                   "trainer.plot_sentences=[]", "trainer.sample_sentences=0", "trainer.progress=false"]  # fmt: skip
        argv = command("mt-train") + data + trainer + [f"hydra.run.dir={runs / 'train'}"] + args.extra
        result = run("mt-train", argv + args.train_extra, runs / "train.log", env, args.workdir)
        first, how = first_step(result["lines"])
        ready = next((float(m.group(1)) for _, ln in result["lines"] if (m := DATA_READY.search(ln))), None)
        train = json.loads((runs / "train" / "results.json").read_text())["train"]
        row["train"] = {"wall_s": result["wall_s"], "peak_rss_mib": result["peak_rss_mib"],
                        "first_step_s": first, "first_step_from": how, "data_ready_s": ready,
                        "s_per_step": round(train["time_breakdown"]["step_seconds"] / max(train["steps"], 1), 2),
                        "steps": train["steps"], "peak_rss_mb_training": train.get("peak_rss_mb_training"),
                        "memory_trims": train.get("memory_trims")}  # fmt: skip
        print(f"[{short(n)}] mt-train: {result['wall_s']} s / {result['peak_rss_mib']} MiB, first step {first} s",
              file=sys.stderr, flush=True)  # fmt: skip
        if not args.keep:
            shutil.rmtree(runs / "train" / "checkpoints", ignore_errors=True)
    if not args.keep:
        shutil.rmtree(cache, ignore_errors=True)
    return row


def table(rows: list[dict]) -> str:
    dash = "–"
    out = ["| pairs | text MB (gz) | mt-data first run: wall / peak RSS | cached: wall / RSS | cache on disk "
           "| mt-train RSS | first step | s/step |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        t = r["train"] or {}
        first = f"{t['first_step_s']:.0f} s" if t.get("first_step_s") is not None else dash
        train_rss = f"{t['peak_rss_mib']} MiB" if t else dash
        out.append(
            f"| {short(r['pairs'])} | {r['text_mb']} ({r['text_gz_mb']}) "
            f"| {r['data_first']['wall_s']} s / {r['data_first']['peak_rss_mib']} MiB "
            f"| {r['data_cached']['wall_s']} s / {r['data_cached']['peak_rss_mib']} MiB | {r['cache_mb']} MB "
            f"| {train_rss} | {first} | {t.get('s_per_step', dash)} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes", type=int, nargs="+", default=[29000, 300000, 1000000, 4000000], help="train pairs"
    )
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "mt_scale_bench",
                    help="corpora (reused by later runs), caches, run directories and logs")  # fmt: skip
    ap.add_argument("--steps", type=int, default=30, help="mt-train updates")
    ap.add_argument("--skip-train", action="store_true", help="mt-data runs only")
    ap.add_argument("--keep", action="store_true", help="keep each size's cache and checkpoints")
    ap.add_argument(
        "--extra", nargs="*", default=[], help="overrides for every command (data.*, tokenizer.*)"
    )
    ap.add_argument(
        "--train-extra", nargs="*", default=[], help="overrides for mt-train only (trainer.* ...)"
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the perturbed pairs")
    ap.add_argument("--json", type=Path, help="also write the results here (after every size)")
    args = ap.parse_args()
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    source = multi30k()
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    result = {"command": " ".join(["python", "scripts/scale_bench.py", *sys.argv[1:]]),
              "workdir": str(args.workdir), "steps": None if args.skip_train else args.steps,
              "extra": args.extra, "train_extra": args.train_extra, "rows": []}  # fmt: skip
    for n in args.sizes:
        result["rows"].append(bench_size(n, args, source, env))
        if args.json:
            args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print()
    print(table(result["rows"]))


if __name__ == "__main__":
    main()
