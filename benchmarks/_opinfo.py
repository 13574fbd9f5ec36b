"""One OpInfo sample through ``interop.lower`` and back: the verdict the conformance table records.

An OpInfo entry of torch's ``op_db`` is a callable and a generator of sample inputs
(``SampleInput(input, args, kwargs)``). A sample becomes an ``nn.Module`` whose ``forward``
takes the sample's tensors (wherever they sit in ``input``/``args``/``kwargs``) as inputs and
closes over everything else, so no tensor is baked into the graph as a constant. It is lowered
with ``interop.lower(module, tensors, dynamic_batch=False)``, run under ``jax.jit`` and every
output leaf compared with torch eager on the same sample.

Verdicts of one sample, worst first (an entry's verdict is the worst of its samples):

- ``crash``: anything but a ``LoweringError`` raised by ``lower``, ``jax.jit`` or the run.
- ``mismatch``: a shape, dtype or value differs beyond the dtype's tolerance (the reason gives
  how many values and the max abs / rel error), and, in low precision, some value of the
  lowering is farther from the float64 result than torch's own low-precision kernel's (plus
  the tolerance).
- ``timeout``: the sample ran past its time budget (set by the sweep's driver).
- ``refused``: a ``LoweringError`` naming the ops outside the table (``missing``).
- ``match``: every output leaf within tolerance (``reason`` says when it matched by the float64
  arbitration instead). Outputs defined only up to sign, phase or order (singular vectors,
  eigenvectors: ``_opinfo_gauge.GAUGE``) are compared by the part of them that is defined.
- ``not_capturable``: ``torch.export`` itself could not capture the sample (``lower`` reports
  it as a ``LoweringError`` saying that torch.export failed).
- ``skipped``: torch could not run the sample eagerly (or ran it twice with different results:
  a random op missing from the exclusion list), or the harness could not convert or compare.

Warnings raised while a sample runs are not verdicts and are silenced for its duration.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import jax
import ml_dtypes
import numpy as np
import torch
from torch.utils import _pytree as tpytree

import interop
from benchmarks._opinfo_gauge import GAUGE, defined_part
from benchmarks.conformance_exclusions import STATISTICAL

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: (rtol, atol): float32 at torchax's bar; low precision at torch.testing's defaults
TOLERANCE = {
    torch.float32: (1e-5, 1e-3),
    torch.bfloat16: (1.6e-2, 1e-5),
    torch.float16: (1e-3, 1e-5),
}
ORDER = (
    "crash",
    "mismatch",
    "timeout",
    "refused",
    "match",
    "not_capturable",
    "skipped",
    "excluded",
)
#: verdicts of the entries torch.export can capture: the denominator of "percent matching"
CAPTURABLE = ("match", "mismatch", "refused", "crash", "timeout")
_MISSING = re.compile(r"^\s+- (.+?), used in ", re.MULTILINE)
_NOT_CAPTURED = re.compile(r"torch\.export(\.export)? failed")


def entry_key(op: Any) -> str:
    """``"name"``, or ``"name[variant]"`` for a named variant: the table's key of an entry."""
    return f"{op.name}[{op.variant_test_name}]" if op.variant_test_name else op.name


def entries() -> dict[str, Any]:
    """Every ``op_db`` entry by its key (importing ``op_db`` needs ``expecttest``)."""
    from torch.testing._internal.common_methods_invocations import op_db

    return {entry_key(op): op for op in op_db}


def cpu_dtypes(op: Any) -> list[str]:
    """The names in ``DTYPES`` that torch supports on the CPU for ``op``, in ``DTYPES`` order."""
    supported = op.supported_dtypes("cpu")
    return [name for name, dtype in DTYPES.items() if dtype in supported]


