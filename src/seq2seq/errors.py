"""The project's own error types: stages print their message and exit non-zero, no traceback."""


class Seq2SeqError(Exception):
    """Base class for errors a user can fix (bad input, bad config, unreachable server)."""


class ConfigError(Seq2SeqError):
    """A parameter is missing, unknown or has a bad value."""


class DataError(Seq2SeqError):
    """Input data is missing, malformed or misaligned; the message names the file (and line)."""


class DownloadError(Seq2SeqError):
    """No address could deliver a verified archive."""
