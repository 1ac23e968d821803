"""Vocabulary shortlists (mt.search.shortlist, `mt-shortlist`, `shortlist=` of mt-evaluate and
mt-translate): IBM Model 1 finds the translations of a word-for-word corpus, a batch's candidates
are the specials, the frequent ids and its subwords' translations, a shortlist of the whole
vocabulary decodes exactly as no shortlist, a partial one exactly as a model that gives every
other token no probability, and files of another tokenizer are refused by name."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from clihelpers import DE, EN, TINY_MODEL, run, synthetic_lines, tiny_corpus_args
from test_ensemble import BEAM, GREEDY, V, tiny_batch, tiny_model

from mt.data.tokenizer import EOS_ID, SPECIAL_IDS
from mt.errors import CheckpointError
from mt.models.ensemble import Ensemble
from mt.models.seq2seq import Seq2Seq
from mt.search.beam import beam_search
from mt.search.greedy import greedy_search
from mt.search.shortlist import (
    NO_ID,
    LexicalTable,
    Shortlist,
    build_table,
    load_table,
    save_table,
    tokenizer_sha256,
)

RULES = replace(BEAM, no_repeat_ngram_size=2, repetition_penalty=1.3, min_length=2)


def word_corpus(n: int) -> tuple[list[list[int]], list[list[int]], dict[str, int], dict[str, int]]:
    """The word-for-word de/en lines of clihelpers as ids (4 + word index; source ends with EOS)."""
    de_ids = {w: 4 + i for i, w in enumerate(dict.fromkeys(DE))}
    en_ids = {w: 4 + i for i, w in enumerate(dict.fromkeys(EN))}
    src = [[de_ids[w] for w in line.split()] + [EOS_ID] for line in synthetic_lines(n, "de", seed=1)]
    tgt = [[en_ids[w] for w in line.split()] for line in synthetic_lines(n, "en", seed=1)]
    return src, tgt, de_ids, en_ids


def test_ibm1_finds_the_translation_of_every_word() -> None:
    src, tgt, de_ids, en_ids = word_corpus(300)
    table = build_table(src, tgt, 4 + len(de_ids), 4 + len(en_ids), keep=3, iterations=5,
                        tokenizer_sha256="x", src_lang="de", tgt_lang="en")  # fmt: skip
    assert table.lexical.shape == (4 + len(de_ids), 3) and table.sentences == 300
    for de_word, en_word in zip(DE, EN, strict=True):
        assert int(table.lexical[de_ids[de_word], 0]) == en_ids[en_word], de_word
    # ids that never occur as a source (the specials) have no translations
    assert (table.lexical[sorted(SPECIAL_IDS)] == NO_ID).all()
    # every target id but the specials by frequency: "the" (three German articles) first
    counts = torch.bincount(torch.tensor([i for line in tgt for i in line]), minlength=4 + len(en_ids))
    assert int(table.frequent[0]) == en_ids["the"]
    assert sorted(table.frequent.tolist()) == list(range(4, 4 + len(en_ids)))
    assert (counts[table.frequent][:-1] >= counts[table.frequent][1:]).all()
    unseen = build_table(src, tgt, 4 + len(de_ids), 10 + len(en_ids), keep=3, iterations=1,
                         tokenizer_sha256="x", src_lang="de", tgt_lang="en")  # fmt: skip
    assert unseen.frequent[-6:].tolist() == list(range(4 + len(en_ids), 10 + len(en_ids)))  # never seen: last


def test_candidates_are_specials_frequent_ids_and_the_batch_sources_translations() -> None:
    lexical = torch.full((10, 3), NO_ID)
    lexical[5] = torch.tensor([20, 21, 22])
    lexical[6] = torch.tensor([23, NO_ID, NO_ID])
    lexical[7] = torch.tensor([24, 25, 26])  # only on a padded position below: not a candidate
    table = LexicalTable(torch.tensor([30, 31, 32]), lexical, "x", "de", "en", 1, 1)
    src = torch.tensor([[5, 6, EOS_ID], [6, 7, 0]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    got = Shortlist(table, frequent=2, per_source=2).candidates(src, mask)
    assert got.tolist() == [0, 1, 2, 3, 20, 21, 23, 30, 31]
    shortlist = Shortlist(table, frequent=0, per_source=3)
    assert shortlist.candidates(src, mask).tolist() == [0, 1, 2, 3, 20, 21, 22, 23]
    assert shortlist.describe() == {"frequent": 0, "per_source": 3, "batches": 1, "mean_candidates": 8.0}
    with pytest.raises(ValueError, match="shortlist_per_source must be in \\[0, 3\\]"):
        Shortlist(table, frequent=0, per_source=4)


def same_output(a, b, exact: bool = True) -> None:
    for x, y in zip(a, b, strict=True):
        xs, ys = (x if isinstance(x, list) else [x]), (y if isinstance(y, list) else [y])
        assert [h.tokens for h in xs] == [h.tokens for h in ys]
        if exact:
            assert [h.score for h in xs] == [h.score for h in ys]
            assert all(torch.equal(h.attention, g.attention) for h, g in zip(xs, ys, strict=True))
        else:
            torch.testing.assert_close(
                torch.tensor([h.score for h in xs]), torch.tensor([h.score for h in ys])
            )


@pytest.mark.parametrize("search", [GREEDY, BEAM, RULES], ids=["greedy", "beam", "beam+rules"])
def test_a_shortlist_of_the_whole_vocabulary_decodes_exactly_as_none(search) -> None:
    model, batch = tiny_model(0), tiny_batch()
    decode = greedy_search if search.beam_size == 1 else beam_search
    same_output(decode(model, batch, search), decode(model, batch, search, torch.arange(V)))


class Masked(Seq2Seq):
    """The tiny model with every token outside `keep` at logit -inf."""

    def __init__(self, model: Seq2Seq, keep: torch.Tensor) -> None:
        torch.nn.Module.__init__(self)
        self.encoder, self.bridge, self.decoder, self.output = (
            model.encoder,
            model.bridge,
            model.decoder,
            model.output,
        )
        self.outside = torch.ones(V, dtype=torch.bool).index_fill(0, keep, False)

    def next_scores(self, prev, state, ctx):
        logits, weights, state = super().next_scores(prev, state, ctx)
        return logits.masked_fill(self.outside, -torch.inf), weights, state


@pytest.mark.parametrize("search", [GREEDY, BEAM, RULES], ids=["greedy", "beam", "beam+rules"])
def test_a_partial_shortlist_decodes_as_the_model_with_the_rest_at_zero_probability(search) -> None:
    model, batch = tiny_model(0), tiny_batch()
    decode = greedy_search if search.beam_size == 1 else beam_search
    everything = {
        t for h in decode(model, batch, search) for t in (h if isinstance(h, list) else [h])[0].tokens
    }
    # keep half of what the full search writes, the specials, and a few other ids
    keep = torch.tensor(sorted(SPECIAL_IDS | set(sorted(everything)[::2]) | {9, 17, 25}))
    short = decode(model, batch, search, keep)
    same_output(short, decode(Masked(model, keep), batch, search), exact=False)
    written = {t for h in short for g in (h if isinstance(h, list) else [h]) for t in g.tokens}
    assert written <= set(keep.tolist()) and written != everything  # a real restriction
    # an ensemble of one on a shortlist is that model on the shortlist
    same_output(short, decode(Ensemble([model]), batch, search, keep))


def test_a_table_of_another_tokenizer_or_no_table_is_refused(tmp_path: Path) -> None:
    table = LexicalTable(
        torch.tensor([5]), torch.full((10, 2), NO_ID), tokenizer_sha256(b"mine"), "de", "en", 1, 1
    )
    path = tmp_path / "shortlist.pt"
    save_table(table, path)
    assert load_table(path, b"mine").lexical.shape == (10, 2)
    with pytest.raises(CheckpointError, match="shortlist .*shortlist.pt was built for another tokenizer"):
        load_table(path, b"another")
    with pytest.raises(CheckpointError, match="exists; remove it or choose another --output"):
        save_table(table, path)
    torch.save({"model": {}}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="is not an mt shortlist file"):
        load_table(tmp_path / "checkpoint.pt", b"mine")
    with pytest.raises(CheckpointError, match="not found; build it with `mt-shortlist CHECKPOINT`"):
        load_table(tmp_path / "none.pt", b"mine")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny real run -> its directory."""
    root = tmp_path_factory.mktemp("shortlist")
    (root / "corpus").mkdir()
    args = tiny_corpus_args(root / "corpus") + [f"hydra.run.dir={root / 'run'}"] + TINY_MODEL
    proc = run("mt-train", args, cwd=root)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return root / "run"


