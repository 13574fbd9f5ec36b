"""The ``python -m adapters`` command line's flags: one parser, its defaults and its help."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from typing import Any, NoReturn

from ..runtimes.table import RUNTIMES as RUNTIME_TABLE
from . import flag_types

#: what ``probe`` with no arguments runs (the README's main-job command): real ImageNet weights
#: installed with the package, so the first number a newcomer sees is a pretrained model's
DEFAULT_MODEL = "universal/efficientnet_lite0_imagenet"
DEFAULT_DATA = "digits"
#: the input size of that default job: digits are 8x8 images, so 224 px buys nothing over 112
#: (linear head 0.900 at 224 against 0.922 at 112) and costs about twice the time on a CPU
DEFAULT_IMAGE_SIZE = 112
RUNTIMES = tuple(RUNTIME_TABLE)
ENGINES = ("process", "ray")
#: flags that only --engine ray reads
RAY_FLAGS = ("address", "num_workers", "gpus_per_worker")


#: each command's examples, shown under its ``--help`` (``{prog}``: how the program was invoked)
EXAMPLES = {
    "list": "{prog} list\n  {prog} list 'pathology/*'\n  {prog} list 'timm/vit_*'",
    "inspect": "{prog} inspect universal/vit_tiny_patch16_224_random\n"
    "  {prog} inspect timm/resnet18 --image-size 160\n  {prog} inspect model.onnx",
    "embed": "{prog} embed universal/efficientnet_lite0_imagenet --data digits --out emb.safetensors\n"
    "  {prog} embed spec.yaml --data images/ --out emb.safetensors --batch-size 32",
    "probe": "{prog} probe\n  {prog} probe emb.safetensors --head mlp --report out/\n"
    "  {prog} probe spec.yaml --data images/ --limit 500 --head mlp",
    "export": "{prog} export universal/vit_tiny_patch16_224_random --out model.onnx",
}


def prog_name(argv0: str | None = None) -> str:
    """How the program was invoked: the installed script's name (``fm-adapters``), or
    ``python -m adapters`` when run as a module (``sys.argv[0]`` is then ``__main__.py``)."""
    base = os.path.basename(sys.argv[0] if argv0 is None else argv0)
    if base in ("", "-c", "-m", "__main__.py") or base.endswith(".py"):
        return "python -m adapters"
    return base


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
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

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
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


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command-line parser; ``args.command`` names the command.

    Args:
        prog: the name in the usage line (default: `prog_name`, how the program was invoked).

    Returns:
        The parser (with one sub-parser per command).
    """
    prog = prog or prog_name()
    parser = CliParser(
        prog=prog,
        description="Functional adapters for vision foundation-model backbones.",
        epilog="examples:\n  "
        + "\n  ".join(EXAMPLES[c].split("\n")[0].format(prog=prog) for c in EXAMPLES)
        + f"\n\nrun '{prog} COMMAND --help' for a command's options",
        formatter_class=_Formatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.set_defaults(command=None)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        epilog = "examples:\n  " + EXAMPLES[name].format(prog=prog)
        p = sub.add_parser(
            name,
            help=help,
            description=help,
            epilog=epilog,
            formatter_class=_Formatter,
            allow_abbrev=False,
        )
        p.set_defaults(command=name)
        return p

    p = command("list", "registry names, one a line")
    p.add_argument(
        "pattern",
        nargs="?",
        default=None,
        help="wildcard pattern, e.g. 'pathology/*' (default: the project's own names, and how "
        "to list the timm/* names)",
    )

    p = command("inspect", "build a backbone, run one example input, describe it")
    p.add_argument("spec", help="spec file (YAML/JSON, eva config, .onnx) or registry name")
    _add_backbone_flags(p)

    _add_embed_args(command("embed", "embed a dataset into a .safetensors file"))
    _add_probe_args(command("probe", "train a JAX/Flax head on embeddings; report test metrics"))
    _add_export_args(command("export", "export a backbone to ONNX"))
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fm-adapters")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown (not installed)"


def _add_embed_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "spec",
        nargs="?",
        default=DEFAULT_MODEL,
        help=f"spec file (YAML/JSON, eva config, .onnx) or registry name (default: "
        f"{DEFAULT_MODEL}, as probe)",
    )
    _add_data_flags(p)
    p.add_argument(
        "--out", required=True, help="output .safetensors file (--engine ray: a directory)"
    )
    _add_backbone_flags(p)
    _add_engine_flags(p)


