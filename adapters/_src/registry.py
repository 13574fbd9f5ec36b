"""The model registry: names -> specs (data), listed with wildcards.

``registry_spec(name, **model_kwargs)`` shows exactly what a name means; building a
`RegistrySpec` builds that spec. ``timm/<name>`` resolves for every name timm knows, as in
eva. ``model_kwargs`` override an entry's arguments, as eva's ``ModelFromRegistry`` does:

- a key the entry already passes to its model (``dynamic_img_size``) replaces that value;
- a key that is a field of the entry's spec (``pretrained``, ``checkpoint_path``) replaces it;
- ``out_indices`` switches to feature maps, as the entry's source says (its
  ``REGISTRY_OVERRIDES``: timm / torch.hub set the field or the hub argument and drop the CLS
  transform; HuggingFace: ``1`` swaps `ClsToken` for `PatchGrid`);
- ``concat_mean_patch_tokens`` (eva's name; ``include_patch_tokens`` is an alias) sets
  ``include_patch_mean`` on the entry's `ClsToken`;
- any other key is passed on to the model constructor.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Mapping
from typing import Any, overload

import attrs

import specs

from .entries import builtin_entries
from .errors import BuildError
from .sources.table import registry_override

_ENTRIES: dict[str, Any] = builtin_entries()
TIMM_PREFIX = "timm/"
_PATCH_MEAN_KEYS = ("concat_mean_patch_tokens", "include_patch_tokens")
_KWARGS_FIELDS = ("model_kwargs", "init_args", "arguments")
#: timm modules whose models accept ``dynamic_img_size`` (eva passes it to every timm/ name)
_DYNAMIC_SIZE_MODULES = ("vision_transformer", "eva", "vision_transformer_hybrid")


def _timm_spec(name: str) -> specs.TimmSpec | None:
    import timm

    arch = name[len(TIMM_PREFIX) :]
    if not timm.is_model(arch):
        return None
    kwargs = {}
    if timm.models.is_model_in_modules(arch.split(".")[0], _DYNAMIC_SIZE_MODULES):
        kwargs["dynamic_img_size"] = True
    return specs.TimmSpec(model_name=arch, pretrained=False, model_kwargs=kwargs)


def _timm_names() -> list[str]:
    import timm

    return [TIMM_PREFIX + n for n in timm.list_models()]


def list_models(pattern: str | None = None, *, include_timm: bool = True) -> list[str]:
    """Sorted registry names matching a shell-style wildcard pattern.

    Args:
        pattern: e.g. ``"pathology/*"``, ``"*vit_small*"``, ``"timm/resnet*"``; None lists all.
        include_timm: include the ``timm/<name>`` entries (one per timm architecture).

    Returns:
        Matching names, sorted.

    Raises:
        TypeError: ``pattern`` is neither a string nor None.

    Example:
        >>> adapters.list_models("universal/*dino*")
        ['universal/vit_base_patch16_224_dino_1chan', 'universal/vit_small_patch16_224_dino', ...]
    """
    if pattern is not None and not isinstance(pattern, str):
        raise TypeError(
            f"list_models: pattern must be a string such as 'pathology/*' or None, got "
            f"{pattern!r} ({type(pattern).__name__})."
        )
    names = list(_ENTRIES)
    if include_timm:
        names += _timm_names()
    if pattern is not None:
        names = fnmatch.filter(names, pattern)
    return sorted(set(names))


def closest_names(name: str) -> list[str]:
    """The registry names closest to the unknown ``name``, closest first: ``timm/<name>`` when
    timm has the architecture ``name`` names, then the project's own names, then timm's.

    The one suggestion for a mistyped name, in the library's errors and the command line's.
    """
    import timm

    bare = name.removeprefix(TIMM_PREFIX)
    # a timm architecture given without the prefix ('vit_tiny_patch16_224')
    close = [TIMM_PREFIX + bare] if bare == name and timm.is_model(bare) else []
    close += difflib.get_close_matches(name, list(_ENTRIES), n=3, cutoff=0.4)
    close += difflib.get_close_matches(TIMM_PREFIX + bare, _timm_names(), n=3)
    return list(dict.fromkeys(close))


def _entry(name: str) -> Any:
    if not isinstance(name, str) or not name.strip():
        raise BuildError("model_name", "a registry name must be a non-empty string", got=name)
    if name in _ENTRIES:
        return _ENTRIES[name]
    if name.startswith(TIMM_PREFIX):
        spec = _timm_spec(name)
        if spec is not None:
            return spec
    close = closest_names(name)
    hint = f"Closest names: {', '.join(close)}. " if close else ""
    raise BuildError(
        "model_name",
        f"unknown registry name {name!r}",
        fix=f"{hint}List names with adapters.list_models('pattern*'), or add one with "
        "adapters.register(name, spec)",
    )


def registry_spec(name: str, model_kwargs: Mapping[str, Any] | None = None) -> specs.Spec:
    """The spec a registry name stands for, with ``model_kwargs`` applied.

    Args:
        name: a registry name (``"pathology/owkin_phikon"``, ``"timm/resnet18"``).
        model_kwargs: overrides, as in ``RegistrySpec.model_kwargs`` (see module docs).

    Returns:
        A spec record (data): build it with ``adapters.build``.

    Raises:
        BuildError: unknown name (the message lists the closest ones) or a bad override.
    """
    spec = _entry(name)
    if model_kwargs:
        spec = _override(name, spec, dict(model_kwargs))
    return spec


@overload
def register(name: str, spec: None = None, *, overwrite: bool = False) -> Callable[[Any], Any]: ...
@overload
def register(name: str, spec: Any, *, overwrite: bool = False) -> Any: ...
def register(name: str, spec: Any = None, *, overwrite: bool = False) -> Any:
    """Add a registry entry: ``register(name, spec)``, or ``@register(name)`` on a function
    returning the spec (called once, at registration).

    Args:
        name: e.g. ``"my_lab/vit_s_finetuned"``; ``timm/`` names are reserved.
        spec: any spec record (including a `RegistrySpec` aliasing another entry).
        overwrite: replace an existing entry of that name.

    Returns:
        ``spec`` (or, used as a decorator, the decorated function unchanged).

    Raises:
        ValueError: bad name, name taken (without ``overwrite``), or not a spec record.

    Example:
        >>> adapters.register("mine/vit", specs.TimmSpec("vit_tiny_patch16_224", pretrained=False))
        >>> adapters.build("mine/vit")
    """
    if not isinstance(name, str) or not name.strip() or name.startswith(TIMM_PREFIX):
        raise ValueError(
            f"register: name must be a non-empty string not starting with 'timm/' (those "
            f"names belong to timm), got {name!r}."
        )
    if spec is None:

        def decorator(fn: Callable[[], Any]) -> Callable[[], Any]:
            register(name, fn(), overwrite=overwrite)
            return fn

        return decorator
    if not attrs.has(type(spec)) or not hasattr(spec, "transforms"):
        raise ValueError(
            f"register: the entry for {name!r} must be a spec record (specs.TimmSpec(...), "
            f"...), got {spec!r} ({type(spec).__name__})."
        )
    if name in _ENTRIES and not overwrite:
        raise ValueError(
            f"register: {name!r} is already registered as {_ENTRIES[name]!r}. Pass "
            "overwrite=True to replace it, or pick another name."
        )
    _ENTRIES[name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove an entry added with `register` (no-op when absent).

    Args:
        name: the registered name.
    """
    _ENTRIES.pop(name, None)


