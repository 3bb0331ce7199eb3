"""Recurrent decoder (LSTM, GRU or RNN; Bahdanau, Luong or no attention; optional input feeding).

At step t the RNN reads the previous target embedding (and, with input feeding, the previous
attentional vector); its top hidden state h_t queries the attention, and the attentional vector
is a_t = dropout(tanh(W [h_t; context_t])). The vocabulary projection is applied outside the
recurrence (`logits`), so teacher forcing projects all T positions at once.

Without attention (attention="none", Cho et al., 2014) the context is the encoder's summary
`enc.final` at every step: it initialises the RNN (bridge), is concatenated to the RNN input at
each step, and enters a_t = tanh(W [h_t; summary]). The returned weights are uniform over the
real source tokens (1 / length), so callers that plot attention still get a well-formed matrix.

`step` is the one-token code that search calls. Teacher forcing (`forward`) loops over `step`
with input feeding; without it the RNN runs over the whole target in one call and the attention
for all positions is one batched product, which gives the same numbers much faster.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import torch.nn as nn

from seq2seq.models.attention import BahdanauAttention, LuongAttention
from seq2seq.models.dropout import Dropout
from seq2seq.models.encoder import rnn_class

ATTENTIONS = ("bahdanau", "luong_general", "luong_dot", "none")


class DecoderState(NamedTuple):
    """Recurrent state carried from one step to the next (batch dim = sentences or beams)."""

    hidden: torch.Tensor  # [L, B, H] RNN hidden state per decoder layer
    cell: Optional[torch.Tensor]  # [L, B, H] LSTM cell state per layer; None for GRU / RNN
    att_vector: Optional[torch.Tensor]  # [B, H] previous attentional vector (input feeding); else None

    def rnn_state(self) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """What nn.LSTM ((h, c)) or nn.GRU / nn.RNN (h) take as their initial state."""
        return self.hidden if self.cell is None else (self.hidden, self.cell)

    @staticmethod
    def from_rnn(rnn_state, att_vector: Optional[torch.Tensor]) -> "DecoderState":
        """Inverse of `rnn_state`: an RNN's returned state (and the attentional vector) -> DecoderState."""
        if isinstance(rnn_state, tuple):
            return DecoderState(rnn_state[0], rnn_state[1], att_vector)
        return DecoderState(rnn_state, None, att_vector)

    def index_select(self, index: torch.Tensor) -> "DecoderState":
        """Pick batch rows: index [B'] long -> state with batch size B' (beam reordering)."""
        return DecoderState(
            self.hidden.index_select(1, index),  # [L, B', H]
            None if self.cell is None else self.cell.index_select(1, index),  # [L, B', H]
            None if self.att_vector is None else self.att_vector.index_select(0, index),  # [B', H]
        )


