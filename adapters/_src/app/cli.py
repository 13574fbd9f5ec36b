"""``python -m adapters``: list, inspect, embed, probe, export.

Bad input (an unknown model, a missing folder, an unreadable image with ``--strict-images``,
labels not matching images, an output path in a missing or read-only directory or naming an
input, ``--device cuda`` without a GPU, a backbone whose forward cannot take the input size)
prints one line to stderr and exits with status 2, leaving no output file behind. A bad flag
value is refused so while the flags are read (``flag_types.py``), before torch is imported;
each command prints its first line before that import too. Ctrl-C prints one line and exits
with status 130 (`console`).

``--device`` (inspect, embed, probe) defaults to ``cuda`` when torch sees a GPU, else ``cpu``;
an ONNX model keeps its own device (``cpu`` unless given) and ``--runtime onnxruntime``
serves on the CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .backbone import CliError, build_backbone
from .describe import PlainProgress, describe_parameters, logits_note
from .errors import DataError, EmbedError, ForwardError, ProbeError
from .exporting import cmd_export
from .inspection import cmd_inspect
from .interrupts import catching_interrupts
from .listing import cmd_list
from .out_paths import check_out, check_out_format
from .parser import DEFAULT_DATA as DEFAULT_DATA
from .parser import DEFAULT_IMAGE_SIZE, RAY_FLAGS, build_parser
from .parser import DEFAULT_MODEL as DEFAULT_MODEL

#: the exit status of an interrupted command (128 + SIGINT, as a shell reports it)
INTERRUPTED = 130


def console(argv: Sequence[str] | None = None) -> int:
    """The program (``python -m adapters``, the ``fm-adapters`` script): `main`, and after a
    Ctrl-C an immediate exit.

    An interrupted command has already cleaned up (its outputs are atomic) and said so; what is
    left is the interpreter's shutdown, which tears torch and XLA down while their threads (and
    the loader's) may still be mid-work: an interrupted probe segfaulted there. So the streams
    are flushed and the process ends with ``os._exit``.
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
        return int(COMMANDS[args.command](args) or 0)
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


def _print(*parts: Any) -> None:
    print(*parts, flush=True)


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------


def _load_backbone(args: argparse.Namespace, image_size: int | None, seed: int | None = None):
    """`build_backbone` from the flags, saying what it does: building one can take seconds
    (timm, a checkpoint, a first CUDA call) before the first batch."""
    _print(f"loading backbone {args.spec} ...")
    backbone, pre = build_backbone(
        args.spec, args.runtime, image_size, args.mean, args.std, seed, args.device, say=_print
    )
    from .weights import describe_weights

    device = (backbone.info or {}).get("device") or "cpu"
    _print(f"backbone: {describe_parameters(backbone)} on {device} ({backbone.framework})")
    _print(f"weights: {describe_weights(backbone, seed)}")
    note = logits_note(backbone)
    if note:
        _print(f"note: {note}")
    return backbone, pre


def _embed(args: argparse.Namespace, backbone: Any, pre: Any, ds: Any) -> Any:
    from .data import LoaderStats
    from .embed import embed_dataset

    _print(pre.describe())
    stats = LoaderStats()
    progress = PlainProgress(len(ds))
    t0 = time.perf_counter()
    emb = embed_dataset(
        backbone,
        ds,
        pre,
        batch_size=args.batch_size,
        strict=args.strict_images,
        stats=stats,
        on_batch=progress,
    )
    progress.line()
    seconds = time.perf_counter() - t0
    n = len(emb.ids)
    _print(
        f"embedded {n} images -> {tuple(emb.embeddings.shape)} in {seconds:.1f}s "
        f"({n / seconds:.1f} img/s; pooling: {emb.metadata['pooling']})"
    )
    if stats.skipped:
        _print(f"skipped {len(stats.skipped)} unreadable image(s): {', '.join(stats.skipped[:5])}")
    return emb


def cmd_embed(args: argparse.Namespace) -> int:
    # the first line comes before any framework import (torch alone takes seconds)
    ray = " (--engine ray)" if args.engine == "ray" else ""
    _print(f"embed {args.spec} on {args.data} -> {args.out}{ray}")
    if args.engine == "ray":
        check_out_format(args.out, "ray")
        if args.device is not None:
            raise CliError(
                f"--device: with --engine ray each worker's device follows --gpus-per-worker, "
                f"got --device {args.device}; drop --device"
            )
        args.gpus_per_worker = args.gpus_per_worker or 0
        return _embed_ray(args)
    given = [f"--{f.replace('_', '-')}" for f in RAY_FLAGS if getattr(args, f) is not None]
    if given:
        raise CliError(f"{given[0]}: only read with --engine ray; add --engine ray or drop it")
    out = check_out(args, data=args.data, labels=args.labels)
    check_out_format(args.out, "process")  # after: naming an input is the worse mistake
    from .data import load_dataset
    from .store import save_embeddings

    ds = load_dataset(args.data, labels=args.labels, limit=args.limit)
    backbone, pre = _load_backbone(args, _image_size(args))
    emb = _embed(args, backbone, pre, ds)
    save_embeddings(emb, out)
    _print(f"wrote {out}")
    return 0


