"""The special token ids every SentencePiece model of the tokenizer stage uses."""

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
