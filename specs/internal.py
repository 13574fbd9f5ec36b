"""Helpers ``specs`` shares with its sibling packages (``adapters``), not part of the user API.

A sanctioned home, as ``equinox.internal`` is: a module of another package imports these names
from here, never from ``specs._src``, so the private tree can be rearranged freely. What is
here: atomic file writes and file digests; the bounded JSON reader spec files use; shortening
of echoed values and redaction of credentials in URLs.
"""

from specs._src.atomic import atomic_write, current_umask, sha256_file
from specs._src.echo import clean_message, redact, shorten
from specs._src.parse import parse_json

__all__ = [
    "atomic_write",
    "clean_message",
    "current_umask",
    "parse_json",
    "redact",
    "sha256_file",
    "shorten",
]