def _embed_ray(args: argparse.Namespace) -> int:
    """``python -m adapters embed ... --engine ray``."""
    from .ray_command import embed_ray

    return embed_ray(args, image_size=_image_size(args))


def _image_size(args: argparse.Namespace) -> int | None:
    """``--image-size``, else the default job's own size when embed or probe runs that job."""
    if args.image_size is None and (args.spec, args.data) == (DEFAULT_MODEL, DEFAULT_DATA):
        return DEFAULT_IMAGE_SIZE  # see parser.py
    return args.image_size


def cmd_probe(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    # the first line comes before any framework import (torch alone takes seconds)
    stored = args.spec.endswith(".safetensors") or Path(args.spec).is_dir()  # embeddings
    on = "" if stored and args.data == DEFAULT_DATA else f" on {args.data}"
    _print(f"probe {args.spec}{on}: {args.head} head, {args.epochs} epochs, seed {args.seed}")
    if args.report is not None and Path(args.report).is_file():
        raise CliError(f"--report: expected a directory, got the file {args.report!r}")
    from .data import raw_pixels
    from .probe import format_table, run_probe
    from .report import write_report

    emb, ds, step = _probe_inputs(args)
    t_embed = time.perf_counter() - start  # step: "embed", or "load" for an embeddings file
    pixels = None
    if ds is not None:
        pixels = raw_pixels(ds.subset(np.searchsorted(ds.index, emb.ids)))
    result = run_probe(
        emb.embeddings,
        emb.labels,
        pixels=pixels,
        class_names=tuple(emb.class_names),
        head=args.head,
        epochs=args.epochs,
        seed=args.seed,
        learning_rate=args.lr,
    )
    total = time.perf_counter() - start
    _print(
        f"split train/val/test = {result.split_sizes['train']}/{result.split_sizes['val']}/"
        f"{result.split_sizes['test']} (seed {args.seed}); features handed to JAX "
        f"{'without a copy' if result.zero_copy else 'with a copy'}"
    )
    _print(format_table(result))
    _print(
        f"time: {step} {t_embed:.1f}s, head {result.seconds['head']:.1f}s, "
        f"baseline {result.seconds['baseline']:.1f}s, total {total:.1f}s"
    )
    if args.report is not None:
        paths = write_report(
            result,
            args.report,
            subject=f"{args.spec} on {emb.metadata.get('data', '')}",
            embeddings=emb.embeddings,
            labels=emb.labels,
            spec=emb.metadata.get("spec", ""),
            data=emb.metadata.get("data", ""),
            seconds_total=total,
            **{f"seconds_{step}": t_embed},
        )
        _print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def _probe_inputs(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """``probe``'s embeddings (loaded from a file or embedded here), the dataset behind
    them (None when it is not available) and which it was (``"load"`` or ``"embed"``)."""
    from .data import load_dataset
    from .probe import stratified_split
    from .shards import is_embeddings_dir
    from .store import load_embeddings

    if args.spec.endswith(".safetensors") or is_embeddings_dir(args.spec):
        emb = load_embeddings(args.spec)
        if args.limit is not None:
            emb = emb.first(args.limit)  # the split below stays stratified over these rows
        return emb, _dataset_of(emb, args), "load"
    ds = load_dataset(args.data, labels=args.labels, limit=args.limit)
    stratified_split(ds.labels, seed=args.seed)  # too few images per class fails here, not later
    backbone, pre = _load_backbone(args, _image_size(args), args.seed)
    return _embed(args, backbone, pre, ds), ds, "embed"


def _dataset_of(emb: Any, args: argparse.Namespace) -> Any:
    """The images behind an embeddings file, for the pixel baseline (None if unavailable)."""
    from .data import load_dataset

    data = args.data if args.data != DEFAULT_DATA else emb.metadata.get("data", DEFAULT_DATA)
    if data != "digits" and not Path(data).exists():
        _print(f"baseline skipped: the embedded data {data!r} is not available")
        return None
    ds = load_dataset(data, labels=args.labels)
    if emb.ids.size and (emb.ids.max() >= len(ds) or emb.ids.min() < 0):
        raise CliError(
            f"--data: the embeddings file's ids go up to {int(emb.ids.max())} but {data!r} has "
            f"{len(ds)} images; pass the data that was embedded"
        )
    ds = ds.subset(emb.ids)
    if list(ds.ids) != emb.items or not np.array_equal(ds.labels, emb.labels):
        raise CliError(
            f"--data: the images of {data!r} do not match the embeddings file's items and labels; "
            "pass the data that was embedded"
        )
    return ds


#: command name -> its function (the parser sets ``args.command``)
COMMANDS = {
    "list": cmd_list,
    "inspect": cmd_inspect,
    "embed": cmd_embed,
    "probe": cmd_probe,
    "export": cmd_export,
}
