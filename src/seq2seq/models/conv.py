"""Convolutional encoder in the spirit of ConvS2S (Gehring et al., 2017), feeding the recurrent decoder.

Token + learned position embeddings -> linear to `channels` -> N x [dropout, Conv1d, GLU, residual,
scale sqrt(0.5)] -> linear to the memory size. Padded positions are set to zero before every
convolution, exactly like the convolution's own zero padding past the sentence end, so a sentence
gives the same memory alone or in a padded batch. Unlike ConvS2S the decoder is the attentional
RNN decoder, and its bridge reads the masked mean of the memory.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from seq2seq.models.base import EncoderDecoder, source_mask
from seq2seq.models.dropout import Dropout


class ConvEncoder(nn.Module):
    """Stack of gated convolutions over the embedded source; output size `output_size`."""

    def __init__(
        self, emb_size: int, channels: int, output_size: int, num_layers: int = 4, kernel_size: int = 3,
        dropout: float = 0.0, max_positions: int = 1024,
    ):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={kernel_size} must be odd (same-length convolutions)")
        self.output_size = output_size
        self.max_positions = max_positions
        self.pos_embed = nn.Embedding(max_positions, emb_size)
        self.to_channels = nn.Linear(emb_size, channels)
        self.convs = nn.ModuleList(
            nn.Conv1d(channels, 2 * channels, kernel_size, padding=kernel_size // 2) for _ in range(num_layers)
        )
        self.to_memory = nn.Linear(channels, output_size)
        self.dropout = Dropout(dropout)

    def forward(self, embedded: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """embedded [B, S, E], lengths [B] -> memory [B, S, M] (zeros on padding), final [B, M] (masked mean)."""
        B, S, _ = embedded.shape
        if S > self.max_positions:
            raise ValueError(f"source length {S} exceeds max_positions={self.max_positions}")
        mask = source_mask(lengths, S, embedded.device).unsqueeze(-1)  # [B, S, 1]
        x = embedded + self.pos_embed(torch.arange(S, device=embedded.device))  # [B, S, E]
        x = self.to_channels(x)  # [B, S, C]
        for conv in self.convs:
            residual = x  # [B, S, C]
            x = self.dropout(x).masked_fill(~mask, 0.0)  # [B, S, C] padding reads as the conv's zero padding
            x = F.glu(conv(x.transpose(1, 2)), dim=1).transpose(1, 2)  # [B, S, 2C] -> [B, S, C]
            x = (x + residual) * math.sqrt(0.5)  # [B, S, C]
        memory = self.to_memory(x).masked_fill(~mask, 0.0)  # [B, S, M]
        final = memory.sum(1) / lengths.to(memory).unsqueeze(1)  # [B, M]
        return memory, final


class ConvSeq2Seq(EncoderDecoder):
    """ConvEncoder + the attentional recurrent decoder (see Seq2Seq for the decoder options).

    `hidden_dropout` is applied before every convolution and between stacked decoder RNN layers.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        pad_id: int,
        bos_id: int,
        eos_id: int,
        emb_size: int = 256,  # token (and position) embedding size
        hidden_size: int = 256,  # decoder RNN size; also the encoder memory size
        enc_layers: int = 4,  # convolution layers
        dec_layers: int = 1,
        channels: int = 256,  # convolution channels
        kernel_size: int = 3,  # odd
        max_positions: int = 1024,  # longest source sentence (learned position embeddings)
        dropout: float = 0.3,  # on the attentional vector; default of the two below
        emb_dropout: float | None = None,  # on embeddings (None: = dropout)
        hidden_dropout: float | None = None,  # before each convolution, between decoder layers (None: = dropout)
        cell: str = "lstm",  # decoder cell: lstm | gru | rnn
        attention: str = "bahdanau",  # bahdanau | luong_general | luong_dot | none
        input_feeding: bool = True,
        tie_embeddings: bool = False,
        share_embeddings: bool = False,
    ):
        encoder = ConvEncoder(
            emb_size, channels, hidden_size, enc_layers, kernel_size,
            dropout if hidden_dropout is None else hidden_dropout, max_positions,
        )
        super().__init__(
            encoder, src_vocab_size, tgt_vocab_size, pad_id, bos_id, eos_id, emb_size, hidden_size, dec_layers,
            dropout, emb_dropout, hidden_dropout, cell, attention, input_feeding, tie_embeddings, share_embeddings,
        )
