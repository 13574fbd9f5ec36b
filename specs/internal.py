"""Helpers ``specs`` shares with its sibling packages (``adapters``), not part of the user API.

A sanctioned home, as ``equinox.internal`` is: a module of another package imports these names
from here, never from ``specs._src``, so the private tree can be rearranged freely. What is
here: atomic file writes and file digests; the bounded JSON reader spec files use; shortening
of echoed values and redaction of credentials in URLs; reading a precision setting;
the closest valid names to a misspelled one.
"""

from specs._src.atomic import atomic_write, current_umask, sha256_file
from specs._src.echo import clean_message, redact, shorten
from specs._src.errors import closest
from specs._src.parse import parse_json
from specs._src.precision import DEFAULT_PRECISION, canonical_precision, check_precision

__all__ = [
    "DEFAULT_PRECISION",
    "atomic_write",
    "canonical_precision",
    "check_precision",
    "clean_message",
    "closest",
    "current_umask",
    "parse_json",
    "redact",
    "sha256_file",
    "shorten",
]
