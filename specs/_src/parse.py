"""Config text -> plain data: JSON and YAML parsers bounded in depth and size, duplicate keys
refused, every failure a `SpecError` naming the text and the line."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from .errors import SpecError

#: JSON text: an object whose first key is quoted (or an empty one), or an array with a string;
#: YAML's flow style (``{source: "timm"}``) has bare keys, so it is read as YAML
_JSON_START = re.compile(r'\s*(\{\s*["}]|\[.*")', re.DOTALL)


def looks_like_json(text: str) -> bool:
    """Whether config text is JSON (``{"key"...``) rather than YAML (flow style included)."""
    return _JSON_START.match(text) is not None


#: bounds on a config's shape, checked while it is read (before anything is built from it):
#: real specs nest under ten levels and hold a few hundred values, so these only stop bombs
#: (a few hundred bytes of nested YAML aliases expand to billions of values)
MAX_DEPTH = 100
MAX_NODES = 100_000

#: JSON strings (skipped whole, escapes included) and the brackets that nest
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _json_depth_error(text: str, name: str) -> SpecError | None:
    """A `SpecError` when JSON ``text`` nests deeper than `MAX_DEPTH`, found in one linear scan
    (``json.loads`` would recurse and raise a bare `RecursionError`)."""
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                line = text.count("\n", 0, match.start()) + 1
                return _too_deep(name, f"line {line}")
        elif token in "]}":
            depth -= 1
    return None


def _too_deep(name: str, where: str) -> SpecError:
    return SpecError(
        (name,),
        f"a config nested at most {MAX_DEPTH} levels deep",
        show_got=False,
        hint=f"It nests deeper at {where}; a spec is a few levels of mappings and lists.",
    )


def _unique_keys(name: str):
    def pairs_to_dict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, value in pairs:
            if key in data:
                raise SpecError(
                    (name,),
                    "each key once per JSON object",
                    key,
                    hint=f"Key {key!r} is given twice; JSON would silently keep the last. "
                    "Remove one.",
                )
            data[key] = value
        return data

    return pairs_to_dict


def parse_json(text: str, name: str) -> Any:
    """Plain data from JSON text, refusing duplicate keys and nesting deeper than `MAX_DEPTH`.

    Args:
        text: the JSON text.
        name: how error messages name the text (a file name, say).

    Returns:
        The parsed data (dicts, lists, scalars).

    Raises:
        SpecError: a syntax error (with line and column), a duplicated key, or too deep.
    """
    too_deep = _json_depth_error(text, name)
    if too_deep is not None:
        raise too_deep
    try:
        return json.loads(text, object_pairs_hook=_unique_keys(name))
    except json.JSONDecodeError as err:
        line = text.splitlines()[err.lineno - 1] if text.splitlines() else ""
        raise SpecError(
            (name,),
            "valid JSON",
            line.strip(),
            hint=f"JSON syntax error at line {err.lineno}, column {err.colno}: {err.msg}.",
        ) from None


class ShapeError(yaml.MarkedYAMLError):
    """A YAML document deeper than `MAX_DEPTH` or larger than `MAX_NODES` once aliases expand."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (YAML would silently keep the last one) and
    bounds the document while it is composed: nesting depth, and the number of values with
    every alias counted as the whole value it stands for (billion laughs stops early)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._expanded = 0
        #: id(node) -> how many values the node stands for, its children and aliases included
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            node = super().compose_node(parent, index)
            self._count(self._sizes.get(id(node), 1), mark)
            return node
        mark = self.peek_event().start_mark
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ShapeError(None, None, f"the config nests deeper than {MAX_DEPTH} levels", mark)
        before = self._expanded
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._count(1, mark)
        self._sizes[id(node)] = self._expanded - before
        return node

    def _count(self, values: int, mark: Any) -> None:
        self._expanded += values
        if self._expanded > MAX_NODES:
            raise ShapeError(
                None,
                None,
                f"the config stands for more than {MAX_NODES} values once its aliases "
                "(*name) are expanded",
                mark,
            )


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            continue
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"found duplicate key {key!r} (first set at line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str) -> Any:
    """Plain data from YAML text (safe tags only), bounded while it is composed.

    Raises:
        ShapeError: nesting deeper than `MAX_DEPTH`, or more than `MAX_NODES` values once
            aliases are expanded.
        yaml.YAMLError: a syntax error or a duplicated key.
    """
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass


def parse_yaml(text: str, name: str) -> Any:
    """Plain data from YAML text (safe tags only), bounded while it is composed.

    Args:
        text: the YAML text.
        name: how error messages name the text (a file name, say).

    Returns:
        The parsed data (dicts, lists, scalars).

    Raises:
        SpecError: a syntax error (with its line), a duplicated key, nesting deeper than
            `MAX_DEPTH`, or more than `MAX_NODES` values once aliases are expanded.
    """
    try:
        return load_yaml(text)
    except ShapeError as err:
        line = err.problem_mark.line + 1 if err.problem_mark is not None else "?"
        raise SpecError(
            (name,),
            f"a config nested at most {MAX_DEPTH} levels deep, of at most {MAX_NODES} values",
            show_got=False,
            hint=f"Stopped reading at line {line}: {err.problem}. A spec is a few levels of "
            "mappings and lists; remove the deep nesting or the repeated aliases.",
        ) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        # a missing ':' is detected on the line after the offending entry: show that entry
        start = err.context_mark if err.context_mark is not None else mark
        lines = text.splitlines()
        where, shown = "", ""
        if mark is not None and start is not None:
            where = f" at line {start.line + 1}"
            if start.line != mark.line:
                where += f" (detected at line {mark.line + 1}, column {mark.column + 1})"
            else:
                where += f", column {mark.column + 1}"
            shown = lines[start.line].strip() if start.line < len(lines) else ""
        raise SpecError(
            (name,),
            "valid YAML",
            shown,
            hint=f"YAML syntax error{where}: {err.problem or err.context}.",
        ) from None
    except yaml.YAMLError as err:
        raise SpecError((name,), "valid YAML", show_got=False, hint=f"YAML error: {err}.") from None
