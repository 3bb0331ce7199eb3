"""LSTM decoder with Bahdanau attention and input feeding, advanced one token at a time.

`step` is the only decoding code: teacher-forced training loops over it, search calls it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn

from seq2seq.models.attention import BahdanauAttention


class DecoderState(NamedTuple):
    """Recurrent state carried from one step to the next (batch dim = sentences or beams)."""

    hidden: torch.Tensor  # [L, B, H] LSTM hidden state per decoder layer
    cell: torch.Tensor  # [L, B, H] LSTM cell state per decoder layer
    att_vector: torch.Tensor  # [B, H] attentional vector of the previous step (input feeding)

    def index_select(self, index: torch.Tensor) -> "DecoderState":
        """Pick batch rows: index [B'] long -> state with batch size B' (beam reordering)."""
        return DecoderState(
            self.hidden.index_select(1, index),  # [L, B', H]
            self.cell.index_select(1, index),  # [L, B', H]
            self.att_vector.index_select(0, index),  # [B', H]
        )


class RecurrentDecoder(nn.Module):
    """LSTM decoder (Luong-style input feeding) over an attended encoder memory.

    At step t: input = [embed(y_{t-1}); att_vector_{t-1}], the top LSTM hidden state queries the
    attention, att_vector_t = dropout(tanh(W [h_t; context_t])), logits_t = W_out att_vector_t.
    """

    def __init__(
        self,
        emb_size: int,
        hidden_size: int,
        memory_size: int,
        vocab_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.attention = BahdanauAttention(query_size=hidden_size, key_size=memory_size, hidden_size=hidden_size)
        self.rnn = nn.LSTM(
            emb_size + hidden_size,
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.bridge = nn.Linear(memory_size, num_layers * hidden_size)
        self.att_vector_layer = nn.Linear(hidden_size + memory_size, hidden_size)
        self.output_layer = nn.Linear(hidden_size, vocab_size)
        self.dropout = nn.Dropout(dropout)

    def init_state(self, encoder_final: torch.Tensor) -> DecoderState:
        """Bridge from the encoder: encoder_final [B, 2H] -> initial DecoderState.

        Each layer's hidden state is tanh(W_l encoder_final); cell states and the first
        attentional vector start at zero.
        """
        B = encoder_final.size(0)
        hidden = torch.tanh(self.bridge(encoder_final))  # [B, L * H]
        hidden = hidden.view(B, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()  # [L, B, H]
        cell = torch.zeros_like(hidden)  # [L, B, H]
        att_vector = hidden.new_zeros(B, self.hidden_size)  # [B, H]
        return DecoderState(hidden, cell, att_vector)

    def step(
        self,
        prev_embed: torch.Tensor,
        state: DecoderState,
        memory: torch.Tensor,
        proj_keys: torch.Tensor,
        mask: torch.Tensor,
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """Advance one token.

        Args:
            prev_embed: [B, E] embedding of the previous target token.
            state: DecoderState with batch size B.
            memory: [B, S, M] encoder outputs; proj_keys: [B, S, A]; mask: [B, S] bool (True = real).
        Returns:
            logits [B, V], the new DecoderState, attention weights [B, S].
        """
        rnn_input = torch.cat([prev_embed, state.att_vector], dim=-1).unsqueeze(1)  # [B, 1, E + H]
        output, (hidden, cell) = self.rnn(rnn_input, (state.hidden, state.cell))  # [B, 1, H], [L, B, H] x2
        query = output.squeeze(1)  # [B, H] top layer's hidden state
        context, weights = self.attention(query, proj_keys, memory, mask)  # [B, M], [B, S]
        att_vector = torch.tanh(self.att_vector_layer(torch.cat([query, context], dim=-1)))  # [B, H]
        att_vector = self.dropout(att_vector)  # [B, H]
        logits = self.output_layer(att_vector)  # [B, V]
        return logits, DecoderState(hidden, cell, att_vector), weights
