"""OmegaConf interpolation of config strings, resolved by OmegaConf itself as eva does.

Everything OmegaConf resolves works here, as it does in eva's configs: ``${oc.env:VAR}``,
``${oc.env:VAR, default}`` (nested and ``null`` defaults), ``${oc.decode:...}``, node
references (``${backbone.init_args.model_name}``, relative ``${..model_name}``), and
``\\${`` for a literal ``${``.

One step is ours: when an interpolation is the whole value and resolves to a string, the
string is typed with YAML rules (``"false"`` -> False, ``"1"`` -> 1, ``"[0, 1]"`` -> [0, 1]),
as eva's config parser types it against the field. ``oc.decode`` values are left as decoded.

Failures are `SpecError`s naming the field path; OmegaConf's own message is in the hint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from .errors import Location, SpecError

_SYNTAX = "'${oc.env:VAR, default}', '${oc.decode:...}' or a node reference '${path.to.node}'"
_ESCAPE = re.compile(r"(\\*)\$\{")
_NULL = re.compile(r"[Nn][Uu][Ll][Ll]")
_UNSET = re.compile(r"Environment variable '([^']*)' not found")
#: key types an OmegaConf DictConfig holds; anything else is reported before OmegaConf sees it
_KEY_TYPES = (str, int, float, bool, bytes)


def resolve(value: Any, location: Location = ()) -> Any:
    """Resolve every interpolation in the strings of a nested dict / list config.

    Node references are resolved against ``value`` as the root of the config.

    Args:
        value: plain config data (mappings, lists, scalars); mapping keys are left as they are.
        location: where ``value`` sits, for error messages.

    Returns:
        The same structure (mappings as dicts, sequences as lists) with strings resolved.

    Raises:
        SpecError: an unset variable without default, a reference to a missing node, an
            unknown resolver or a malformed interpolation, at the field that holds it.
    """
    if not _has_interpolation(value):
        return _plain(value)
    from omegaconf import OmegaConf  # only configs that interpolate pay for the import

    _check(value, location)
    flags = {"allow_objects": True}  # leave values OmegaConf does not type (dates, ...) as they are
    if isinstance(value, str):  # a lone string: nothing to refer to but itself
        return _leaf(OmegaConf.create({"_": value}, flags=flags), "_", value, location)
    # the config itself is the root that absolute references (${backbone.x}) start from
    root = OmegaConf.create(_plain(value), flags=flags)
    return _child({"_": root}, "_", value, location)


def resolve_string(text: str, location: Location = ()) -> Any:
    """Resolve the interpolations of one string (see the module docstring for the rules).

    Args:
        text: the string; a node reference in it has nothing to refer to but itself.
        location: where ``text`` sits, for error messages.

    Returns:
        The resolved value (typed when the interpolation is the whole string).

    Raises:
        SpecError: as `resolve`.
    """
    return resolve(text, location)


def escape(text: str) -> str:
    """Escape ``${`` so that `resolve_string` gives ``text`` back unchanged."""
    return _ESCAPE.sub(lambda m: "\\" * (2 * len(m.group(1)) + 1) + "${", text)


def _has_interpolation(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, Mapping):
        return any(_has_interpolation(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_interpolation(item) for item in value)
    return False


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _check(value: Any, location: Location) -> None:
    """Report a key OmegaConf cannot hold or a string it cannot parse, at its own field."""
    from omegaconf import grammar_parser
    from omegaconf.errors import GrammarParseError

    if isinstance(value, str) and "${" in value:
        try:
            grammar_parser.parse(value)
        except GrammarParseError as err:
            raise _error(err, value, location) from err
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, _KEY_TYPES):
                raise SpecError((*location, key), "string keys (field names)", key)
            _check(item, (*location, key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check(item, (*location, i))


def _child(parent: Any, key: Any, original: Any, location: Location) -> Any:
    """The value of ``parent[key]`` (whose data is ``original``), resolved."""
    if isinstance(original, str):
        return _leaf(parent, key, original, location) if "${" in original else original
    if isinstance(original, Mapping):
        node = parent[key]
        return {k: _child(node, k, item, (*location, k)) for k, item in original.items()}
    if isinstance(original, (list, tuple)):
        node = parent[key]
        return [_child(node, i, item, (*location, i)) for i, item in enumerate(original)]
    return original


def _leaf(parent: Any, key: Any, text: str, location: Location) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        value = parent[key]
    except OmegaConfBaseException as err:
        raise _error(err, text, location) from err
    if isinstance(value, (DictConfig, ListConfig)):  # a reference to a whole section
        data = OmegaConf.to_container(value, resolve=False)
        return _child({"_": value}, "_", data, location)
    if isinstance(value, str) and _whole_interpolation(text) not in (None, "oc.decode"):
        return _typed(value)
    return value


def _whole_interpolation(text: str) -> str | None:
    """The resolver name (``""`` for a node reference) when ``text`` is one interpolation."""
    from omegaconf import grammar_parser
    from omegaconf.grammar.gen.OmegaConfGrammarParser import OmegaConfGrammarParser as Parser

    pieces = list(grammar_parser.parse(text).getChild(0).getChildren())
    if len(pieces) != 1 or not isinstance(pieces[0], Parser.InterpolationContext):
        return None
    inner = pieces[0].getChild(0)
    if isinstance(inner, Parser.InterpolationResolverContext):
        return inner.resolverName().getText()
    return ""


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


def _error(err: Exception, text: str, location: Location) -> SpecError:
    """An OmegaConf failure as a SpecError at the field, with OmegaConf's reason as the hint."""
    from omegaconf.errors import (
        GrammarParseError,
        InterpolationKeyError,
        UnsupportedInterpolationType,
    )

    reason = str(err).splitlines()[0]
    unset = _UNSET.search(reason)
    if unset:
        name = unset.group(1)
        return SpecError(
            location,
            f"the environment variable {name} to be set (used by {text!r})",
            show_got=False,
            hint=f"Set it (export {name}=...) or give a default: '${{oc.env:{name}, default}}'.",
        )
    if isinstance(err, GrammarParseError):
        closed = "'<EOF>'" in reason
        return SpecError(
            location,
            f"a {'closed' if closed else 'well-formed'} interpolation: {_SYNTAX}",
            text,
            hint=f"OmegaConf: {reason}. Close every '${{' with '}}', quote a default that "
            "holds a comma or a space (${oc.env:VAR, 'a, b'}), or write '\\${' for a literal '${'.",
        )
    if isinstance(err, InterpolationKeyError):
        return SpecError(
            location,
            "a reference to a node of this config",
            text,
            hint=f"OmegaConf: {reason}. Write the path from the top of the config "
            "('${backbone.init_args.model_name}') or relative to this one ('${..model_name}').",
        )
    if isinstance(err, UnsupportedInterpolationType):
        return SpecError(
            location,
            f"a known resolver: {_SYNTAX}",
            text,
            hint=f"OmegaConf: {reason}; register it with OmegaConf.register_new_resolver first.",
        )
    hint = f"OmegaConf: {reason}."
    if "oc.env" in text:
        hint += " oc.env takes a variable name and one default: quote a default that holds a comma: ${oc.env:VAR, 'a, b'}."
    return SpecError(location, f"an interpolation that resolves: {_SYNTAX}", text, hint=hint)
