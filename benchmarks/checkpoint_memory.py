"""Peak memory of building a spec with a ~1 GB checkpoint: read-whole (old) vs streamed + mmap.

The model is `WideMLP` (``Linear(8192, 16384)`` then ``Linear(16384, 8192)``, 268M float32
parameters, 1.07 GB), its checkpoint saved both as ``.safetensors`` and as a zip-format
``.pth``, with its sha256 given in the spec. Each case runs in a fresh Python process and
reports that process's peak resident set (``resource.getrusage`` ``ru_maxrss``):

- ``model only``: ``adapters.build`` of the spec without a checkpoint (imports + the model);
- ``old``: the same build, then the previous code path of ``adapters/_src/checkpoint.py``,
  reproduced here: read the whole file into bytes (fsspec), hash the bytes, deserialise from
  the bytes (``safetensors.torch.load`` / ``torch.load(BytesIO)``), copy into the model;
- ``new``: ``adapters.build`` of the spec with ``checkpoint_path`` and ``checkpoint_sha256``
  (hashed in 1 MiB chunks, then memory-mapped).

Figures are peak RSS minus the ``model only`` peak, in units of the file size: the old path
should be ~2 (the bytes, plus a deserialised copy), the new one ~1 (the mapped file's pages).
Both paths are checked to load the same weights. Results go to
``benchmarks/results/checkpoint_memory.json`` with ``os.getloadavg()``.

Run: ``python -m benchmarks.checkpoint_memory [--out PATH]`` (needs ~4 GB of RAM, ~2.2 GB of
temporary disk, a few minutes).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

IN, HIDDEN = 8192, 16384


class WideMLP(torch.nn.Sequential):
    """Two wide linear layers: 268M parameters, 1.07 GB in float32."""

    def __init__(self, width: int = IN, hidden: int = HIDDEN) -> None:
        super().__init__(torch.nn.Linear(width, hidden), torch.nn.Linear(hidden, width))


CHILD = """
import hashlib, io, json, resource, sys
import adapters, specs, torch

case, path, digest = sys.argv[1], sys.argv[2], sys.argv[3]
kind = "safetensors" if path.endswith(".safetensors") else "torch"
spec = specs.ModuleSpec(class_path="benchmarks.checkpoint_memory.WideMLP")
if case == "new":
    spec = specs.ModuleSpec(
        class_path="benchmarks.checkpoint_memory.WideMLP", checkpoint_path=path,
        checkpoint_sha256=digest,
    )
backbone = adapters.build(spec)
if case == "old":
    # the code path before streaming + mmap, step by step
    import fsspec
    from adapters._src.checkpoint import load_into, unwrap
    with fsspec.open(path, "rb") as f:
        data = f.read()
    assert hashlib.sha256(data).hexdigest() == digest
    if kind == "safetensors":
        from safetensors.torch import load
        state = load(data)
    else:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    load_into(backbone.module, unwrap(state, path), path=path)
    del data, state
probe = float(backbone.params["0.weight"][1, 2]) + float(backbone.params["1.bias"][3])
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak_bytes": peak_kib * 1024, "probe": probe}))
"""


def _child(case: str, path: Path, digest: str) -> dict[str, Any]:
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, case, str(path), digest],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=1800,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _write(where: Path) -> dict[str, tuple[Path, str]]:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in WideMLP().state_dict().items()}
    files = {"safetensors": where / "wide.safetensors", "pth": where / "wide.pth"}
    save_file(state, str(files["safetensors"]))
    torch.save(state, files["pth"])
    del state
    out = {}
    for kind, path in files.items():
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda handle=handle: handle.read(1 << 20), b""):
                digest.update(chunk)
        out[kind] = (path, digest.hexdigest())
    return out


def run(quick: bool = True) -> list[dict[str, Any]]:
    """One row per checkpoint format: peak RSS of old and new, over the model-only peak."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="fm-ckpt-mem-") as tmp:
        files = _write(Path(tmp))
        for kind, (path, digest) in files.items():
            size = path.stat().st_size
            base = _child("model", path, digest)
            old = _child("old", path, digest)
            new = _child("new", path, digest)
            assert abs(old["probe"] - new["probe"]) == 0.0, (old, new)
            rows.append(
                {
                    "suite": "checkpoint_memory",
                    "case": f"{kind} {size / 1e9:.2f} GB",
                    "file_bytes": size,
                    "model_only_peak_bytes": base["peak_bytes"],
                    "old_peak_bytes": old["peak_bytes"],
                    "new_peak_bytes": new["peak_bytes"],
                    "old_extra_over_file": (old["peak_bytes"] - base["peak_bytes"]) / size,
                    "new_extra_over_file": (new["peak_bytes"] - base["peak_bytes"]) / size,
                    "ratio": new["peak_bytes"] / old["peak_bytes"],
                    "loadavg": os.getloadavg(),
                }
            )
    return rows


def main(argv: list[str]) -> None:
    rows = run()
    for r in rows:
        print(
            f"{r['case']:22} model {r['model_only_peak_bytes'] / 1e9:5.2f} GB  "
            f"old {r['old_peak_bytes'] / 1e9:5.2f} GB (+{r['old_extra_over_file']:.2f} x file)  "
            f"new {r['new_peak_bytes'] / 1e9:5.2f} GB (+{r['new_extra_over_file']:.2f} x file)  "
            f"load {r['loadavg'][0]:.1f}"
        )
    if "--out" in argv:
        out = Path(argv[argv.index("--out") + 1])
        out.write_text(json.dumps({"cpu_count": os.cpu_count(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
