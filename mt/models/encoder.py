"""The RNN encoder: embeddings, a (bi)directional GRU/LSTM over packed sequences, and the
bridge that turns its final state into the decoder's initial state."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from mt.models.dropout import Dropout, WordDropout

RNN_TYPES = {"gru": nn.GRU, "lstm": nn.LSTM}


class Encoder(nn.Module):
    """Embeds source ids and runs a multi-layer (bi)directional RNN over packed sequences."""

    def __init__(
        self,
        vocab_size: int,
        emb_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = True,
        rnn_type: str = "gru",
        dropout: float = 0.0,
        emb_dropout: float = 0.0,
        word_dropout: float = 0.0,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"unknown rnn_type {rnn_type!r}; choose one of {sorted(RNN_TYPES)}")
        self.rnn_type = rnn_type
        self.num_layers = num_layers
        self.num_directions = 2 if bidirectional else 1
        self.hidden_size = hidden_size
        self.output_size = hidden_size * self.num_directions
        self.embed = nn.Embedding(vocab_size, emb_size, padding_idx=pad_id)
        self.emb_dropout = Dropout(emb_dropout)
        self.word_dropout = WordDropout(word_dropout)
        self.rnn = RNN_TYPES[rnn_type](
            emb_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.out_dropout = Dropout(dropout)

    def forward(self, src: Tensor, src_lens: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """Encode a padded batch.

        src (B, S) long, src_lens (B,) long ->
        memory (B, S, D*H) (zeros on padding), final hidden (L, B, D*H), final cell (L, B, D*H) or None
        """
        B, S = src.shape
        x = self.emb_dropout(self.word_dropout(self.embed(src)))  # (B, S, E)
        packed = pack_padded_sequence(x, src_lens.cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=S)  # (B, S, D*H)
        memory = self.out_dropout(memory)
        if self.rnn_type == "lstm":
            h, c = state
            return memory, self._merge_directions(h), self._merge_directions(c)
        return memory, self._merge_directions(state), None

    def _merge_directions(self, state: Tensor) -> Tensor:
        # (L*D, B, H) -> (L, B, D*H): forward and backward final states side by side
        L, D = self.num_layers, self.num_directions
        state = state.view(L, D, state.size(1), self.hidden_size)
        return torch.cat([state[:, d] for d in range(D)], dim=-1)


class Bridge(nn.Module):
    """Initial decoder state from the encoder's final state: `bridge` (linear + tanh),
    `last` (copied, sizes must match) or `zero`."""

    def __init__(self, kind: str, enc_size: int, dec_size: int, dec_layers: int, rnn_type: str) -> None:
        super().__init__()
        if kind not in ("bridge", "last", "zero"):
            raise ValueError(f"unknown bridge {kind!r}; choose bridge, last or zero")
        if kind == "last" and enc_size != dec_size:
            raise ValueError(
                f"model.bridge=last copies the encoder state (size {enc_size}) into the decoder "
                f"(size {dec_size}); make them equal or use model.bridge=bridge"
            )
        self.kind, self.dec_size, self.dec_layers, self.rnn_type = kind, dec_size, dec_layers, rnn_type
        if kind == "bridge":
            self.hidden = nn.Linear(enc_size, dec_size * dec_layers)
            self.cell = nn.Linear(enc_size, dec_size * dec_layers) if rnn_type == "lstm" else None

    def forward(self, final_h: Tensor, final_c: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """final_h, final_c (L_enc, B, D*H) -> decoder hidden, cell (B, L_dec, H_dec); cell None for GRU."""
        top_h = final_h[-1]  # (B, D*H)
        B = top_h.size(0)
        if self.kind == "zero":
            h = top_h.new_zeros(B, self.dec_layers, self.dec_size)
            c = h.clone() if self.rnn_type == "lstm" else None
            return h, c
        if self.kind == "last":
            h = top_h.unsqueeze(1).expand(B, self.dec_layers, self.dec_size).contiguous()
            c = None
            if self.rnn_type == "lstm":
                assert final_c is not None
                c = final_c[-1].unsqueeze(1).expand(B, self.dec_layers, self.dec_size).contiguous()
            return h, c
        h = torch.tanh(self.hidden(top_h)).view(B, self.dec_layers, self.dec_size)
        c = None
        if self.cell is not None:
            assert final_c is not None
            c = self.cell(final_c[-1]).view(B, self.dec_layers, self.dec_size)
        return h, c
