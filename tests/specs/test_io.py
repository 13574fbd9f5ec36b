"""Spec files: formats by extension, syntax errors, atomic writes that leave nothing half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import specs
from specs import ClsToken, FunctionSpec, SpecError, TimmSpec

SPEC = TimmSpec(
    "vit_tiny_patch16_224", pretrained=False, transforms=[ClsToken(num_register_tokens=4)]
)


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json", ".YAML"])
def test_dump_then_load(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"backbone{suffix}"
    specs.dump(SPEC, path)
    assert specs.load(path) == SPEC
    assert specs.load(str(path)) == SPEC
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_json_file_is_json_and_yaml_file_is_block_yaml(tmp_path: Path) -> None:
    specs.dump(SPEC, tmp_path / "a.json")
    specs.dump(SPEC, tmp_path / "a.yaml")
    assert json.loads((tmp_path / "a.json").read_text())["source"] == "timm"
    text = (tmp_path / "a.yaml").read_text()
    assert text.startswith("source: timm\nmodel_name: vit_tiny_patch16_224\n")


def test_loads_yaml_and_json_text() -> None:
    assert specs.loads("{source: timm, model_name: m}") == TimmSpec("m")
    assert specs.loads('{\n\t"source": "timm",\n\t"model_name": "m"\n}') == TimmSpec("m")
    assert specs.loads("source: timm\nmodel_name: m\n") == TimmSpec("m")
    # YAML flow style with quoted values is YAML, not broken JSON
    assert specs.loads('{source: "timm", model_name: "m"}') == TimmSpec("m")
    assert specs.loads("{source: 'timm', model_name: \"m\"}") == TimmSpec("m")


@pytest.mark.parametrize("name", ["spec.txt", "spec", "spec.yaml.bak"])
def test_unknown_extension(tmp_path: Path, name: str) -> None:
    with pytest.raises(
        SpecError, match=r"^path: expected a file name ending in \.yaml, \.yml or \.json"
    ):
        specs.dump(SPEC, tmp_path / name)
    with pytest.raises(SpecError, match=r"ending in \.yaml"):
        specs.load(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_failed_dump_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "backbone.yaml"
    specs.dump(SPEC, path)
    before = path.read_bytes()
    not_plain = FunctionSpec("pkg.fn", arguments={"values": {1, 2}})
    with pytest.raises(SpecError, match=r"^arguments\.values: expected plain data"):
        specs.dump(not_plain, path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_dump_into_a_missing_directory_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        specs.dump(SPEC, tmp_path / "missing" / "backbone.yaml")
    assert list(tmp_path.iterdir()) == []


def test_dump_replaces_and_keeps_permissions(tmp_path: Path) -> None:
    path = tmp_path / "backbone.json"
    path.write_text("old")
    os.chmod(path, 0o640)
    specs.dump(SPEC, path)
    assert specs.load(path) == SPEC
    assert path.stat().st_mode & 0o777 == 0o640
    fresh = tmp_path / "fresh.yaml"
    specs.dump(SPEC, fresh)
    assert fresh.stat().st_mode & 0o777 == 0o644


def test_dump_rejects_non_records(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="expected a spec record"):
        specs.dump({"source": "timm"}, tmp_path / "x.yaml")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n")
    with pytest.raises(SpecError, match="The config is empty"):
        specs.load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        specs.load(tmp_path / "nope.yaml")


def test_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("source: timm\nmodel_name: [m\n")
    with pytest.raises(SpecError) as info:
        specs.load(path)
    assert str(info.value).startswith(f"{path}: expected valid YAML")
    assert "line 2" in str(info.value)


def test_dumps_format_choice() -> None:
    with pytest.raises(SpecError, match="Valid choices: json, yaml"):
        specs.dumps(SPEC, "toml")


def test_spec_errors_from_a_file_name_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("source: timm\nmodel_name: m\npretrained: maybe\n")
    with pytest.raises(SpecError) as info:
        specs.load(path)
    assert info.value.path == "pretrained"
    assert str(info.value).startswith("pretrained: expected a boolean")
    assert str(path) in str(info.value)


@pytest.mark.parametrize("name", ["0\x85", "x\u2028", "a\u2029b ", "a\x85\x85", "é\n", "plain"])
@pytest.mark.parametrize("format", ["yaml", "json"])
def test_unicode_line_breaks_survive_a_round_trip(name: str, format: str) -> None:
    spec = specs.RegistrySpec(name)
    assert specs.loads(specs.dumps(spec, format)) == spec


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_file_that_is_not_utf8_names_the_file_the_byte_and_the_encoding(
    tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"latin1{suffix}"
    text = "source: timm\nmodel_name: café\n"
    if suffix == ".json":
        text = '{"source": "timm",\n "model_name": "café"}'
    path.write_bytes(text.encode("latin-1"))
    offset = text.encode("latin-1").index(b"\xe9")
    with pytest.raises(SpecError) as info:
        specs.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: expected UTF-8 text")
    assert f"0xe9 at offset {offset} (line 2)" in message
    assert "save it as UTF-8" in message
