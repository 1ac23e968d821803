#!/usr/bin/env python
"""mt and JoeyNMT 2.3 side by side on one machine: the same Multi30k de->en text, the same
sentencepiece subwords, mt's default model as closely as JoeyNMT allows, one toolkit after the
other (never both at once).

    export MT_DATA_DIR=/path/holding/multi30k
    python scripts/peer_joeynmt.py --json peer.json                 # about 50 minutes on 2 cores
    python scripts/peer_joeynmt.py --budgets 5 15 --json peer.json  # BLEU at two time budgets
    python scripts/peer_joeynmt.py --quick --json peer.json         # a smoke run: figures not comparable

Steps (everything under --workdir, default runs/peer):
1. JoeyNMT 2.3 from the package registry into its own virtual environment (--venv), with the
   torch version this interpreter runs; created once, reused after.
2. The data, exported from mt's own pipeline (`prepare_data` of the default config): the
   cleaned text of train / validation / test_2016_flickr, mt's sentencepiece model and its
   pieces as JoeyNMT's vocabulary file. JoeyNMT encodes the same text with the same model.
3. Training speed: each toolkit trains --speed-updates updates without validation (mt in fp32
   and in bf16, its default; JoeyNMT in fp32, the only precision it runs on a CPU). Target
   tokens per second over the updates after the first --warmup-updates, timed the same way in
   both (scripts/peer_timing.py: from the start of one update to the start of the next).
4. BLEU after the same wall-clock budget: each toolkit trains for --budgets minutes (counted
   from its first update, validation every 150 updates included), tests its best checkpoint
   (by validation BLEU) with beam 5, and both hypothesis files are scored by mt's scorer
   against the same references. Beam-5 sentences/s come from those final tests (validation
   and test_2016_flickr with each toolkit's best checkpoint, search time only).

Prints a table and the ratios mt / JoeyNMT; `--json` writes every figure with the settings that
could not be matched (JOEYNMT_DIFFERENCES).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
TIMING = ROOT / "scripts" / "peer_timing.py"
sys.path.insert(0, str(ROOT / "scripts"))

from benchmark import compose_config  # noqa: E402

JOEYNMT = "joeynmt==2.3.0"
# imported by joeynmt.helpers but not among JoeyNMT 2.3's declared dependencies
UNDECLARED = ["importlib-metadata"]
# mt's default de->en run; overrides given on the command line come after. The first test split
# (test_2016_flickr) is the one both toolkits are scored on.
DEFAULT_OVERRIDES = ["data.src_lang=de", "data.tgt_lang=en"]
# What JoeyNMT 2.3 cannot set as mt's default model and training do (the rest match).
JOEYNMT_DIFFERENCES = [
    "attentional vector: mt tanh(W [context; h; target embedding]), JoeyNMT tanh(W [h; context])",
    "encoder output dropout: mt 0.3 on the encoder states; JoeyNMT's 1-layer encoder has none",
    "initialisation: mt PyTorch's defaults; JoeyNMT xavier_uniform weights and embeddings, zero biases",
    "learning_rate_min: mt keeps training at its 1e-5 floor, JoeyNMT stops there (set to 1e-8)",
    "batches: mt sorts by length in chunks of 64 batches (bucketing) and caps padded tokens at 6000; "
    "JoeyNMT shuffles without bucketing and closes a batch once it reaches 6000 tokens",
    "validation: mt greedy in batches of 500 sentences, JoeyNMT greedy in batches of 100",
    "output length cap: mt 1.5 x each source + 10, JoeyNMT 1.5 x the longest source of the batch",
    "precision: mt bf16 autocast by default; JoeyNMT runs fp32 only on a CPU (fp16 is CUDA-only)",
]


def run(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> float:
    """Run a command with its output in `log`; seconds taken. Exits with the log's tail on failure."""
    start = time.perf_counter()
    with log.open("w") as out:
        rc = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    if rc:
        tail = log.read_text(errors="replace").splitlines()[-25:]
        sys.exit(f"{' '.join(map(str, cmd[:6]))} ... failed (exit {rc}); {log}:\n" + "\n".join(tail))
    return time.perf_counter() - start


