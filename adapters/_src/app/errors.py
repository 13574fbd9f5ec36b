"""Errors of the application's data input: one line each, naming the flag, expected and got."""


class DataError(ValueError):
    """Bad dataset input: the message names the argument, expected, got, and the fix."""


class UnreadableImageError(DataError):
    """An image file PIL cannot read, with ``strict`` loading."""
