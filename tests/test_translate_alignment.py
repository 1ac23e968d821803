"""`mt-translate +alignment=true`: the word alignment of each hypothesis, beside it (as
`fairseq-generate --print-alignment`), and the output-piece -> word mapping behind it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from clihelpers import TINY_MODEL, run, synthetic_lines, tiny_corpus_args

from mt.config import DEFAULT_ALIGN_METHOD, DEFAULT_ALIGN_THRESHOLD, TokenizerConfig
from mt.data.tokenizer import SPECIAL_IDS, Tokenizer
from mt.evaluation.alignment import word_attention, words_of_output

# -- the piece -> word mapping of a hypothesis ----------------------------------------------------


@pytest.mark.parametrize(
    "pieces, text, expected",
    [
        (["▁Ein", "▁Hund", "▁rennt", "."], "Ein Hund rennt.", [0, 1, 2, 2]),
        (["▁", "1", "2", "▁dogs"], "12 dogs", [0, 0, 0, 1]),  # a lone "▁" starts the next word
        (["▁a", "▁", "▁b"], "a b", [0, 1, 1]),  # a lone "▁" between words: the next one's
        (["▁a", "b", "▁"], "ab", [0, 0, 0]),  # a lone "▁" at the end: the previous word's
        (["▁", "▁", "A", "▁dog", "▁", "▁"], "A dog  ", [0, 0, 0, 1, 1, 1]),  # decoding strips spaces
        (["a", "▁b"], "a b", [0, 1]),  # no leading "▁"
        (["▁x", "▁⁇▁", "y"], "x ⁇ y", [0, 1, 2]),  # <unk> as its surface " ⁇ "
        (["▁x", "<unk>", "▁y"], "x ⁇ y", [0, 2, 2]),  # a piece matching nothing: the next word's
        (["▁", "▁"], "", []),  # no words: nothing to map
        (["▁"], "", []),
    ],
)
def test_words_of_output_on_hand_made_pieces(pieces, text, expected):
    assert words_of_output(pieces, text) == expected


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> Tokenizer:
    de, en = synthetic_lines(200, "de", seed=3), synthetic_lines(200, "en", seed=3)
    cfg = TokenizerConfig(vocab_size=40, joint=False)
    return Tokenizer.train_or_load(de, en, cfg, tmp_path_factory.mktemp("spm"))


def test_words_of_output_indexes_exactly_the_decoded_words(tokenizer):
    """Random piece sequences (lone "▁" included), decoded by sentencepiece: one word per piece,
    in order, every word of `text.split()` reached, and a piece's word holds its characters."""
    rng = random.Random(0)
    ids = [i for i in range(tokenizer.tgt_vocab_size) if i not in SPECIAL_IDS]
    lone = tokenizer.tgt_sp.piece_to_id("▁")
    assert lone in ids
    for _ in range(300):
        seq = [rng.choice(ids) if rng.random() > 0.2 else lone for _ in range(rng.randint(1, 12))]
        pieces, text = tokenizer.tgt_pieces(seq), tokenizer.decode_tgt(seq)
        words = words_of_output(pieces, text)
        if not text.split():
            assert words == []
            continue
        assert len(words) == len(pieces)
        assert words == sorted(words) and set(words) == set(range(len(text.split())))
        for piece, w in zip(pieces, words, strict=True):
            assert piece.replace("▁", "") in text.split()[w]


# -- the command ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A real tiny mt-train run (de->en), long enough to write words (30 steps writes almost
    none); returns (checkpoint, input file: test sentences, an empty line, a line to cut)."""
    root = tmp_path_factory.mktemp("translate_align")
    steps = ["trainer.max_steps=150", "trainer.val_every=150", "optim.lr=0.01"]
    args = [a for a in TINY_MODEL if not a.startswith(("trainer.max_steps=", "trainer.val_every="))] + steps
    proc = run("mt-train", tiny_corpus_args(root) + [f"hydra.run.dir={root / 'run'}"] + args, cwd=root)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    lines = (root / "test_2016_flickr.de").read_text(encoding="utf-8").splitlines()[:6]
    lines[1] = "  " + lines[1].replace(" ", "   ") + " "  # runs of spaces: still its words
    lines[3] = ""
    lines.append(" ".join(lines[0].split() * 6))  # longer than max_src_len=40: cut
    (root / "in.de").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "run" / "checkpoints" / "best.pt", root / "in.de"


def parse_links(text: str) -> list[tuple[int, int]]:
    return [(int(i), int(j)) for i, j in (link.split("-") for link in text.split())]


def check_links(sources: list[str], hyps: list[str], links: list[str], argmax: bool) -> int:
    """Every link within its line's source and hypothesis word counts; returns how many there are."""
    assert len(sources) == len(hyps) == len(links)
    total = 0
    for src, hyp, line in zip(sources, hyps, links, strict=True):
        pairs, n_src, n_hyp = parse_links(line), len(src.split()), len(hyp.split())
        assert all(0 <= i < n_src and 0 <= j < n_hyp for i, j in pairs), (src, hyp, line)
        if argmax:  # each output word links its single most attended source word
            assert len({j for _, j in pairs}) == len(pairs)
        if not src.strip():
            assert hyp == "" and line == ""
        total += len(pairs)
    return total


