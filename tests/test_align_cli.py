"""Forced alignment: the library against the step-by-step decoder, and real `mt-align` runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from clihelpers import TINY_MODEL, run, synthetic_lines, tiny_corpus_args

from mt.config import (
    DEFAULT_ALIGN_METHOD,
    AttentionConfig,
    ModelConfig,
    TokenizerConfig,
)
from mt.data.tokenizer import BOS_ID, Tokenizer
from mt.evaluation.alignment import word_attention, words_of_pieces
from mt.evaluation.force_align import force_align
from mt.models.attention import ATTENTION_REGISTRY
from mt.models.seq2seq import build_model

# -- library ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> Tokenizer:
    de, en = synthetic_lines(200, "de", seed=3), synthetic_lines(200, "en", seed=3)
    cfg = TokenizerConfig(vocab_size=40, joint=False)
    return Tokenizer.train_or_load(de, en, cfg, tmp_path_factory.mktemp("spm"))


@torch.no_grad()
def reference_attention(model, tok: Tokenizer, src: str, tgt: str, max_src_len: int) -> np.ndarray:
    """One sentence, one decoder step at a time with the gold prefix -> word-level attention."""
    (src_ids, src_spans), (tgt_ids, tgt_spans) = (
        tok.encode_spans([src], "src")[0],
        tok.encode_spans([tgt], "tgt")[0],
    )
    src_ids, src_spans = src_ids[: max_src_len - 1], src_spans[: max_src_len - 1]
    ids = torch.tensor([src_ids + [3]])
    ctx, state = model.encode(ids, torch.tensor([ids.size(1)]), torch.ones_like(ids, dtype=torch.bool))
    rows = []
    for prev in [BOS_ID] + tgt_ids[:-1]:  # each target piece's row (the EOS row is not needed)
        _, weights, state = model.decoder.step(torch.tensor([prev]), state, ctx)
        rows.append(weights[0, :-1])  # without the EOS column
    att = torch.stack(rows).numpy()  # (T, S)
    return word_attention(att, np.array(words_of_pieces(src, src_spans)), np.array(words_of_pieces(tgt, tgt_spans)),
                          len(src.split()), len(tgt.split()))  # fmt: skip


@pytest.mark.parametrize("style", ["luong", "bahdanau"])
@pytest.mark.parametrize("attention", sorted(ATTENTION_REGISTRY))
def test_force_align_equals_step_by_step_decoding(tokenizer, attention, style):
    rnn = "lstm" if style == "bahdanau" else "gru"
    torch.manual_seed(0)
    cfg = ModelConfig(attention=AttentionConfig(name=attention), emb_size=16, enc_hidden=16, dec_hidden=32,
                      dropout=0.0, emb_dropout=0.0, decoder_style=style, rnn_type=rnn)  # fmt: skip
    model = build_model(cfg, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size).eval()
    src, tgt = synthetic_lines(7, "de", seed=5), synthetic_lines(7, "en", seed=5)
    src[2] = ""  # an empty side: skipped, counted, no crash
    src[4] = " ".join([src[4]] * 8)  # longer than max_src_len: cut
    limit = 1 + max(len(ids) for k, ids in enumerate(tokenizer.encode_src(src)) if k != 4)  # cuts line 4 only
    out = force_align(model, tokenizer, src, tgt, torch.device("cpu"), batch_sentences=3, max_src_len=limit,
                      method="argmax", progress=False)  # fmt: skip
    assert (len(out), out.empty, out.truncated) == (7, 1, 1)
    assert out.links[2] == frozenset()
    for k, (s, t) in enumerate(zip(src, tgt, strict=True)):
        n_src, n_tgt = len(s.split()), len(t.split())
        assert out.attention[k].shape == (n_tgt, n_src)
        assert all(0 <= i < n_src and 0 <= j < n_tgt for i, j in out.links[k])
        if s:
            np.testing.assert_allclose(out.attention[k], reference_attention(model, tokenizer, s, t, limit),
                                       atol=1e-5)  # fmt: skip
            assert len(out.links[k]) == n_tgt  # argmax: one link per target word


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("attention", sorted(ATTENTION_REGISTRY))
def test_force_align_on_cuda_matches_cpu(tokenizer, attention):
    torch.manual_seed(0)
    cfg = ModelConfig(attention=AttentionConfig(name=attention), emb_size=16, enc_hidden=16, dec_hidden=32,
                      dropout=0.0, emb_dropout=0.0)  # fmt: skip
    model = build_model(cfg, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size).eval()
    src, tgt = synthetic_lines(9, "de", seed=6), synthetic_lines(9, "en", seed=6)
    cpu = force_align(model, tokenizer, src, tgt, torch.device("cpu"), progress=False)
    cuda = torch.device("cuda")
    gpu = force_align(model.to(cuda), tokenizer, src, tgt, cuda, progress=False)
    bf16 = force_align(model, tokenizer, src, tgt, cuda, precision="bf16", progress=False)
    for k in range(len(src)):
        np.testing.assert_allclose(gpu.attention[k], cpu.attention[k], atol=1e-4)
        np.testing.assert_allclose(bf16.attention[k], cpu.attention[k], atol=5e-2)
        assert len(bf16.links[k]) == len(tgt[k].split())


# -- the command --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """One real tiny mt-train run (de->en); returns (checkpoint, corpus folder)."""
    root = tmp_path_factory.mktemp("align")
    run_dir = root / "run"
    proc = run("mt-train", tiny_corpus_args(root) + [f"hydra.run.dir={run_dir}"] + TINY_MODEL, cwd=root)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return run_dir / "checkpoints" / "best.pt", root


def gold_sentences(root: Path, n: int = 8) -> tuple[list[str], list[str]]:
    de = (root / "test_2016_flickr.de").read_text(encoding="utf-8").splitlines()[:n]
    en = (root / "test_2016_flickr.en").read_text(encoding="utf-8").splitlines()[:n]
    return [" ".join(s.split()) for s in de], [" ".join(s.split()) for s in en]


def diagonal(n_first: int, n_second: int) -> tuple[str, str]:
    """1-based sure links k-k and possible links k-(k+1), as a gold annotator might give."""
    m = min(n_first, n_second)
    sure = " ".join(f"{k}-{k}" for k in range(1, m + 1))
    possible = " ".join(f"{k}-{k + 1}" for k in range(1, m) if k + 1 <= n_second)
    return sure, possible


def test_align_writes_one_pharaoh_line_per_pair(trained, tmp_path):
    ckpt, root = trained
    de, en = gold_sentences(root)
    de[3] = ""  # an empty pair gives an empty line
    (tmp_path / "in.de").write_text("\n".join(de) + "\n", encoding="utf-8")
    (tmp_path / "in.en").write_text("\n".join(en) + "\n", encoding="utf-8")
    args = [f"checkpoint={ckpt}", f"src={tmp_path / 'in.de'}", f"tgt={tmp_path / 'in.en'}", "device=cpu"]
    proc = run("mt-align", args + [f"output={tmp_path / 'out.align'}", "method=argmax"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert b"aligned 8 pairs in" in proc.stderr and b"1 empty skipped" in proc.stderr
    lines = (tmp_path / "out.align").read_text().splitlines()
    assert len(lines) == 8 and lines[3] == ""
    for s, t, line in zip(de, en, lines, strict=True):
        links = [tuple(map(int, tok.split("-"))) for tok in line.split()]
        assert all(0 <= i < len(s.split()) and 0 <= j < len(t.split()) for i, j in links)
        assert len({j for _, j in links}) == len(t.split()) or not s  # argmax: every target word
    stdout = run("mt-align", args + ["method=threshold", "threshold=0.3"], cwd=tmp_path)
    assert stdout.returncode == 0, stdout.stderr.decode()[-3000:]
    assert len(stdout.stdout.decode().splitlines()) == 8


def check_results(path: Path, n_pairs: int) -> dict:
    results = json.loads(path.read_text())
    for block in ("all", "in_vocabulary"):
        assert {"aer", "precision", "recall"} <= results[block].keys()
        assert 0.0 <= results[block]["aer"] <= 1.0
    assert results["all"]["sentences"] == n_pairs
    assert results["in_vocabulary"]["links_sure"] <= results["all"]["links_sure"]
    assert results["settings"]["method"] == DEFAULT_ALIGN_METHOD and "warnings" in results
    assert results["pairs"] == n_pairs and results["model"]["src_lang"] == "de"
    return results


def test_align_scores_pharaoh_gold(trained, tmp_path):
    ckpt, root = trained
    de, en = gold_sentences(root)
    # sure k-k from the diagonal; possible links use `p`
    links = [diagonal(len(s.split()), len(t.split()))[0] + " 1p2" for s, t in zip(de, en, strict=True)]
    links[0] += " 99-1"  # out of range: a warning, skipped
    for name, lines in (("g.de", de), ("g.en", en), ("g.align", links)):
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = [f"checkpoint={ckpt}", f"gold={tmp_path / 'g.align'}", "gold_format=pharaoh", f"gold_src={tmp_path / 'g.de'}",
            f"gold_tgt={tmp_path / 'g.en'}", f"output={tmp_path / 'out.align'}", "device=cpu"]  # fmt: skip
    proc = run("mt-align", args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert b"(in-vocabulary)" in proc.stdout and b"AER" in proc.stdout
    results = check_results(tmp_path / "out.align.results.json", len(de))
    assert results["warnings"] == 1
    assert len((tmp_path / "out.align").read_text().splitlines()) == len(de)


def test_align_scores_czenali_like_gold(trained, tmp_path):
    ckpt, root = trained
    de, en = gold_sentences(root)
    rows = []
    for s, t in zip(de, en, strict=True):
        sure, possible = diagonal(len(t.split()), len(s.split()))  # English first, like CzEnAli
        rows.append("\t".join([t, s, sure, possible]))
    (tmp_path / "gold.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    args = [f"checkpoint={ckpt}", f"gold={tmp_path / 'gold.tsv'}", "gold_langs=[en,de]", "device=cpu",
            f"results={tmp_path / 'scores.json'}"]  # fmt: skip
    proc = run("mt-align", args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert len(proc.stdout.decode().splitlines()) == len(de)  # the links, on standard output
    check_results(tmp_path / "scores.json", len(de))
    wrong = run("mt-align", [f"checkpoint={ckpt}", f"gold={tmp_path / 'gold.tsv'}"], cwd=tmp_path)
    assert wrong.returncode == 2 and b"gold_langs" in wrong.stderr


@pytest.mark.slow  # about 10 s: the full run's time budget
def test_align_mismatched_line_counts_is_exit_2_with_the_files(trained, tmp_path):
    ckpt, _ = trained
    (tmp_path / "a.de").write_text("ein Hund\nzwei Hunde\n", encoding="utf-8")
    (tmp_path / "a.en").write_text("a dog\n", encoding="utf-8")
    args = [f"checkpoint={ckpt}", f"src={tmp_path / 'a.de'}", f"tgt={tmp_path / 'a.en'}", "device=cpu"]
    proc = run("mt-align", args, cwd=tmp_path)
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert "a.de" in err and "a.en" in err and "Traceback" not in err
    alone = run("mt-align", [f"checkpoint={ckpt}", f"src={tmp_path / 'a.de'}"], cwd=tmp_path)
    assert alone.returncode == 2 and b"config error at `src`" in alone.stderr


def test_bench_align_reports_rates_and_model_flops(trained, tmp_path: Path):
    # scripts/bench_align.py on a tiny de->en model: a CzEnAli-shaped TSV (English, then German here)
    import json
    import subprocess
    import sys

    ckpt, root = trained
    en = (root / "test_2016_flickr.en").read_text(encoding="utf-8").splitlines()[:20]
    de = (root / "test_2016_flickr.de").read_text(encoding="utf-8").splitlines()[:20]
    (tmp_path / "gold.tsv").write_text("".join(f"{e}\t{d}\t1-1\t\n" for e, d in zip(en, de, strict=True)))
    script = Path(__file__).resolve().parents[1] / "scripts" / "bench_align.py"
    proc = subprocess.run([sys.executable, str(script), "--checkpoint", str(ckpt), "--gold", str(tmp_path / "gold.tsv"),
                           "--device", "cpu", "--repeats", "2"], capture_output=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = json.loads(proc.stdout)
    assert out["pairs"] == 20 and len(out["rates"]) == 2 and out["pairs_per_s"]["median"] > 0
    assert out["subword_tokens"]["src"] >= 20 + sum(len(d.split()) for d in de) and out["model_gflop"] > 0
    assert out["model_gflop_per_s"] > 0
