"""The command line a newcomer meets: ``--help`` without frameworks, defaults and examples in
the help, ``--version``, no prefix abbreviations, did-you-mean, ``list`` and unknown names."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from adapters._src.app import cli, commands, parser
from adapters._src.app.backbone import build_backbone
from adapters._src.app.flags import DEFAULT_IMAGE_SIZE, image_size

ROOT = Path(__file__).resolve().parents[3]
FRAMEWORKS = ("torch", "jax", "timm", "transformers")
COMMANDS = ("list", "inspect", "embed", "probe", "export")

#: runs main(argv) in a fresh interpreter and prints which frameworks were imported, the exit
#: status, and which frameworks were imported when the first line reached stdout
_PROBE_IMPORTS = """
import json, sys

class FirstLine:
    def __init__(self, stream):
        self.stream, self.imported = stream, None
    def write(self, text):
        if self.imported is None and text.strip():
            self.imported = sorted(m for m in {frameworks!r} if m in sys.modules)
        return self.stream.write(text)
    def __getattr__(self, name):
        return getattr(self.stream, name)

sys.stdout = first = FirstLine(sys.stdout)
from adapters.__main__ import main
try:
    code = main(json.loads(sys.argv[1]))
except SystemExit as stop:
    code = stop.code
imported = sorted(m for m in {frameworks!r} if m in sys.modules)
print(json.dumps([imported, code, first.imported]), file=sys.stderr)
"""


def _run_fresh(argv: list[str], cwd: Path = ROOT) -> tuple[list[str], str, list[str], Any, Any]:
    """``main(argv)`` in a fresh interpreter: (frameworks imported, stdout, stderr lines, exit
    status, frameworks imported when stdout got its first line (None: it got none))."""
    code = _PROBE_IMPORTS.format(frameworks=FRAMEWORKS)
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(argv)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    *err, last = proc.stderr.strip().splitlines()
    imported, status, at_first_line = json.loads(last)
    return imported, proc.stdout, err, status, at_first_line


def _imported_frameworks(argv: list[str]) -> tuple[list[str], str]:
    imported, out, _, _, _ = _run_fresh(argv)
    return imported, out


@pytest.mark.parametrize("argv", [["--help"], *([c, "--help"] for c in COMMANDS)])
def test_help_imports_no_framework(argv):
    imported, out = _imported_frameworks(argv)
    assert imported == [], f"{' '.join(argv)} imported {imported}"
    assert "usage: python -m adapters" in out


def run(capsys, *argv: str) -> tuple[int | str | None, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as stop:  # argparse: --help, --version and usage errors
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_has_help_and_examples(capsys, command):
    _, out, _ = run(capsys, command, "--help")
    assert "examples:\n" in out and f"python -m adapters {command}" in out.split("examples:")[1]
    sub = next(a for a in cli.build_parser()._actions if a.choices and command in a.choices)
    for action in sub.choices[command]._actions:
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"
        shown = parser.HelpFormatter("x")._get_help_string(action) % vars(action)
        if action.default not in (None, False, argparse.SUPPRESS):
            assert "default" in shown, f"{command} {action.dest}: default not shown: {shown}"


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"python -m adapters {version('fm-adapters')}"


def test_no_prefix_abbreviation_and_did_you_mean(capsys):
    code, _, err = run(capsys, "probe", "--epoch", "5")
    assert code == 2
    assert "unrecognized arguments: --epoch" in err and "did you mean --epochs?" in err


@pytest.mark.parametrize(
    ("argv0", "expected"),
    [
        ("/usr/local/bin/fm-adapters", "fm-adapters"),
        ("/x/adapters/__main__.py", "python -m adapters"),
        ("-c", "python -m adapters"),
    ],
)
def test_usage_names_how_it_was_invoked(argv0, expected):
    assert parser.prog_name(argv0) == expected
    assert (
        cli.build_parser(parser.prog_name(argv0)).format_usage().startswith(f"usage: {expected} ")
    )


def test_list_without_pattern_shows_own_names_and_says_how_to_list_timm(capsys):
    import adapters

    code, out, _ = run(capsys, "list")
    assert code == 0
    lines = out.strip().splitlines()
    own = adapters.list_models(include_timm=False)
    assert lines[:-1] == own
    assert f"{len(own)} names above; every timm architecture is a name too" in lines[-1]
    assert "list 'timm/*'" in lines[-1]


def test_unknown_name_suggests_timm_prefix_and_cli_hint(capsys):
    code, _, err = run(capsys, "inspect", "vit_tiny_patch16_224")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "did you mean timm/vit_tiny_patch16_224," in line
    assert "'python -m adapters list'" in line and "adapters.list_models" not in line


def test_usage_errors_are_one_line(capsys):
    code, _, err = run(capsys, "probe", "--epoch", "5")
    assert code == 2
    assert err.strip().splitlines() == [
        "error: unrecognized arguments: --epoch (did you mean --epochs?); "
        "see 'python -m adapters probe --help'"
    ]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["emebd"], "did you mean embed?"),
        (["probe", "--head", "linaer"], "did you mean linear?"),
        (["inspect", "x", "--runtime", "onnx"], "did you mean onnxruntime?"),
    ],
)
def test_a_mistyped_command_or_choice_gets_did_you_mean(capsys, argv, expected):
    code, _, err = run(capsys, *argv)
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "invalid choice" in line and expected in line, line


#: a bad flag value -> what its one error line says
BAD_VALUES = [
    (["inspect", "x", "--image-size", "0"], "--image-size: expected an integer >= 1, got 0"),
    (["inspect", "x", "--image-size", "big"], "--image-size: expected an integer >= 1, got 'big'"),
    (["embed", "--batch-size", "0", "--out", "e.safetensors"], "--batch-size: expected an int"),
    (["embed", "--limit", "-3", "--out", "e.safetensors"], "--limit: expected an integer >= 1"),
    (["embed", "--std", "0", "--out", "e.safetensors"], "--std: expected a finite number > 0"),
    (["embed", "--mean", "nan", "--out", "e.safetensors"], "--mean: expected a finite number"),
    (["embed", "--num-workers", "0", "--out", "d"], "--num-workers: expected an integer >= 1"),
    (["embed", "--gpus-per-worker", "-1", "--out", "d"], "--gpus-per-worker: expected a finite"),
    (["probe", "--lr", "-1"], "--lr: expected a finite number > 0, got -1"),
    (["probe", "--lr", "inf"], "--lr: expected a finite number > 0, got inf"),
    (["probe", "--epochs", "0"], "--epochs: expected an integer >= 1, got 0"),
    (["probe", "--seed", "-1"], "--seed: expected an integer from 0 to 4294967295, got -1"),
    (["export", "x", "--out", "m.txt"], "--out: expected a file name ending in .onnx, got 'm.txt'"),
]


@pytest.mark.parametrize(("argv", "expected"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_a_bad_flag_value_is_one_line_before_any_framework(argv, expected):
    imported, out, err, status, _ = _run_fresh(argv)
    assert status == 2
    assert len(err) == 1 and err[0].startswith(f"error: {expected}"), err
    assert f"see 'python -m adapters {argv[0]} --help'" in err[0]
    assert imported == [] and out == "", f"{' '.join(argv)} imported {imported}"


def test_embed_out_of_the_wrong_format_fails_before_any_framework(tmp_path):
    (tmp_path / "s.yaml").write_text("source: timm\nmodel_name: resnet18\npretrained: false\n")
    argv = ["embed", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "e.npy")]
    imported, _, err, status, _ = _run_fresh(argv)
    assert status == 2 and len(err) == 1 and "--out: embed writes a .safetensors file" in err[0]
    assert imported == []


@pytest.mark.parametrize(
    "argv",
    [
        ["embed", "{spec}", "--data", "{root}/missing", "--out", "{root}/e.safetensors"],
        ["probe", "{spec}", "--data", "{root}/missing"],
        ["inspect", "{spec}", "--image-size", "32"],
        ["export", "{spec}", "--out", "{root}/no/dir/m.onnx"],
    ],
    ids=["embed", "probe", "inspect", "export"],
)
def test_the_first_line_comes_before_torch(tmp_path, argv):
    """Importing torch alone takes seconds: each command says what it does first."""
    spec = "source: timm\nmodel_name: vit_tiny_patch16_224\npretrained: false\n"
    (tmp_path / "s.yaml").write_text(spec + "model_kwargs: {img_size: 32, depth: 1}\n")
    fill = {"spec": str(tmp_path / "s.yaml"), "root": str(tmp_path)}
    _, out, _, _, at_first_line = _run_fresh([a.format(**fill) for a in argv])
    assert out, "nothing printed"
    assert at_first_line == [], f"the first line came after importing {at_first_line}: {out}"


@pytest.mark.parametrize("argv", [["list"], ["list", "pathology/*"]])
def test_list_imports_neither_torch_nor_timm(argv):
    imported, out, _, status, _ = _run_fresh(argv)
    assert status == 0 and imported == [], f"{' '.join(argv)} imported {imported}"
    assert "pathology/owkin_phikon" in out.split()


@pytest.mark.parametrize(
    ("pattern", "hint"),
    [
        ("Pathology/*", "did you mean 'pathology/*'?"),
        ("owkin_phikon", "did you mean '*owkin_phikon*'?"),
        ("nothing/like/this*", "run 'python -m adapters list'"),
    ],
)
def test_list_matching_nothing_says_so_and_suggests(capsys, pattern, hint):
    code, out, err = run(capsys, "list", pattern)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert f"no registry name matches {pattern!r}" in line and hint in line, line


def test_embed_and_probe_share_the_default_job():
    p = cli.build_parser()
    embed = p.parse_args(["embed", "--out", "e.safetensors"])
    probe = p.parse_args(["probe"])
    assert (
        (embed.spec, embed.data)
        == (probe.spec, probe.data)
        == ("universal/efficientnet_lite0_imagenet", "digits")
    )
    assert image_size(embed) == image_size(probe) == DEFAULT_IMAGE_SIZE


def test_the_first_embed_example_gives_features():
    """The first example a newcomer copies embeds features, not a random classifier's logits."""
    from adapters._src.app.describe import logits_note

    example = commands.module("embed").EXAMPLES.splitlines()[0].split()
    name = example[example.index("embed") + 1]
    backbone, pre = build_backbone(name, "torch", device="cpu")
    assert logits_note(backbone) is None, name
    import torch

    with torch.inference_mode():
        y = backbone(torch.zeros(1, pre.channels, *pre.size))
    assert y.ndim == 2 and y.shape[1] >= 256, (name, tuple(y.shape))  # pooled features