# ---------------------------------------------------------------------------------------------
# model_kwargs overrides
# ---------------------------------------------------------------------------------------------


def _override(name: str, spec: Any, kwargs: dict[str, Any]) -> Any:
    for key in _PATCH_MEAN_KEYS:
        if key in kwargs and kwargs.pop(key):
            spec = _with_patch_mean(name, spec, key)
    if "out_indices" in kwargs:
        spec = _with_out_indices(name, spec, kwargs.pop("out_indices"))
    fields = attrs.fields_dict(type(spec))
    bag = next((f for f in _KWARGS_FIELDS if f in fields), None)
    changes: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in kwargs.items():
        if bag is not None and key in getattr(spec, bag):
            extra[key] = value
        elif key in fields and key not in ("transforms", bag):
            changes[key] = value
        elif bag is not None:
            extra[key] = value
        else:
            raise BuildError(
                f"model_kwargs.{key}",
                f"registry entry {name!r} ({type(spec).__name__}) has no argument {key!r}",
                fix=f"Valid: {', '.join(sorted(set(fields) - {'transforms'}))}",
            )
    if extra:
        changes[bag] = {**getattr(spec, bag), **extra}
    return _evolve(name, spec, changes)


def _evolve(name: str, spec: Any, changes: Mapping[str, Any]) -> Any:
    try:
        return attrs.evolve(spec, **changes)
    except specs.SpecError as err:
        raise BuildError(
            f"model_kwargs.{err.path}", f"invalid override for registry entry {name!r}: {err}"
        ) from err


def _with_out_indices(name: str, spec: Any, value: Any) -> Any:
    override = registry_override(spec, "out_indices")
    if override is None:
        raise BuildError(
            "model_kwargs.out_indices",
            f"registry entry {name!r} ({type(spec).__name__}) has no out_indices option",
        )
    try:
        return override(spec, value)
    except specs.SpecError as err:
        raise BuildError(
            f"model_kwargs.{err.path}", f"invalid override for registry entry {name!r}: {err}"
        ) from err
    except ValueError as err:  # the source's own words: "(HuggingFace) supports ..."
        raise BuildError(
            "model_kwargs.out_indices", f"registry entry {name!r} {err}", got=value
        ) from err


def _with_patch_mean(name: str, spec: Any, key: str) -> Any:
    if not any(isinstance(t, specs.ClsToken) for t in spec.transforms):
        raise BuildError(
            f"model_kwargs.{key}",
            f"registry entry {name!r} does not support CLS plus patch mean (its output is "
            "not a token sequence picked by a ClsToken transform)",
            fix="Remove the option, or register a spec with a ClsToken(include_patch_mean=True) "
            "transform",
        )
    transforms = tuple(
        attrs.evolve(t, include_patch_mean=True) if isinstance(t, specs.ClsToken) else t
        for t in spec.transforms
    )
    return attrs.evolve(spec, transforms=transforms)