def samples(op: Any, dtype: torch.dtype, n: int) -> list[Any]:
    """The first ``n`` CPU samples of ``op`` in ``dtype``, drawn after seeding torch with 0."""
    out: list[Any] = []
    with torch.random.fork_rng(devices=[]):  # the caller's global generator is left as it was
        torch.manual_seed(0)
        generator = iter(op.sample_inputs("cpu", dtype, requires_grad=False))
        try:
            for sample in generator:
                out.append(sample)
                if len(out) == n:
                    break
        finally:
            # now, not whenever the garbage collector gets to it: a generator left open exits
            # its no_grad context at that moment, e.g. inside the next torch.export trace
            getattr(generator, "close", lambda: None)()
    return out


class _Call(torch.nn.Module):
    """``forward(*tensors)`` calls ``fn(input, *args, **kwargs)`` with the tensors put back."""

    def __init__(self, fn: Callable, leaves: list, spec: Any, slots: list[int]) -> None:
        super().__init__()
        self.fn, self.leaves, self.spec, self.slots = fn, leaves, spec, slots

    def forward(self, *tensors: torch.Tensor) -> Any:
        leaves = list(self.leaves)
        for slot, t in zip(self.slots, tensors, strict=True):
            leaves[slot] = t
        inp, args, kwargs = tpytree.tree_unflatten(leaves, self.spec)
        return self.fn(inp, *args, **kwargs)


def wrap(fn: Callable, sample: Any) -> tuple[torch.nn.Module, tuple[torch.Tensor, ...]]:
    """The module calling ``fn`` on ``sample`` and its tensor inputs (cloned: ops may mutate)."""
    leaves, spec = tpytree.tree_flatten((sample.input, sample.args, sample.kwargs))
    slots = [i for i, leaf in enumerate(leaves) if isinstance(leaf, torch.Tensor)]
    tensors = tuple(leaves[i].detach().clone() for i in slots)
    consts = [None if i in slots else leaf for i, leaf in enumerate(leaves)]
    return _Call(fn, consts, spec, slots), tensors


def _numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().resolve_conj().resolve_neg().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    if t.dtype == torch.complex32:
        t = t.to(torch.complex64)
    return t.numpy()


def _canonical(dtype: np.dtype) -> np.dtype:
    """The dtype JAX gives ``dtype`` here: 64-bit narrowed unless ``jax_enable_x64``."""
    return np.dtype(jax.dtypes.canonicalize_dtype(dtype))


def to_jax(t: torch.Tensor) -> jax.Array:
    """A copy of ``t`` as JAX would hold it (64-bit narrowed as ``lower``'s inputs are)."""
    a = _numpy(t)
    narrow = _canonical(a.dtype)
    if narrow != a.dtype and a.dtype.kind in "iu" and a.size:
        info = np.iinfo(narrow)
        if a.min() < info.min or a.max() > info.max:
            raise OverflowError(f"an {a.dtype} input does not fit {narrow} (jax_enable_x64 is off)")
    return jax.numpy.asarray(a.astype(narrow))


def _flat(tree: Any) -> list[Any]:
    """Leaves of tuples/lists/dicts (torch's ``return_types`` are tuples), in order."""
    if isinstance(tree, (tuple, list)):
        return [leaf for item in tree for leaf in _flat(item)]
    if isinstance(tree, dict):
        return [leaf for key in tree for leaf in _flat(tree[key])]
    return [tree]


def _as_float(a: np.ndarray) -> np.ndarray:
    return a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)


