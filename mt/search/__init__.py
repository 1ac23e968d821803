"""Decoding a `Batch` with a `SearchConfig` (base.py): greedy_search (greedy.py) and batched
beam_search (beam.py), optionally over a vocabulary shortlist (shortlist.py), and translating
whole splits or lists of sentences in input order (translate.py: translate_split, translate_ids)."""
