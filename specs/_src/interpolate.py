"""OmegaConf-style ``${oc.env:VAR, default}`` interpolation, as eva's configs use it.

Supported, as OmegaConf reads it:

- ``${oc.env:VAR}`` and ``${oc.env:VAR, default}``, anywhere inside a string;
- nested defaults: ``${oc.env:A, ${oc.env:B, x}}`` (a default is only resolved when needed);
- quoted defaults (``${oc.env:A, 'a, b'}``) stay strings; ``null`` as a default is None;
- ``\\${`` for a literal ``${`` (and ``\\\\${`` for a backslash followed by an interpolation).

When an interpolation is the whole value, the resolved text is typed with YAML rules
(``"false"`` -> False, ``"1"`` -> 1, ``"[0, 1]"`` -> [0, 1]), as eva's config parser does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

import yaml

from .errors import Location, SpecError

_SYNTAX = "'${oc.env:VAR}' or '${oc.env:VAR, default}'"
_ESCAPE = re.compile(r"(\\*)\$\{")
_NULL = re.compile(r"[Nn][Uu][Ll][Ll]")


class _Interp(NamedTuple):
    """A parsed ``${oc.env:...}``: its arguments, each a list of text and nested _Interps."""

    args: list[tuple[list[Any], bool]]  # (pieces, quoted)
    text: str


def resolve(value: Any, location: Location = ()) -> Any:
    """Resolve every interpolation in the strings of a nested dict / list config.

    Args:
        value: plain config data (mappings, lists, scalars); mapping keys are left as they are.
        location: where ``value`` sits, for error messages.

    Returns:
        The same structure (mappings as dicts, sequences as lists) with strings resolved.

    Raises:
        SpecError: an unset variable without default, an unsupported or unclosed interpolation.
    """
    if isinstance(value, str):
        return resolve_string(value, location)
    if isinstance(value, Mapping):
        return {key: resolve(item, (*location, key)) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [resolve(item, (*location, i)) for i, item in enumerate(value)]
    return value


def resolve_string(text: str, location: Location = ()) -> Any:
    """Resolve the interpolations of one string (see the module docstring for the rules)."""
    if "$" not in text:
        return text
    pieces = _Parser(text, location).parse()
    if len(pieces) == 1 and isinstance(pieces[0], _Interp):
        value, quoted = _evaluate(pieces[0], location)
        if value is None or quoted:
            return value
        return _typed(value)
    return _join(pieces, location)


def escape(text: str) -> str:
    """Escape ``${`` so that `resolve_string` gives ``text`` back unchanged."""
    return _ESCAPE.sub(lambda m: "\\" * (2 * len(m.group(1)) + 1) + "${", text)


def _typed(text: str) -> Any:
    if text.strip() == "":
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if value is None and not _NULL.fullmatch(text.strip()) and text.strip() != "~":
        return text  # e.g. a comment-only string: keep what was written
    if isinstance(value, (bool, int, float, str, list)) or value is None:
        return value
    return text  # mappings, dates, ...: keep the text


def _join(pieces: list[Any], location: Location) -> str:
    out = []
    for piece in pieces:
        if isinstance(piece, _Interp):
            value, _ = _evaluate(piece, location)
            out.append("null" if value is None else value)
        else:
            out.append(piece)
    return "".join(out)


def _evaluate(node: _Interp, location: Location) -> tuple[str | None, bool]:
    """(resolved text or None, whether it came from a quoted default)."""
    name_pieces, _ = node.args[0]
    name = _join(name_pieces, location).strip()
    if not name:
        raise SpecError(
            location,
            f"an environment variable name in {_SYNTAX}",
            node.text,
            hint="Write the variable name after 'oc.env:'.",
        )
    value = os.environ.get(name)
    if value is not None:
        return value, False
    if len(node.args) == 1:
        raise SpecError(
            location,
            f"the environment variable {name} to be set (used by {node.text!r})",
            show_got=False,
            hint=f"Set it (export {name}=...) or give a default: '${{oc.env:{name}, default}}'.",
        )
    pieces, quoted = node.args[1]
    default = _join(pieces, location)
    if quoted:
        return default, True
    default = default.strip()
    return (None, False) if _NULL.fullmatch(default) else (default, False)


class _Parser:
    """Recursive-descent parser of interpolation strings into text and `_Interp` pieces."""

    def __init__(self, text: str, location: Location) -> None:
        self.text = text
        self.location = location
        self.pos = 0

    def parse(self) -> list[Any]:
        return self._sequence(stops="", quote=None)

    def _error(self, expected: str, hint: str) -> SpecError:
        return SpecError(self.location, expected, self.text, hint=hint)

    def _unclosed(self) -> SpecError:
        return self._error(
            f"a closed interpolation {_SYNTAX}",
            "Close it with '}', or write '\\${' for a literal '${'.",
        )

    def _sequence(self, stops: str, quote: str | None) -> list[Any]:
        text, pieces, buf = self.text, [], []
        depth = 0  # open [ and { in a default such as [0, 1]: their commas do not split
        while self.pos < len(text):
            char = text[self.pos]
            if char == "\\":
                run = len(text[self.pos :]) - len(text[self.pos :].lstrip("\\"))
                after = self.pos + run
                if text.startswith("${", after):
                    buf.append("\\" * (run // 2))
                    if run % 2:
                        buf.append("${")
                        self.pos = after + 2
                    else:
                        self.pos = after
                        pieces, buf = self._flush(pieces, buf)
                        pieces.append(self._interpolation())
                    continue
                if quote is not None and run == 1 and text.startswith(quote, after):
                    buf.append(quote)
                    self.pos = after + 1
                    continue
                buf.append("\\" * run)
                self.pos = after
                continue
            if text.startswith("${", self.pos):
                pieces, buf = self._flush(pieces, buf)
                pieces.append(self._interpolation())
                continue
            if quote is None and stops and char in "[{":
                depth += 1
            elif quote is None and stops and char in "]}" and depth:
                depth -= 1
            elif (quote is not None and char == quote) or (
                quote is None and char in stops and not depth
            ):
                break
            buf.append(char)
            self.pos += 1
        pieces, buf = self._flush(pieces, buf)
        return pieces

    @staticmethod
    def _flush(pieces: list[Any], buf: list[str]) -> tuple[list[Any], list[str]]:
        if buf and "".join(buf):
            pieces.append("".join(buf))
        return pieces, []

    def _interpolation(self) -> _Interp:
        text, start = self.text, self.pos
        self.pos += 2
        end = min(
            (i for i in (text.find(":", self.pos), text.find("}", self.pos)) if i >= 0), default=-1
        )
        if end < 0:
            raise self._unclosed()
        resolver = text[self.pos : end].strip()
        if text[end] == "}" or resolver != "oc.env":
            shown = resolver if text[end] == ":" else f"a reference to the node '{resolver}'"
            raise self._error(
                f"an interpolation of the form {_SYNTAX}",
                f"Only the 'oc.env' resolver is supported, not {shown}; "
                "write '\\${' for a literal '${'.",
            )
        self.pos = end + 1
        args: list[tuple[list[Any], bool]] = []
        while True:
            args.append(self._argument())
            if self.pos >= len(text):
                raise self._unclosed()
            char = text[self.pos]
            self.pos += 1
            if char == "}":
                break
        if len(args) > 2:
            raise self._error(
                f"at most two arguments to oc.env: {_SYNTAX}",
                "Quote a default that contains a comma: ${oc.env:VAR, 'a, b'}.",
            )
        return _Interp(args, text[start : self.pos])

    def _argument(self) -> tuple[list[Any], bool]:
        text = self.text
        while self.pos < len(text) and text[self.pos] in " \t":
            self.pos += 1
        if self.pos < len(text) and text[self.pos] in "'\"":
            quote = text[self.pos]
            self.pos += 1
            pieces = self._sequence(stops="", quote=quote)
            if self.pos >= len(text):
                raise self._unclosed()
            self.pos += 1
            while self.pos < len(text) and text[self.pos] in " \t":
                self.pos += 1
            if self.pos < len(text) and text[self.pos] not in ",}":
                raise self._error(
                    f"a quoted default followed by ',' or '}}' in {_SYNTAX}",
                    "Put the whole default inside the quotes.",
                )
            return pieces, True
        return self._sequence(stops=",}", quote=None), False
