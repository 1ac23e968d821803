"""Scoring output: sacreBLEU metrics with signatures and tok-lc BLEU, decoding and scoring
whole splits into outputs/ and results, attention plots, and the TensorBoard writer.
Entry point: `evaluate.evaluate_splits`.
"""
