"""What the recurrent-decoder models share: embeddings (shared / tied), initialisation, the search
interface and teacher forcing. Subclasses only build an encoder and call this constructor.

Search (seq2seq.inference.search) calls `encode`, `init_state` and `decode_step`, and reorders beams with
`EncoderOutput.index_select` / `DecoderState.index_select`; training calls `forward`. Both go
through the decoder's one-token `step` (or, without input feeding, its batched equivalent), and
the vocabulary projection `logits`.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import torch.nn as nn

from seq2seq.models.decoder import DecoderState, RecurrentDecoder
from seq2seq.models.dropout import Dropout


class EncoderOutput(NamedTuple):
    """Everything the decoder reads from the source, computed once per sentence."""

    memory: torch.Tensor  # [B, S, M] encoder states (zeros on padding)
    mask: torch.Tensor  # [B, S] bool, True on real source positions
    proj_keys: Optional[torch.Tensor]  # [B, S, A] attention keys, projected once (None without attention)
    final: torch.Tensor  # [B, M] summary of the sentence, input of the decoder's bridge

    def index_select(self, index: torch.Tensor) -> "EncoderOutput":
        """Pick (or repeat) batch rows: index [B'] long -> EncoderOutput with batch size B'."""
        return EncoderOutput(*(None if t is None else t.index_select(0, index) for t in self))


def source_mask(src_lens: torch.Tensor, S: int, device: torch.device) -> torch.Tensor:
    """src_lens [B] -> mask [B, S] bool, True on the first src_lens[b] positions of row b."""
    return torch.arange(S, device=device).unsqueeze(0) < src_lens.to(device).unsqueeze(1)  # [B, S]


def make_embeddings(
    src_vocab_size: int, tgt_vocab_size: int, emb_size: int, pad_id: int, share: bool
) -> tuple[nn.Embedding, nn.Embedding]:
    """Source and target embeddings; one module used twice when `share` (needs equal vocabularies)."""
    if share and src_vocab_size != tgt_vocab_size:
        raise ValueError(
            f"share_embeddings=true needs src_vocab_size == tgt_vocab_size (got {src_vocab_size} and "
            f"{tgt_vocab_size}): use a joint vocabulary (tokenizer.joint=true) or share_embeddings=false"
        )
    tgt_embed = nn.Embedding(tgt_vocab_size, emb_size, padding_idx=pad_id)
    src_embed = tgt_embed if share else nn.Embedding(src_vocab_size, emb_size, padding_idx=pad_id)
    return src_embed, tgt_embed


class EncoderDecoder(nn.Module):
    """Embeddings -> `encoder` -> RecurrentDecoder (see decoder.py for cell / attention / input feeding).

    Args:
        encoder: maps (embedded [B, S, E], src_lens [B]) to (memory [B, S, M], final [B, M]) and
            has an `output_size` (M).
        tie_embeddings: the output layer's weight is the target embedding (the attentional vector
            is projected to emb_size first when hidden_size != emb_size).
        share_embeddings: one embedding for source and target (needs equal vocabulary sizes).
        The others as in Seq2Seq.
    """

    def __init__(
        self,
        encoder: nn.Module,
        src_vocab_size: int,
        tgt_vocab_size: int,
        pad_id: int,
        bos_id: int,
        eos_id: int,
        emb_size: int,
        hidden_size: int,
        dec_layers: int,
        dropout: float,
        emb_dropout: float | None,
        hidden_dropout: float | None,
        cell: str,
        attention: str,
        input_feeding: bool,
        tie_embeddings: bool,
        share_embeddings: bool,
    ):
        super().__init__()
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.src_embed, self.tgt_embed = make_embeddings(
            src_vocab_size, tgt_vocab_size, emb_size, pad_id, share_embeddings
        )
        self.emb_dropout = Dropout(dropout if emb_dropout is None else emb_dropout)
        self.encoder = encoder
        self.decoder = RecurrentDecoder(
            emb_size, hidden_size, encoder.output_size, tgt_vocab_size, dec_layers, dropout, hidden_dropout,
            cell, attention, input_feeding, output_emb_size=emb_size if tie_embeddings else None,
        )
        if tie_embeddings:
            self.decoder.output_layer.weight = self.tgt_embed.weight
        self._init_parameters()

    def _init_parameters(self) -> None:
        """Xavier-uniform matrices (per gate for RNN weights, as Joey NMT does), zero biases, LSTM
        forget-gate bias 1; embeddings N(0, 1), or N(0, 1/emb_size) when tied to the output layer
        (N(0, 1) logits would be huge); zero padding embeddings.

        Xavier on a whole [V, E] embedding matrix would make the embeddings tiny (std about 0.015
        for V=8000) and the RNN inputs nearly zero: training then starts very slowly."""
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
            else:
                nn.init.zeros_(p)
        for module in self.modules():
            if isinstance(module, (nn.LSTM, nn.GRU, nn.RNN)):
                gates = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}[type(module)]
                for name, p in module.named_parameters():
                    if name.startswith("weight"):
                        for chunk in p.data.chunk(gates, dim=0):
                            nn.init.xavier_uniform_(chunk)
                    if isinstance(module, nn.LSTM) and name.startswith("bias_ih"):  # (input, forget, cell, output)
                        n = p.size(0) // 4
                        nn.init.ones_(p.data[n : 2 * n])
        tied = self.decoder.output_layer.weight is self.tgt_embed.weight
        std = self.tgt_embed.weight.size(1) ** -0.5 if tied else 1.0
        with torch.no_grad():
            for embed in {id(e): e for e in (self.src_embed, self.tgt_embed)}.values():
                nn.init.normal_(embed.weight, std=std)
                embed.weight[self.pad_id].zero_()

    def encode(self, src: torch.Tensor, src_lens: torch.Tensor) -> EncoderOutput:
        """src [B, S] long (padded with pad_id), src_lens [B] long -> EncoderOutput."""
        embedded = self.emb_dropout(self.src_embed(src))  # [B, S, E]
        memory, final = self.encoder(embedded, src_lens)  # [B, S, M], [B, M]
        mask = source_mask(src_lens, src.size(1), src.device)  # [B, S]
        attention = self.decoder.attention
        proj_keys = None if attention is None else attention.compute_proj_keys(memory)  # [B, S, A]
        return EncoderOutput(memory, mask, proj_keys, final)

    def init_state(self, enc: EncoderOutput) -> DecoderState:
        """Initial decoder state (bridge from the encoder's summary), batch size B."""
        return self.decoder.init_state(enc.final)

    def decode_step(
        self, prev_tokens: torch.Tensor, state: DecoderState, enc: EncoderOutput
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """prev_tokens [B] long -> logits [B, V], new state, attention weights [B, S]."""
        prev_embed = self.emb_dropout(self.tgt_embed(prev_tokens))  # [B, E]
        att_vector, state, weights = self.decoder.step(prev_embed, state, enc)  # [B, H], state, [B, S]
        return self.decoder.logits(att_vector), state, weights  # [B, V], state, [B, S]

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
        embedded = self.emb_dropout(self.tgt_embed(tgt_in))  # [B, T, E]
        att_vectors, attention = self.decoder(embedded, self.init_state(enc), enc)  # [B, T, H], [B, T, S]
        logits = self.decoder.logits(att_vectors)  # [B, T, V] one projection for all positions
        return (logits, attention) if return_attention else logits
