"""Corpora: fetching and reading IWSLT'14 archives and parallel folders, the fairseq split, SentencePiece,
and the token batches training reads. Nothing here knows a model."""