def setup_venv(venv: Path) -> Path:
    """JoeyNMT 2.3 and this torch version in their own virtual environment -> its python."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import joeynmt, torch; print(joeynmt.__version__, torch.__version__)"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.check_call([sys.executable, "-m", "venv", str(venv)])
    torch_version = torch.__version__.split("+")[0]
    subprocess.check_call([str(python), "-m", "pip", "install", "-q", f"torch=={torch_version}"])
    subprocess.check_call([str(python), "-m", "pip", "install", "-q", JOEYNMT, *UNDECLARED])
    return python


def export_data(work: Path, overrides: list[str]) -> dict[str, Any]:
    """mt's corpus and tokenizer (the train config with `overrides`) as JoeyNMT's plain files
    WORK/data/{train,dev,test}.LANG, spm.model and vocab.txt -> the config, test split and references."""
    from mt.data.pipeline import prepare_data
    from mt.io import write_lines

    cfg = compose_config(overrides)
    data = prepare_data(cfg.data, cfg.tokenizer)
    tests = cfg.data.test_splits or [s for s in data.text if s not in ("train", "validation")]
    test = tests[0]
    out = work / "data"
    out.mkdir(parents=True, exist_ok=True)
    for name, split in (("train", "train"), ("dev", "validation"), ("test", test)):
        for side, lang in (("src", cfg.data.src_lang), ("tgt", cfg.data.tgt_lang)):
            write_lines(out / f"{name}.{lang}", list(data.text[split][side]))
    sp = data.tokenizer.src_sp  # one joint model (mt's default)
    (out / "spm.model").write_bytes(sp.serialized_model_proto())
    specials = {sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()}
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if i not in specials]
    write_lines(out / "vocab.txt", pieces)
    return {"cfg": cfg, "test": test, "refs": list(data.text[test]["tgt"])}


def joeynmt_config(work: Path, name: str, cfg: Any, max_updates: int, validate: bool) -> Path:
    """WORK/NAME.yaml: a JoeyNMT config mirroring mt's model and training `cfg` (see
    JOEYNMT_DIFFERENCES), reading export_data's files; its model directory is WORK/NAME."""
    data, m, o, t = work / "data", cfg.model, cfg.optim, cfg.trainer

    def side(lang: str) -> dict[str, Any]:
        return {"lang": lang, "level": "bpe", "lowercase": False, "normalize": False,
                "max_length": cfg.data.max_len, "voc_file": str(data / "vocab.txt"),
                "tokenizer_type": "sentencepiece", "tokenizer_cfg": {"model_file": str(data / "spm.model")}}  # fmt: skip

    emb = {"embedding_dim": m.emb_size, "dropout": m.emb_dropout}  # JoeyNMT's embedding dropout
    config = {
        "name": name,
        "model_dir": str(work / name),
        "use_cuda": False,
        "random_seed": cfg.seed,
        "data": {
            "train": str(data / "train"),
            "dev": str(data / "dev"),
            "test": str(data / "test"),
            "dataset_type": "plain",
            "src": side(cfg.data.src_lang),
            "trg": side(cfg.data.tgt_lang),
        },  # fmt: skip
        "testing": {
            "n_best": 1,
            "beam_size": t.test_beam_size,
            "beam_alpha": t.length_penalty,
            "batch_size": cfg.data.eval_batch_rows // t.test_beam_size,
            "batch_type": "sentence",
            "eval_metrics": ["bleu"],
        },  # fmt: skip
        "training": {
            "optimizer": o.name,
            "adam_betas": list(o.betas),
            "learning_rate": o.lr,
            "learning_rate_min": 1e-8,
            "weight_decay": o.weight_decay,
            "clip_grad_norm": o.clip_grad_norm,
            "scheduling": "plateau",
            "patience": o.plateau_patience - 1,
            "decrease_factor": o.plateau_factor,
            "label_smoothing": t.label_smoothing,
            "loss": "crossentropy",
            "normalization": "tokens",
            "batch_size": cfg.data.batch_tokens,
            "batch_type": "token",
            "batch_multiplier": 1,
            "epochs": 10_000,
            "updates": max_updates,
            "logging_freq": t.log_every,
            "validation_freq": t.val_every if validate else 10**9,
            "early_stopping_metric": "bleu",
            "shuffle": True,
            "overwrite": True,
            "keep_best_ckpts": 1,
            "print_valid_sents": [],
        },  # fmt: skip
        "model": {
            "tied_embeddings": False,
            "tied_softmax": m.tie_embeddings,
            "encoder": {
                "type": "recurrent",
                "rnn_type": m.rnn_type,
                "embeddings": dict(emb),
                "hidden_size": m.enc_hidden,
                "bidirectional": m.bidirectional,
                "num_layers": m.enc_layers,
                "dropout": m.dropout,
            },
            "decoder": {
                "type": "recurrent",
                "rnn_type": m.rnn_type,
                "embeddings": dict(emb),
                "hidden_size": m.dec_hidden,
                "num_layers": m.dec_layers,
                "dropout": m.dropout,
                "hidden_dropout": m.dropout,
                "input_feeding": m.input_feeding,
                "init_hidden": m.bridge,
                "attention": m.attention.name,
            },
        },  # fmt: skip
    }
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def train_speed(record: dict[str, Any], warmup: int) -> float:
    """Target tokens/s over the updates after `warmup`, validations subtracted."""
    ups = record["updates"]
    if len(ups) < warmup + 2:
        raise SystemExit(f"only {len(ups)} updates were recorded; need more than --warmup-updates + 1")
    first, last = ups[warmup]["start"], ups[-1]["start"]
    tokens = sum(u["tokens"] for u in ups[warmup:-1])
    valid = sum(v["seconds"] for v in record["validations"] if first <= v["start"] < last)
    return tokens / (last - first - valid)


