#!/usr/bin/env python
"""Run the real command-line programs on bad input and print what each one answers.

    python scripts/bad_input_table.py                # markdown table on stdout
    python scripts/bad_input_table.py --out table.md # also to a file (docs/reliability.md shows it)
    python scripts/bad_input_table.py --table 2      # the second table: reliability II (about 5 minutes)

Every case is built in a temporary directory: bad corpora for `mt-data`, bad lines for
`mt-translate` (on a tiny model trained first, about a minute), bad overrides for `mt-train`
and bad checkpoints for `mt-evaluate`. For each: the exit code, the first error line (or
what happened when the input is handled rather than refused), and whether files that were
there before are still intact. The tests in tests/test_bad_input.py, test_checkpoint.py and
test_cli.py assert the same behaviour.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
GOOD_DE = [f"ein Hund {i} läuft über die grüne Wiese" for i in range(80)]
GOOD_EN = [f"a dog {i} runs over the green meadow" for i in range(80)]


def cli(cmd: str, args: list[str], cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [str(BIN / cmd), *args], cwd=cwd, input=stdin, capture_output=True, env=env, timeout=600
    )


def write(path: Path, lines: list[str] | bytes) -> Path:
    path.write_bytes(lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode())
    return path


def corpus(root: Path, de: list[str] | bytes = GOOD_DE, en: list[str] | bytes = GOOD_EN) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    write(root / "train.de", de)
    write(root / "train.en", en)
    write(root / "dev.de", GOOD_DE[:8])
    write(root / "dev.en", GOOD_EN[:8])
    return ["data=local", f"data.files.train={root / 'train'}", f"data.files.validation={root / 'dev'}",
            f"data.cache_dir={root / 'cache'}", "tokenizer.vocab_size=40", f"hydra.run.dir={root / 'out'}"]  # fmt: skip


def message(proc: subprocess.CompletedProcess) -> str:
    """The one-paragraph error (the `error:` line, else the last stderr line)."""
    err = proc.stderr.decode(errors="replace").splitlines()
    for line in err:
        if line.startswith("error:"):
            return line
    keep = [line for line in err if line.strip() and not line.startswith(("Set the environment", "[20"))]
    return keep[-1] if keep else ""


def digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.read_bytes())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, help="also write the table to this markdown file")
    ap.add_argument("--table", type=int, choices=(1, 2), default=1,
                    help="1: bad corpora, lines, overrides, checkpoints; 2: reliability II (run directories, "
                    "caches, ranges, late failures, text and reports; scripts/bad_input_cases_ii.py)")  # fmt: skip
    args = ap.parse_args()
    if args.table == 2:
        from bad_input_cases_ii import all_cases, table

        with tempfile.TemporaryDirectory() as tmp:
            text = table(all_cases(Path(tmp)))
        print(text)
        if args.out:
            args.out.write_text(text, encoding="utf-8")
        return
    rows: list[tuple[str, str, int, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        # ---- corpora through mt-data
        bad_utf8 = (
            ("\n".join(GOOD_EN[:2]) + "\n").encode()
            + b"caf\xe9 au lait\n"
            + ("\n".join(GOOD_EN[3:]) + "\n").encode()
        )
        cases = {
            "train.de 80 lines, train.en 79": dict(en=GOOD_EN[:79]),
            "invalid UTF-8 on line 3 of train.en": dict(en=bad_utf8),
            "empty train files": dict(de=b"", en=b""),
            "a pair of 100,000-character lines": dict(de=GOOD_DE[:40] + ["Hund " * 20000] + GOOD_DE[41:],
                                                      en=GOOD_EN[:40] + ["dog " * 25000] + GOOD_EN[41:]),
            "control characters (\\x00, \\x1b, \\x7f) in lines": dict(de=[s + "\x00\x1b[31m" for s in GOOD_DE],
                                                                   en=[s + "\x7f" for s in GOOD_EN]),
        }  # fmt: skip
        for i, (name, kw) in enumerate(cases.items()):
            proc = cli("mt-data", corpus(root / f"c{i}", **kw), root)
            answer = message(proc) if proc.returncode else _stats_line(proc)
            rows.append((name, "mt-data", proc.returncode, answer, "n/a"))
        missing = corpus(root / "missing")
        (root / "missing" / "train.en").unlink()
        proc = cli("mt-data", missing, root)
        rows.append(("train.en missing", "mt-data", proc.returncode, message(proc), "n/a"))

        # ---- a tiny model for mt-translate / mt-evaluate / resume
        run_dir = root / "run"
        train_args = corpus(root / "tiny")[:-1] + [
            f"hydra.run.dir={run_dir}", "model.emb_size=16", "model.enc_hidden=16", "model.dec_hidden=32",
            "trainer.max_steps=10", "trainer.val_every=10", "trainer.progress=false", "trainer.precision=fp32",
            "data.files.test=" + str(root / "tiny" / "dev"),
        ]  # fmt: skip
        proc = cli("mt-train", train_args, root)
        if proc.returncode != 0:
            raise SystemExit(f"training the tiny model failed:\n{proc.stderr.decode()[-2000:]}")
        ckpt = run_dir / "checkpoints" / "best.pt"
        kept = [ckpt, run_dir / "checkpoints" / "last.pt", run_dir / "results.json"]
        before = digest(kept)

        # ---- mt-translate
        for name, data in {
            "empty lines between sentences": b"ein Hund\n\n\nein Hund 3\n",
            "a line of 100,000 characters": ("Hund " * 20000).encode() + b"\n",
            "non-text bytes (\\xff\\xfe, NUL)": b"ein Hund\n\xff\xfe\x00\x01 binary\n",
        }.items():
            proc = cli("mt-translate", [f"checkpoint={ckpt}"], root, stdin=data)
            if proc.returncode == 0:
                out = proc.stdout.decode().split("\n")[:-1]
                n_in = data.count(b"\n")
                longest = max(len(o.split()) for o in out)
                answer = f"translated: {len(out)} output lines for {n_in} input lines; longest output {longest} words"
            else:
                answer = message(proc)
            rows.append(
                (name, "mt-translate", proc.returncode, answer, "yes" if digest(kept) == before else "NO")
            )

        # ---- configs through mt-train (on the run directory: must not touch it)
        for name, override in {
            "unknown key": "trainer.max_stepz=3",
            "wrong type": "trainer.max_steps=ten",
            "negative size": "model.enc_hidden=-4",
            "attention that does not exist": "model/attention=cosine",
            "unknown language": "data.src_lang=xx",
        }.items():
            proc = cli("mt-train", [override, f"resume={run_dir}"], root)
            rows.append((f"{name}: `{override}`", "mt-train", proc.returncode, message(proc),
                         "yes" if digest(kept) == before else "NO"))  # fmt: skip

        # ---- checkpoints through mt-evaluate
        ckdir = root / "ck"
        ckdir.mkdir()
        data = ckpt.read_bytes()
        (ckdir / "truncated.pt").write_bytes(data[: len(data) // 2])
        (ckdir / "garbage.pt").write_bytes(os.urandom(4096))

        class Evil:
            def __reduce__(self):
                return (os.system, ("echo pwned > " + str(root / "pwned"),))

        with open(ckdir / "malicious.pt", "wb") as f:
            pickle.dump({"model": Evil()}, f)
        for name, path in {
            "truncated checkpoint": ckdir / "truncated.pt",
            "random bytes as checkpoint": ckdir / "garbage.pt",
            "pickle that runs code": ckdir / "malicious.pt",
            "checkpoint that does not exist": ckdir / "nope.pt",
        }.items():
            proc = cli("mt-evaluate", [f"checkpoint={path}", f"hydra.run.dir={root / 'ev'}"], root)
            note = "; code NOT run" if not (root / "pwned").exists() else "; CODE RAN"
            rows.append(
                (
                    name,
                    "mt-evaluate",
                    proc.returncode,
                    message(proc) + (note if "pickle" in name else ""),
                    "n/a",
                )
            )
        proc = cli("mt-train", train_args + ["model.dec_hidden=48", f"resume={run_dir}"], root)
        rows.append(("resume with another model size", "mt-train", proc.returncode, message(proc),
                     "yes" if digest(kept) == before else "NO"))  # fmt: skip

    lines = [
        "| input | command | exit | message / behaviour | earlier files intact |",
        "|---|---|---|---|---|",
    ]
    for name, cmd, code, answer, intact in rows:
        answer = answer.replace("|", "\\|")
        lines.append(f"| {name} | `{cmd}` | {code} | {answer} | {intact} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.write_text(table, encoding="utf-8")


def _stats_line(proc: subprocess.CompletedProcess) -> str:
    """What mt-data reported for a corpus it accepted (dropped pairs, cleaned characters)."""
    text = proc.stdout.decode() + proc.stderr.decode()
    for line in text.splitlines():
        if "dropped" in line or "control" in line:
            return "accepted: " + line.split(" - ", 1)[-1].strip()
    return "accepted"


if __name__ == "__main__":
    main()