class RecurrentDecoder(nn.Module):
    """RNN decoder over an attended encoder memory (see the module docstring).

    Args:
        emb_size, hidden_size, memory_size (encoder output size), vocab_size, num_layers.
        dropout: on the attentional vector; hidden_dropout: between RNN layers (None: = dropout).
        cell: "lstm" | "gru" | "rnn"; attention: "bahdanau" | "luong_general" | "luong_dot" | "none".
        input_feeding: feed a_{t-1} into the RNN next to the embedding (Luong et al., 2015).
        output_emb_size: if given and != hidden_size, a_t is projected to this size before the
            output layer (so that the output layer can be tied to a target embedding of that size).
    """

    def __init__(
        self,
        emb_size: int,
        hidden_size: int,
        memory_size: int,
        vocab_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        hidden_dropout: float | None = None,
        cell: str = "lstm",
        attention: str = "bahdanau",
        input_feeding: bool = True,
        output_emb_size: int | None = None,
    ):
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.input_feeding = input_feeding
        self.is_lstm = cell == "lstm"
        if attention == "bahdanau":
            self.attention = BahdanauAttention(query_size=hidden_size, key_size=memory_size, hidden_size=hidden_size)
        elif attention in ("luong_general", "luong_dot"):
            self.attention = LuongAttention(hidden_size, memory_size, kind=attention.removeprefix("luong_"))
        elif attention == "none":
            self.attention = None
        else:
            raise ValueError(f"attention={attention!r} is not one of {', '.join(ATTENTIONS)}")
        hidden_dropout = dropout if hidden_dropout is None else hidden_dropout
        self.rnn = rnn_class(cell)(
            emb_size + (hidden_size if input_feeding else 0) + (memory_size if attention == "none" else 0),
            hidden_size,
            num_layers,
            batch_first=True,
            dropout=hidden_dropout if num_layers > 1 else 0.0,
        )
        self.bridge = nn.Linear(memory_size, num_layers * hidden_size)
        self.att_vector_layer = nn.Linear(hidden_size + memory_size, hidden_size)
        out_size = output_emb_size or hidden_size
        self.embed_proj = nn.Linear(hidden_size, out_size, bias=False) if out_size != hidden_size else nn.Identity()
        self.output_layer = nn.Linear(out_size, vocab_size)
        self.dropout = Dropout(dropout)

    def init_state(self, encoder_final: torch.Tensor) -> DecoderState:
        """Bridge from the encoder: encoder_final [B, M] -> initial DecoderState.

        Each layer's hidden state is tanh(W_l encoder_final); LSTM cell states and the first
        attentional vector (input feeding) start at zero.
        """
        B = encoder_final.size(0)
        hidden = torch.tanh(self.bridge(encoder_final))  # [B, L * H]
        hidden = hidden.view(B, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()  # [L, B, H]
        cell = torch.zeros_like(hidden) if self.is_lstm else None  # [L, B, H]
        att_vector = hidden.new_zeros(B, self.hidden_size) if self.input_feeding else None  # [B, H]
        return DecoderState(hidden, cell, att_vector)

    def attend(self, query: torch.Tensor, enc) -> tuple[torch.Tensor, torch.Tensor]:
        """query [B, H] or [B, T, H] (top RNN states) -> attentional vectors [B, (T,) H], weights [B, (T,) S]."""
        if self.attention is not None:
            context, weights = self.attention(query, enc.proj_keys, enc.memory, enc.mask)  # [B, (T,) M], [B, (T,) S]
        else:  # no attention: the summary is the context, the weights are uniform over the real tokens
            context = enc.final  # [B, M]
            weights = enc.mask.float() / enc.mask.sum(-1, keepdim=True)  # [B, S]
            if query.dim() == 3:  # all T positions at once
                context = context.unsqueeze(1).expand(-1, query.size(1), -1)  # [B, T, M]
                weights = weights.unsqueeze(1).expand(-1, query.size(1), -1)  # [B, T, S]
        att_vector = torch.tanh(self.att_vector_layer(torch.cat([query, context], dim=-1)))  # [B, (T,) H]
        return self.dropout(att_vector), weights

    def step(
        self, prev_embed: torch.Tensor, state: DecoderState, enc
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """Advance one token.

        Args:
            prev_embed: [B, E] embedding of the previous target token.
            state: DecoderState with batch size B.
            enc: EncoderOutput (memory [B, S, M], proj_keys [B, S, A], mask [B, S]).
        Returns:
            attentional vector [B, H] (input of `logits`), the new DecoderState, attention weights [B, S].
        """
        rnn_input = prev_embed  # [B, E]
        if self.input_feeding:
            rnn_input = torch.cat([rnn_input, state.att_vector], dim=-1)  # [B, E + H]
        if self.attention is None:
            rnn_input = torch.cat([rnn_input, enc.final], dim=-1)  # [B, E (+ H) + M]
        output, rnn_state = self.rnn(rnn_input.unsqueeze(1), state.rnn_state())  # [B, 1, H], [L, B, H] (x2)
        att_vector, weights = self.attend(output.squeeze(1), enc)  # [B, H], [B, S]
        return att_vector, DecoderState.from_rnn(rnn_state, att_vector if self.input_feeding else None), weights

    def forward(self, embedded: torch.Tensor, state: DecoderState, enc) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: embedded [B, T, E] -> attentional vectors [B, T, H], weights [B, T, S]."""
        if not self.input_feeding:  # the RNN does not depend on the attention: one call, one batched attention
            if self.attention is None:
                summary = enc.final.unsqueeze(1).expand(-1, embedded.size(1), -1)  # [B, T, M]
                embedded = torch.cat([embedded, summary], dim=-1)  # [B, T, E + M]
            output, _ = self.rnn(embedded, state.rnn_state())  # [B, T, H]
            return self.attend(output, enc)  # [B, T, H], [B, T, S]
        att_vectors, weights = [], []
        for prev_embed in embedded.unbind(1):  # unbind: one gradient copy for all steps, not one per step
            att_vector, state, step_weights = self.step(prev_embed, state, enc)  # [B, H], state, [B, S]
            att_vectors.append(att_vector)
            weights.append(step_weights)
        return torch.stack(att_vectors, dim=1), torch.stack(weights, dim=1)  # [B, T, H], [B, T, S]

    def logits(self, att_vector: torch.Tensor) -> torch.Tensor:
        """Attentional vectors [..., H] -> vocabulary logits [..., V]."""
        return self.output_layer(self.embed_proj(att_vector))  # [..., V]
