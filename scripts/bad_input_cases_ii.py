"""The cases of the second bad-input table (reliability II): run directories and resume, caches,
range-checked settings, late failures, text and report inputs. Run through
`python scripts/bad_input_table.py --table 2`.

Each case runs a real command on a copy of what it may damage and records the exit code, the
first line of the answer (the `error:` line, else what happened), and whether the files that
were there before have the same SHA-256 afterwards. Failures that cannot be caused from outside
a process without root or special hardware (a full disk at one precise moment, a plot write
failing) are injected as the OSError the operating system raises, into the real entry point.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
TINY = ["model.emb_size=16", "model.enc_hidden=16", "model.dec_hidden=32", "trainer.max_steps=6",
        "trainer.val_every=6", "trainer.progress=false", "trainer.precision=fp32", "trainer.test_beam_size=2",
        "trainer.plot_sentences=[0]", "tokenizer.vocab_size=60"]  # fmt: skip
DE = "ein eine der die das Hund Katze Mann Frau Kind läuft springt sitzt spielt rot blau groß klein auf im".split()
EN = "a a the the the dog cat man woman child runs jumps sits plays red blue big small on in".split()

INJECT = """
import errno, sys
{patch}
from mt.cli.train import main
sys.argv = ["mt-train", *sys.argv[1:]]
main()
"""
FULL_DISK_AT_TEST = """
import mt.evaluation.evaluate as ev
real = ev.write_lines
def full(path, lines):
    if str(path).endswith("test.hyp"):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    return real(path, lines)
