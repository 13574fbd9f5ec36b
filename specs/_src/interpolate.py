"""OmegaConf interpolation of config strings, read with OmegaConf's grammar as eva does.

What eva's configs use works here: ``${oc.env:VAR}``, ``${oc.env:VAR, default}`` (nested and
``null`` defaults), ``${oc.decode:...}``, node references (``${backbone.init_args.model_name}``,
relative ``${..model_name}``), resolvers registered with OmegaConf, and ``\\${`` for a
literal ``${``. Resolving is bounded (`evaluate`): each node is resolved once, and what
references hand out is counted against size and depth bounds.

One step is ours: when an interpolation is the whole value and resolves to a string, the
string is typed with YAML rules (``"false"`` -> False, ``"1"`` -> 1, ``"[0, 1]"`` -> [0, 1]),
as eva's config parser types it against the field. ``oc.decode`` values are left as decoded.

Failures are `SpecError`s naming the field path; OmegaConf's own message is in the hint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import Location, SpecError

_OC_ENV_HINT = (
    " oc.env takes a variable name and one default: quote a default that holds a comma: "
    "${oc.env:VAR, 'a, b'}."
)
_SYNTAX = "'${oc.env:VAR, default}', '${oc.decode:...}' or a node reference '${path.to.node}'"
_ESCAPE = re.compile(r"(\\*)\$\{")
_UNSET = re.compile(r"Environment variable '([^']*)' not found")
#: key types an OmegaConf DictConfig holds; anything else is reported before OmegaConf sees it
_KEY_TYPES = (str, int, float, bool, bytes)


def resolve(value: Any, location: Location = ()) -> Any:
    """Resolve every interpolation in the strings of a nested dict / list config.

    Node references are resolved against ``value`` as the root of the config. Resolving is
    bounded (see `evaluate`): each node is resolved once, and the values it hands out are
    counted, so that a few hundred bytes of references cannot expand without end.

    Args:
        value: plain config data (mappings, lists, scalars); mapping keys are left as they are.
        location: where ``value`` sits, for error messages.

    Returns:
        The same structure (mappings as dicts, sequences as lists) with strings resolved.

    Raises:
        SpecError: an unset variable without default, a reference to a missing node, an
            unknown resolver, a malformed interpolation, or one that expands past the bounds,
            at the field that holds it.
    """
    if not _has_interpolation(value):
        return _plain(value)
    from . import evaluate  # only configs that interpolate pay for importing OmegaConf

    _check(value, location)
    # a lone string has nothing to refer to but itself
    lone = isinstance(value, str)
    evaluator = evaluate.Evaluator({"_": value} if lone else value)
    try:
        resolved = evaluator.value()
    except evaluate.Failure as failure:
        where = (*location, *failure.location[1 if lone else 0 :])
        text = evaluator.raw(failure.location)
        raise _error(failure.error, text, where) from None
    return resolved["_"] if lone else resolved


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

    from . import evaluate

    if isinstance(value, str) and "${" in value:
        try:
            grammar_parser.parse(value)
        except GrammarParseError as err:
            raise _error(err, value, location) from err
        except RecursionError:
            raise _error(evaluate.Exceeded(evaluate.TOO_DEEP), value, location) from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, _KEY_TYPES):
                raise SpecError((*location, key), "string keys (field names)", key)
            _check(item, (*location, key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check(item, (*location, i))


def _error(err: Exception, text: str, location: Location) -> SpecError:
    """An OmegaConf failure as a SpecError at the field, with OmegaConf's reason as the hint."""
    from omegaconf.errors import (
        GrammarParseError,
        InterpolationKeyError,
        UnsupportedInterpolationType,
    )

    from . import evaluate

    if isinstance(err, evaluate.Exceeded):
        return SpecError(
            location,
            f"an interpolation that resolves to at most {evaluate.MAX_RESOLVED_VALUES} values "
            f"and {evaluate.MAX_RESOLVED_CHARS} characters, parsing at most "
            f"{evaluate.MAX_PARSED_CHARS}, through references nested at most "
            f"{evaluate.MAX_REFERENCE_DEPTH} deep",
            text,
            hint=f"Stopped resolving: {err}. A reference stands for the whole value it names "
            "each time it is used (an alias too); a spec needs a few short interpolations.",
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
            hint=f"OmegaConf: {reason}. Register your own with OmegaConf.register_new_resolver "
            "first; resolvers that read the config (oc.select, oc.create, oc.dict.*) are not "
            "supported: write a node reference.",
        )
    hint = f"OmegaConf: {reason}."
    if "oc.env" in text:
        hint += _OC_ENV_HINT
    return SpecError(location, f"an interpolation that resolves: {_SYNTAX}", text, hint=hint)
