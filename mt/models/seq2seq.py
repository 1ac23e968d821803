"""The encoder-decoder model and its factory."""

from __future__ import annotations

import logging
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mt.config import ModelConfig
from mt.models.attention import build_attention
from mt.models.decoder import Decoder, DecoderState, EncoderContext
from mt.models.encoder import Bridge, Encoder
from mt.models.loss import coverage_loss, output_cross_entropy

if TYPE_CHECKING:
    from mt.data.collate import Batch

log = logging.getLogger("mt.model")


class Seq2Seq(nn.Module):
    """RNN encoder, bridge, attentional decoder and output layer."""

    def __init__(
        self, encoder: Encoder, bridge: Bridge, decoder: Decoder, tgt_vocab_size: int, tie: bool
    ) -> None:
        super().__init__()
        self.encoder, self.bridge, self.decoder = encoder, bridge, decoder
        self.output = nn.Linear(decoder.output_size, tgt_vocab_size, bias=True)
        if tie:
            if decoder.embed.embedding_dim != decoder.output_size:
                raise ValueError(
                    f"model.tie_embeddings needs the target embedding size ({decoder.embed.embedding_dim}) "
                    f"to equal the decoder output size ({decoder.output_size}); set model.emb_size="
                    f"{decoder.output_size} or model.tie_embeddings=false"
                )
            self.output.weight = decoder.embed.weight

    def encode(
        self, src: Tensor, src_lens: Tensor, src_mask: Tensor, vocab: Tensor | None = None
    ) -> tuple[EncoderContext, DecoderState]:
        """src (B, S), src_lens (B,), src_mask (B, S) -> per-batch attention context and initial
        state; with `vocab` (V',) the target ids of a shortlist, `next_scores` scores those only."""
        memory, h, c = self.encoder(src, src_lens)
        autocast = torch.is_autocast_enabled(memory.device.type)
        if autocast:
            # The attention context bmm casts its values at every decoder step otherwise, and
            # autograd keeps each (B, S, Hk) copy: 270 MB over a batch of 91 x 56-token sentences.
            memory = memory.to(torch.get_autocast_dtype(memory.device.type))
        keys = self.decoder.attention.precompute_keys(memory)  # once per batch
        h0, c0 = self.bridge(h, c)
        vocab_out = None
        if vocab is not None:  # the shortlist's rows of the output layer, (V', H) and (V',)
            weight, bias = self.output.weight.index_select(0, vocab), self.output.bias.index_select(0, vocab)
            if autocast:  # cast once, not at every step
                dtype = torch.get_autocast_dtype(memory.device.type)
                weight, bias = weight.to(dtype), bias.to(dtype)
            vocab_out = (weight, bias)
        ctx = EncoderContext(memory, keys, src_mask, vocab_out)
        return ctx, self.decoder.init_state(h0, c0, src_mask.size(1))

    @property
    def tgt_vocab_size(self) -> int:
        """V, the size of the output layer."""
        return self.output.out_features

    def next_scores(
        self, prev: Tensor, state: DecoderState, ctx: EncoderContext
    ) -> tuple[Tensor, Tensor, DecoderState]:
        """One search step: prev (B,) long -> logits (B, V) float32 (B, V' on a shortlist: the
        order of its ids), attention weights (B, S), state."""
        feats, weights, state = self.decoder.step(prev, state, ctx)  # (B, H), (B, S)
        if ctx.vocab_out is not None:
            return F.linear(feats, *ctx.vocab_out).float(), weights, state
        return self.output(feats).float(), weights, state

    def forward(
        self, batch: Batch, return_attention: bool = False, teacher_forcing: float = 1.0
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher-forced features (B, T, H) and optionally attention (B, T, S) of a batch with targets."""
        if batch.tgt_in is None:
            raise ValueError("teacher-forced decoding needs a batch with targets (collate with tgt_ids)")
        ctx, state = self.encode(batch.src, batch.src_lens, batch.src_mask)
        return self.decoder(batch.tgt_in, state, ctx, return_attention, teacher_forcing, self.output)

    def loss(
        self,
        batch: Batch,
        label_smoothing: float = 0.0,
        teacher_forcing: float = 1.0,
        coverage_weight: float = 0.0,
    ) -> tuple[Tensor, Tensor]:
        """Summed cross-entropy over real target tokens -> (loss_sum, nll_sum), both scalars;
        with ``coverage_weight`` > 0, loss_sum adds that times the coverage loss of See et al.
        (2017) (`mt.models.loss.coverage_loss`, summed over the same tokens).

        The output layer runs once, over the real (unpadded) positions only (see
        `mt.models.loss` for how the loss keeps its memory bounded).
        """
        with_coverage = coverage_weight > 0
        features, attention = self.forward(batch, with_coverage, teacher_forcing)  # (B, T, H), (B, T, S)
        mask = batch.tgt_mask  # (B, T)
        loss, nll = output_cross_entropy(features[mask], self.output, batch.tgt_out[mask], label_smoothing)
        if with_coverage:
            loss = loss + coverage_weight * coverage_loss(attention, mask)
        return loss, nll

    def num_parameters(self, embeddings: bool = True) -> int:
        """Number of distinct trainable parameters (optionally without embedding tables)."""
        params = {id(p): p for p in self.parameters() if p.requires_grad}
        if not embeddings:
            for emb in (self.encoder.embed, self.decoder.embed):
                params.pop(id(emb.weight), None)
        return sum(p.numel() for p in params.values())


def _get(cfg: Any, key: str) -> Any:
    return cfg[key] if isinstance(cfg, dict) else getattr(cfg, key)


def build_model(cfg: Any, src_vocab_size: int, tgt_vocab_size: int, pad_id: int = 0) -> Seq2Seq:
    """Build a Seq2Seq from a ModelConfig (dataclass, DictConfig or plain dict); no Hydra needed.
    A plain dict may leave out settings added since it was written (word dropout): they take the
    schema's default."""
    if is_dataclass(cfg):
        cfg = asdict(cfg)
    elif isinstance(cfg, dict):
        cfg = {**asdict(ModelConfig()), **cfg}
    att_cfg = _get(cfg, "attention")
    encoder = Encoder(
        src_vocab_size,
        _get(cfg, "emb_size"),
        _get(cfg, "enc_hidden"),
        num_layers=_get(cfg, "enc_layers"),
        bidirectional=_get(cfg, "bidirectional"),
        rnn_type=_get(cfg, "rnn_type"),
        dropout=_get(cfg, "dropout"),
        emb_dropout=_get(cfg, "emb_dropout"),
        word_dropout=_get(cfg, "src_word_dropout"),
        pad_id=pad_id,
    )
    dec_hidden = _get(cfg, "dec_hidden")
    settings = {k: v for k, v in att_cfg.items() if k not in ("name", "hidden_size")}  # window, score, ...
    attention = build_attention(
        _get(att_cfg, "name"), dec_hidden, encoder.output_size, _get(att_cfg, "hidden_size"), **settings
    )
    decoder = Decoder(
        tgt_vocab_size,
        _get(cfg, "emb_size"),
        dec_hidden,
        encoder.output_size,
        attention,
        num_layers=_get(cfg, "dec_layers"),
        rnn_type=_get(cfg, "rnn_type"),
        style=_get(cfg, "decoder_style"),
        input_feeding=_get(cfg, "input_feeding"),
        dropout=_get(cfg, "dropout"),
        emb_dropout=_get(cfg, "emb_dropout"),
        word_dropout=_get(cfg, "tgt_word_dropout"),
        pad_id=pad_id,
    )
    bridge = Bridge(
        _get(cfg, "bridge"), encoder.output_size, dec_hidden, _get(cfg, "dec_layers"), _get(cfg, "rnn_type")
    )
    model = Seq2Seq(encoder, bridge, decoder, tgt_vocab_size, _get(cfg, "tie_embeddings"))
    log.info(
        "model: %s parameters (%s without embeddings), attention=%s, decoder=%s",
        f"{model.num_parameters():,}",
        f"{model.num_parameters(embeddings=False):,}",
        _get(att_cfg, "name"),
        _get(cfg, "decoder_style"),
    )
    return model
