"""The GPU section of the benchmarks: one short script for a lent CUDA machine.

``python -m benchmarks.gpu [--out DIR] [--dry-run] [--only PART ...] [--in-process]`` runs
six independent parts, each in its own process, and writes ``gpu_check.json``,
``gpu_check.md`` and ``gpu_check.log`` to ``DIR`` (default ``$OUT``, else
``benchmarks/results/gpu``):

* ``env``: versions, devices, the backends each part can use;
* ``bridge``: torch<->jax<->ONNX Runtime pointer equality over a dtype table, stream safety
  (with controls that prove the checks can fail), conversion time vs size (1 KB .. 256 MB);
* ``onnx``: ONNX Runtime's CUDA provider with IO binding vs eva's host round trip;
* ``jax_function``: where the torch call runs inside JAX and its per-call / relative cost;
* ``adapter``: adapter forward vs the raw module call on CUDA;
* ``lowered``: ``build(spec, runtime="jax", device="cuda")`` (the backbone lowered into JAX)
  vs torch eager, with its params placed once on the GPU.

``--dry-run`` runs the same logic on the CPU at tiny sizes (the test suite does). How to
prepare and launch it on a lent machine: ``benchmarks/gpu/README.md``.
"""

from benchmarks.gpu._common import DRY, FULL, Profile, profile
from benchmarks.gpu._report import to_markdown
from benchmarks.gpu._runner import BUDGET_S, OUTPUTS, PARTS, TIMEOUTS, run_part, run_parts

__all__ = [
    "BUDGET_S",
    "DRY",
    "FULL",
    "OUTPUTS",
    "PARTS",
    "TIMEOUTS",
    "Profile",
    "profile",
    "run_part",
    "run_parts",
    "to_markdown",
]