def compare(ours: Any, want: Any, rtol: float, atol: float) -> str | None:
    """Why ``ours`` (a JAX output leaf) is not ``want`` (torch's), or None when it matches.

    ``|ours - want| <= atol + rtol * |want|`` elementwise, NaNs equal to NaNs (torch.testing's
    rule); integers and booleans exactly; dtypes must be torch's, 64-bit narrowed without x64.
    """
    if not isinstance(want, torch.Tensor):
        same = ours is None if want is None else np.shape(ours) == () and ours == want
        return None if same else f"output {ours!r}, torch {want!r}"
    w = _numpy(want)
    o = np.asarray(ours)
    if o.shape != w.shape:
        return f"shape {o.shape}, torch {tuple(w.shape)}"
    if o.dtype != _canonical(w.dtype):
        return f"dtype {o.dtype}, torch {want.dtype}"
    if not (want.dtype.is_floating_point or want.dtype.is_complex):  # (bfloat16 is no np.inexact)
        bad = int((o != w).sum())
        return f"{bad} of {w.size} values differ" if bad else None
    o, w = _as_float(o), _as_float(w)
    if np.array_equal(o, w, equal_nan=True):
        return None
    diff = np.abs(o - w)
    same = (o == w) | (np.isnan(o) & np.isnan(w))
    bad = ~same & ~(diff <= atol + rtol * np.abs(w))
    if not bad.any():
        return None
    rel = diff / np.maximum(np.abs(w), np.finfo(np.float64).tiny)
    return (
        f"{int(bad.sum())} of {w.size} values differ, max abs {np.nanmax(np.where(bad, diff, 0)):.3g}, "
        f"max rel {np.nanmax(np.where(bad, rel, 0)):.3g}"
    )


def _same(a: list, b: list) -> bool:
    """Two torch runs gave the same leaves (NaNs equal), so the op is deterministic here."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            if x.layout != torch.strided or y.layout != torch.strided:
                continue  # compared (or not) later
            if x.shape != y.shape or not np.array_equal(_numpy(x), _numpy(y), equal_nan=True):
                return False
        elif type(x) is not type(y) or (x != y and x == x):
            return False
    return True


def parse_refusal(message: str) -> tuple[str, list[str]]:
    """``(verdict, missing ops)`` of a ``LoweringError`` message."""
    if _NOT_CAPTURED.search(message):
        return "not_capturable", []
    return "refused", sorted(set(_MISSING.findall(message)))


def lowering_reason(message: str) -> str:
    """A ``LoweringError`` message on one line, without its heading and its alternatives."""
    lines = [line.strip() for line in message.strip().splitlines()]
    lines = [line for line in lines if line and not line.startswith("Alternatives:")]
    text = " ".join(lines)
    return re.sub(r"^cannot lower \S+ to JAX:\s*", "", text)[:300]


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"[:300]


def run_sample(op: Any, sample: Any, dtype: torch.dtype) -> dict[str, Any]:
    """The verdict of one sample: ``{"verdict", "reason", "missing"}`` (see the module); an
    entry listed ``STATISTICAL`` is compared by distribution (``_opinfo_random``)."""
    stat = STATISTICAL.get(entry_key(op)) if hasattr(op, "variant_test_name") else None
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")
        try:
            if stat is not None:
                from benchmarks import _opinfo_random  # it builds on this module

                return _opinfo_random.run(op, sample, dtype, stat)
            return _run(op, sample, dtype)
        except Exception as err:  # the harness's own comparison failed: not the lowering's
            return {"verdict": "skipped", "reason": f"harness: {first_line(err)}"}


def _run(op: Any, sample: Any, dtype: torch.dtype) -> dict[str, Any]:
    module, tensors = wrap(op.op, sample)
    try:
        with torch.no_grad():
            raw = module(*(t.clone() for t in tensors))
            want = _flat(raw)
        torch.manual_seed(1)
        with torch.no_grad():
            again = _flat(module(*(t.clone() for t in tensors)))
    except Exception as err:  # torch itself cannot run it: nothing to compare with
        return {"verdict": "skipped", "reason": f"torch eager: {first_line(err)}"}
    if not _same(want, again):
        why = "torch eager differs from itself on this sample: list it in conformance_exclusions"
        return {"verdict": "skipped", "reason": why}
    inputs = tuple(to_jax(t) for t in tensors)
    try:
        forward, params = interop.lower(module, tensors, dynamic_batch=False)
        got = _flat(jax.jit(forward)(params, inputs))
        got = [np.asarray(g) if isinstance(g, jax.Array) else g for g in got]
    except interop.LoweringError as err:
        verdict, missing = parse_refusal(str(err))
        return {"verdict": verdict, "reason": lowering_reason(str(err)), "missing": missing}
    except Exception as err:
        return {"verdict": "crash", "reason": first_line(err)}
    if len(got) != len(want):
        return {"verdict": "mismatch", "reason": f"{len(got)} outputs, torch {len(want)}"}
    key = entry_key(op) if hasattr(op, "name") else None
    if key in GAUGE:
        want, got = defined_part(key, sample, raw, got)
    rtol, atol = TOLERANCE[dtype]
    notes = []
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        why = compare(g, w, rtol, atol)
        if why is None:
            continue
        low = dtype != torch.float32 and not why.startswith(("shape", "dtype"))
        arbitrated = arbitrate(op, sample, dtype, i, g, w) if low else ""
        if not arbitrated:
            return {"verdict": "mismatch", "reason": f"output {i}: {why}"}
        notes.append(f"output {i}: {arbitrated}" if len(want) > 1 else arbitrated)
    return {"verdict": "match", "reason": "; ".join(notes)}


def _error(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``|a - ref|``, 0 where they are equal (an infinity equal to the reference's is exact)."""
    a = _as_float(a)
    with np.errstate(invalid="ignore"):
        return np.where(a == ref, 0.0, np.abs(a - ref))