ev.write_lines = full
"""
PLOT_FAILS = """
from matplotlib.figure import Figure
def full(self, *a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")
Figure.savefig = full
"""


@dataclass
class Row:
    pattern: str
    case: str
    command: str
    code: int
    answer: str
    intact: str


def lines_of(n: int, words: list[str], seed: int) -> list[str]:
    import random

    rng = random.Random(seed)
    return [" ".join(words[rng.randrange(len(words))] for _ in range(rng.randint(3, 9))) for _ in range(n)]


def write(path: Path, lines: list[str] | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(lines if isinstance(lines, bytes) else ("\n".join(lines) + "\n").encode())
    return path


def snapshot(*roots: Path) -> str:
    """One SHA-256 over every file under `roots` (names and contents)."""
    h = hashlib.sha256()
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for p in files:
            h.update(str(p).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def first_line(proc: subprocess.CompletedProcess) -> str:
    """The `error:` line, else the last line that is not a progress bar or a Hydra hint."""
    text = proc.stderr.decode(errors="replace").splitlines()
    errors = [line for line in text if line.startswith("error:")]
    if errors:
        return errors[0]
    if "Traceback" in proc.stderr.decode(errors="replace"):
        return "TRACEBACK: " + (text[-1] if text else "")
    out = proc.stdout.decode(errors="replace").splitlines()
    keep = [ln for ln in out + text if ln.strip() and "it/s]" not in ln and "examples/s]" not in ln]
    return keep[-1].split("] - ", 1)[-1] if keep else ""


class Bench:
    """A temporary world: a tiny corpus, a finished tiny run, and helpers to run commands."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rows: list[Row] = []
        corpus = root / "corpus"
        for split, n, seed in (("train", 300, 1), ("dev", 20, 2), ("test", 20, 3)):
            write(corpus / f"{split}.de", lines_of(n, DE, seed))
            write(corpus / f"{split}.en", lines_of(n, EN, seed))
        self.data = ["data=local", f"data.files.train={corpus / 'train'}", f"data.files.validation={corpus / 'dev'}",
                     f"data.files.test={corpus / 'test'}", f"data.cache_dir={root / 'cache'}"]  # fmt: skip
        self.base = root / "base"
        proc = self.cli("mt-train", [*self.data, *TINY, f"hydra.run.dir={self.base}"])
        if proc.returncode != 0:
            raise SystemExit(f"the tiny run failed:\n{proc.stderr.decode()[-3000:]}")
        self.ckpt = self.base / "checkpoints" / "best.pt"

    def cli(
        self, cmd: str, args: list[str], stdin: bytes | None = None, inject: str = ""
    ) -> subprocess.CompletedProcess:
        env = {**os.environ, "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}
        argv = [sys.executable, "-c", INJECT.format(patch=inject)] if inject else [str(BIN / cmd)]
        return subprocess.run(
            [*argv, *args], cwd=self.root, input=stdin, capture_output=True, env=env, timeout=900
        )

    def copy_run(self, name: str) -> Path:
        dst = self.root / name
        shutil.copytree(self.base, dst)
        return dst

    def record(self, pattern: str, case: str, cmd: str, proc: subprocess.CompletedProcess, intact: str,
               answer: str | None = None) -> None:  # fmt: skip
        self.rows.append(Row(pattern, case, cmd, proc.returncode, answer or first_line(proc), intact))

    def case(self, pattern: str, case: str, cmd: str, args: list[str], guard: list[Path] | None = None,
             stdin: bytes | None = None, inject: str = "", check: Callable[[subprocess.CompletedProcess], str] | None = None) -> subprocess.CompletedProcess:  # fmt: skip
        """Run one case; `guard`: the files that must be unchanged; `check`: the answer of an accepted input."""
        before = snapshot(*guard) if guard else None
        proc = self.cli(cmd, args, stdin=stdin, inject=inject)
        intact = "n/a" if before is None else ("yes" if snapshot(*guard) == before else "NO")
        answer = check(proc) if check and proc.returncode == 0 else None
        shown = " ".join(
            a.replace(str(self.root), "T") for a in args if not a.startswith(("data.files", "data.cache"))
        )
        self.record(pattern, case, f"{cmd} {shown}".strip(), proc, intact, answer)
        return proc


def run_directories(b: Bench) -> None:
    p = "1 run dirs"
    r = b.copy_run("finished")
    b.case(p, "a finished run resumed", "mt-train", [*b.data, *TINY, f"resume={r}"], [r])
    r = b.copy_run("lr")
    b.case(
        p,
        "resume with a setting the checkpoint overrides",
        "mt-train",
        [*b.data, *TINY, f"resume={r}", "optim.lr=0.5"],
        [r],
    )
    r = b.copy_run("attn")
    b.case(
        p,
        "resume with another attention",
        "mt-train",
        [*b.data, *TINY, f"resume={r}", "model/attention=luong_dot"],
        [r],
    )
    r = b.copy_run("nolast")
    (r / "checkpoints" / "last.pt").unlink()
    b.case(p, "resume= a run with best.pt but no last.pt", "mt-train", [*b.data, *TINY, f"resume={r}"], [r])
    r = b.copy_run("overwrite")
    b.case(
        p,
        "a fresh run into a finished run's directory",
        "mt-train",
        [*b.data, *TINY, f"hydra.run.dir={r}"],
        [r],
    )
    r = b.copy_run("killed")
    (r / "results.json").unlink()
    shutil.rmtree(r / "outputs")
    b.case(
        p,
        "resume a run killed in its final evaluation",
        "mt-train",
        [*b.data, *TINY, f"resume={r}"],
        [r / "checkpoints"],
    )
    r = b.copy_run("stale")
    (r / ".lock").write_text("999999\n")
    b.case(p, "resume with a stale lock (dead pid)", "mt-train", [*b.data, *TINY, f"resume={r}", "trainer.max_steps=8"],
           check=lambda proc: "accepted: " + next((ln.split("] - ", 1)[-1] for ln in proc.stderr.decode().splitlines() if "lock" in ln), "no warning"))  # fmt: skip
    b.case(
        p,
        "resume= a directory that does not exist",
        "mt-train",
        [*b.data, *TINY, f"resume={b.root / 'nowhere'}"],
    )
    b.case(p, "resume= a file", "mt-train", [*b.data, *TINY, f"resume={b.base / 'config.yaml'}"], [b.base])
    afile = write(b.root / "afile", ["keep"])
    b.case(
        p, "hydra.run.dir= an existing file", "mt-train", [*b.data, *TINY, f"hydra.run.dir={afile}"], [afile]
    )
    b.case(
        p, "hydra.run.dir= under a file", "mt-train", [*b.data, *TINY, f"hydra.run.dir={afile}/run"], [afile]
    )
    # two processes into one directory: the second starts while the first holds the lock
    two = b.root / "two"
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([str(BIN / "mt-train"), *b.data, *TINY, "trainer.max_steps=40", f"hydra.run.dir={two}"],
                             cwd=b.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # fmt: skip
    deadline = time.time() + 120
    while not (two / ".lock").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc = b.cli("mt-train", [*b.data, *TINY, f"hydra.run.dir={two}"])
    first_ok = first.wait(timeout=900) == 0 and (two / "results.json").is_file()
    b.record(p, "two mt-train processes into one directory", "mt-train hydra.run.dir=T/two (while another runs there)",
             proc, "yes (the first finished)" if first_ok else "NO")  # fmt: skip


def caches(b: Bench) -> None:
    p = "2 caches"
    args = [a for a in b.data if not a.startswith("data.cache_dir")] + ["tokenizer.vocab_size=60"]

    def fresh(name: str) -> tuple[list[str], Path]:
        cache = b.root / name
        shutil.copytree(b.root / "cache", cache)
        return [*args, f"data.cache_dir={cache}"], cache

    def rebuilt(proc: subprocess.CompletedProcess) -> str:
        warn = [
            ln.split("] - ", 1)[-1]
            for ln in (proc.stdout + proc.stderr).decode().splitlines()
            if "WARNING" in ln
        ]
        return "rebuilt: " + (warn[0] if warn else "no warning")

    a, cache = fresh("cache_spm")
    model = next((cache / "spm").rglob("*.model"))
    model.write_bytes(model.read_bytes()[:100])
    b.case(p, "truncated cached sentencepiece model", "mt-data", a, check=rebuilt)
    a, cache = fresh("cache_arrow")
    arrow = next((cache / "encoded").glob("train-*.arrow"))
    arrow.write_bytes(os.urandom(2048))
    b.case(p, "random bytes in the cached ids (arrow)", "mt-data", a, check=rebuilt)
    a, cache = fresh("cache_meta")
    next((cache / "spm").rglob("meta.json")).unlink()
    b.case(p, "tokenizer cache without its record", "mt-data", a, check=rebuilt)
    a, cache = fresh("cache_swap")
    dev = next((cache / "encoded").glob("validation-*.arrow"))
    shutil.copy(next((cache / "encoded").glob("test-*.arrow")), dev)
    b.case(p, "another split's ids copied over validation's", "mt-data", a, check=rebuilt)
    a, cache = fresh("cache_foreign")
    other = b.root / "cache_other"
    b.cli("mt-data", [*args, f"data.cache_dir={other}", "tokenizer.vocab_size=70"])
    mine = next((cache / "spm").rglob("*.model"))
    shutil.copy(next((other / "spm").rglob("*.model")), mine)
    b.case(p, "a model trained with other settings copied in", "mt-data", a, check=rebuilt)
    cfile = write(b.root / "cachefile", ["not a folder"])
    b.case(p, "data.cache_dir= a file", "mt-data", [*args, f"data.cache_dir={cfile}"], [cfile])


def ranges(b: Bench) -> None:
    p = "3 ranges"
    for override in ("trainer.max_len_a=-1", "trainer.max_len_b=-3", "trainer.max_minutes=-5",
                     "trainer.early_stopping_patience=-1", "optim.min_lr=0.5", "trainer.log_every=0", "seed=-1",
                     "optim.betas=[0.9,1.5]", "model.dropout=1.0", "data.batch_tokens=-10",
                     "tokenizer.character_coverage=1.5", "optim.warmup_steps=100"):  # fmt: skip
        b.case(
            p,
            f"`{override}`",
            "mt-train",
            [*b.data, *TINY, override, f"hydra.run.dir={b.root / 'rng'}"],
            [b.base],
        )
    b.case(
        p,
        "`beam_size=0`",
        "mt-translate",
        [f"checkpoint={b.ckpt}", "beam_size=0"],
        [b.base],
        stdin=b"ein Hund\n",
    )
    b.case(p, "`length_penalty=-1`", "mt-evaluate", [f"checkpoint={b.ckpt}", "length_penalty=-1",
           f"hydra.run.dir={b.root / 'ev0'}"], [b.base])  # fmt: skip


def late_failures(b: Bench) -> None:
    p = "4 late failures"
    args = [a for a in b.data if not a.startswith("data.files.train")]
    d = b.root / "dirdata"
    (d / "train.de").mkdir(parents=True)
    (d / "train.en").mkdir(parents=True)
    b.case(p, "train.de is a directory", "mt-data", [*args, f"data.files.train={d / 'train'}"])
    loop = b.root / "loop"
    loop.mkdir()
    os.symlink(loop / "train.en", loop / "train.de")
    os.symlink(loop / "train.de", loop / "train.en")
    b.case(p, "train files are a symlink loop", "mt-data", [*args, f"data.files.train={loop / 'train'}"])
    dang = b.root / "dangling"
    dang.mkdir()
    os.symlink(b.root / "gone.de", dang / "train.de")
    shutil.copy(b.root / "corpus" / "train.en", dang / "train.en")
    b.case(p, "train.de is a dangling symlink", "mt-data", [*args, f"data.files.train={dang / 'train'}"])
    b.case(p, "`trainer.device=cuda` without CUDA", "mt-train", [*b.data, *TINY, "trainer.device=cuda",
           f"hydra.run.dir={b.root / 'dev1'}"], [b.base])  # fmt: skip
    b.case(
        p,
        "`device=tpu` (unknown device)",
        "mt-translate",
        [f"checkpoint={b.ckpt}", "device=tpu"],
        [b.base],
        stdin=b"x\n",
    )
    b.case(p, "`trainer.max_steps=${nope}` (interpolation)", "mt-train", [*b.data, *TINY, "trainer.max_steps=${nope}",
           f"hydra.run.dir={b.root / 'interp'}"], [b.base])  # fmt: skip
    write(b.root / "empty.de", b"")
    write(b.root / "empty.en", b"")
    b.case(p, "empty test split (before training?)", "mt-train", [*b.data, *TINY, f"data.files.test={b.root / 'empty'}",
           f"hydra.run.dir={b.root / 'emptytest'}"], check=lambda proc: "ACCEPTED")  # fmt: skip
    bad = b.root / "badtest"
    write(bad / "t.de", lines_of(5, DE, 9))
    write(bad / "t.en", b"a dog\nthe cat\ncaf\xe9\na man\nthe child\n")
    b.case(p, "test split with invalid UTF-8 (before training?)", "mt-train", [*b.data, *TINY,
           f"data.files.test={bad / 't'}", f"hydra.run.dir={b.root / 'badtest_run'}"])  # fmt: skip
    r = b.root / "plots_fail"
    b.case(p, "plots cannot be written (ENOSPC, injected)", "mt-train", [*b.data, *TINY, f"hydra.run.dir={r}"],
           inject=PLOT_FAILS, check=lambda proc: "accepted: " + next((ln.split("] - ", 1)[-1] for ln in
           (proc.stdout + proc.stderr).decode().splitlines() if "plot not saved" in ln), "no warning"))  # fmt: skip
    r = b.root / "disk_full"
    b.case(p, "disk full while the final evaluation writes (injected)", "mt-train", [*b.data, *TINY, f"hydra.run.dir={r}"],
           inject=FULL_DISK_AT_TEST)  # fmt: skip
    b.case(p, "... then `resume=` that run", "mt-train", [*b.data, *TINY, f"resume={r}"], [r / "checkpoints",
           r / "outputs" / "validation.hyp"], check=lambda proc: "finished: " + next((ln.split("] - ", 1)[-1]
           for ln in (proc.stdout + proc.stderr).decode().splitlines() if "reusing the outputs" in ln), "decoded again"))  # fmt: skip
    afile = write(b.root / "afile2", ["keep"])
    b.case(p, "output= under a file", "mt-translate", [f"checkpoint={b.ckpt}", f"output={afile / 'o.txt'}"], [afile],
           stdin=b"ein Hund\n")  # fmt: skip
    b.case(p, "input= a directory", "mt-translate", [f"checkpoint={b.ckpt}", f"input={d}"], [b.base])
    b.case(p, "checkpoint= a directory", "mt-evaluate", [f"checkpoint={b.base / 'checkpoints'}",
           f"hydra.run.dir={b.root / 'ev1'}"], [b.base])  # fmt: skip
    b.case(p, "mt-align src= a directory", "mt-align", [f"checkpoint={b.ckpt}", f"src={d}",
           f"tgt={b.root / 'corpus' / 'dev.en'}"], [b.base])  # fmt: skip


def not_included(proc: subprocess.CompletedProcess) -> str:
    """The report's line for the damaged job (job 2), under its "Not included" heading."""
    lines = proc.stdout.decode().splitlines()
    start = next(
        (i for i, ln in enumerate(lines) if ln.lower().lstrip("# ").startswith("not included")), None
    )
    if start is None:
        return "NOT LISTED: the damaged job is missing from the report"
    entry = next((ln.strip() for ln in lines[start + 1 :] if ln.strip()), "")
    return f"reported the other 2 jobs; not included: {entry}"


def text_and_reports(b: Bench) -> None:
    p = "5 text, reports"
    nfd = b.root / "nfd"
    nfc = b.root / "nfc"
    for lang in ("de", "en"):  # references with decomposable letters (the English words have none)
        lines = (b.root / "corpus" / f"test.{lang}").read_text(encoding="utf-8").splitlines()
        lines = [f"{line} café naïve über" if lang == "en" else line for line in lines]
        write(nfc / f"test.{lang}", unicodedata.normalize("NFC", "\n".join(lines) + "\n").encode())
        write(nfd / f"test.{lang}", unicodedata.normalize("NFD", "\n".join(lines) + "\n").encode())

    def bleu(run: Path) -> float:
        return json.loads((run / "results.json").read_text())["test"]["test"]["bleu"]["score"]  # split "test"

    runs = {}
    for form, prefix in (("nfc", nfc / "test"), ("nfd", nfd / "test")):
        runs[form] = b.root / f"ev_{form}"
        b.cli(
            "mt-evaluate",
            [f"checkpoint={b.ckpt}", f"+files.test={prefix}", f"hydra.run.dir={runs[form]}"],
        )
    same = "?"
    try:
        same = "same" if bleu(runs["nfc"]) == bleu(runs["nfd"]) else "DIFFERENT"
    except (OSError, KeyError, ValueError):
        same = "no results"
    b.case(p, "references in NFD instead of NFC", "mt-evaluate", [f"checkpoint={b.ckpt}", f"+files.test={nfd / 'test'}",
           f"hydra.run.dir={b.root / 'ev_nfd2'}"], check=lambda proc: f"accepted: test BLEU {same} as with NFC references")  # fmt: skip
    odd = "ein Hund\u2028läuft\nein\x85Mann\nrot\rblau\nklein\x0cgroß\n\nauf\u2029im\n".encode()
    b.case(p, "input lines holding U+2028, U+0085, \\r, \\f, U+2029", "mt-translate", [f"checkpoint={b.ckpt}"],
           stdin=odd, check=lambda proc: f"accepted: {proc.stdout.decode().count(chr(10))} output lines for 6 input lines")  # fmt: skip
    moved = b.root / "moved_run"
    shutil.copytree(b.base, moved)
    corpus2 = b.root / "corpus_moved"
    shutil.copytree(b.root / "corpus", corpus2)
    for f in (b.root / "corpus").glob("train.*"):
        f.rename(b.root / f"{f.name}.away")
    b.case(p, "evaluate after the training corpus moved", "mt-evaluate", [f"checkpoint={moved / 'checkpoints' / 'best.pt'}",
           f"+files.test={corpus2 / 'test'}", f"hydra.run.dir={b.root / 'ev_moved'}"],
           check=lambda proc: "accepted: evaluated")  # fmt: skip
    for f in b.root.glob("train.*.away"):
        f.rename(b.root / "corpus" / f.name.removesuffix(".away"))
    # a sweep of three finished jobs, one damaged per case
    for name, damage in {
        "results.json that is not JSON": lambda j: write(j / "results.json", b"{not json"),
        "results.json that is a list": lambda j: write(j / "results.json", b"[1, 2]"),
        "a NaN BLEU in results.json": lambda j: write(j / "results.json", (j / "results.json").read_bytes().replace(
            b'"score": ', b'"score": NaN, "was": ', 1)),
        "a hypothesis file that is not UTF-8": lambda j: write(j / "outputs" / "test.hyp", b"\xff\xfe bad\n" * 20),
        "results.json that is a directory": lambda j: ((j / "results.json").unlink(), (j / "results.json").mkdir()),
    }.items():  # fmt: skip
        sweep = b.root / f"sweep_{abs(hash(name))}"
        for i in range(3):
            shutil.copytree(b.base, sweep / str(i))
        damage(sweep / "2")
        b.case(p, f"mt-report: {name}", "mt-report", [str(sweep)], check=not_included)
    gz = b.root / "input.gz"
    gz.write_bytes(gzip.compress(b"ein Hund\n" * 3)[:-6])
    b.case(p, "truncated gzip input", "mt-translate", [f"checkpoint={b.ckpt}", f"input={gz}"], [b.base])


def translate_memory(b: Bench) -> None:
    """mt-translate on 5,000 and 50,000 lines (the tiny corpus's train.de repeated, so that only
    the count grows): the peak RSS ratio (scripts/translate_memory.py)."""
    out = b.root / "memory.json"
    script = Path(__file__).with_name("translate_memory.py")
    proc = subprocess.run([sys.executable, str(script), "--checkpoint", str(b.ckpt), "--lines", "5000", "50000", "--input",
                           str(b.root / "corpus" / "train.de"),
                           "--json", str(out)], cwd=b.root, capture_output=True, timeout=1800)  # fmt: skip
    answer = None
    if proc.returncode == 0:
        runs = json.loads(out.read_text())["rows"]
        answer = "accepted: peak RSS " + ", ".join(
            f"{r['lines']:,} lines {r['peak_rss_mib']:.0f} MiB (first output at {r['first_output_s']:.1f} of {r['wall_s']:.1f} s)"
            for r in runs) + f"; ratio {runs[-1]['peak_rss_mib'] / runs[0]['peak_rss_mib']:.2f}"  # fmt: skip
    b.record("5 text, reports", "50,000 input lines against 5,000 (memory bound)", "mt-translate input=50k.de output=...",
             proc, "n/a", answer)  # fmt: skip


def all_cases(root: Path) -> list[Row]:
    b = Bench(root)
    for group in (run_directories, caches, ranges, late_failures, text_and_reports, translate_memory):
        group(b)
    return b.rows


def table(rows: list[Row]) -> str:
    out = [
        "| pattern | case | command | exit | first line of the answer | earlier files intact |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        answer = r.answer.replace("|", "\\|")[:400]
        out.append(f"| {r.pattern} | {r.case} | `{r.command[:90]}` | {r.code} | {answer} | {r.intact} |")
    bad = [r for r in rows if r.intact == "NO" or "TRACEBACK" in r.answer or r.code not in (0, 2)]
    out.append(f"\n{len(rows)} cases; {len(bad)} with a traceback, another exit code or changed files.")
    return "\n".join(out) + "\n"
