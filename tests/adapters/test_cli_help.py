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

import pytest

from adapters._src.app import cli, parser

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = ("torch", "jax", "timm", "transformers")
COMMANDS = ("list", "inspect", "embed", "probe", "export")

#: runs main(argv) in a fresh interpreter and prints which frameworks were imported
_PROBE_IMPORTS = """
import json, sys
from adapters.__main__ import main
try:
    main(json.loads(sys.argv[1]))
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {frameworks!r} if m in sys.modules)), file=sys.stderr)
"""


def _imported_frameworks(argv: list[str]) -> tuple[list[str], str]:
    code = _PROBE_IMPORTS.format(frameworks=FRAMEWORKS)
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(argv)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stderr.strip().splitlines()[-1]), proc.stdout


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
    sub = next(a for a in parser.build_parser()._actions if a.choices and command in a.choices)
    for action in sub.choices[command]._actions:
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"
        shown = parser._Formatter("x")._get_help_string(action) % vars(action)
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
        parser.build_parser(parser.prog_name(argv0))
        .format_usage()
        .startswith(f"usage: {expected} ")
    )


def test_list_without_pattern_shows_own_names_and_counts_timm(capsys):
    import adapters

    code, out, _ = run(capsys, "list")
    assert code == 0
    lines = out.strip().splitlines()
    own = adapters.list_models(include_timm=False)
    assert lines[:-1] == own
    n_timm = len(adapters.list_models("timm/*"))
    assert f"{len(own)} names above, and {n_timm} timm/* names" in lines[-1]
    assert "list 'timm/*'" in lines[-1]


def test_unknown_name_suggests_timm_prefix_and_cli_hint(capsys):
    code, _, err = run(capsys, "inspect", "vit_tiny_patch16_224")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "did you mean timm/vit_tiny_patch16_224," in line
    assert "'python -m adapters list'" in line and "adapters.list_models" not in line
