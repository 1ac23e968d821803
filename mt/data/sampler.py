"""Length-bucketed batches under a padded-token budget, deterministic per (seed, epoch).

One epoch: shuffle the examples, cut them into chunks of about ``chunk_batches`` batches, sort
each chunk by padded width ``max(src_len, tgt_len + 1)``, then source, then target length (the
shuffle breaks ties), cut the sorted chunk greedily into batches, then shuffle the order of all
batches. A batch's cost is its padded size ``len(batch) * max(max_src_len, max_tgt_len + 1)``
(the decoder sees BOS+ids and ids+EOS), kept ``<= batch_tokens``; an example over budget on its
own forms its own batch.
With ``batch_sentences > 0`` batches hold that many sentences instead.

The batches of an epoch are a pure function of ``(seed, epoch)``, so resuming mid-epoch is
``set_epoch(epoch, start_batch=k)``. With ``world_size > 1`` the batch list is split across
ranks so every rank gets the same number of batches: the list is padded by repeating its first
batches (or, with ``drop_last``, cut) to a multiple of ``world_size``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

logger = logging.getLogger("mt.data")


def _as_lengths(x: Sequence[int] | np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.int32).reshape(-1)


class BucketBatchSampler(Sampler[list[int]]):
    """Yields lists of dataset indices: similar lengths together, padded tokens under a budget."""

    def __init__(
        self,
        src_lens: Sequence[int] | np.ndarray,
        tgt_lens: Sequence[int] | np.ndarray,
        batch_tokens: int,
        batch_sentences: int = 0,
        shuffle: bool = True,
        seed: int = 0,
        chunk_batches: int = 64,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        """``src_lens`` count source ids (EOS included); ``tgt_lens`` count target ids without BOS/EOS."""
        self.src_lens = _as_lengths(src_lens)  # 4 bytes an example each: these, the width and
        self.tgt_lens = _as_lengths(tgt_lens)  # the epoch's order are all the sampler holds
        if len(self.src_lens) != len(self.tgt_lens):
            raise ValueError(f"src_lens has {len(self.src_lens)} entries but tgt_lens {len(self.tgt_lens)}")
        if batch_sentences <= 0 and batch_tokens <= 0:
            raise ValueError("need batch_tokens > 0 or batch_sentences > 0")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        self.batch_tokens = batch_tokens
        self.batch_sentences = batch_sentences
        self.shuffle = shuffle
        self.seed = seed
        self.chunk_batches = chunk_batches
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        self.start_batch = 0
        self._cache: tuple[int, list[np.ndarray]] | None = None
        # cost of one example in the padded batch
        self._width = np.maximum(self.src_lens, self.tgt_lens + 1)
        if batch_sentences > 0:
            per_batch = batch_sentences
        else:
            mean = float(self._width.mean()) if len(self._width) else 1.0
            per_batch = max(1, int(batch_tokens // max(mean, 1.0)))
        self.chunk_size = max(1, chunk_batches * per_batch)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch to iterate (batches depend on seed and epoch); skip its first ``start_batch`` batches."""
        self.epoch = epoch
        self.start_batch = start_batch

    def _sort_chunk(self, chunk: np.ndarray) -> np.ndarray:
        # Primary key: the padded width max(src, tgt+1) the budget counts; then source, then target
        # length. On Multi30k de-en (8k joint unigram, 6000 tokens, 64-batch chunks) this pads 4.9%
        # of source and 9.1% of target positions; sorting by (tgt, src) pads 23% of the source, by
        # (src, tgt) 23% of the target, by src+tgt 21% / 23%. lexsort: last key is primary; it is
        # stable, so the shuffled order breaks ties.
        return chunk[np.lexsort((self.tgt_lens[chunk], self.src_lens[chunk], self._width[chunk]))]

    def _split_chunk(self, order: np.ndarray) -> list[np.ndarray]:
        if self.batch_sentences > 0:
            return np.split(order, range(self.batch_sentences, len(order), self.batch_sentences))
        budget = self.batch_tokens
        cuts: list[int] = []
        size = max_w = 0
        for pos, w in enumerate(self._width[order].tolist()):
            new_w = w if w > max_w else max_w
            if size and (size + 1) * new_w > budget:
                cuts.append(pos)
                size, max_w = 1, w
            else:
                size += 1
                max_w = new_w
        return np.split(order, cuts)  # views of `order`: 8 bytes per example, whatever the corpus size

    def epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """Return every batch of ``epoch`` for all ranks, in iteration order (a pure function of seed, epoch)."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        n = len(self.src_lens)
        rng = np.random.default_rng((self.seed, epoch))
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        batches: list[np.ndarray] = []
        for start in range(0, n, self.chunk_size):
            batches.extend(self._split_chunk(self._sort_chunk(order[start : start + self.chunk_size])))
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        self._cache = (epoch, batches)
        return batches

    def rank_batches(self, epoch: int) -> list[np.ndarray]:
        """Return this rank's batches of ``epoch`` (all of them when ``world_size == 1``)."""
        batches = self.epoch_batches(epoch)
        if self.world_size == 1:
            return batches
        if self.drop_last:
            total = (len(batches) // self.world_size) * self.world_size
            batches = batches[:total]
        else:
            total = math.ceil(len(batches) / self.world_size) * self.world_size
            batches = batches + batches[: total - len(batches)]
        return batches[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.rank_batches(self.epoch)[self.start_batch :]:
            yield batch.tolist()

    def __len__(self) -> int:
        return max(0, len(self.rank_batches(self.epoch)) - self.start_batch)


def padding_stats(
    sampler: BucketBatchSampler, src_lens: Sequence[int] | np.ndarray, tgt_lens: Sequence[int] | np.ndarray
) -> dict[str, float]:
    """Return padding fractions and sizes of the sampler's current epoch (all ranks), and log them.

    ``src_pad_frac`` is the share of padding in the padded source tensors, ``tgt_pad_frac`` the
    same for decoder tensors (width ``max_tgt_len + 1``); ``*_pad_per_token`` is padding divided
    by real tokens (EOS / BOS counted as real).
    """
    src = _as_lengths(src_lens)
    tgt = _as_lengths(tgt_lens) + 1
    batches = sampler.epoch_batches(sampler.epoch)
    src_real = src_padded = tgt_real = tgt_padded = 0
    max_cost = 0
    for b in batches:
        s, t = src[b], tgt[b]
        src_real += int(s.sum())
        tgt_real += int(t.sum())
        src_padded += len(b) * int(s.max())
        tgt_padded += len(b) * int(t.max())
        max_cost = max(max_cost, len(b) * max(int(s.max()), int(t.max())))
    stats = {
        "n_batches": len(batches),
        "mean_sentences": (sum(map(len, batches)) / len(batches)) if batches else 0.0,
        "src_pad_frac": 1 - src_real / src_padded if src_padded else 0.0,
        "tgt_pad_frac": 1 - tgt_real / tgt_padded if tgt_padded else 0.0,
        "src_pad_per_token": (src_padded - src_real) / src_real if src_real else 0.0,
        "tgt_pad_per_token": (tgt_padded - tgt_real) / tgt_real if tgt_real else 0.0,
        "max_batch_tokens": max_cost,
    }
    logger.info(
        "data: %d train batches (%.1f sentences on average), padding %.1f%% of source and %.1f%% of "
        "target tokens, largest batch %d padded tokens",
        stats["n_batches"],
        stats["mean_sentences"],
        100 * stats["src_pad_frac"],
        100 * stats["tgt_pad_frac"],
        stats["max_batch_tokens"],
    )
    return stats