def _add_export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="spec file or registry name")
    p.add_argument(
        "--out", required=True, type=flag_types.file_with_suffix(".onnx"), help="output .onnx file"
    )
    p.add_argument(
        "--image-size",
        type=flag_types.positive_int,
        help="example input size (default: the backbone's)",
    )
    p.set_defaults(runtime="torch", mean=None, std=None)


def _add_probe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "spec",
        nargs="?",
        default=DEFAULT_MODEL,
        help=f"spec, registry name, an embeddings .safetensors or an 'embed --engine ray' "
        f"directory (default: {DEFAULT_MODEL})",
    )
    _add_data_flags(p)
    _add_backbone_flags(p)
    p.add_argument("--head", choices=("linear", "mlp"), default="linear", help="the probe head")
    p.add_argument(
        "--epochs", type=flag_types.positive_int, default=100, help="training epochs of the head"
    )
    p.add_argument(
        "--lr",
        type=flag_types.positive_float,
        help="AdamW step size (default: 1e-2 linear, 1e-3 mlp)",
    )
    p.add_argument(
        "--seed",
        type=flag_types.seed,
        default=0,
        help="seed of random backbone weights, the split, the head",
    )
    p.add_argument("--report", metavar="DIR", help="write report.json and PNG plots here")


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default=DEFAULT_DATA,
        help="'digits', an image folder (one sub-folder per class) or a .npz/.npy of images",
    )
    p.add_argument("--labels", help="a .npy of labels for a .npy of images")
    p.add_argument(
        "--limit",
        type=flag_types.positive_int,
        help="a fixed-seed random subset of this many images (of an embeddings file given to "
        "probe: its first N rows)",
    )
    p.add_argument(
        "--batch-size", type=flag_types.positive_int, default=64, help="images per forward call"
    )
    p.add_argument(
        "--strict-images", action="store_true", help="fail on an unreadable image (default: skip)"
    )


def _add_engine_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="process",
        help="process: this process (default); ray: Ray Data actors writing a sharded, "
        "resumable directory (needs the 'distributed' extra)",
    )
    p.add_argument("--address", help="--engine ray: the Ray cluster to join (default: local)")
    p.add_argument(
        "--num-workers",
        type=flag_types.positive_int,
        help="--engine ray: actors (default: per GPU)",
    )
    p.add_argument(
        "--gpus-per-worker",
        type=flag_types.non_negative_float,
        help="--engine ray: GPUs each actor holds (default 0)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="Ray's own logs and bars")


def _add_backbone_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--image-size",
        type=flag_types.positive_int,
        help=f"input size (default: the backbone's own; {DEFAULT_IMAGE_SIZE} for the default "
        f"job, {DEFAULT_MODEL} on {DEFAULT_DATA})",
    )
    p.add_argument(
        "--mean",
        type=flag_types.finite_float,
        nargs="+",
        help="per-channel mean (default: the backbone's)",
    )
    p.add_argument(
        "--std",
        type=flag_types.positive_float,
        nargs="+",
        help="per-channel std (default: the backbone's)",
    )
    p.add_argument(
        "--runtime", choices=RUNTIMES, default="torch", help="what runs the backbone's forward"
    )
    p.add_argument(
        "--device",
        help="where the backbone runs: cpu, cuda or cuda:N (default: cuda if available, else "
        "cpu; an ONNX model: its spec's device)",
    )
