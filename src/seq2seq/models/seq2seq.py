"""The full model: embeddings, bidirectional LSTM encoder, attentional LSTM decoder.

Training calls `forward` (teacher forcing); search calls `encode`, `init_state`, `decode_step`,
`reorder_state` and `reorder_encoder_output` (see seq2seq.search). Both go through the same
one-token `RecurrentDecoder.step`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn

from seq2seq.models.decoder import DecoderState, RecurrentDecoder
from seq2seq.models.encoder import RecurrentEncoder


class EncoderOutput(NamedTuple):
    """Everything the decoder reads from the source, computed once per sentence."""

    memory: torch.Tensor  # [B, S, 2H] encoder states (zeros on padding)
    mask: torch.Tensor  # [B, S] bool, True on real source positions
    proj_keys: torch.Tensor  # [B, S, H] attention keys, projected once
    final: torch.Tensor  # [B, 2H] final encoder states, input of the decoder's bridge

    def index_select(self, index: torch.Tensor) -> "EncoderOutput":
        """Pick (or repeat) batch rows: index [B'] long -> EncoderOutput with batch size B'."""
        return EncoderOutput(*(t.index_select(0, index) for t in self))


class Seq2Seq(nn.Module):
    """RNN encoder-decoder with additive attention (Bahdanau et al., 2015; input feeding of Luong et al.).

    Built by Hydra from conf/model/*.yaml plus the vocabulary sizes and special ids.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        pad_id: int,
        bos_id: int,
        eos_id: int,
        emb_size: int = 256,  # token embedding size (source and target)
        hidden_size: int = 256,  # LSTM size per direction; encoder memory is 2x this
        enc_layers: int = 1,
        dec_layers: int = 1,
        dropout: float = 0.3,  # on embeddings, between LSTM layers, on the attentional vector
    ):
        super().__init__()
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.src_embed = nn.Embedding(src_vocab_size, emb_size, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, emb_size, padding_idx=pad_id)
        self.emb_dropout = nn.Dropout(dropout)
        self.encoder = RecurrentEncoder(emb_size, hidden_size, enc_layers, dropout)
        self.decoder = RecurrentDecoder(
            emb_size, hidden_size, self.encoder.output_size, tgt_vocab_size, dec_layers, dropout
        )
        self._init_parameters()

    def _init_parameters(self) -> None:
        """Xavier-uniform matrices, zero biases, LSTM forget-gate bias 1, zero padding embeddings."""
        for name, p in self.named_parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
            else:
                nn.init.zeros_(p)
            if "rnn.bias_ih" in name:  # gates are ordered (input, forget, cell, output)
                n = p.size(0) // 4
                nn.init.ones_(p[n : 2 * n])
        with torch.no_grad():
            self.src_embed.weight[self.pad_id].zero_()
            self.tgt_embed.weight[self.pad_id].zero_()

    def encode(self, src: torch.Tensor, src_lens: torch.Tensor) -> EncoderOutput:
        """src [B, S] long (padded with pad_id), src_lens [B] long -> EncoderOutput."""
        S = src.size(1)
        embedded = self.emb_dropout(self.src_embed(src))  # [B, S, E]
        memory, final = self.encoder(embedded, src_lens)  # [B, S, 2H], [B, 2H]
        mask = torch.arange(S, device=src.device).unsqueeze(0) < src_lens.to(src.device).unsqueeze(1)  # [B, S]
        proj_keys = self.decoder.attention.compute_proj_keys(memory)  # [B, S, H]
        return EncoderOutput(memory, mask, proj_keys, final)

    def init_state(self, enc: EncoderOutput) -> DecoderState:
        """Initial decoder state (bridge from the encoder's final states), batch size B."""
        return self.decoder.init_state(enc.final)

    def decode_step(
        self, prev_tokens: torch.Tensor, state: DecoderState, enc: EncoderOutput
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """prev_tokens [B] long -> logits [B, V], new state, attention weights [B, S]."""
        prev_embed = self.emb_dropout(self.tgt_embed(prev_tokens))  # [B, E]
        return self.decoder.step(prev_embed, state, enc.memory, enc.proj_keys, enc.mask)

    def reorder_state(self, state: DecoderState, index: torch.Tensor) -> DecoderState:
        """Select decoder-state rows: index [B'] long (e.g. the beams that survive a step)."""
        return state.index_select(index)

    def reorder_encoder_output(self, enc: EncoderOutput, index: torch.Tensor) -> EncoderOutput:
        """Select encoder-output rows: index [B'] long (e.g. repeat each sentence beam_size times)."""
        return enc.index_select(index)

    def forward(
        self, src: torch.Tensor, src_lens: torch.Tensor, tgt_in: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced decoding.

        Args:
            src: [B, S] long; src_lens: [B] long; tgt_in: [B, T] long, starting with BOS.
            return_attention: also return the attention weights (for heatmaps).
        Returns:
            logits [B, T, V] (and attention [B, T, S] if asked).
        """
        enc = self.encode(src, src_lens)
        state = self.init_state(enc)
        embedded = self.emb_dropout(self.tgt_embed(tgt_in))  # [B, T, E]
        logits, attention = [], []
        for t in range(tgt_in.size(1)):
            step_logits, state, weights = self.decoder.step(
                embedded[:, t], state, enc.memory, enc.proj_keys, enc.mask
            )  # [B, V], state, [B, S]
            logits.append(step_logits)
            attention.append(weights)
        logits = torch.stack(logits, dim=1)  # [B, T, V]
        if return_attention:
            return logits, torch.stack(attention, dim=1)  # [B, T, V], [B, T, S]
        return logits