def beam_speed(record: dict[str, Any], beam: int) -> tuple[float, int]:
    """Sentences/s and sentences of the searches with this beam size."""
    runs = [s for s in record["searches"] if s["beam_size"] == beam]
    sentences = sum(s["sentences"] for s in runs)
    return sentences / max(sum(s["seconds"] for s in runs), 1e-9), sentences


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", type=Path, default=ROOT / "runs" / "peer")
    ap.add_argument(
        "--venv", type=Path, default=None, help="JoeyNMT's virtual environment (WORKDIR/joeynmt-venv)"
    )
    ap.add_argument(
        "--budgets",
        type=float,
        nargs="*",
        default=[15.0],
        help="training minutes per toolkit (none: speed only)",
    )
    ap.add_argument("--speed-updates", type=int, default=60, help="0: no speed runs (budgets only)")
    ap.add_argument("--warmup-updates", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="12 speed updates, a 1-minute budget: a smoke run")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("overrides", nargs="*", help="Hydra overrides of mt's train config, for both toolkits")
    a = ap.parse_args()
    if a.quick:
        a.speed_updates, a.warmup_updates, a.budgets = 12, 2, [1.0]
    work = a.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    peer_python = setup_venv((a.venv or work / "joeynmt-venv").resolve())
    overrides = [*DEFAULT_OVERRIDES, *a.overrides]
    exported = export_data(work, overrides)
    cfg, refs, test = exported["cfg"], exported["refs"], exported["test"]
    env = dict(os.environ)
    mt_base = [o for o in overrides if not o.startswith("data.test_splits=")]
    mt_base += [f"data.test_splits=[{test}]", "trainer.progress=false"]

    def mt_run(name: str, overrides: list[str]) -> dict[str, Any]:
        run_dir = work / name
        if run_dir.exists():  # this script's own earlier run: mt-train never writes into a used run dir
            shutil.rmtree(run_dir)
        record = work / f"{name}.timing.json"
        args = [*mt_base, *overrides, f"hydra.run.dir={run_dir}"]
        seconds = run([sys.executable, str(TIMING), "--toolkit", "mt", "--record", str(record), "--", *args],
                      work / f"{name}.log", env)  # fmt: skip
        return {"record": load(record), "dir": run_dir, "seconds": seconds}

    def joey_run(name: str, max_updates: int, minutes: float, test: bool) -> dict[str, Any]:
        config = joeynmt_config(work, name, cfg, max_updates, validate=test)
        record = work / f"{name}.timing.json"
        cmd = [str(peer_python), str(TIMING), "--toolkit", "joeynmt", "--record", str(record),
               "--deadline-minutes", str(minutes), "--", "train", str(config)]  # fmt: skip
        seconds = run(cmd + ([] if test else ["--skip-test"]), work / f"{name}.log", env)
        return {"record": load(record), "dir": work / name, "seconds": seconds}

    results: dict[str, Any] = {"machine": {"torch": torch.__version__, "threads": torch.get_num_threads()},
                               "joeynmt": JOEYNMT, "differences": JOEYNMT_DIFFERENCES, "budgets": {}}  # fmt: skip
    n = a.speed_updates
    if n:
        no_valid = [f"trainer.max_steps={n}", f"trainer.val_every={n}", "trainer.early_stopping_patience=0"]
        speed = {
            "mt_fp32": mt_run("mt_speed_fp32", [*no_valid, "trainer.precision=fp32"]),
            "mt_bf16": mt_run("mt_speed_bf16", [*no_valid, "trainer.precision=bf16"]),
            "joeynmt_fp32": joey_run("joeynmt_speed", n, 0.0, test=False),
        }
        results["compat"] = speed["joeynmt_fp32"]["record"].get("compat", [])
        tps = {k: train_speed(v["record"], a.warmup_updates) for k, v in speed.items()}
        results["train_tokens_per_s"] = {k: round(v, 1) for k, v in tps.items()}
        results["train_ratio_fp32"] = round(tps["mt_fp32"] / tps["joeynmt_fp32"], 2)
        results["train_ratio_fastest"] = round(max(tps["mt_fp32"], tps["mt_bf16"]) / tps["joeynmt_fp32"], 2)

    from mt.evaluation.metrics import score_corpus

    for minutes in a.budgets:
        tag = f"{minutes:g}min"
        mt = mt_run(f"mt_{tag}", [f"trainer.max_minutes={minutes}", "trainer.max_steps=0"])
        joey = joey_run(f"joeynmt_{tag}", 10**9, minutes, test=True)
        results.setdefault("compat", joey["record"].get("compat", []))
        row: dict[str, Any] = {}
        for name, r, hyp_file in (("mt", mt, mt["dir"] / "outputs" / f"{test}.hyp"),
                                  ("joeynmt", joey, joey["dir"] / "best.hyps.test")):  # fmt: skip
            hyps = hyp_file.read_text(encoding="utf-8").splitlines()
            scores = score_corpus(hyps, refs, cfg.data.tgt_lang)
            sent_s, sentences = beam_speed(r["record"], cfg.trainer.test_beam_size)
            row[name] = {"bleu": scores["bleu"]["score"], "signature": scores["bleu"]["signature"],
                         "chrf": scores["chrf"]["score"], "updates": len(r["record"]["updates"]),
                         "beam_sentences_per_s": round(sent_s, 1), "beam_sentences": sentences,
                         "process_minutes": round(r["seconds"] / 60, 1)}  # fmt: skip
        row["beam_ratio"] = round(
            row["mt"]["beam_sentences_per_s"] / row["joeynmt"]["beam_sentences_per_s"], 2
        )
        row["bleu_difference"] = round(row["mt"]["bleu"] - row["joeynmt"]["bleu"], 2)
        results["budgets"][tag] = row

    if n:
        print(f"training target tokens/s ({n} updates, first {a.warmup_updates} skipped):")
        for k, v in results["train_tokens_per_s"].items():
            print(f"  {k:14s} {v:9.1f}")
        print(
            f"  mt / JoeyNMT: fp32 {results['train_ratio_fp32']}x, fastest {results['train_ratio_fastest']}x"
        )
    for tag, row in results["budgets"].items():
        print(f"{tag}: BLEU {test} mt {row['mt']['bleu']} ({row['mt']['updates']} updates) vs JoeyNMT "
              f"{row['joeynmt']['bleu']} ({row['joeynmt']['updates']} updates); beam 5 sentences/s "
              f"{row['mt']['beam_sentences_per_s']} vs {row['joeynmt']['beam_sentences_per_s']} "
              f"({row['beam_ratio']}x)")  # fmt: skip
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
