"""``embed --engine ray``: the single-process embed as a Ray Data job, sharded and resumable.

The driver loads the dataset (the project's own readers), resolves the preprocessing (building
the backbone once on its CPU, unless given one), and cuts the dataset into blocks of
``shard_batches`` loader batches (`shards.plan_blocks`). Blocks whose shard file already
exists (same job) are skipped. The rest flow through Ray Data, one row per loader batch:

1. a ``map`` task decodes and preprocesses the batch with the loader's own code
   (``data._make_batch``: the same images, skipped files and tensors as one process);
2. a ``map_batches`` actor pool (``ActorPoolStrategy``) runs the backbone: each actor builds
   its adapter once from the spec's YAML (specs are data; nothing framework-specific is
   pickled), on ``cuda`` when it holds GPUs, and pools the output like `embed_dataset`;
3. the driver gathers each block's batches and writes its shard atomically, then the
   manifest last.

Ray fuses (1) into (2) when both ask for the same resources (CPU-only workers), which saves
shipping the float32 batches through the object store; with GPU workers decoding stays in CPU
tasks that feed the GPUs. A killed actor is restarted by Ray and its batch retried; the driver
keeps one result per batch, so the output has no duplicate or missing rows. An error that is
the user's to fix (the backbone cannot be built on a worker, an unreadable image with
``strict``) comes back as data and is raised on the driver as the original exception, which
stops the job at once; Ray's own logs stay quiet unless ``verbose``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from ..preprocess import Preprocess
from . import shards
from .data import Dataset
from .embed import EMBEDDINGS_FORMAT, EmbedError, spec_yaml
from .ray_setup import Progress, _quiet, _ray, start_ray
from .ray_workers import Embedder, decode_batch, load_error


@attrs.frozen
class RayEmbedResult:
    """What a run did: ``rows`` embedded in total, ``written`` / ``reused`` shard counts,
    ``seconds`` of the whole call and ``startup_s`` spent starting or joining Ray."""

    out: Path
    rows: int
    shards: int
    written: int
    reused: int
    seconds: float
    startup_s: float
    workers: int


def embed_on_ray(
    spec: Any,
    data: str | Dataset,
    out: str | os.PathLike[str],
    *,
    labels: str | None = None,
    limit: int | None = None,
    batch_size: int = 64,
    strict: bool = False,
    runtime: str = "torch",
    image_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    seed: int | None = None,
    preprocess: Preprocess | None = None,
    address: str | None = None,
    num_workers: int | None = None,
    gpus_per_worker: float = 0,
    shard_batches: int = 16,
    verbose: bool = False,
    progress: bool = True,
    kill_at: tuple[int, str] | None = None,
) -> RayEmbedResult:
    """Embed ``data`` with ``spec`` on Ray Data into the shard directory ``out``.

    The result equals `embed_dataset`'s bit for bit (same rows in the same order, read back
    with `shards.load_sharded` / ``embed.load_embeddings``). Rerunning the same call reuses
    the complete shards; a different job refuses to write into ``out``.

    Args:
        spec: a spec record, a spec file path or a registry name.
        data: what `data.load_dataset` takes (``labels``, ``limit`` as there), or a `Dataset`.
        preprocess: the backbone's preprocessing; default: resolved by building the backbone
            once on the driver's CPU (which also fails a bad spec before Ray starts).
        address: a Ray cluster to join (``ray start --head`` prints it); None starts a local
            Ray with every core of this machine, unless this process already runs Ray.
        num_workers: actors in the pool; default one per ``gpus_per_worker`` GPUs of the
            cluster, or half its CPUs (the other half decodes) without GPUs.
        gpus_per_worker: GPUs each actor holds (its backbone then runs on ``cuda``).
        shard_batches: loader batches per shard file.
        verbose: Ray's own INFO logs, progress bars and worker output.
        progress: our progress bar (a terminal) or a plain line every 10 s (not a terminal).
        kill_at: test hook, see `Embedder`.

    Raises:
        EmbedError: bad arguments, an ``out`` holding another job, no readable images.
        The builder's own error (e.g. `adapters.BuildError`, ``specs.SpecError``) when an
        actor cannot build the backbone; `data.UnreadableImageError` with ``strict``.
    """
    from .backbone import build_backbone, resolve_spec
    from .data import load_dataset

    t0 = time.perf_counter()
    _check_workers(num_workers, gpus_per_worker)
    spec = resolve_spec(spec) if isinstance(spec, str) else spec
    ds = data if isinstance(data, Dataset) else load_dataset(data, labels=labels, limit=limit)
    build = {"runtime": runtime, "image_size": image_size, "mean": mean, "std": std, "seed": seed}
    shown_spec = spec_yaml(spec)
    if preprocess is None:
        backbone, preprocess = build_backbone(spec, **{**build, "runtime": "torch"}, device="cpu")
        shown_spec = spec_yaml(backbone.spec)
        del backbone
    blocks = shards.plan_blocks(len(ds), batch_size, shard_batches)
    job = shards.job_identity(
        spec_yaml=spec_yaml(spec),
        preprocess=preprocess.as_dict(),
        data=ds.name,
        ids=ds.ids,
        index=ds.index,
        batch_size=batch_size,
        shard_batches=shard_batches,
        runtime=runtime,
    )
    out = Path(out)
    done = shards.prepare_dir(out, job)
    todo = [k for k in range(len(blocks)) if k not in done]
    t_ray = time.perf_counter()
    started = start_ray(address, verbose=verbose) if todo else False
    startup_s = time.perf_counter() - t_ray
    workers = 0
    try:
        written: dict[int, shards.ShardInfo] = {}
        pooling = _pooling_of(out, done)
        if todo:
            batches = sum(len(range(*blocks[k], batch_size)) for k in todo)
            # more actors than batches would idle (and Ray Data warns about it)
            workers = min(num_workers or _default_workers(gpus_per_worker), batches)
            with _quiet(verbose):
                rows = _pipeline(ds, blocks, todo, preprocess, strict, batch_size, workers,
                                 gpus_per_worker, spec_yaml(spec, redact=False), build, kill_at)  # fmt: skip
                written, pooling = _gather(rows, ds, blocks, todo, out, job, progress)
    finally:
        if started:
            _ray().shutdown()
    return _finish(
        out, ds, job, preprocess, shown_spec, pooling, (done, written), len(blocks),
        {"t0": t0, "startup_s": startup_s, "workers": workers, "gpus": gpus_per_worker},
    )  # fmt: skip


def _check_workers(num_workers: int | None, gpus_per_worker: float) -> None:
    if gpus_per_worker < 0:
        raise EmbedError(f"--gpus-per-worker: expected a number >= 0, got {gpus_per_worker}")
    if num_workers is not None and (isinstance(num_workers, bool) or num_workers < 1):
        raise EmbedError(f"--num-workers: expected an integer >= 1, got {num_workers!r}")


def _finish(
    out: Path,
    ds: Dataset,
    job: Mapping[str, Any],
    preprocess: Preprocess,
    shown_spec: str,
    pooling: str,
    parts: tuple[Mapping[int, shards.ShardInfo], Mapping[int, shards.ShardInfo]],
    n_blocks: int,
    run: Mapping[str, Any],
) -> RayEmbedResult:
    """Write the manifest (last) over the reused and the written shards; the run's result."""
    done, written = parts
    all_shards = [*done.values(), *written.values()]
    if not sum(s.rows for s in all_shards):
        raise EmbedError(f"--data: no readable images in {ds.name!r}")
    metadata = {
        "format": EMBEDDINGS_FORMAT,
        "spec": shown_spec,
        "data": ds.name,
        "preprocess": _json(preprocess.as_dict()),
        "pooling": pooling,
        "class_names": _json(list(ds.class_names)),
        "skipped": _json(_skipped_of(out, all_shards)),
        "seconds": f"{time.perf_counter() - run['t0']:.3f}",
    }
    extra = {"engine": "ray", "workers": run["workers"], "gpus_per_worker": run["gpus"]}
    shards.write_manifest(out, all_shards, job=job, metadata=metadata, extra=extra)
    return RayEmbedResult(
        out=out,
        rows=sum(s.rows for s in all_shards),
        shards=n_blocks,
        written=len(written),
        reused=len(done),
        seconds=time.perf_counter() - run["t0"],
        startup_s=run["startup_s"],
        workers=run["workers"],
    )


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


