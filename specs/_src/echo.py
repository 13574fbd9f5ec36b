"""Values echoed back to a user: shortened, and with the credentials of URLs hidden.

Errors repeat what they were given and specs are printed (``inspect``) and stored (embeddings
files, Ray manifests, ONNX exports). A value can be huge (a 5,000,000-character model name) or
carry a secret (``https://user:TOKEN@host/...``, ``?sig=...``, often interpolated from the
environment). Everything that echoes or stores user input goes through these helpers:
`shorten` one value, `redact` URLs in a string or in nested data, `clean_message` a whole
error message (both at once).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: an echoed value longer than this is cut in the middle
MAX_ECHO = 200
#: a whole message longer than this is cut in the middle (hints and choices included)
MAX_MESSAGE = 4000
#: what a hidden credential is replaced with
REDACTED = "***"

#: a URL: a scheme, ``//``, then up to a space, a quote or a bracket
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
#: the ``user:password@`` part of a URL's authority (no ``/`` before the ``@``)
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@]*@")
#: a query or fragment parameter (``?name=value``, ``&name=value``, ``#name=value``)
_PARAM = re.compile(r"([?&;#])([^=&;#]+)=([^&;#]*)")
#: parameter and mapping-key names that carry credentials (pre-signed URLs: S3 ``X-Amz-*``,
#: Azure SAS ``sig``, GCS ``X-Goog-Signature``; ``token``, ``access_token``, ``api_key``, ...)
_SECRET_PARAM = re.compile(r"token|sig|key|secret|passw|pwd|auth|credential|session", re.IGNORECASE)
_SECRET_KEY = re.compile(
    r"(?:^|[_-])(?:token|password|passwd|secret|api[_-]?key|access[_-]?key|private[_-]?key|"
    r"auth|authorization|credentials?)$",
    re.IGNORECASE,
)
_LONG_RUN = re.compile(r"\S{" + str(MAX_ECHO + 1) + ",}")


def shorten(text: str, limit: int = MAX_ECHO) -> str:
    """``text`` itself when it has at most ``limit`` characters, else its start and end with
    the number of characters left out between them."""
    if len(text) <= limit:
        return text
    keep = max(limit - 40, 2)
    head, tail = keep * 2 // 3, keep - keep * 2 // 3
    return f"{text[:head]}...[{len(text) - head - tail} characters]...{text[-tail:]}"


def redact_url(url: str) -> str:
    """One URL with its user information and credential-like parameters replaced by ``***``.

    Example:
        >>> redact_url("https://user:tok@host/w.pth?sig=abc&v=1")
        'https://***@host/w.pth?sig=***&v=1'
    """
    url = _USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", url, count=1)

    def param(m: re.Match[str]) -> str:
        if _SECRET_PARAM.search(m.group(2)) and m.group(3):
            return f"{m.group(1)}{m.group(2)}={REDACTED}"
        return m.group(0)

    return _PARAM.sub(param, url)


def redact(value: Any) -> Any:
    """``value`` with the credentials of every URL in it hidden: a string, or nested mappings
    and lists of them (a string under a key such as ``token`` or ``password`` is hidden whole).

    Returns new containers (dicts and lists); other values are returned as they are.
    """
    if isinstance(value, str):
        return _URL.sub(lambda m: redact_url(m.group(0)), value) if "://" in value else value
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if isinstance(key, str) and isinstance(item, str) and item and _SECRET_KEY.search(key)
            else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    return value


def clean_message(message: str) -> str:
    """An error message safe to print: URL credentials hidden, every run of more than
    `MAX_ECHO` non-space characters shortened, and the whole at most `MAX_MESSAGE` long."""
    message = redact(message)
    message = _LONG_RUN.sub(lambda m: shorten(m.group(0)), message)
    return shorten(message, MAX_MESSAGE)
