"""``list``: registry names, one a line, without importing torch or timm unless the pattern
can match a ``timm/`` name (timm's import alone takes seconds; the project's names are data).

A pattern that matches nothing is an error that says so and suggests one that does.
"""

from __future__ import annotations

import argparse
import difflib
import re

from ...registry import TIMM_PREFIX, list_models
from ..describe import say
from ..errors import CliError
from ..parser import prog_name

HELP = "registry names, one a line"
EXAMPLES = "{prog} list\n  {prog} list 'pathology/*'\n  {prog} list 'timm/vit_*'"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The optional wildcard ``pattern``."""
    p.add_argument(
        "pattern",
        nargs="?",
        default=None,
        help="wildcard pattern, e.g. 'pathology/*' (default: the project's own names, and how "
        "to list the timm/* names)",
    )


def may_match_timm(pattern: str) -> bool:
    """Whether a shell-style ``pattern`` can match some ``timm/<name>``: its literal start
    (before the first ``*``, ``?`` or ``[``) and ``timm/`` agree."""
    literal = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    return literal.startswith(TIMM_PREFIX) or TIMM_PREFIX.startswith(literal)


def _names(pattern: str | None) -> list[str]:
    timm = pattern is not None and may_match_timm(pattern)
    return list_models(pattern, include_timm=timm)


def run(args: argparse.Namespace) -> int:
    """Print the names matching ``args.pattern``, or the project's own names and how to list
    timm's; a pattern that matches nothing raises `CliError` with a suggestion."""
    if args.pattern is not None:
        names = _names(args.pattern)
        if not names:
            raise CliError(_no_match(args.pattern))
        for name in names:
            say(name)
        return 0
    own = _names(None)
    for name in own:
        say(name)
    say(
        f"({len(own)} names above; every timm architecture is a name too, as timm/<name>: run "
        f"\"{prog_name()} list 'timm/*'\" to list them, or a part: 'timm/vit_*')"
    )
    return 0


def _no_match(pattern: str) -> str:
    """The message for a pattern that matches no name, with the closest pattern or names."""
    shown = pattern if len(pattern) <= 80 else pattern[:80] + "..."
    hint = ""
    lower = pattern.lower()
    if lower != pattern and _names(lower):
        hint = f"names are lower case: did you mean {lower!r}? "
    elif not re.search(r"[*?\[]", pattern) and _names(f"*{pattern}*"):
        hint = f"the pattern matches whole names: did you mean '*{pattern}*'? "
    else:
        candidates = _names(f"{TIMM_PREFIX}*" if may_match_timm(pattern) else "*")
        close = difflib.get_close_matches(pattern, candidates, n=3, cutoff=0.6)
        hint = f"close names: {', '.join(close)}. " if close else ""
    return (
        f"PATTERN: no registry name matches {shown!r}; {hint}run '{prog_name()} list' for the "
        "project's names, or a wildcard pattern such as 'pathology/*'"
    )
