"""The project's own error types: stages print their message and exit non-zero, no traceback."""

import difflib


class Seq2SeqError(Exception):
    """Base class for errors a user can fix (bad input, bad config, unreachable server)."""


class ConfigError(Seq2SeqError):
    """A parameter is missing, unknown or has a bad value."""


class DataError(Seq2SeqError):
    """Input data is missing, malformed or misaligned; the message names the file (and line)."""


class DownloadError(Seq2SeqError):
    """No address could deliver a verified archive."""


def did_you_mean(key: str, known, prefix: str = "") -> str:
    """' (did you mean <prefix><closest>?)' for an unknown `key`, '' when nothing in `known` is close."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""