def _default_workers(gpus_per_worker: float) -> int:
    resources = _ray().cluster_resources()
    if gpus_per_worker > 0:
        return max(1, int(resources.get("GPU", 0) // gpus_per_worker))
    return max(1, int(resources.get("CPU", 1)) // 2)


def _pipeline(
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
    ray = _ray()
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


def _gather(
    rows: Any,
    ds: Dataset,
    blocks: Sequence[tuple[int, int]],
    todo: Sequence[int],
    out: Path,
    job: Mapping[str, Any],
    progress: bool,
) -> tuple[dict[int, shards.ShardInfo], str]:
    """Collect the embedded batches of each block; write a block's shard once it is whole."""
    import json

    expected = {k: len(range(*blocks[k], job["batch_size"])) for k in todo}
    pending: dict[int, dict[int, tuple[np.ndarray, np.ndarray, list[str]]]] = {k: {} for k in todo}
    written: dict[int, shards.ShardInfo] = {}
    pooling = ""
    bar = Progress(sum(hi - lo for lo, hi in (blocks[k] for k in todo)), len(todo), progress)
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
            bar.update(rows=len(pos) + len(pending[k][lo][2]))
            if len(pending[k]) == expected[k]:
                written[k] = _write_block(out, k, blocks[k], pending.pop(k), ds, job, pooling)
                bar.update(shards=1)
    finally:
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


def _shard_meta(out: Path, info: shards.ShardInfo) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(out / info.file), framework="numpy") as f:
        return f.metadata() or {}


def _pooling_of(out: Path, done: Mapping[int, shards.ShardInfo]) -> str:
    return next((_shard_meta(out, info).get("pooling", "") for info in done.values()), "")


def _skipped_of(out: Path, infos: Sequence[shards.ShardInfo]) -> list[str]:
    ordered = sorted(infos, key=lambda s: s.index)
    return [n for i in ordered for n in json.loads(_shard_meta(out, i).get("skipped", "[]"))]
