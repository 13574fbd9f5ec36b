"""The ``python -m adapters`` command line's flags: one parser, its defaults and its help."""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from typing import NoReturn

from ..runtimes.table import RUNTIMES as RUNTIME_TABLE

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
    "embed": "{prog} embed timm/resnet18 --data digits --out emb.safetensors\n"
    "  {prog} embed spec.yaml --data images/ --out emb.safetensors --batch-size 32",
    "probe": "{prog} probe\n  {prog} probe emb.safetensors --head mlp --report out/\n"
    "  {prog} probe timm/resnet18 --data images/ --limit 500",
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
    """An `argparse.ArgumentParser` whose error for an unknown option suggests the closest
    known one (``--epoch 5`` -> ``did you mean --epochs?``)."""

    def error(self, message: str) -> NoReturn:
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            known = _option_strings(self)
            for token in message[len(prefix) :].split():
                close = difflib.get_close_matches(token.split("=")[0], known, n=1, cutoff=0.6)
                if token.startswith("-") and close:
                    message = f"{message} (did you mean {close[0]}?)"
                    break
        super().error(message)


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """The option strings of ``parser`` and of its commands (argparse reports a command's unknown
    option from the top-level parser)."""
    found = list(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
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
        help="wildcard pattern, e.g. 'pathology/*' (default: the project's own names and a "
        "count of the timm/* names)",
    )

    p = command("inspect", "build a backbone, run one example input, describe it")
    p.add_argument("spec", help="spec file (YAML/JSON, eva config, .onnx) or registry name")
    _add_backbone_flags(p)

    p = command("embed", "embed a dataset into a .safetensors file")
    p.add_argument("spec", help="spec file (YAML/JSON, eva config, .onnx) or registry name")
    _add_data_flags(p, required=True)
    p.add_argument(
        "--out", required=True, help="output .safetensors file (--engine ray: a directory)"
    )
    _add_backbone_flags(p)
    _add_engine_flags(p)

    _add_probe_args(command("probe", "train a JAX/Flax head on embeddings; report test metrics"))
    p = command("export", "export a backbone to ONNX")
    p.add_argument("spec", help="spec file or registry name")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--image-size", type=int, help="example input size (default: the backbone's)")
    p.set_defaults(runtime="torch", mean=None, std=None)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fm-adapters")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown (not installed)"


def _add_probe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "spec",
        nargs="?",
        default=DEFAULT_MODEL,
        help=f"spec, registry name, an embeddings .safetensors or an 'embed --engine ray' "
        f"directory (default: {DEFAULT_MODEL})",
    )
    _add_data_flags(p, required=False)
    _add_backbone_flags(p)
    p.add_argument("--head", choices=("linear", "mlp"), default="linear", help="the probe head")
    p.add_argument("--epochs", type=int, default=100, help="training epochs of the head")
    p.add_argument("--lr", type=float, help="AdamW step size (default: 1e-2 linear, 1e-3 mlp)")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of random backbone weights, the split, the head"
    )
    p.add_argument("--report", metavar="DIR", help="write report.json and PNG plots here")


def _add_data_flags(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument(
        "--data",
        required=required,
        default=None if required else DEFAULT_DATA,
        help="'digits', an image folder (one sub-folder per class) or a .npz/.npy of images",
    )
    p.add_argument("--labels", help="a .npy of labels for a .npy of images")
    p.add_argument(
        "--limit",
        type=int,
        help="a fixed-seed random subset of this many images (of an embeddings file given to "
        "probe: its first N rows)",
    )
    p.add_argument("--batch-size", type=int, default=64, help="images per forward call")
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
    p.add_argument("--num-workers", type=int, help="--engine ray: actors (default: per GPU)")
    p.add_argument(
        "--gpus-per-worker", type=float, help="--engine ray: GPUs each actor holds (default 0)"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="Ray's own logs and bars")


def _add_backbone_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--image-size",
        type=int,
        help=f"input size (default: the backbone's own; {DEFAULT_IMAGE_SIZE} for probe's default "
        f"job, {DEFAULT_MODEL} on {DEFAULT_DATA})",
    )
    p.add_argument(
        "--mean", type=float, nargs="+", help="per-channel mean (default: the backbone's)"
    )
    p.add_argument("--std", type=float, nargs="+", help="per-channel std (default: the backbone's)")
    p.add_argument(
        "--runtime", choices=RUNTIMES, default="torch", help="what runs the backbone's forward"
    )
    p.add_argument(
        "--device",
        help="where the backbone runs: cpu, cuda or cuda:N (default: cuda if available, else "
        "cpu; an ONNX model: its spec's device)",
    )
