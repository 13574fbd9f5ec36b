"""The one error type of `specs`: what was wrong, where, and how to fix it."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from .echo import clean_message, shorten

#: a location inside a config: mapping keys (str) and list indices (int)
Location = tuple[str | int, ...]

_SEGMENT = re.compile(r"\[(-?\d+)\]|([^.\[\]]+)")


class SpecError(ValueError):
    """An invalid spec: names the field path, what was expected, what was got, and the fix.

    Attributes:
        path: dotted field path, e.g. ``backbone.init_args.model_kwargs.out_indices``
            (``<root>`` for the whole config).
        location: the same path as a tuple of keys and list indices.
        expected: what the field accepts.
        got: the offending value.
        choices: the valid names, where the field takes a name.
        hint: how to fix it, when more than "use an expected value" helps.

    Example:
        >>> specs.structure({"source": "timm", "model_nme": "vit_tiny_patch16_224"})
        SpecError: model_nme: expected a field of TimmSpec, got 'model_nme' (str). Did you
        mean 'model_name'? Valid choices: ...
    """

    def __init__(
        self,
        path: str | Location,
        expected: str,
        got: Any = None,
        *,
        choices: Iterable[str] | None = None,
        hint: str | None = None,
        show_got: bool = True,
    ) -> None:
        self.location: Location = parse_path(path) if isinstance(path, str) else tuple(path)
        self.expected = expected
        self.got = got
        self.choices = tuple(choices) if choices is not None else None
        self.hint = hint
        self.show_got = show_got
        # values echoed in the message are shortened and URL credentials hidden; the
        # attributes keep what was given
        super().__init__(clean_message(self._message()))

    @property
    def path(self) -> str:
        """The dotted field path (``<root>`` when the whole config is at fault)."""
        return format_path(self.location) or "<root>"

    def at(self, *prefix: str | int) -> SpecError:
        """The same error, located under ``prefix`` (the path of the enclosing value)."""
        return self.relocated(tuple(prefix) + self.location)

    def relocated(self, location: Location) -> SpecError:
        """The same error at another location."""
        return self._replace(location, self.hint)

    def with_hint(self, hint: str | None) -> SpecError:
        """The same error with another hint (how to fix it)."""
        return self._replace(self.location, hint)

    def _replace(self, location: Location, hint: str | None) -> SpecError:
        error = SpecError(
            location,
            self.expected,
            self.got,
            choices=self.choices,
            hint=hint,
            show_got=self.show_got,
        )
        error.__cause__ = self.__cause__
        return error

    def _message(self) -> str:
        parts = [f"{self.path}: expected {self.expected}"]
        if self.show_got:
            parts.append(f"got {describe(self.got)}")
        message = ", ".join(parts) + "."
        if self.choices is not None and isinstance(self.got, str):
            close = closest(self.got, self.choices)
            if close:
                message += f" Did you mean {' or '.join(repr(c) for c in close)}?"
        if self.choices:
            shown = sorted(self.choices)
            tail = "" if len(shown) <= 20 else f", ... ({len(shown) - 20} more)"
            message += f" Valid choices: {', '.join(shown[:20])}{tail}."
        if self.hint:
            message += f" {self.hint}"
        return message

    def __reduce__(self) -> Any:
        return (
            _rebuild,
            (self.location, self.expected, self.got, self.choices, self.hint, self.show_got),
        )


def _rebuild(
    location: Location, expected: str, got: Any, choices: Any, hint: Any, show: bool
) -> SpecError:
    return SpecError(location, expected, got, choices=choices, hint=hint, show_got=show)


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The valid names closest to a misspelled ``name`` (case-insensitive), best first."""
    choices = list(choices)
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.6)
    return [by_lower[c] for c in close]


def describe(value: Any) -> str:
    """``repr`` of a value with its type, shortened for messages."""
    return f"{shorten(repr(value), 80)} ({type(value).__name__})"


def parse_path(path: str) -> Location:
    """``"a.b[0].c"`` -> ``("a", "b", 0, "c")``; ``""`` and ``"<root>"`` -> ``()``."""
    if path in ("", "<root>"):
        return ()
    return tuple(int(index) if index else key for index, key in _SEGMENT.findall(path))


def format_path(location: Location) -> str:
    """``("a", "b", 0, "c")`` -> ``"a.b[0].c"``."""
    text = ""
    for key in location:
        text = join(text, key)
    return text


def join(path: str, key: str | int) -> str:
    """Extend a dotted field path: ``join("a.b", "c") == "a.b.c"``, ``join("a", 0) == "a[0]"``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key