def arbitrate(op: Any, sample: Any, dtype: torch.dtype, i: int, ours: Any, want: Any) -> str:
    """A reason when ``ours`` is at least as near the float64 result as torch's ``want``."""
    wide = torch.float64 if torch.float64 in op.supported_dtypes("cpu") else torch.float32
    upcast = tpytree.tree_map_only(
        torch.Tensor,
        lambda t: t.to(wide) if t.dtype == dtype else t.clone(),
        (sample.input, sample.args, sample.kwargs),
    )
    try:
        with torch.no_grad():
            refs = _flat(op.op(upcast[0], *upcast[1], **upcast[2]))
    except Exception:  # no wide reference: torch's low-precision result stands
        return ""
    if len(refs) <= i or not isinstance(refs[i], torch.Tensor):
        return ""
    ref = _as_float(_numpy(refs[i]))
    if ref.shape != np.shape(ours):
        return ""
    rtol, atol = TOLERANCE[dtype]
    err_ours, err_torch = _error(np.asarray(ours), ref), _error(_numpy(want), ref)
    # a NaN where the wide result is a number is torch's kernel failing (matrix_exp in
    # bfloat16 overflows inside its Pade step): as far from the wide result as can be
    err_torch = np.where(np.isnan(err_torch) & ~np.isnan(ref), np.inf, err_torch)
    ok = (err_ours <= err_torch + atol + rtol * np.abs(ref)) | np.isnan(ref)
    if not ok.all():
        return ""
    name = str(wide).removeprefix("torch.")
    return (
        f"as near {name} as torch's {str(dtype).removeprefix('torch.')} kernel, within "
        f"tolerance: max error vs {name} {np.nanmax(err_ours, initial=0):.3g}, "
        f"torch's {np.nanmax(err_torch, initial=0):.3g}"
    )


def combine(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One entry x dtype's verdict from its samples': the worst, the missing ops of all."""
    if not results:
        return {"verdict": "skipped", "reason": "no CPU samples", "missing": []}
    worst = min(results, key=lambda r: ORDER.index(r["verdict"]))
    missing = sorted({m for r in results for m in r.get("missing", ())})
    return {**worst, "missing": missing, "samples": [r["verdict"] for r in results]}


def run_samples(
    op: Any, picked: list[Any], dtype_name: str, skip: tuple[int, ...] = ()
) -> Iterator[dict[str, Any]]:
    """Each sample's verdict in turn; samples whose index is in ``skip`` are ``excluded``."""
    for i, sample in enumerate(picked):
        if i in skip:
            yield {"verdict": "excluded", "reason": "an excluded sample"}
        else:
            yield run_sample(op, sample, DTYPES[dtype_name])
