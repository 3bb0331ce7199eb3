"""The recurrent encoder-decoder: embeddings, bidirectional RNN encoder, recurrent decoder.

One class covers conf/model/lstm_bahdanau, lstm_luong, gru, rnn and no_attention: they differ in
`cell`, `attention` and `input_feeding` (see decoder.py for what each does).
"""

from __future__ import annotations

from seq2seq.models.base import EncoderDecoder
from seq2seq.models.encoder import RecurrentEncoder


class Seq2Seq(EncoderDecoder):
    """RNN encoder-decoder (Bahdanau et al., 2015; Luong et al., 2015; Cho et al., 2014 without attention).

    Built by Hydra from conf/model/*.yaml plus the vocabulary sizes and special ids.
    Dropout: `dropout` on the attentional vector (the decoder output before the vocabulary
    projection); `emb_dropout` on source and target embeddings and `hidden_dropout` between
    stacked RNN layers both default to `dropout`.
    """

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        pad_id: int,
        bos_id: int,
        eos_id: int,
        emb_size: int = 256,  # token embedding size (source and target)
        hidden_size: int = 256,  # decoder RNN size (and attention size)
        enc_layers: int = 1,
        dec_layers: int = 1,
        dropout: float = 0.3,  # on the attentional vector; default of the two below
        emb_dropout: float | None = None,  # on embeddings (None: = dropout)
        hidden_dropout: float | None = None,  # between stacked RNN layers (None: = dropout)
        cell: str = "lstm",  # lstm | gru | rnn, encoder and decoder
        attention: str = "bahdanau",  # bahdanau | luong_general | luong_dot | none
        input_feeding: bool = True,  # feed the previous attentional vector to the decoder RNN
        enc_hidden_size: int | None = None,  # encoder RNN size per direction (None: = hidden_size); memory 2x this
        tie_embeddings: bool = False,  # output layer weight = target embedding
        share_embeddings: bool = False,  # one embedding for source and target (equal vocab sizes)
    ):
        enc_hidden_size = hidden_size if enc_hidden_size is None else enc_hidden_size
        if enc_hidden_size <= 0:
            raise ValueError(f"enc_hidden_size={enc_hidden_size} must be a positive integer")
        if attention == "luong_dot" and 2 * enc_hidden_size != hidden_size:
            raise ValueError(
                f"attention=luong_dot compares decoder states (hidden_size={hidden_size}) with the bidirectional "
                f"encoder's memory (2 * enc_hidden_size={2 * enc_hidden_size}): set enc_hidden_size={hidden_size // 2}"
            )
        encoder = RecurrentEncoder(
            emb_size, enc_hidden_size, enc_layers, dropout if hidden_dropout is None else hidden_dropout, cell
        )
        super().__init__(
            encoder, src_vocab_size, tgt_vocab_size, pad_id, bos_id, eos_id, emb_size, hidden_size, dec_layers,
            dropout, emb_dropout, hidden_dropout, cell, attention, input_feeding, tie_embeddings, share_embeddings,
        )
