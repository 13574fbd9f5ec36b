"""The GPU check, under its first name: ``python -m benchmarks.gpu_check [OUT_DIR] [--dry-run]``.

The checks grew into ``benchmarks/gpu/`` (pointer equality over a dtype table, stream safety
with controls, bridge times, ONNX CUDA provider, ``jax_function`` and the adapter on CUDA,
each part in its own process); this runs all of it. ``OUT_DIR`` defaults to ``$OUT``, else
``benchmarks/results/gpu``. See ``benchmarks/gpu/README.md`` for the lent-machine recipe.
"""

from __future__ import annotations

import sys

from benchmarks.gpu.__main__ import main as _main


def main(argv: list[str] | None = None) -> int:
    """``[OUT_DIR] [flags of python -m benchmarks.gpu]`` -> exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and not args[0].startswith("-"):
        args = ["--out", args[0], *args[1:]]
    return _main(args)


if __name__ == "__main__":
    sys.exit(main())
