"""``python -m adapters``: the program, its commands (one module each, `commands`), their bad
input as one line and exit status 2, and Ctrl-C as one line and exit status 130.

Bad input (an unknown model, a missing folder, an unreadable image with ``--strict-images``,
labels not matching images, an output path in a missing or read-only directory or naming an
input, ``--device cuda`` without a GPU, a backbone whose forward cannot take the input size)
prints one line to stderr and exits with status 2, leaving no output file behind. A bad flag
value is refused so while the flags are read (`flag_types`), before torch is imported; each
command prints its first line before that import too.

``--device`` (inspect, embed, probe) defaults to ``cuda`` when torch sees a GPU, else ``cpu``;
an ONNX model keeps its own device (``cpu`` unless given) and ``--runtime onnxruntime``
serves on the CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import commands
from .errors import CliError, DataError, EmbedError, ForwardError, ProbeError
from .interrupts import catching_interrupts
from .parser import make_parser

#: the exit status of an interrupted command (128 + SIGINT, as a shell reports it)
INTERRUPTED = 130


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The program's parser: one sub-parser per command of `commands.NAMES`.

    Args:
        prog: the name in the usage line (default: how the program was invoked).
    """
    return make_parser({name: commands.module(name) for name in commands.NAMES}, prog)


def console(argv: Sequence[str] | None = None) -> int:
    """The program (``python -m adapters``, the ``fm-adapters`` script): `main`, and after a
    Ctrl-C an immediate exit.

    An interrupted command has already cleaned up (its outputs are atomic) and said so; what is
    left is the interpreter's shutdown, which tears torch and XLA down while their threads (and
    the loader's) may still be mid-work, and can crash there. So the streams are flushed and the
    process ends with ``os._exit``.
    """
    try:
        code = main(argv)
    except KeyboardInterrupt:  # a Ctrl-C between the command's end and this line
        code = INTERRUPTED
    if code == INTERRUPTED:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    with catching_interrupts(final=True):  # final: a 2nd Ctrl-C cannot break the exit
        try:
            return _run(args)
        except KeyboardInterrupt:  # Ctrl-C: outputs are written atomically at the end, so none
            ray = getattr(args, "engine", None) == "ray" and Path(args.out).is_dir()  # is; shards
            done = "finished shards kept; rerun to resume" if ray else "nothing written"
            print(f"interrupted: {done}", file=sys.stderr, flush=True)
            return INTERRUPTED


def _run(args: argparse.Namespace) -> int:
    """The command, its bad input reported as one line (exit status 2)."""
    try:
        return int(commands.module(args.command).run(args) or 0)
    except CliError as err:
        return _fail(str(err))
    except ForwardError as err:  # the library names image_size; here it is a flag
        return _fail(err.describe("--image-size N"))
    except (DataError, EmbedError, ProbeError) as err:  # ours: the message is the whole story
        return _fail(str(err))
    except (ValueError, LookupError, OSError, BufferError, ImportError) as err:
        # spec, registry, data and backend errors: their messages say what to fix
        return _fail(f"{type(err).__name__}: {err}")


def _fail(message: str) -> int:
    from specs.internal import clean_message  # long echoed values shortened, URL secrets hidden

    line = clean_message(" ".join(message.split()))
    print(f"error: {line}", file=sys.stderr)
    return 2
