"""Hostile config text: alias bombs, deep nesting and duplicate JSON keys are one `SpecError`.

Each bomb is read in a subprocess with a CPU and memory limit, so a regression fails (the
child is killed) instead of hanging or swapping the test run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import specs
from specs import SpecError

REPO = Path(__file__).resolve().parents[2]


def billion_laughs(levels: int = 9) -> str:
    """A few hundred bytes of YAML whose aliases expand to 9**levels strings."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghijklm"[: levels - 1]:
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    return "\n".join(lines) + "\n"


BOMBS = {
    "billion_laughs": billion_laughs(),
    "deep_yaml_flow": "[" * 5000 + "]" * 5000,
    "deep_yaml_mapping": "{a: " * 5000 + "1" + "}" * 5000,
    "deep_json": '{"a": ' * 5000 + "1" + "}" * 5000,
    "deep_json_list": '["x", ' + "[" * 5000 + "]" * 5000 + "]",
}

GUARDED = """
import json, resource, sys
# enough CPU for the imports on a busy machine (a bomb needs far more); 2 GiB of memory
resource.setrlimit(resource.RLIMIT_CPU, (20, 20))
import specs
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
try:
    specs.loads(sys.stdin.read(), name="bomb")
except specs.SpecError as err:
    print(json.dumps({"error": "SpecError", "message": str(err)}))
except BaseException as err:
    print(json.dumps({"error": type(err).__name__, "message": str(err)[:300]}))
"""


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_bomb_is_a_spec_error_under_limits(kind: str) -> None:
    text = BOMBS[kind]
    assert len(text) < (400 if kind == "billion_laughs" else 40_000)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(GUARDED)],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["error"] == "SpecError", result
    assert result["message"].startswith("bomb: ")
    if kind == "billion_laughs":
        assert "100000 values" in result["message"]
        assert "aliases" in result["message"]
    else:
        assert "100 levels deep" in result["message"]


def test_aliases_within_bounds_still_load() -> None:
    text = textwrap.dedent(
        """
        source: timm
        model_name: vit_tiny_patch16_224
        pretrained: false
        model_kwargs: &kw {img_size: 32, num_classes: 0}
        """
    )
    spec = specs.loads(text)
    assert spec.model_kwargs["img_size"] == 32


def test_depth_bound_is_exact() -> None:
    from specs._src.parse import MAX_DEPTH, parse_json, parse_yaml

    def nested(depth: int) -> str:
        return '["", ' + "[" * (depth - 1) + "]" * (depth - 1) + "]"

    assert parse_yaml(nested(MAX_DEPTH), "t") is not None
    assert parse_json(nested(MAX_DEPTH), "t") is not None
    with pytest.raises(SpecError, match="100 levels deep"):
        parse_yaml(nested(MAX_DEPTH + 1), "t")
    with pytest.raises(SpecError, match=r"100 levels deep.*line 1"):
        parse_json(nested(MAX_DEPTH + 1), "t")


def test_json_brackets_inside_strings_do_not_count() -> None:
    from specs._src.parse import parse_json

    data = {"model_name": "[" * 500 + '\\"{' * 50, "list": [["]"]]}
    assert parse_json(json.dumps(data), "t") == data


def test_json_duplicate_key_is_refused(tmp_path: Path) -> None:
    text = '{"source": "timm", "model_name": "resnet18", "model_name": "resnet50"}'
    with pytest.raises(SpecError, match=r"'model_name' is given twice") as info:
        specs.loads(text, name="spec.json")
    assert str(info.value).startswith("spec.json: ")
    path = tmp_path / "spec.json"
    path.write_text(text)
    with pytest.raises(SpecError, match=r"'model_name' is given twice"):
        specs.load(path)


def test_json_duplicate_key_in_a_nested_object() -> None:
    text = '{"source": "timm", "model_name": "resnet18", "model_kwargs": {"a": 1, "a": 2}}'
    with pytest.raises(SpecError, match=r"'a' is given twice"):
        specs.loads(text)
