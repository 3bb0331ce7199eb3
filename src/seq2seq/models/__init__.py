"""Model components (plain PyTorch). Each conf/model/*.yaml names one of these classes as `_target_`:

- Seq2Seq: bidirectional RNN encoder + recurrent decoder (lstm_bahdanau, lstm_luong, gru, rnn, no_attention)
- ConvSeq2Seq: convolutional (ConvS2S-style) encoder + the same recurrent decoder (cnn)
- Transformer: pre-norm Transformer with incremental decoding (transformer)
"""

from seq2seq.models.attention import Attention, BahdanauAttention, LuongAttention
from seq2seq.models.base import EncoderDecoder, EncoderOutput
from seq2seq.models.conv import ConvEncoder, ConvSeq2Seq
from seq2seq.models.decoder import DecoderState, RecurrentDecoder
from seq2seq.models.encoder import RecurrentEncoder
from seq2seq.models.seq2seq import Seq2Seq
from seq2seq.models.transformer import Transformer, TransformerEncoderOutput, TransformerState

__all__ = [
    "Attention",
    "BahdanauAttention",
    "ConvEncoder",
    "ConvSeq2Seq",
    "DecoderState",
    "EncoderDecoder",
    "EncoderOutput",
    "LuongAttention",
    "RecurrentDecoder",
    "RecurrentEncoder",
    "Seq2Seq",
    "Transformer",
    "TransformerEncoderOutput",
    "TransformerState",
]
