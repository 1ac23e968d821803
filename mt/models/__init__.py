"""The encoder-decoder: encoder, attentional decoder (Luong or Bahdanau style), recurrent cells,
the attention mechanisms (attention/, one file each), the loss, speed kernels (kernels.py) and FLOPs.
Entry point: `seq2seq.build_model(model_cfg, src_vocab, tgt_vocab)`.
"""
