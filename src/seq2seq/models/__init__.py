"""Model components (plain PyTorch): attention, encoder, decoder and the full Seq2Seq."""

from seq2seq.models.attention import Attention, BahdanauAttention
from seq2seq.models.decoder import DecoderState, RecurrentDecoder
from seq2seq.models.encoder import RecurrentEncoder
from seq2seq.models.seq2seq import EncoderOutput, Seq2Seq

__all__ = [
    "Attention",
    "BahdanauAttention",
    "DecoderState",
    "EncoderOutput",
    "RecurrentDecoder",
    "RecurrentEncoder",
    "Seq2Seq",
]