def check_against_attention(
    record: dict, src: str, hyp: str, links: str, method: str, threshold: float
) -> None:
    """The links are those of the attention written by +attention=true (EOS row and column dropped)."""
    best = record["hypotheses"][0]
    pieces = [p for p in best["output"] if p != "</s>"]
    n_src_pieces = len(record["source"]) - 1  # without EOS
    att = np.asarray(best["weights"])[: len(pieces), :n_src_pieces]
    # the source's pieces (maybe cut) -> its words, by their text (the command uses their spans)
    src_words = np.asarray(words_of_output(record["source"][:-1], src))
    tgt_words = np.asarray(words_of_output(pieces, hyp))
    pooled = word_attention(att, src_words, tgt_words, len(src.split()), len(hyp.split()))
    for i, j in parse_links(links):  # weights were rounded to 4 digits in the JSON
        if method == "argmax":
            assert pooled[j, i] >= pooled[j].max() - 1e-3, (i, j, pooled[j])
        else:
            assert pooled[j, i] >= threshold - 1e-3, (i, j, pooled[j])
    if method == "argmax":  # every output word with attention on some source word is linked
        assert {j for _, j in parse_links(links)} == set(np.flatnonzero(pooled.max(axis=1) > 0).tolist())


@pytest.mark.parametrize(
    "beam, extra",
    [
        ("beam_size=3", ["n_best=2"]),
        ("beam_size=1", ["align_method=argmax"]),
        ("beam_size=1", []),  # the default method
        ("beam_size=3", ["align_method=threshold", "+align_threshold=0.3"]),
    ],
)
@pytest.mark.slow  # a 150-step model and real mt-translate runs
def test_output_file_gets_one_align_line_per_input_line(trained, tmp_path, beam, extra):
    ckpt, source = trained
    out = tmp_path / "out.en"
    args = [f"checkpoint={ckpt}", f"input={source}", f"output={out}", "device=cpu", "max_src_len=40", beam]
    proc = run("mt-translate", args + extra + ["+alignment=true", "+attention=true"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert b"word alignments written to" in proc.stderr and b"cut to max_src_len=40" in proc.stderr
    sources = source.read_text(encoding="utf-8").split("\n")[:-1]
    outputs = out.read_text(encoding="utf-8").split("\n")[:-1]
    aligns = Path(f"{out}.align").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(outputs) == len(aligns) == len(sources) == 7
    n_best = 2 if "n_best=2" in extra else 1
    method = next((e.split("=")[1] for e in extra if e.startswith("align_method=")), DEFAULT_ALIGN_METHOD)
    threshold = next(
        (float(e.split("=")[1]) for e in extra if "align_threshold=" in e), DEFAULT_ALIGN_THRESHOLD
    )
    for k in range(n_best):  # every hypothesis of a line is aligned, in the output's order
        hyps = [line.split("\t")[k] if line else "" for line in outputs]
        links = [line.split("\t")[k] if line else "" for line in aligns]
        total = check_links(sources, hyps, links, argmax=method == "argmax")
        assert total > 0 and sum(bool(h.split()) for h in hyps) >= 4  # the model writes words
    records = [json.loads(x) for x in Path(f"{out}.attention.jsonl").read_text().splitlines()]
    for src, hyp, links, record in zip(sources, outputs, aligns, records, strict=True):
        if src.strip():
            check_against_attention(record, src, hyp.split("\t")[0], links.split("\t")[0], method, threshold)


@pytest.mark.slow  # a 150-step model and real mt-translate runs
def test_standard_output_prints_hypothesis_tab_links(trained, tmp_path):
    ckpt, source = trained
    args = [f"checkpoint={ckpt}", f"input={source}", "device=cpu", "max_src_len=40", "beam_size=2"]
    plain = run("mt-translate", args, cwd=tmp_path)
    args.append("align_method=argmax")
    assert plain.returncode == 0, plain.stderr.decode()[-3000:]
    for flag in ("alignment=true", "+alignment=true"):  # with or without Hydra's `+`
        proc = run("mt-translate", args + [flag], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]
        rows = [line.split("\t") for line in proc.stdout.decode().split("\n")[:-1]]
        assert all(len(row) == 2 for row in rows), rows
        hyps, links = [row[0] for row in rows], [row[1] for row in rows]
        assert hyps == plain.stdout.decode().split("\n")[:-1]  # the translations are unchanged
        sources = source.read_text(encoding="utf-8").split("\n")[:-1]
        assert check_links(sources, hyps, links, argmax=True) > 0
        assert not (tmp_path / "translate.attention.jsonl").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("+alignmnet=true", "no key 'alignmnet'. Did you mean alignment?"),
        ("alignmnet=true", "no key 'alignmnet'. Did you mean alignment?"),
        ("align_method=best", "config error at `align_method`: 'best' is not one of"),
        ("+align_threshold=0", "config error at `align_threshold`: must be in (0, 1]"),
    ],
)
def test_bad_alignment_override_is_exit_2_naming_the_key(override, message, tmp_path):
    proc = run("mt-translate", ["checkpoint=missing.pt", override], cwd=tmp_path, stdin=b"", timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err[-2000:]
    assert message in err and "Traceback" not in err, err[-2000:]
