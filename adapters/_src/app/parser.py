"""The ``python -m adapters`` parser: one sub-parser per command (each command module adds
its own flags), help that shows defaults and examples, and usage errors as one line with the
closest option or choice suggested."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any, NoReturn


def prog_name(argv0: str | None = None) -> str:
    """How the program was invoked: the installed script's name (``fm-adapters``), or
    ``python -m adapters`` when run as a module (``sys.argv[0]`` is then ``__main__.py``)."""
    base = os.path.basename(sys.argv[0] if argv0 is None else argv0)
    if base in ("", "-c", "-m", "__main__.py") or base.endswith(".py"):
        return "python -m adapters"
    return base


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default (unless None/False, or its help already names it) and keeps
    the examples epilog's line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if default is None or default is False or default == argparse.SUPPRESS or "default" in text:
            return text
        return super()._get_help_string(action) or text


class CliParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose usage errors are one line, as the commands' errors
    are (``error: --limit: expected an integer >= 1, got 0; see '... probe --help'``, exit
    status 2), and suggest the closest known option or choice (``--epoch 5`` -> ``did you mean
    --epochs?``; ``emebd`` -> ``did you mean embed?``)."""

    def parse_args(  # type: ignore[override]
        self, args: Any = None, namespace: Any = None
    ) -> argparse.Namespace:
        """As argparse's, but a command's unknown arguments are that command's error (its
        options suggested, its ``--help`` named)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            sub = _commands(self).get(getattr(parsed, "command", None) or "", self)
            sub.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def error(self, message: str) -> NoReturn:
        message = _did_you_mean(self, message)
        if message.startswith("argument "):  # "argument --limit: ..." -> "--limit: ..."
            message = message[len("argument ") :]
        line = " ".join(message.split())
        self.exit(2, f"error: {line}; see '{self.prog} --help'\n")


def _did_you_mean(parser: argparse.ArgumentParser, message: str) -> str:
    """``message`` with the closest known option (an unknown option) or choice (an invalid
    command, ``--head``, ``--runtime``...) appended, when one is close."""
    prefix = "unrecognized arguments: "
    if message.startswith(prefix):
        known = _option_strings(parser)
        for token in message[len(prefix) :].split():
            close = difflib.get_close_matches(token.split("=")[0], known, n=1, cutoff=0.6)
            if token.startswith("-") and close:
                return f"{message} (did you mean {close[0]}?)"
        return message
    choice = re.search(r"invalid choice: '(.*)' \(choose from (.*)\)$", message, re.S)
    if choice:
        known = re.findall(r"'([^']*)'", choice[2]) or choice[2].split(", ")
        close = difflib.get_close_matches(choice[1], known, n=1, cutoff=0.5)
        if close:
            return f"{message} (did you mean {close[0]}?)"
    return message


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The command name -> sub-parser table of ``parser`` (empty for a command's own)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """The option strings of ``parser`` and of its commands."""
    found = list(parser._option_string_actions)
    for sub in _commands(parser).values():
        found += _option_strings(sub)
    return sorted(set(found))


def make_parser(commands: Mapping[str, ModuleType], prog: str | None = None) -> CliParser:
    """The command-line parser; ``args.command`` names the command.

    Args:
        commands: command name -> its module (``HELP``, ``EXAMPLES``, ``add_arguments``), in
            the order ``--help`` lists them.
        prog: the name in the usage line (default: `prog_name`, how the program was invoked).

    Returns:
        The parser (with one sub-parser per command).
    """
    prog = prog or prog_name()
    parser = CliParser(
        prog=prog,
        description="Functional adapters for vision foundation-model backbones.",
        epilog="examples:\n  "
        + "\n  ".join(m.EXAMPLES.split("\n")[0].format(prog=prog) for m in commands.values())
        + f"\n\nrun '{prog} COMMAND --help' for a command's options",
        formatter_class=HelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.set_defaults(command=None)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name, module in commands.items():
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            epilog="examples:\n  " + module.EXAMPLES.format(prog=prog),
            formatter_class=HelpFormatter,
            allow_abbrev=False,
        )
        p.set_defaults(command=name)
        module.add_arguments(p)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fm-adapters")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown (not installed)"
