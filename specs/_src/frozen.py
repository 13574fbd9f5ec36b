"""An immutable, hashable mapping so that spec records stay hashable with dict-valued fields."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class FrozenDict(Mapping[str, Any]):
    """A read-only ``dict`` whose nested dicts and lists are frozen too (lists become tuples).

    Equal to a plain ``dict`` with the same items (lists and tuples compare alike inside);
    hashable; ``thaw`` gives plain containers back.
    """

    __slots__ = ("_data", "_hash")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        data = dict(*args, **kwargs)
        self._data = {key: freeze(value) for key, value in data.items()}
        self._hash: int | None = None

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset((k, _hashable(v)) for k, v in self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenDict):
            return self._data == other._data
        if isinstance(other, Mapping):
            # compare frozen forms, so that {"a": [1]} equals FrozenDict({"a": (1,)})
            return self._data == FrozenDict(other)._data
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"

    def __or__(self, other: Mapping[str, Any]) -> FrozenDict:
        return FrozenDict({**self._data, **dict(other)})


def freeze(value: Any) -> Any:
    """Recursively turn dicts into `FrozenDict` and lists into tuples."""
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, Mapping):
        return FrozenDict(value)
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of `freeze` for serialisation: FrozenDicts to dicts, tuples to lists."""
    if isinstance(value, Mapping):
        return {key: thaw(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value
