"""Spec files: YAML / JSON text <-> records; files are written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from . import echo
from .atomic import atomic_write
from .errors import SpecError
from .parse import looks_like_json, parse_json, parse_yaml
from .records import Spec
from .structure import structure
from .unstructure import unstructure

#: file extension -> format
FORMATS = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}


def loads(text: str, *, name: str = "<text>") -> Spec:
    """A spec from YAML or JSON text (our format, an eva config, or a registry name).

    Text starting like a JSON object (``{"``) is parsed as JSON, anything else as YAML.

    Args:
        text: the config text.
        name: how error messages name the text (a file name, say).

    Returns:
        The spec record.

    Raises:
        SpecError: a syntax error (with its line and column) or an invalid spec.

    Example:
        >>> specs.loads("{source: timm, model_name: resnet18, pretrained: false}")
        TimmSpec(model_name='resnet18', pretrained=False, ...)
    """
    if not isinstance(text, str):
        raise SpecError(
            (name,), "config text (a string)", text, hint="Use specs.load(path) for files."
        )
    data = parse_json(text, name) if looks_like_json(text) else parse_yaml(text, name)
    return _structure(data, name)


def load(path: str | os.PathLike[str]) -> Spec:
    """A spec from a ``.yaml`` / ``.yml`` / ``.json`` file (the extension picks the parser).

    Args:
        path: the file.

    Returns:
        The spec record.

    Raises:
        SpecError: an unknown extension, text that is not UTF-8 (naming the byte offset), a
            syntax error (with its line), or an invalid spec.
        FileNotFoundError: no such file.
    """
    path = Path(path)
    kind = _format_of(path)
    text = _read_utf8(path)
    data = parse_json(text, str(path)) if kind == "json" else parse_yaml(text, str(path))
    try:
        return _structure(data, str(path))
    except SpecError as err:
        if err.location[:1] == (str(path),):
            raise
        hint = f"{err.hint} (in {path})" if err.hint else f"(In {path}.)"
        raise err.with_hint(hint) from None


def dumps(spec: Spec, format: str = "yaml", *, redact: bool = False) -> str:
    """A spec as YAML or JSON text in our format (see `unstructure`).

    Args:
        spec: a spec record.
        format: ``"yaml"`` (block style, keys in field order) or ``"json"``.
        redact: hide credentials, for text that is shown or stored beside results: the user
            information and credential-like parameters of URLs
            (``https://***@host/w.pth?sig=***``) and strings under keys such as ``token``.

    Returns:
        The text; ``loads(dumps(spec)) == spec`` (unless ``redact`` hid something).

    Raises:
        SpecError: an unknown ``format``, or a spec that is not plain data.
    """
    if format not in ("yaml", "json"):
        raise SpecError(("format",), "a text format", format, choices=("yaml", "json"))
    data = unstructure(spec)
    if redact:
        data = echo.redact(data)
    if format == "json":
        return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )


def dump(spec: Spec, path: str | os.PathLike[str]) -> None:
    """Write a spec to a ``.yaml`` / ``.yml`` / ``.json`` file, chosen by extension.

    The text is fully serialised before anything is written, then written with
    `atomic_write` (a temporary file beside ``path``, synced, renamed over it; the mode a
    plain ``open`` would give): on any error, ``path`` is left as it was and no temporary
    file remains.

    Args:
        spec: a spec record.
        path: the file to write (its directory must exist).

    Raises:
        SpecError: an unknown extension, or a spec that is not plain data.
    """
    path = Path(path)
    text = dumps(spec, _format_of(path))
    with atomic_write(path) as staged:
        staged.write_text(text, encoding="utf-8")


#: Unicode line breaks: PyYAML writes them raw in single-quoted scalars and then folds them
#: into a space on reading ('0\x85' came back as '0 '); double quotes escape them (\N, \L, \P)
_UNICODE_BREAKS = frozenset("\x85\u2028\u2029")


class _Dumper(yaml.SafeDumper):
    """SafeDumper that double-quotes strings holding a Unicode line break, so they load back."""


def _represent_str(dumper: _Dumper, value: str) -> yaml.ScalarNode:
    style = '"' if _UNICODE_BREAKS.intersection(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _read_utf8(path: Path) -> str:
    """The file's text, line ends translated as ``Path.read_text`` does."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise SpecError(
            (str(path),),
            "UTF-8 text (spec files must be UTF-8)",
            show_got=False,
            hint=f"The byte 0x{data[err.start]:02x} at offset {err.start} (line {line}) is not "
            "UTF-8 (the file was probably saved as Latin-1 or Windows-1252); save it as UTF-8.",
        ) from None


def _format_of(path: Path) -> str:
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise SpecError(
            ("path",),
            "a file name ending in .yaml, .yml or .json",
            str(path),
            hint="Rename the file, or read it yourself and call specs.loads(text).",
        )
    return kind


def _structure(data: Any, name: str) -> Spec:
    if data is None:
        raise SpecError((name,), _EMPTY, show_got=False, hint="The config is empty.")
    return structure(data)


_EMPTY = "a spec (a registry name, our 'source:' format or an eva 'class_path:' config)"
