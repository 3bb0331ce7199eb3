"""Corpora: fetching and reading IWSLT'14 archives and parallel folders, the fairseq split, SentencePiece,
the token store and the batches training reads from it. Nothing here knows a model."""
