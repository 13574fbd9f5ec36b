"""`choose`: ``runtime="auto"``'s build, a cached choice read back or measured and cached."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import attrs
import torch

from ...adapter import Adapter
from ..cache_entry import CacheWarning, remove, root_source
from ..cache_key import params_digest
from ..inputs import default_example
from ..table import RUNTIMES, runtime_module
from .cache import CHOICE_FILE, choice_key, default_cache_dir, load_choice, save_choice
from .measure import measure


def choose(
    adapter: Adapter,
    example_input: Any,
    *,
    batch_size: int,
    budget_s: float,
    cache_dir: str | os.PathLike[str] | None,
    use_cache: bool,
) -> Adapter:
    """`auto.convert` once its options are checked."""
    if adapter.framework != "torch" or not isinstance(adapter.module, torch.nn.Module):
        why = f"{adapter.framework} backbones run as their source built them"
        record = {"runtime": adapter.framework, "why": why}
        return attrs.evolve(adapter, info={**adapter.info, "auto": record})
    example = default_example(adapter, example_input, "runtime='auto'")
    device = str(adapter.info.get("device") or "cpu")
    names = candidates()
    weights = params_digest(adapter.params)
    key = choice_key(adapter, example, device, names, weights, batch_size)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    entry = root / key[:32]
    where = {"choice_path": str(entry / CHOICE_FILE)}
    record = load_choice(entry, key, weights, names) if use_cache else None
    if record is not None:
        try:
            served = runtime_module(record["runtime"]).convert(adapter, example)
        except Exception as err:  # its own cache gone and the rebuild failing: measure again
            warn_rebuilt(record["runtime"], err, entry)
            remove(entry)
        else:
            return _labelled(served, {**record, "cache": "hit", **where})
    served, record = measure(adapter, example, names, device, batch_size, budget_s)
    if not use_cache:
        return _labelled(served, {**record, "cache": "off: use_cache=False"})
    why_not = save_choice(entry, key, weights, record, root_source(cache_dir))
    if why_not is not None:
        return _labelled(served, {**record, "cache": f"off: {why_not}"})
    return _labelled(served, {**record, "cache": "miss", **where})


def _labelled(served: Adapter, record: dict[str, Any]) -> Adapter:
    """``served`` with ``info["runtime"]`` naming the choice and ``info["auto"]`` its record."""
    info = {**served.info, "runtime": record["runtime"], "auto": record}
    return attrs.evolve(served, info=info)


def candidates() -> tuple[str, ...]:
    """The runtimes ``auto`` chooses from: every other runtime of the table, torch first."""
    return tuple(name for name in RUNTIMES if name != "auto")


def warn_rebuilt(runtime: str, err: BaseException, entry: Path) -> None:
    """A cached choice whose runtime no longer builds: said, and measured again."""
    warnings.warn(
        f"runtime='auto': the cached choice {runtime!r} ({str(entry)!r}) does not build any "
        f"more ({type(err).__name__}: {str(err).strip()[:200]}); measuring the runtimes again.",
        CacheWarning,
        stacklevel=4,
    )
