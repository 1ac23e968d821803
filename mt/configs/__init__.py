"""Hydra configs shipped as package data: train.yaml, evaluate.yaml, translate.yaml, data_stats.yaml
and the groups data/, tokenizer/, model/ (attention/), optim/, trainer/, experiment/,
hparams_search/, hydra/. Defaults live in the schemas of mt/config.py; YAML sets only what differs.
"""
