"""Credentials never go into params.yaml: it is shared through git, recorded in dvc.lock and logged
to MLflow. `find` spots one in a value so that the config check refuses it, saying where it goes
instead (WHERE_CREDENTIALS_GO)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

# Query parameters that carry a secret: pre-signed S3 / GCS addresses, Azure SAS, API tokens.
_SECRET_QUERY = re.compile(r"(signature|credential|security-token|token|secret|password|passwd|api[-_]?key"
                           r"|access[-_]?key|^sig$|^key$|^auth)", re.IGNORECASE)
# Tokens recognisable by their form wherever they appear.
_TOKENS = (
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")),
    ("a GitLab token", re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}")),
    ("a Hugging Face token", re.compile(r"\bhf_[A-Za-z0-9]{30,}")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
    ("an API key", re.compile(r"\bsk-[A-Za-z0-9_-]{20,}")),
    ("a JSON web token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.")),
    ("a bearer token", re.compile(r"\bBearer\s+\S{8,}", re.IGNORECASE)),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
)
_ADDRESS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")

WHERE_CREDENTIALS_GO = (
    "credentials never go into params.yaml (git, dvc.lock and MLflow share it): a download's user and "
    "password go into ~/.netrc (`machine <host> login <user> password <secret>`; the download stage reads "
    "it), a pre-signed archive address into the environment variable SEQ2SEQ_ARCHIVE_URL, and an MLflow "
    "server's into MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN")


def find(text: str) -> str | None:
    """What kind of credential `text` carries (for the error message, never the secret), or None."""
    for address in _ADDRESS.findall(text):
        parts = urlsplit(address)
        if "@" in parts.netloc:
            userinfo = parts.netloc.rsplit("@", 1)[0]
            return "a user and password in an address" if ":" in userinfo else "a user name or token in an address"
        for name, _ in parse_qsl(parts.query, keep_blank_values=True):
            if _SECRET_QUERY.search(name):
                return f"a signed or secret query parameter ({name}) in an address"
    for what, pattern in _TOKENS:
        if pattern.search(text):
            return what
    return None
