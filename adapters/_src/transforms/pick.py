"""Picking one value out of a structured model output, for `adapters.transforms.hidden_state`
and `adapters.transforms.select`: by field name, by index, or several maps by index."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def by_index(output: Any, index: int, where: str) -> Any:
    """``output[index]`` of a tuple / list, or of a ``transformers`` output's ``to_tuple()``.

    Raises:
        TypeError: ``output`` is neither a sequence nor a ``transformers`` output.
        IndexError: ``index`` is out of range.
    """
    items = output
    if not isinstance(output, (list, tuple)):
        to_tuple = getattr(output, "to_tuple", None)
        if not callable(to_tuple):
            raise TypeError(
                f"{where}: an index picks from a tuple, a list or a transformers output, got "
                f"{type(output).__qualname__}. Use a field name instead."
            )
        items = to_tuple()
    if not -len(items) <= index < len(items):
        raise IndexError(
            f"{where}: index {index} is out of range for an output of {len(items)} elements; "
            f"expected an index in [{-len(items)}, {len(items) - 1}]."
        )
    return items[index]


def by_name(output: Any, name: str, where: str) -> Any:
    """The field ``name`` of an output: a mapping key or an attribute (not None).

    Raises:
        ValueError: no such field (lists the fields there are), or it is None.
    """
    if isinstance(output, Mapping) and name in output:
        value = output[name]
    elif not isinstance(output, Mapping) and hasattr(output, name):
        value = getattr(output, name)
    elif hasattr(output, name) and getattr(output, name) is None:
        value = None  # a transformers output keeps unset fields as None attributes
    else:
        raise ValueError(
            f"{where}: the output ({type(output).__qualname__}) has no field {name!r}; "
            f"expected one of: {', '.join(_fields(output)) or '(no named fields)'}."
        )
    if value is None:
        raise ValueError(
            f"{where}: the output's field {name!r} is None: the model did not return it "
            "(for hidden_states, call the model with output_hidden_states=True)."
        )
    return value


def maps_at(maps: Any, indices: tuple[int, ...], where: str) -> list[Any]:
    """``[maps[i] for i in indices]`` for a list / tuple of feature maps.

    Raises:
        TypeError: ``maps`` is not a list or tuple.
        IndexError: an index is out of range for the number of maps.
    """
    if not isinstance(maps, (list, tuple)):
        raise TypeError(
            f"{where}: expected a list or tuple of feature maps, got "
            f"{type(maps).__qualname__}. For a single array, drop this transform."
        )
    n = len(maps)
    bad = [i for i in indices if not -n <= i < n]
    if bad:
        raise IndexError(
            f"{where}: index {bad[0]} is out of range for {n} feature maps; expected "
            f"indices in [{-n}, {n - 1}]."
        )
    return [maps[i] for i in indices]


def _fields(output: Any) -> list[str]:
    """The field names of an output, for error messages."""
    if isinstance(output, Mapping):
        return [str(k) for k in output]
    if hasattr(output, "_fields"):  # namedtuple
        return list(output._fields)
    if hasattr(output, "__dict__"):
        return sorted(n for n in vars(output) if not n.startswith("_"))
    return []
