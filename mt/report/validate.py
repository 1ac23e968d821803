"""Reading and checking what a report takes from one job directory: `results.json` (every value
the report uses: the config, the validation and test scores, the training minutes) and the
`outputs/<split>.hyp` / `.ref` files of the paired bootstrap.

Each problem is a :class:`JobProblem` whose message names the file and what is wrong; the
report lists that job under "not included" and goes on with the others.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from mt.evaluation.metrics import nfc_lines

RESULTS_FILE = "results.json"
REQUIRED_METRICS = ("bleu", "chrf")  # in every report's tables, for validation and each test split
OPTIONAL_METRICS = ("ter", "bleu_tok_lc")  # checked when present
# Sanity bounds: larger values are garbage (and near 1e308 would overflow a mean).
MAX_SCORE = 1e6
MAX_MINUTES = 1e7

Outputs = dict[str, tuple[list[str] | None, list[str] | None]]  # split -> (hyps, refs); None: no file


class JobProblem(ValueError):
    """Why a job cannot be reported: the file and what is wrong with it, in one line."""


def _type_name(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    names = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def read_text(path: Path, rel: str, missing_ok: bool = False) -> str | None:
    """The UTF-8 text of a job's file (None when it does not exist and `missing_ok`); JobProblem
    when it is not a readable file or not UTF-8."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if missing_ok:
            return None
        raise JobProblem(f"{rel} does not exist") from None
    except IsADirectoryError:
        raise JobProblem(f"{rel} is a directory, not a file") from None
    except (OSError, ValueError) as e:  # permission denied, an I/O error, a NUL in the name
        raise JobProblem(f"{rel} cannot be read ({getattr(e, 'strerror', None) or e})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise JobProblem(f"{rel} is not UTF-8 (byte 0x{data[e.start]:02x} on line {line})") from None


def _score(block: dict[str, Any], metric: str, where: str) -> None:
    """Check `block[metric]` is {"score": a finite number >= 0}."""
    entry = block.get(metric)
    if not isinstance(entry, dict) or "score" not in entry:
        raise JobProblem(
            f'{RESULTS_FILE}: {where}.{metric} is {_type_name(entry)}, not {{"score": <number>}}'
        )
    value = entry["score"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JobProblem(f"{RESULTS_FILE}: {where}.{metric}.score is {_type_name(value)}, not a number")
    if not (math.isfinite(value) and 0 <= value <= MAX_SCORE):
        raise JobProblem(f"{RESULTS_FILE}: {where}.{metric}.score is {value}, not a finite score >= 0")


def _scores(block: Any, where: str) -> None:
    """Check a block of scores (`valid`, `test.<split>`): the required metrics, and the optional ones present."""
    if not isinstance(block, dict):
        raise JobProblem(f"{RESULTS_FILE}: {where} is {_type_name(block)}, not an object of scores")
    for metric in REQUIRED_METRICS + tuple(m for m in OPTIONAL_METRICS if m in block):
        _score(block, metric, where)


def check_results(results: Any) -> dict[str, Any]:
    """`results` if it has every value the report uses, well-formed; JobProblem naming the first that is not."""
    if not isinstance(results, dict):
        raise JobProblem(f"{RESULTS_FILE} holds {_type_name(results)}, not a JSON object")
    if not isinstance(results.get("config"), dict):
        raise JobProblem(f"{RESULTS_FILE} has no 'config' object (not written by mt-train)")
    _scores(results.get("valid"), "valid")
    tests = results.get("test")
    if not isinstance(tests, dict):
        raise JobProblem(f"{RESULTS_FILE}: test is {_type_name(tests)}, not an object of test splits")
    for split, block in tests.items():
        _scores(block, f"test.{split}")
    train = results.get("train", {})
    if not isinstance(train, dict):
        raise JobProblem(f"{RESULTS_FILE}: train is {_type_name(train)}, not an object")
    minutes = train.get("train_minutes", 0.0)
    if (
        isinstance(minutes, bool) or not isinstance(minutes, int | float) or not 0 <= minutes <= MAX_MINUTES
    ):  # NaN fails too
        raise JobProblem(f"{RESULTS_FILE}: train.train_minutes is {minutes!r:.40}, not a number of minutes")
    return results


def read_results(job_dir: Path) -> dict[str, Any]:
    """A job's results.json, parsed and checked (:func:`check_results`)."""
    text = read_text(job_dir / RESULTS_FILE, RESULTS_FILE)
    try:
        results = json.loads(text or "")
    except (ValueError, RecursionError) as e:
        raise JobProblem(f"{RESULTS_FILE} is not valid JSON ({' '.join(str(e).split())})") from None
    return check_results(results)


def _lines(path: Path, rel: str) -> list[str] | None:
    """The NFC lines of a file written as "\\n".join(lines) + "\\n" (empty lines kept); None when absent."""
    text = read_text(path, rel, missing_ok=True)
    if text is None:
        return None
    lines = text.split("\n")
    return nfc_lines(lines[:-1] if lines and lines[-1] == "" else lines)


def read_outputs(job_dir: Path, splits: list[str]) -> Outputs:
    """{split: (hypotheses, references)} from `outputs/<split>.hyp` / `.ref`, in Unicode NFC like
    every score; None for a file that does not exist, JobProblem for one that cannot be read."""
    out: Outputs = {}
    for split in splits:
        rel = f"outputs/{split}"
        out[split] = (
            _lines(job_dir / f"{rel}.hyp", f"{rel}.hyp"),
            _lines(job_dir / f"{rel}.ref", f"{rel}.ref"),
        )
    return out
