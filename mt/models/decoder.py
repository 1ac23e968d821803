"""The attentional RNN decoder, in Luong or Bahdanau style.

Luong et al. (2015), with input feeding: attention is computed from the current top
state ``h_i``; the attentional state ``g_i = tanh(W_c [c_i; h_i])`` is the output feature
and is fed into the next step's input.

Bahdanau et al. (2015): attention is computed from the previous top state ``h_{i-1}``;
the context ``c_i`` is part of the RNN input; the output feature is
``tanh(W_c [c_i; h_i; e_i])`` with ``e_i`` the embedding of the previous target word. It is
not recurrent, so it is computed once over all steps after the loop.

The state counts the steps (``DecoderState.step``): each step passes it to the attention as
the target position t (local-m centres its window there), so search gets it without asking,
and beam reordering keeps it (every beam is at the same t).

With a coverage attention (See et al., 2017) the state also carries the coverage vector
``c_t = sum_{t' < t} a_t'`` (``DecoderState.coverage``, (B, S), zeros before the first step):
each step passes it to the attention and adds the step's weights to it, in teacher-forced
training and in search alike; ``select`` reorders it with the hidden states for beam search.

The output projection onto the vocabulary is not part of the decoder (see Seq2Seq), so
training computes it once over all real target tokens instead of inside the step loop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from mt.models.attention import Attention
from mt.models.cells import RecurrentLayer
from mt.models.dropout import Dropout, WordDropout


@dataclass
class EncoderContext:
    """What attention needs from the encoder, computed once per batch."""

    memory: Tensor  # (B, S, Hk): attention values
    keys: Tensor  # (B, S, *): attention.precompute_keys(memory)
    mask: Tensor  # (B, S) bool, True = real source token
    # the output layer's weight (V', H) and bias (V',) on a shortlist's V' target ids, sliced
    # once per batch (mt.search.shortlist); None = the whole vocabulary
    vocab_out: tuple[Tensor, Tensor] | None = None

    def select(self, idx: Tensor) -> EncoderContext:
        """Rows `idx` (N,) of the batch (for beam expansion, reordering and pruning)."""
        return EncoderContext(
            self.memory.index_select(0, idx),
            self.keys.index_select(0, idx),
            self.mask.index_select(0, idx),
            self.vocab_out,
        )


@dataclass
class DecoderState:
    """Recurrent state between steps; every tensor is batch-first."""

    hidden: tuple[Tensor, ...]  # per layer (B, H)
    cell: tuple[Tensor, ...] | None  # per layer (B, H), LSTM only
    feed: Tensor  # (B, F) previous attentional vector (Luong input feeding); (B, 0) otherwise
    step: int = 0  # index t of the target position the next step predicts (the same for all rows)
    coverage: Tensor | None = None  # (B, S) sum of the past steps' attention weights; coverage attention only

    def select(self, idx: Tensor) -> DecoderState:
        """Rows `idx` (N,) of the batch."""
        return DecoderState(
            tuple(h.index_select(0, idx) for h in self.hidden),
            None if self.cell is None else tuple(c.index_select(0, idx) for c in self.cell),
            self.feed.index_select(0, idx),
            self.step,
            None if self.coverage is None else self.coverage.index_select(0, idx),
        )


class Decoder(nn.Module):
    """Attentional RNN decoder. `forward` runs teacher-forced over a whole target batch,
    `step` advances one token for search."""

    def __init__(
        self,
        vocab_size: int,
        emb_size: int,
        hidden_size: int,
        memory_size: int,
        attention: Attention,
        num_layers: int = 1,
        rnn_type: str = "gru",
        style: str = "luong",
        input_feeding: bool = True,
        dropout: float = 0.0,
        emb_dropout: float = 0.0,
        word_dropout: float = 0.0,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        if style not in ("luong", "bahdanau"):
            raise ValueError(f"unknown decoder style {style!r}; choose luong or bahdanau")
        self.style = style
        self.rnn_type = rnn_type
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.output_size = hidden_size
        # Size of the vector fed back into layer 0 besides the embedding.
        if style == "luong":
            self.feed_size = hidden_size if input_feeding else 0
        else:
            self.feed_size = memory_size  # the context vector
        self.embed = nn.Embedding(vocab_size, emb_size, padding_idx=pad_id)
        self.emb_dropout = Dropout(emb_dropout)
        self.word_dropout = WordDropout(word_dropout)
        self.dropout = Dropout(dropout)
        self.attention = attention
        first_inputs = [emb_size] + ([self.feed_size] if self.feed_size else [])
        self.layers = nn.ModuleList(
            [RecurrentLayer(rnn_type, first_inputs, hidden_size)]
            + [RecurrentLayer(rnn_type, [hidden_size], hidden_size) for _ in range(num_layers - 1)]
        )
        combine_in = memory_size + hidden_size + (emb_size if style == "bahdanau" else 0)
        self.combine = nn.Linear(combine_in, hidden_size, bias=False)  # W_c

    # ------------------------------------------------------------------ state
    def init_state(self, hidden: Tensor, cell: Tensor | None, src_len: int = 0) -> DecoderState:
        """hidden, cell (B, L, H) from the bridge -> the state before the first step; with a
        coverage attention, a zero coverage (B, src_len) in at least float32 (the weights' dtype)."""
        B = hidden.size(0)
        coverage = None
        if self.attention.coverage:
            coverage = hidden.new_zeros(B, src_len, dtype=torch.promote_types(hidden.dtype, torch.float32))
        return DecoderState(
            tuple(hidden[:, i] for i in range(self.num_layers)),
            None if cell is None else tuple(cell[:, i] for i in range(self.num_layers)),
            hidden.new_zeros(B, self.feed_size if self.style == "luong" else 0),
            coverage=coverage,
        )

    # ------------------------------------------------------------------ core
    def _recur(self, gx0: Tensor, state: DecoderState, feed: Tensor | None) -> DecoderState:
        """Advance the RNN stack one step. gx0 (B, G): layer-0 projection of the embedding
        incl. bias; feed (B, F) or None: the extra layer-0 input."""
        if feed is not None:
            gx0 = gx0 + self.layers[0].project(1, feed)
        hidden, cells = [], []
        x = None
        for i, layer in enumerate(self.layers):
            gx = gx0 if i == 0 else layer.project(0, self.dropout(x), bias=True)
            c = None if state.cell is None else state.cell[i]
            h, c = layer.step(gx, state.hidden[i], c)
            hidden.append(h)
            cells.append(c)
            x = h
        cell = None if state.cell is None else tuple(cells)
        return DecoderState(tuple(hidden), cell, state.feed, state.step, state.coverage)

    def _attend(
        self, query: Tensor, state: DecoderState, ctx: EncoderContext
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """context (B, Hk), weights (B, S) of the attention from query (B, Hq), and the coverage
        after this step (None without coverage)."""
        if state.coverage is None:
            context, weights = self.attention(query, ctx.keys, ctx.memory, ctx.mask, state.step)
            return context, weights, None
        context, weights = self.attention(query, ctx.keys, ctx.memory, ctx.mask, state.step, state.coverage)
        return context, weights, state.coverage + weights  # c_{t+1} = c_t + a_t

    def _luong_step(
        self, gx0: Tensor, state: DecoderState, ctx: EncoderContext
    ) -> tuple[Tensor, Tensor, DecoderState]:
        state = self._recur(gx0, state, state.feed if self.feed_size else None)
        h = state.hidden[-1]  # (B, H)
        context, weights, coverage = self._attend(h, state, ctx)  # (B, Hk), (B, S), (B, S) | None
        att = self.dropout(torch.tanh(self.combine(torch.cat([context, h], dim=-1))))  # (B, H)
        feed = att if self.feed_size else state.feed
        return att, weights, replace(state, feed=feed, step=state.step + 1, coverage=coverage)

    def _bahdanau_step(
        self, gx0: Tensor, state: DecoderState, ctx: EncoderContext
    ) -> tuple[Tensor, Tensor, DecoderState]:
        context, weights, coverage = self._attend(state.hidden[-1], state, ctx)
        state = self._recur(gx0, state, context)
        return context, weights, replace(state, step=state.step + 1, coverage=coverage)

    def _bahdanau_output(self, context: Tensor, h: Tensor, emb: Tensor) -> Tensor:
        """(..., Hk), (..., H), (..., E) -> output feature (..., H)."""
        return self.dropout(torch.tanh(self.combine(torch.cat([context, h, emb], dim=-1))))

    # ------------------------------------------------------------------ API
    def forward(
        self,
        tgt_in: Tensor,
        state: DecoderState,
        ctx: EncoderContext,
        return_attention: bool = False,
        teacher_forcing: float = 1.0,
        predict: nn.Module | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher-forced decoding of a whole batch.

        tgt_in (B, T) long (BOS + target) -> features (B, T, H), attention (B, T, S) or None.
        With teacher_forcing < 1 (scheduled sampling) each position after the first takes,
        with probability 1 - teacher_forcing, the model's own greedy prediction as input;
        `predict` (features -> logits) is then required.
        """
        B, T = tgt_in.shape
        sampling = teacher_forcing < 1.0 and self.training
        if sampling and predict is None:
            raise ValueError("teacher_forcing < 1 needs the output layer (`predict`)")
        emb = self.emb_dropout(self.word_dropout(self.embed(tgt_in)))  # (B, T, E)
        # (T, B, G), one matmul; unbind, not gx_all[t]: backward stacks the T step gradients
        # once instead of adding T full-size (T, B, G) tensors that are zero but for one step
        gx_steps = self.layers[0].project(0, emb, bias=True).unbind(1)
        emb_steps = emb.unbind(1)  # T x (B, E)
        outputs, weights_all, contexts, tops = [], [], [], []
        for t in range(T):
            gx0 = gx_steps[t]
            emb_t = emb_steps[t]
            if sampling and t > 0:
                with torch.no_grad():
                    # Luong: the last attentional vector; Bahdanau: the readout of the last step
                    # (outputs holds the embeddings actually fed in that style)
                    prev = (
                        outputs[-1]
                        if self.style == "luong"
                        else self._bahdanau_output(contexts[-1], tops[-1], outputs[-1])
                    )
                    guess = predict(prev).argmax(-1)  # (B,)
                use_own = torch.rand(B, device=tgt_in.device) >= teacher_forcing
                if use_own.any():
                    own = self.emb_dropout(
                        self.word_dropout(self.embed(torch.where(use_own, guess, tgt_in[:, t])))
                    )
                    emb_t = own
                    gx0 = self.layers[0].project(0, own, bias=True)
            if self.style == "luong":
                out, weights, state = self._luong_step(gx0, state, ctx)
                outputs.append(out)
            else:
                context, weights, state = self._bahdanau_step(gx0, state, ctx)
                contexts.append(context)
                tops.append(state.hidden[-1])
                if sampling:
                    outputs.append(emb_t)  # embeddings actually fed, for the output layer below
            if return_attention:
                weights_all.append(weights)
        if self.style == "luong":
            features = torch.stack(outputs, dim=1)  # (B, T, H)
        else:
            fed = torch.stack(outputs, dim=1) if sampling else emb
            features = self._bahdanau_output(torch.stack(contexts, 1), torch.stack(tops, 1), fed)
        attention = torch.stack(weights_all, dim=1) if return_attention else None
        return features, attention

    def step(
        self, prev: Tensor, state: DecoderState, ctx: EncoderContext
    ) -> tuple[Tensor, Tensor, DecoderState]:
        """One search step: prev (B,) long -> features (B, H), attention weights (B, S), state."""
        emb = self.embed(prev)  # (B, E)
        gx0 = self.layers[0].project(0, emb, bias=True)
        if self.style == "luong":
            return self._luong_step(gx0, state, ctx)
        context, weights, state = self._bahdanau_step(gx0, state, ctx)
        return self._bahdanau_output(context, state.hidden[-1], emb), weights, state
