"""Padding id sequences into a :class:`Batch` of tensors with lengths and masks.

Pad id is 0 (``PAD_ID``). Source ids are used as given (they already end with EOS); target ids
(no specials) become ``tgt_in = BOS + ids`` and ``tgt_out = ids + EOS``. Padding is vectorised
with numpy, so building a batch costs well under a millisecond per thousand tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from mt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Batch:
    """A padded batch of sentence pairs; target fields are None for source-only input."""

    src: torch.Tensor  # (B, S) long, source ids ending with EOS, PAD after
    src_lens: torch.Tensor  # (B,) long, real source lengths (EOS included)
    src_mask: torch.Tensor  # (B, S) bool, True = real token
    tgt_in: torch.Tensor | None  # (B, T) long, BOS + target ids (decoder input)
    tgt_out: torch.Tensor | None  # (B, T) long, target ids + EOS (decoder output)
    tgt_mask: torch.Tensor | None  # (B, T) bool, True = real token
    n_tgt_tokens: int  # number of True in tgt_mask (loss normaliser)
    indices: torch.Tensor  # (B,) long, dataset row of each example

    def __len__(self) -> int:
        return self.src.shape[0]

    def _map(self, fn) -> Batch:
        return replace(
            self,
            **{
                f.name: fn(getattr(self, f.name))
                for f in fields(self)
                if isinstance(getattr(self, f.name), torch.Tensor)
            },
        )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """Return the batch with every tensor on ``device``."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Return the batch with every tensor in pinned memory (called by DataLoader(pin_memory=True))."""
        return self._map(lambda t: t.pin_memory())


@dataclass(frozen=True)
class RaggedIds:
    """Variable-length id sequences stored flat: sequence i is ``values[offsets[i]:offsets[i+1]]``."""

    values: np.ndarray  # (total,) int
    offsets: np.ndarray  # (n + 1,) int64

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def from_lists(cls, seqs: Sequence[Sequence[int]]) -> RaggedIds:
        """Return the flat form of a list of id lists."""
        lens = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
        offsets = np.zeros(len(seqs) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        values = np.fromiter(chain.from_iterable(seqs), dtype=np.int64, count=int(offsets[-1]))
        return cls(values, offsets)

    @classmethod
    def from_arrow(cls, column: pa.ChunkedArray | pa.Array) -> RaggedIds:
        """Return the flat form of an Arrow list column (e.g. ``ds.with_format('arrow')['src_ids']``).

        Only the values of the rows in ``column`` are read: a chunk that is a slice of a larger
        (memory-mapped) record batch costs its own rows, never the whole batch.
        """
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        lens = [pc.list_value_length(c).to_numpy(zero_copy_only=False) for c in chunks]
        vals = [c.flatten().to_numpy(zero_copy_only=False) for c in chunks]  # flatten respects the slice
        lens_all = np.concatenate(lens).astype(np.int64) if lens else np.zeros(0, dtype=np.int64)
        offsets = np.zeros(len(lens_all) + 1, dtype=np.int64)
        np.cumsum(lens_all, out=offsets[1:])
        values = np.concatenate(vals) if vals else np.zeros(0, dtype=np.int32)
        return cls(values, offsets)

    def take(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(starts, lens)`` of the sequences at ``idx``."""
        starts = self.offsets[idx]
        return starts, self.offsets[idx + 1] - starts

    def to_lists(self, idx: Sequence[int]) -> list[list[int]]:
        """Return the sequences at ``idx`` as Python lists."""
        return [self.values[self.offsets[i] : self.offsets[i + 1]].tolist() for i in idx]


def _pad(values: np.ndarray, starts: np.ndarray, lens: np.ndarray, width: int, shift: int = 0) -> np.ndarray:
    """Return (B, width) int64: row r holds ``values[starts[r]:starts[r]+lens[r]]`` from column ``shift``, PAD elsewhere."""
    pos = np.arange(width, dtype=np.int64)[None, :] - shift  # (1, W)
    body = (pos >= 0) & (pos < lens[:, None])  # (B, W)
    out = np.full((len(lens), width), PAD_ID, dtype=np.int64)
    out[body] = values[(starts[:, None] + pos)[body]]
    return out


def collate_ragged(
    src: RaggedIds, tgt: RaggedIds | None, idx: np.ndarray, rows: np.ndarray | None = None
) -> Batch:
    """Return the batch of sequences ``idx`` of ``src``/``tgt``; ``rows`` are the dataset rows (default ``idx``)."""
    idx = np.asarray(idx, dtype=np.int64)
    b = len(idx)
    s_starts, s_lens = src.take(idx)
    s_width = int(s_lens.max()) if b else 0
    src_arr = _pad(src.values, s_starts, s_lens, s_width)  # (B, S)
    src_mask = np.arange(s_width)[None, :] < s_lens[:, None]  # (B, S)
    tgt_in = tgt_out = tgt_mask = None
    n_tgt = 0
    if tgt is not None:
        t_starts, t_lens = tgt.take(idx)
        t_width = (int(t_lens.max()) if b else 0) + 1
        tgt_in_arr = _pad(tgt.values, t_starts, t_lens, t_width, shift=1)  # (B, T)
        tgt_in_arr[:, 0] = BOS_ID
        tgt_out_arr = _pad(tgt.values, t_starts, t_lens, t_width)  # (B, T)
        tgt_out_arr[np.arange(b), t_lens] = EOS_ID
        mask = np.arange(t_width)[None, :] <= t_lens[:, None]  # (B, T)
        tgt_in, tgt_out, tgt_mask = (
            torch.from_numpy(tgt_in_arr),
            torch.from_numpy(tgt_out_arr),
            torch.from_numpy(mask),
        )
        n_tgt = int(t_lens.sum()) + b
    return Batch(
        src=torch.from_numpy(src_arr),
        src_lens=torch.from_numpy(s_lens.astype(np.int64)),
        src_mask=torch.from_numpy(src_mask),
        tgt_in=tgt_in,
        tgt_out=tgt_out,
        tgt_mask=tgt_mask,
        n_tgt_tokens=n_tgt,
        indices=torch.from_numpy(np.asarray(idx if rows is None else rows, dtype=np.int64)),
    )


def collate(
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]] | None = None,
    indices: Sequence[int] | None = None,
) -> Batch:
    """Return the padded batch of id lists (source ids ending with EOS, target ids without specials)."""
    n = len(src_ids)
    if tgt_ids is not None and len(tgt_ids) != n:
        raise ValueError(f"collate got {n} source but {len(tgt_ids)} target sequences")
    rows = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
    src = RaggedIds.from_lists(src_ids)
    tgt = None if tgt_ids is None else RaggedIds.from_lists(tgt_ids)
    return collate_ragged(src, tgt, np.arange(n), rows)
