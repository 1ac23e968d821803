"""Sentencepiece subword tokenizer: trained once on the train split, cached, embeddable in checkpoints.

Special ids are fixed for every model: ``PAD_ID=0``, ``UNK_ID=1``, ``BOS_ID=2``, ``EOS_ID=3``.
Source ids end with EOS (the encoder sees where the sentence stops); target ids carry no
specials (the collate adds BOS to the decoder input and EOS to the decoder output).

Models are cached under ``<cache_dir>/spm/<key>/``, ``key`` being a sha256 of the training
text and every setting that changes the model, so a second run with the same data and
settings loads instead of training; ``meta.json`` vouches for the model files (what they were
built for, their size and sha256), and a cached model that fails that check is rebuilt with a
warning (see :mod:`mt.data.cache`). The vocabulary size is a hard limit (sentencepiece's
``hard_vocab_limit=True``): embedding sizes are exactly ``tokenizer.vocab_size``, and a value
too large for the data fails with the largest size that works.

Text is normalised by sentencepiece's ``nmt_nfkc`` rule (NFKC, runs of spaces collapsed, leading
and trailing spaces removed); :meth:`Tokenizer.normalize` shows the result. With
``tokenizer.lowercase`` every text is lowercased first, character by character (:func:`lower`),
in training and in every encoding, so the model only ever sees and writes lowercase.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path

import sentencepiece as spm
from datasets import Dataset

from mt.config import TokenizerConfig, validate_tokenizer
from mt.data.cache import entry_lock, reusable, write_record
from mt.data.hashing import hash_json
from mt.data.text_store import pairs_to_dataset, sample_rows, take_rows, text_key
from mt.errors import ConfigError
from mt.io import atomic_write_bytes

logger = logging.getLogger("mt.data.tokenizer")

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SPECIAL_IDS = frozenset((PAD_ID, UNK_ID, BOS_ID, EOS_ID))
_FORMAT_VERSION = 1
# Settings that change the trained model (the sampling ones only change encoding).
_TRAIN_KEYS = (
    "model_type",
    "vocab_size",
    "joint",
    "character_coverage",
    "input_sentence_size",
    "seed",
    "lowercase",
)


def lower(text: str) -> str:
    """``text`` lowercased one character at a time (``str.lower`` of each), so that every
    character of the result comes from a known character of ``text`` (:func:`lower_with_map`);
    it differs from ``text.lower()`` only in the Greek final sigma."""
    return "".join(map(str.lower, text)) if not text.isascii() else text.lower()


def lower_with_map(text: str) -> tuple[str, list[int]]:
    """:func:`lower` of ``text`` and, for each of its characters, the index of the character of
    ``text`` it came from (one character may lowercase to two: ``İ`` -> ``i̇``)."""
    parts = [c.lower() for c in text]
    return "".join(parts), [i for i, part in enumerate(parts) for _ in part]


def _train_proto(sentences: Iterable[str], cfg: TokenizerConfig, side: str) -> bytes:
    """Return a serialized sentencepiece model trained on ``sentences``."""
    writer = io.BytesIO()
    spm.set_random_generator_seed(cfg.seed)
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(s for s in sentences if s.strip()),
            model_writer=writer,
            model_type=cfg.model_type,
            vocab_size=cfg.vocab_size,
            character_coverage=cfg.character_coverage,
            input_sentence_size=0,  # the sentences given are the sample (for_corpus draws it)
            shuffle_input_sentence=True,
            hard_vocab_limit=True,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            num_threads=max(1, min(8, os.cpu_count() or 1)),
            minloglevel=2,
        )
    except RuntimeError as e:
        msg = str(e)
        if m := re.search(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)", msg):
            raise ConfigError(
                f"config error at `tokenizer.vocab_size`: {m.group(1)} is too large for the {side} training "
                f"text; sentencepiece can build at most {m.group(2)} pieces from it. Lower it, e.g. "
                f"tokenizer.vocab_size={m.group(2)} (or use more training data)."
            ) from e
        if m := re.search(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)", msg):
            raise ConfigError(
                f"config error at `tokenizer.vocab_size`: {m.group(1)} is smaller than the {m.group(2)} "
                f"characters of the {side} training text. Raise tokenizer.vocab_size above {m.group(2)} "
                f"or lower tokenizer.character_coverage (e.g. 0.9995)."
            ) from e
        raise
    return writer.getvalue()


def _train_protos(train: Dataset, rows: Sequence[int], cfg: TokenizerConfig) -> list[bytes]:
    """Return the model protos (one joint, or source and target) trained on the pairs ``rows`` of ``train``."""
    picked = take_rows(train, rows, ["src", "tgt"])
    src, tgt = picked["src"], picked["tgt"]
    if cfg.lowercase:
        src, tgt = [lower(t) for t in src], [lower(t) for t in tgt]
    logger.info(
        "tokenizer: training %s %s (vocab %d) on %d of %d pairs",
        "joint" if cfg.joint else "separate",
        cfg.model_type,
        cfg.vocab_size,
        len(rows),
        len(train),
    )
    if cfg.joint:
        return [_train_proto(chain(src, tgt), cfg, "joint source+target")]
    return [_train_proto(src, cfg, "source"), _train_proto(tgt, cfg, "target")]


def _processor(proto: bytes) -> spm.SentencePieceProcessor:
    """Return the sentencepiece model of ``proto``; ValueError unless its special ids are ours."""
    sp = spm.SentencePieceProcessor(model_proto=proto)
    got = (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id())
    if got != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
        raise ValueError(f"sentencepiece model has special ids {got}; expected (0, 1, 2, 3)")
    return sp


class Tokenizer:
    """Subword encoder/decoder for a language pair (one joint model, or one model per side)."""

    def __init__(
        self,
        src_proto: bytes,
        tgt_proto: bytes | None = None,
        sampling_alpha: float = 0.0,
        sampling_nbest: int = -1,
        lowercase: bool = False,
    ) -> None:
        """Build from serialized sentencepiece models; ``tgt_proto=None`` means one joint model;
        ``lowercase``: lowercase every text before encoding it."""
        self._protos = (src_proto, tgt_proto)
        self.lowercase = lowercase
        self.joint = tgt_proto is None
        self.src_sp = _processor(src_proto)
        self.tgt_sp = self.src_sp if tgt_proto is None else _processor(tgt_proto)
        self.sampling_alpha = sampling_alpha
        self.sampling_nbest = sampling_nbest
        # Identifies the id mapping (same fingerprint = same ids); keys caches of encoded data.
        self.fingerprint = hashlib.sha256(
            b"".join(
                [b"joint" if tgt_proto is None else b"separate", src_proto, tgt_proto or b""]
                + ([b"lowercase"] if lowercase else [])
            )
        ).hexdigest()
        self.cache_path: Path | None = None  # where train_or_load found or saved the model(s)

    # -- construction / persistence ---------------------------------------------------------

    @classmethod
    def train_or_load(
        cls,
        train_src: Iterable[str],
        train_tgt: Iterable[str],
        cfg: TokenizerConfig,
        cache_dir: str | os.PathLike[str],
    ) -> Tokenizer:
        """Return the tokenizer for these train sentence pairs and settings (see `for_corpus`)."""
        src, tgt = list(train_src), list(train_tgt)
        if len(src) != len(tgt):
            raise ValueError(
                f"train_or_load needs sentence pairs; got {len(src)} source and {len(tgt)} target sentences"
            )
        return cls.for_corpus(pairs_to_dataset(src, tgt), cfg, cache_dir)

    @classmethod
    def for_corpus(cls, train: Dataset, cfg: TokenizerConfig, cache_dir: str | os.PathLike[str]) -> Tokenizer:
        """Return the tokenizer for the train split ``train`` (columns src, tgt) and these settings,
        training it only when not cached.

        It is trained on ``tokenizer.input_sentence_size`` pairs drawn at random with
        ``tokenizer.seed`` (every pair, in order, when the split is not larger), so memory and
        time do not grow with the corpus beyond one pass over it.
        """
        validate_tokenizer(cfg)
        settings = {k: getattr(cfg, k) for k in _TRAIN_KEYS}  # cfg may be an OmegaConf node
        src_hash, tgt_hash = text_key(train, "src"), text_key(train, "tgt")
        key = hash_json(_FORMAT_VERSION, spm.__version__, settings, src_hash, tgt_hash)[:24]
        built_for = {"format": _FORMAT_VERSION, "sentencepiece": spm.__version__, "settings": settings,
                     "src_text": src_hash, "tgt_text": tgt_hash}  # fmt: skip
        folder = Path(cache_dir) / "spm" / key
        meta_path = folder / "meta.json"
        paths = [folder / n for n in (("joint.model",) if cfg.joint else ("src.model", "tgt.model"))]
        with entry_lock("tokenizer cache", folder):
            if reusable(
                "tokenizer cache", meta_path, built_for, paths, opens=lambda p: _processor(p.read_bytes())
            ):
                protos = [p.read_bytes() for p in paths]
                logger.info("tokenizer: reusing cached sentencepiece model(s) in %s", folder)
            else:
                rows = sample_rows(len(train), cfg.input_sentence_size, cfg.seed)
                protos = _train_protos(train, rows, cfg)
                for path, proto in zip(paths, protos, strict=True):
                    atomic_write_bytes(path, proto)
                # written last: it vouches for the model files (see mt.data.cache)
                write_record(meta_path, built_for, paths, n_pairs=len(rows), n_train=len(train))
                logger.info("tokenizer: saved to %s", folder)
        tok = cls(
            protos[0], None if cfg.joint else protos[1], cfg.sampling_alpha, cfg.sampling_nbest, cfg.lowercase
        )
        tok.cache_path = folder
        return tok

    def to_bytes(self) -> bytes:
        """Return the tokenizer (model protos, sampling settings, lowercasing) as bytes, e.g. for a checkpoint."""
        src, tgt = self._protos
        return json.dumps(
            {
                "format": "mt-tokenizer",
                "version": _FORMAT_VERSION,
                "src": base64.b64encode(src).decode(),
                "tgt": None if tgt is None else base64.b64encode(tgt).decode(),
                "sampling_alpha": self.sampling_alpha,
                "sampling_nbest": self.sampling_nbest,
                "lowercase": self.lowercase,
            }
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Tokenizer:
        """Return the tokenizer serialized by :meth:`to_bytes`."""
        d = json.loads(data)
        if d.get("format") != "mt-tokenizer":
            raise ValueError("these bytes are not an mt tokenizer (see Tokenizer.to_bytes)")
        tgt = None if d["tgt"] is None else base64.b64decode(d["tgt"])
        # "lowercase" is absent from tokenizers saved before it existed: they did not lowercase
        return cls(
            base64.b64decode(d["src"]),
            tgt,
            d["sampling_alpha"],
            d["sampling_nbest"],
            d.get("lowercase", False),
        )

    def __getstate__(self) -> dict:
        return {"data": self.to_bytes()}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(Tokenizer.from_bytes(state["data"]).__dict__)

    # -- vocabulary --------------------------------------------------------------------------

    @property
    def src_vocab_size(self) -> int:
        """Number of source ids (specials included)."""
        return self.src_sp.get_piece_size()

    @property
    def tgt_vocab_size(self) -> int:
        """Number of target ids (specials included)."""
        return self.tgt_sp.get_piece_size()

    def src_pieces(self, ids: Iterable[int]) -> list[str]:
        """Return the subword string of each source id (for plot labels)."""
        return [self.src_sp.id_to_piece(int(i)) for i in ids]

    def tgt_pieces(self, ids: Iterable[int]) -> list[str]:
        """Return the subword string of each target id (for plot labels)."""
        return [self.tgt_sp.id_to_piece(int(i)) for i in ids]

    # -- encoding / decoding -----------------------------------------------------------------

    def _sampling_kwargs(self, sample: bool) -> dict:
        if not sample or self.sampling_alpha <= 0:
            return {}
        return {"enable_sampling": True, "alpha": self.sampling_alpha, "nbest_size": self.sampling_nbest}

    def _texts(self, texts: Sequence[str]) -> list[str]:
        """``texts`` as the sentencepiece models see them (lowercased with ``lowercase``)."""
        return [lower(t) for t in texts] if self.lowercase else list(texts)

    def encode_src(self, texts: Sequence[str], sample: bool = False, add_eos: bool = True) -> list[list[int]]:
        """Return source ids per text, ending with EOS; ``sample`` draws a segmentation (train only)."""
        return self.src_sp.encode(
            self._texts(texts), out_type=int, add_eos=add_eos, **self._sampling_kwargs(sample)
        )

    def encode_tgt(self, texts: Sequence[str], sample: bool = False) -> list[list[int]]:
        """Return target ids per text, without BOS/EOS; ``sample`` draws a segmentation (train only)."""
        return self.tgt_sp.encode(self._texts(texts), out_type=int, **self._sampling_kwargs(sample))

    def encode_spans(
        self, texts: Sequence[str], side: str = "src"
    ) -> list[tuple[list[int], list[tuple[int, int]]]]:
        """Return per text its piece ids (no specials, no sampling) and each piece's [begin, end)
        character span in the text (sentencepiece reports UTF-8 byte offsets; these are characters)."""
        sp = self.src_sp if side == "src" else self.tgt_sp
        texts = list(texts)
        seen = [lower_with_map(t) if self.lowercase else (t, range(len(t))) for t in texts]
        out = []
        protos = sp.encode([s for s, _ in seen], out_type="proto")
        for text, (seen_text, origin), proto in zip(texts, seen, protos, strict=True):
            # the character of `text` behind each UTF-8 byte of what sentencepiece saw
            char_of_byte = [origin[c] for c, ch in enumerate(seen_text) for _ in ch.encode("utf-8")] + [
                len(text)
            ]
            spans = [(char_of_byte[p.begin], char_of_byte[p.end]) for p in proto.pieces]
            out.append(([p.id for p in proto.pieces], spans))
        return out

    @staticmethod
    def _strip(ids: Iterable[int]) -> list[int]:
        out = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                out.append(i)
        return out

    def decode_tgt(self, ids: Iterable[int]) -> str:
        """Return the text of target ids, stopping at the first EOS and skipping PAD/BOS (UNK shows as ⁇)."""
        return self.tgt_sp.decode(self._strip(ids))

    def decode_src(self, ids: Iterable[int]) -> str:
        """Return the text of source ids, stopping at the first EOS and skipping PAD/BOS."""
        return self.src_sp.decode(self._strip(ids))

    def normalize(self, text: str, side: str = "tgt") -> str:
        """Return ``text`` as the tokenizer normalises it; ``decode(encode(text))`` equals this when no piece is unknown."""
        sp = self.tgt_sp if side == "tgt" else self.src_sp
        return sp.normalize(lower(text) if self.lowercase else text).replace("\u2581", " ").strip(" ")

    def __repr__(self) -> str:
        kind = "joint" if self.joint else "separate"
        case = ", lowercase" if self.lowercase else ""
        return f"Tokenizer({kind}, src_vocab={self.src_vocab_size}, tgt_vocab={self.tgt_vocab_size}{case})"