@pytest.mark.slow  # a tiny training run and five CLI runs
def test_mt_shortlist_then_mt_evaluate_and_mt_translate_with_it(trained: Path, tmp_path: Path) -> None:
    ckpt = trained / "checkpoints" / "best.pt"
    built = run("mt-shortlist", [str(ckpt), "--keep", "20"], cwd=tmp_path)
    assert built.returncode == 0, built.stderr.decode()[-3000:]
    assert "IBM Model 1 on 400 pairs" in built.stdout.decode() and (trained / "shortlist.pt").is_file()
    again = run("mt-shortlist", [str(ckpt)], cwd=tmp_path)
    assert again.returncode == 2 and "shortlist.pt exists and is kept" in again.stderr.decode()

    # 30 updates teach a tiny model to stop at once; min_length=3 makes it write something
    common = [f"checkpoint={ckpt}", "splits=[test]", "device=cpu", "min_length=3"]
    full = run("mt-evaluate", common + [f"hydra.run.dir={tmp_path / 'full'}"], cwd=tmp_path)
    assert full.returncode == 0, full.stderr.decode()[-3000:]
    # frequent 0 and 2 translations per subword: a real restriction at this size
    short_args = [f"shortlist={trained / 'shortlist.pt'}", "shortlist_frequent=0", "shortlist_per_source=2"]
    short = run("mt-evaluate", common + short_args + [f"hydra.run.dir={tmp_path / 'short'}"], cwd=tmp_path)
    assert short.returncode == 0, short.stderr.decode()[-3000:]
    results = json.loads((tmp_path / "short" / "results.json").read_text())
    assert results["shortlist"]["per_source"] == 2 and results["shortlist"]["batches"] >= 1
    assert results["test"]["test"]["search"]["shortlist"]["frequent"] == 0
    assert 4 < results["shortlist"]["mean_candidates"] < 400  # fewer than the 400 target subwords
    hyps = (tmp_path / "short" / "outputs" / "test.hyp").read_text().splitlines()
    assert len(hyps) == 30 and hyps != (tmp_path / "full" / "outputs" / "test.hyp").read_text().splitlines()

    src = "\n".join(["Ein Mann fährt Fahrrad.", "", "Zwei Hunde spielen im Schnee."]) + "\n"
    out = run("mt-translate", [f"checkpoint={ckpt}", "device=cpu", "min_length=3", *short_args], tmp_path,
              stdin=src.encode())  # fmt: skip
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    lines = out.stdout.decode().splitlines()
    assert (
        len(lines) == 3 and lines[1] == "" and lines[0] and "candidate target subwords" in out.stderr.decode()
    )

    too_many = run("mt-evaluate", common + [*short_args[:2], "shortlist_per_source=21"], cwd=tmp_path)
    err = too_many.stderr.decode()
    assert too_many.returncode == 2 and "config error at `shortlist_per_source`" in err and "--keep 21" in err
    negative = run("mt-evaluate", common + [*short_args[:1], "shortlist_frequent=-1"], cwd=tmp_path)
    assert negative.returncode == 2 and "shortlist_frequent" in negative.stderr.decode()


