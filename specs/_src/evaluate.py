"""OmegaConf interpolations evaluated within bounds, with OmegaConf's own grammar.

OmegaConf's parser and grammar visitor read each string (quoting, escapes, nesting, typed
resolver arguments: exactly as eva's configs are read); this module answers the visitor's two
questions itself: what a node reference (``${a.b}``, ``${..b}``) stands for, looked up in the
plain config, and what a resolver returns (``oc.env``, ``oc.decode``; a resolver registered
with OmegaConf is called with its arguments and an empty config; those that read the config,
``oc.select``, ``oc.create``, ``oc.dict.*``, are refused: write a node reference).

OmegaConf alone re-resolves a node each time it is referred to, so a few hundred bytes of
references that each double the one before (strings, lists built by ``oc.decode``) run for
hours. Here each node is resolved once, and every value handed out (a reference, a
resolver's result, a value typed as YAML) is counted with the whole value it stands for,
against `MAX_RESOLVED_VALUES` values and `MAX_RESOLVED_CHARS` characters per config;
references nest at most `MAX_REFERENCE_DEPTH` deep; YAML typing uses the bounded spec loader.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from omegaconf import grammar_parser
from omegaconf.errors import (
    InterpolationKeyError,
    InterpolationResolutionError,
    UnsupportedInterpolationType,
)
from omegaconf.grammar.gen.OmegaConfGrammarParser import OmegaConfGrammarParser as Parser
from omegaconf.grammar_visitor import GrammarVisitor
from omegaconf.resolvers.oc import env as _env

from .errors import Location
from .parse import MAX_NODES, ShapeError, load_yaml

#: values (each string, number, list and mapping) that resolving one config may hand out
MAX_RESOLVED_VALUES = MAX_NODES
#: characters of the strings that resolving one config may hand out
MAX_RESOLVED_CHARS = 1_000_000
#: characters that resolving one config may parse (interpolations, ``oc.decode``'s text, whole
#: values typed as YAML): both parsers are pure Python, some 20,000 characters a second
MAX_PARSED_CHARS = 30_000
#: a reference to a reference to ...: real configs chain one or two
MAX_REFERENCE_DEPTH = 30
#: OmegaConf's resolvers that read the config (they would resolve it again, unbounded)
CONFIG_RESOLVERS = ("oc.create", "oc.select", "oc.dict.keys", "oc.dict.values", "oc.deprecated")


TOO_DEEP = "its text nests too deep to parse (a '${' or '[' inside hundreds of others)"


class Exceeded(Exception):
    """Resolving would pass one of the bounds; the message says which."""


class Failure(Exception):
    """Resolving the string at ``location`` failed with ``error`` (an OmegaConf error or
    `Exceeded`), raised from the innermost string being resolved."""

    def __init__(self, error: Exception, location: Location) -> None:
        super().__init__(str(error))
        self.error = error
        self.location = location


class Evaluator:
    """The resolved values of one plain config (``root``), each node resolved once.

    Args:
        root: plain data (mappings, lists, scalars), the root of absolute references.
    """

    def __init__(self, root: Any) -> None:
        self.root = root
        self.values = 0
        self.chars = 0
        self.parsed = 0
        self._done: dict[Location, Any] = {}
        self._active: set[Location] = set()  # the nodes being resolved: a cycle meets one again
        self._depth = 0  # strings being resolved, one inside the other
        self._whole: dict[Location, str | None] = {}  # see `whole_interpolation`

    def value(self, location: Location = ()) -> Any:
        """The value at ``location`` resolved (mappings as dicts, sequences as lists; a whole
        interpolation that resolves to a string is typed as YAML, except ``oc.decode``'s).

        Raises:
            Failure: at the innermost string whose resolution failed.
        """
        return self._node(location)

    def raw(self, location: Location) -> Any:
        """The value at ``location`` as written."""
        node = self.root
        for key in location:
            node = node[key]
        return node

    def _node(self, location: Location) -> Any:
        if location in self._done:
            return self._done[location]
        if location in self._active:
            raise InterpolationResolutionError("Recursive interpolation detected")
        raw = self.raw(location)
        self._active.add(location)
        try:
            if isinstance(raw, str) and "${" in raw:
                value = self._string(raw, location)
            elif isinstance(raw, Mapping):
                value = {k: self._typed((*location, k)) for k in raw}
            elif isinstance(raw, (list, tuple)):
                value = [self._typed((*location, i)) for i in range(len(raw))]
            else:
                value = raw
        finally:
            self._active.discard(location)
        self._done[location] = value
        return value

    def _typed(self, location: Location) -> Any:
        """The node's value, a whole interpolation's string typed as YAML."""
        value = self._node(location)
        if isinstance(value, str) and self._whole.get(location, None) not in (None, "oc.decode"):
            return self._yaml(value, location)
        return value

    def _string(self, text: str, location: Location) -> Any:
        self._depth += 1
        try:
            if self._depth > MAX_REFERENCE_DEPTH:
                raise Exceeded(f"its references nest deeper than {MAX_REFERENCE_DEPTH} levels")
            tree = self._parse(text)
            self._whole[location] = whole_interpolation(tree)
            return self._visit(tree, location)
        except Failure:
            raise
        except (InterpolationResolutionError, Exceeded) as err:
            raise Failure(err, location) from None
        except RecursionError:  # the parser's or the visitor's: ${ or [ nested hundreds deep
            raise Failure(Exceeded(TOO_DEEP), location) from None
        finally:
            self._depth -= 1

    def _visit(self, tree: Any, location: Location) -> Any:
        visitor = _Visitor(
            node_interpolation_callback=lambda key, _memo: self._reference(key, location),
            resolver_interpolation_callback=lambda name, args, args_str: self._call(
                name, args, args_str, location
            ),
            memo=None,
        )
        try:
            return visitor.visit(tree)
        except (Failure, Exceeded, InterpolationResolutionError, RecursionError):
            raise
        except Exception as err:  # as OmegaConf reports a resolver's (or the grammar's) error
            raise InterpolationResolutionError(
                f"{type(err).__name__} raised while resolving interpolation: {err}"
            ) from err

    def _reference(self, key: Any, location: Location) -> Any:
        raw_key = getattr(key, "raw", key)
        parts = tuple(getattr(key, "parts", ()))
        dots = int(getattr(key, "relative_dots", 0))
        base: Location = ()
        if dots:  # ${.x}: beside this node; each further dot one level up
            base = location[:-1]
            if dots - 1 > len(base):
                raise InterpolationKeyError(f"Interpolation key '{raw_key}' not found")
            base = base[: len(base) - (dots - 1)]
        value = self._select(base, parts, raw_key)
        self._charge(value)
        return _copy(value)

    def _select(self, base: Location, parts: tuple[str, ...], raw_key: str) -> Any:
        """The resolved value at ``base`` + ``parts`` (through resolved values where a part
        of the path is itself an interpolation)."""
        location, value, resolved = base, None, False
        for part in parts:
            container = value if resolved else self.raw(location)
            if not resolved and isinstance(container, str) and "${" in container:
                container, resolved = self._node(location), True
            key = _key_in(container, part)
            if key is _MISSING:
                raise InterpolationKeyError(f"Interpolation key '{raw_key}' not found")
            if resolved:
                value = container[key]
            location = (*location, key)
        return value if resolved else self._node(location)

    def _call(self, name: str, args: tuple[Any, ...], args_str: Any, location: Location) -> Any:
        if name == "oc.env":
            result = _env(*args)
        elif name == "oc.decode":
            result = self._decode(location, *args)
        elif name in CONFIG_RESOLVERS:
            raise UnsupportedInterpolationType(
                f"Resolver {name} reads the config, which specs do not support"
            )
        else:
            result = _registered(name, args, args_str)
        self._charge(result)
        return result

    def _decode(self, location: Location, expr: Any) -> Any:
        if expr is None:
            return None
        if not isinstance(expr, str):
            raise TypeError(
                f"`oc.decode` can only take strings or None as input, but `{expr}` is of "
                f"type {type(expr).__name__}"
            )
        tree = self._parse(expr, parser_rule="singleElement", lexer_mode="VALUE_MODE")
        return self._visit(tree, location)

    def _parse(self, text: str, **options: str) -> Any:
        """OmegaConf's parse tree of ``text``, its length counted against the bounds."""
        self._count(0, 0, len(text))
        return grammar_parser.parse(text, **options)

    def _yaml(self, text: str, location: Location) -> Any:
        """A whole interpolation's text typed as YAML (``"false"`` -> False, ``"[0, 1]"``)."""
        if text.strip() == "":
            return text
        try:
            self._count(0, 0, len(text))
            value = load_yaml(text)
        except Exceeded as err:
            raise Failure(err, location) from None
        except ShapeError as err:
            raise Failure(Exceeded(f"its value, read as YAML: {err.problem}"), location) from None
        except yaml.YAMLError:
            return text
        if value is None and text.strip() not in ("~", "null", "Null", "NULL"):
            return text  # e.g. a comment-only string: keep what was written
        if isinstance(value, (bool, int, float, str, list)) or value is None:
            try:
                self._charge(value)
            except Exceeded as err:
                raise Failure(err, location) from None
            return value
        return text  # mappings, dates, ...: keep the text

    def _charge(self, value: Any) -> None:
        """Count ``value`` (with everything in it) against the bounds."""
        stack = [value]
        while stack:
            item = stack.pop()
            self._count(1, len(item) if isinstance(item, str) else 0)
            if isinstance(item, Mapping):
                stack.extend(item.values())
            elif isinstance(item, (list, tuple)):
                stack.extend(item)

    def _count(self, values: int, chars: int, parsed: int = 0) -> None:
        self.values += values
        self.chars += chars
        self.parsed += parsed
        if self.parsed > MAX_PARSED_CHARS:
            raise Exceeded(f"it needs more than {MAX_PARSED_CHARS} characters parsed")
        if self.values > MAX_RESOLVED_VALUES:
            raise Exceeded(f"it stands for more than {MAX_RESOLVED_VALUES} values")
        if self.chars > MAX_RESOLVED_CHARS:
            raise Exceeded(f"it stands for more than {MAX_RESOLVED_CHARS} characters")


class _Visitor(GrammarVisitor):
    """OmegaConf's grammar visitor, the same values without its cost on nested lists: it
    spells out (``getText``) each element of each list it reads, its whole subtree every time,
    so that reading a list nested n deep costs n times its length."""

    def visitElement(self, ctx: Any) -> Any:
        child = ctx.getChild(0)
        if isinstance(child, (Parser.ListContainerContext, Parser.DictContainerContext)):
            return self.visit(child)  # a container: its spelling is never the missing value
        return super().visitElement(ctx)

    def visitListContainer(self, ctx: Any) -> list[Any]:
        if ctx.getChildCount() == 3:
            children = list(ctx.getChild(1).getChildren())
            elements = [c for c in children if isinstance(c, Parser.ElementContext)]
            if len(children) == 2 * len(elements) - 1:  # "a, b": no empty element to warn of
                return [self.visitElement(c) for c in elements]
        return super().visitListContainer(ctx)


def whole_interpolation(tree: Any) -> str | None:
    """The resolver name (``""`` for a node reference) when the text whose parse ``tree`` is
    given is one interpolation, else None."""
    pieces = list(tree.getChild(0).getChildren())
    if len(pieces) != 1 or not isinstance(pieces[0], Parser.InterpolationContext):
        return None
    inner = pieces[0].getChild(0)
    if isinstance(inner, Parser.InterpolationResolverContext):
        return inner.resolverName().getText()
    return ""


_MISSING: Any = object()


def _key_in(container: Any, part: str) -> Any:
    """The key of ``container`` that a path part names (mapping keys compared as text, list
    indices as integers), else `_MISSING`."""
    if isinstance(container, Mapping):
        if part in container:
            return part
        return next((k for k in container if str(k) == part), _MISSING)
    if isinstance(container, (list, tuple)) and part.isdigit() and int(part) < len(container):
        return int(part)
    return _MISSING


def _copy(value: Any) -> Any:
    """A fresh copy of resolved containers, so that no two places of the result share one."""
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(v) for v in value]
    return value


def _registered(name: str, args: tuple[Any, ...], args_str: Any) -> Any:
    """A resolver registered with OmegaConf, called with its arguments and an empty config."""
    from omegaconf import OmegaConf

    resolver = getattr(OmegaConf, "_get_resolver", lambda _: None)(name)
    if resolver is None:
        raise UnsupportedInterpolationType(f"Unsupported interpolation type {name}")
    empty = OmegaConf.create({})
    return resolver(empty, empty, empty, args, tuple(args_str))
