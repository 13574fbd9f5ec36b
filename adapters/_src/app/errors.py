"""Errors of the command line's commands: one line each, naming the flag, expected and got.

They live here, apart from the modules that raise them, so `cli.main` catches them without
importing torch (``--help`` and ``list`` stay fast)."""

from __future__ import annotations


class CliError(Exception):
    """Bad command-line input that no other error here names (a flag that does not fit the
    others, a path of the wrong kind): printed as one line, exit status 2."""


class DataError(ValueError):
    """Bad dataset input: the message names the argument, expected, got, and the fix."""


class UnreadableImageError(DataError):
    """An image file PIL cannot read, with ``strict`` loading."""


class EmbedError(ValueError):
    """Bad input to `embed`: the message names the argument, expected, got, and the fix."""


class ForwardError(EmbedError):
    """The backbone's forward failed on the input it was given (usually its shape).

    Attributes:
        shape: the input's shape.
        reason: the backbone's own error, in one line.
    """

    def __init__(self, shape: tuple[int, ...], reason: str) -> None:
        self.shape = shape
        self.reason = reason
        super().__init__(self.describe("image_size"))

    def describe(self, size_option: str) -> str:
        """The message, naming ``size_option`` (``image_size``; the CLI: ``--image-size``)."""
        return (
            f"forward: the backbone failed on an input of shape {self.shape} ({self.reason}); "
            f"give the input size it takes with {size_option} (and check its channels and "
            "normalisation)"
        )


class ProbeError(ValueError):
    """Bad input to `probe`: the message names the argument, expected, got, and the fix."""