@pytest.mark.slow  # mt-shortlist and six decodings of a split
def test_shortlist_table_script(trained: Path, tmp_path: Path) -> None:
    """scripts/shortlist_table.py: a row per setting; a shortlist holding the whole vocabulary
    (1000 frequent > 400 subwords) writes exactly what no shortlist writes, a small one less."""
    ckpt = torch.load(trained / "checkpoints" / "best.pt", weights_only=True)
    ckpt["model"]["output.bias"][EOS_ID] -= 10.0  # 30 updates teach it to stop at once: make it write
    talker = tmp_path / "talker.pt"
    torch.save(ckpt, talker)
    built = run(
        "mt-shortlist", [str(talker), "--output", str(tmp_path / "s.pt"), "--keep", "5"], cwd=tmp_path
    )
    assert built.returncode == 0, built.stderr.decode()[-3000:]
    out = tmp_path / "table.json"
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).parents[1] / "scripts" / "shortlist_table.py"), str(talker),
         "--shortlist", str(tmp_path / "s.pt"), "--settings", "0:2", "1000:5", "--repeats", "1",
         "--device", "cpu", "--json", str(out)],
        capture_output=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert list(rows) == ["none", "0:2", "1000:5"]
    none, small, whole = rows["none"], rows["0:2"], rows["1000:5"]
    assert none["same_output"] == 1.0 and none["mean_candidates"] == 400
    assert whole["same_output"] == 1.0 and whole["bleu"] == none["bleu"] and whole["mean_candidates"] == 400
    assert small["mean_candidates"] < 400 and small["same_output"] < 1.0
    assert all(r["sentences_per_second"] > 0 for r in rows.values())
    assert "| 0:2 |" in proc.stdout.decode()
