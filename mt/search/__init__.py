"""Decoding a `Batch` with a `SearchConfig`: greedy and batched beam search, and translating
whole splits or lists of sentences in input order.
Entry points: `translate.translate_split`, `translate.translate_ids`.
"""
