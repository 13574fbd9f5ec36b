"""A local ``.safetensors`` checkpoint read one tensor at a time (for `low_memory`).

`checkpoint.read_state_dict` maps the whole file (``safetensors.torch.load_file``): casting
every tensor of a mapped file to a low dtype pages all of it in, and mapped pages count in the
resident set as long as the mapping lives. `open_lazy` instead opens the file with
safetensors' ``pread`` backend, which validates the header as ``load_file`` does (offsets,
sizes, the data covering the file), and gives the state as meta tensors (names, shapes,
dtypes, in ``load_file``'s order, the prefix stripped as `read_state_dict` strips it) plus a
``read(key)`` that reads that one tensor into memory. The file's digest is checked first, on
the file, as `read_state_dict` checks it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

from .checkpoint import check_path, file_sha256, local_file, open_regular, verify_sha256
from .errors import BuildError

#: safetensors' dtype names (``get_slice(k).get_dtype()``)
DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}

#: ``(state as meta tensors, read(key) -> the real tensor)``
Lazy = tuple[dict[str, torch.Tensor], Callable[[str], torch.Tensor]]


@contextlib.contextmanager
def open_lazy(
    path: str,
    *,
    sha256: str | None = None,
    prefix: str | None = None,
    field: str = "checkpoint_path",
) -> Iterator[Lazy | None]:
    """The checkpoint at ``path`` as a `Lazy` state while the block runs; None when it is not
    a local ``.safetensors`` file or holds a dtype outside `DTYPES` (read it eagerly then).

    Raises:
        BuildError: as `checkpoint.read_state_dict`: a missing or irregular file, a digest
            mismatch, or an invalid safetensors file.
    """
    from safetensors import SafetensorError, safe_open

    check_path(path, field)
    local = local_file(path)
    if local is None or not path.lower().endswith(".safetensors"):
        yield None
        return
    if sha256 is not None:
        verify_sha256(file_sha256(local, field), sha256, path)
    else:
        open_regular(local, field)[0].close()  # the precise error: missing, a FIFO, ...
    errors = (SafetensorError, OSError, ValueError, RuntimeError)
    try:
        handle = safe_open(local, framework="pt", device="cpu", backend="pread")
    except errors as err:
        raise BuildError(field, f"{path!r} is not a valid safetensors file: {err}") from err
    with handle as f:
        names = list(f.offset_keys())
        kinds = {k: f.get_slice(k).get_dtype() for k in names}
        if any(kind not in DTYPES for kind in kinds.values()):
            yield None
            return
        source: dict[str, str] = {}
        for k in names:
            source[k[len(prefix) :] if prefix and k.startswith(prefix) else k] = k
        meta = {
            key: torch.empty(f.get_slice(k).get_shape(), dtype=DTYPES[kinds[k]], device="meta")
            for key, k in source.items()
        }

        def read(key: str) -> torch.Tensor:
            try:
                return f.get_tensor(source[key])
            except errors as err:
                raise BuildError(field, f"{path!r} is not a valid safetensors file: {err}") from err

        yield meta, read
