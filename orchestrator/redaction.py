"""Secrets out of output: API keys, bearer tokens and passwords inside URLs.

Used by ``voicechat config``, every log line and every error body, so a secret that
reaches a message by accident (a driver error quoting its URL, a client echoing its
header) is masked on the way out.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

_PATTERNS = [
    # scheme://user:password@host -> scheme://user:***@host
    (re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s@/]*(?P<tail>@)"),
     rf"\g<head>{MASK}\g<tail>"),
    (re.compile(r"(?i)(?P<head>\bbearer\s+)[^\s\"',;]+"), rf"\g<head>{MASK}"),
    (re.compile(r"(?P<head>\bvck_)[A-Za-z0-9_-]{4,}"), rf"\g<head>{MASK}"),
    # client secrets: 16+ characters, so identifiers that merely start with ek_ stay
    (re.compile(r"(?P<head>\bek_)[A-Za-z0-9_-]{16,}"), rf"\g<head>{MASK}"),
    (re.compile(r"(?P<head>openai-insecure-api-key\.)[^\s\"',;]+"), rf"\g<head>{MASK}"),
]


_known: set[str] = set()


def remember_secrets(*values: str | None) -> None:
    """Configured secrets (ADMIN_API_KEY, DB_PASSWORD) masked wherever they appear."""
    _known.update(v for v in values if v and len(v) >= 4)


def redact(text: str) -> str:
    """``text`` with key-shaped tokens, bearer tokens, URL passwords and every
    remembered secret masked."""
    for literal in _known:
        text = text.replace(literal, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def mask_url(url: str) -> str:
    """A URL with its password (if any) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        return redact(url)
    if parts.password is None:
        return url
    _, _, host = parts.netloc.rpartition("@")
    netloc = f"{parts.username or ''}:{MASK}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
