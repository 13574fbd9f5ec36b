"""The Ray Data side of ``embed --engine ray`` (see `engine`): the blocks still to do as one
row per loader batch, through the decode tasks and the backbone actors (`workers`), gathered
on the driver into one shard file per block."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...preprocess import Preprocess
from ..data.datasets import Dataset
from ..progress import Progress
from . import shards
from .setup import ray_module
from .workers import Embedder, decode_batch, load_error


def default_workers(gpus_per_worker: float) -> int:
    """Actors for the cluster: one per ``gpus_per_worker`` GPUs, else half the CPUs (the
    other half decodes)."""
    resources = ray_module().cluster_resources()
    if gpus_per_worker > 0:
        return max(1, int(resources.get("GPU", 0) // gpus_per_worker))
    return max(1, int(resources.get("CPU", 1)) // 2)


def pipeline(
    ds: Dataset,
    blocks: Sequence[tuple[int, int]],
    todo: Sequence[int],
    pre: Preprocess,
    strict: bool,
    batch_size: int,
    workers: int,
    gpus_per_worker: float,
    spec_text: str,
    build: Mapping[str, Any],
    kill_at: tuple[int, str] | None,
) -> Any:
    """The Ray Data dataset of embedded batches (one row per loader batch of ``todo``)."""
    ray = ray_module()
    items = []
    for k in todo:
        lo, hi = blocks[k]
        for b_lo in range(lo, hi, batch_size):
            b_hi = min(b_lo + batch_size, hi)
            item: dict[str, Any] = {"shard": k, "lo": b_lo, "ids": list(ds.ids[b_lo:b_hi])}
            if ds.images is not None:
                item["images"] = ds.images[b_lo:b_hi]
            else:
                item["paths"] = [str(p) for p in ds.paths[b_lo:b_hi]]  # type: ignore[index]
            items.append(item)
    device = "cuda" if gpus_per_worker > 0 else "cpu"
    return (
        ray.data.from_items(items, override_num_blocks=len(items))
        .map(decode_batch, fn_kwargs={"preprocess": pre.as_dict(), "strict": strict})
        .map_batches(
            Embedder,
            fn_constructor_kwargs={
                "spec_yaml": spec_text,
                "build": dict(build),
                "device": device,
                "kill_at": kill_at,
            },
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
            num_gpus=gpus_per_worker or None,
        )
    )


def gather(
    rows: Any,
    ds: Dataset,
    blocks: Sequence[tuple[int, int]],
    todo: Sequence[int],
    out: Path,
    job: Mapping[str, Any],
    progress: bool,
) -> tuple[dict[int, shards.ShardInfo], str]:
    """Collect the embedded batches of each block; write a block's shard once it is whole.

    Returns:
        The shards written (block index -> info) and the pooling the actors reported.
    """
    expected = {k: len(range(*blocks[k], job["batch_size"])) for k in todo}
    pending: dict[int, dict[int, tuple[np.ndarray, np.ndarray, list[str]]]] = {k: {} for k in todo}
    written: dict[int, shards.ShardInfo] = {}
    pooling = ""
    rows_todo = sum(hi - lo for lo, hi in (blocks[k] for k in todo))
    bar = Progress(
        rows_todo, desc="embed (ray)", noun="rows", unit="rows", shards=len(todo), enabled=progress
    )
    try:
        for row in rows.iter_rows():
            if len(row["error"]):
                raise load_error(row["error"])
            k, lo = int(row["shard"]), int(row["lo"])
            if k in written or lo in pending[k]:
                continue  # a retried batch that had already arrived: keep the first
            emb = np.asarray(row["emb"], dtype=np.float32)
            pos = np.asarray(row["pos"], dtype=np.int64)
            pending[k][lo] = (emb, pos, json.loads(row["skipped"]))
            pooling = row["pooling"] or pooling
            bar.update(len(pos) + len(pending[k][lo][2]))
            if len(pending[k]) == expected[k]:
                written[k] = _write_block(out, k, blocks[k], pending.pop(k), ds, job, pooling)
                bar.update(shards=1)
    except BaseException:
        bar.close(line=False)  # the error (or "interrupted") is the last word
        raise
    bar.close()
    return written, pooling


def _write_block(
    out: Path,
    k: int,
    block: tuple[int, int],
    batches: Mapping[int, tuple[np.ndarray, np.ndarray, list[str]]],
    ds: Dataset,
    job: Mapping[str, Any],
    pooling: str,
) -> shards.ShardInfo:
    parts = [batches[lo] for lo in sorted(batches)]
    pos = np.concatenate([p[1] for p in parts])
    with_rows = [p[0] for p in parts if len(p[1])]
    emb = np.concatenate(with_rows) if with_rows else np.zeros((0, 0), np.float32)
    return shards.write_shard(
        out,
        k,
        block,
        embeddings=emb,
        labels=ds.labels[pos],
        ids=ds.index[pos],
        items=[ds.ids[i] for i in pos],
        skipped=[s for p in parts for s in p[2]],
        pooling=pooling,
        job=job,
    )
