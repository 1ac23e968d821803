"""Scoring output: sacreBLEU metrics with signatures and tok-lc BLEU, decoding and scoring
whole splits into outputs/ and results, and attention plots.
Entry point: `evaluate.evaluate_splits`.
"""
