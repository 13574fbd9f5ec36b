"""Import an object from a dotted path and call it with keyword arguments, with clear errors."""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ArgumentError, BuildError


def import_object(path: str, field: str) -> Any:
    """Import ``package.module.name`` (the longest importable module prefix, then attributes).

    Args:
        path: dotted import path, e.g. ``timm.create_model`` or ``torch.nn.Linear``.
        field: the spec field holding ``path`` (named in the error).

    Raises:
        BuildError: nothing importable under ``path``.
    """
    parts = path.split(".")
    module = None
    error: BaseException | None = None
    for cut in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:cut])
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            # only "this very module is missing" means "try a shorter prefix"
            missing = err.name or ""
            if missing and not (name == missing or name.startswith(missing + ".")):
                raise BuildError(
                    field,
                    f"importing {name!r} failed because its dependency {missing!r} is missing",
                    fix=f"Install {missing!r} (pip install {missing.split('.')[0]})",
                ) from err
            error = error or err
            continue
        except Exception as err:  # a module that raises on import: say which one
            raise BuildError(field, f"importing module {name!r} raised {err!r}") from err
        obj: Any = module
        for i, attr in enumerate(parts[cut:]):
            try:
                obj = getattr(obj, attr)
            except AttributeError as err:
                owner = ".".join(parts[: cut + i])
                close = difflib.get_close_matches(attr, dir(obj), n=3)
                hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                raise BuildError(
                    field,
                    f"{owner!r} has no attribute {attr!r}",
                    got=path,
                    fix=f"Check the import path.{hint}",
                ) from err
        return obj
    raise BuildError(
        field,
        f"cannot import {path!r}: no module named {parts[0]!r}",
        expected="an import path such as 'package.module.name' whose module is installed",
        got=path,
        fix="Check the spelling, or install the package that provides it",
    ) from error


def call_with(fn: Callable[..., Any], kwargs: Mapping[str, Any], field: str, what: str) -> Any:
    """Call ``fn(**kwargs)``, turning a wrong argument into a `BuildError` naming it.

    Args:
        fn: the callable (class, factory).
        kwargs: keyword arguments (a spec's ``init_args`` / ``arguments`` / ``model_kwargs``).
        field: spec field holding ``kwargs`` (named in the error).
        what: how to name ``fn`` in the message.

    Returns:
        ``fn(**kwargs)``.

    Raises:
        ArgumentError: (a `BuildError` and a `TypeError`) ``fn`` does not accept ``kwargs``.
    """
    kwargs = thaw(kwargs)
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        signature = None
    if signature is not None:
        try:
            signature.bind(**kwargs)
        except TypeError as err:
            accepted = [
                p.name
                for p in signature.parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            ]
            bad = [k for k in kwargs if k not in accepted]
            has_var_kw = any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values())
            if bad and not has_var_kw:
                raise ArgumentError(
                    f"{field}.{bad[0]}",
                    f"{what} takes no argument {bad[0]!r}",
                    fix=f"Valid arguments: {', '.join(accepted) or '(none)'}",
                ) from err
            raise ArgumentError(field, f"wrong arguments for {what}: {err}") from err
    try:
        return fn(**kwargs)
    except TypeError as err:
        # a factory forwarding **kwargs (timm.create_model) rejects an argument deeper down
        if "argument" in str(err):
            raise ArgumentError(field, f"{what} rejected its arguments: {err}") from err
        raise


def thaw(value: Any) -> Any:
    """FrozenDicts to dicts and tuples kept (arguments reach user code as plain containers)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    return value
