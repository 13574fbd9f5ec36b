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

import argparse
import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from . import shards
from .data import Dataset, Preprocess
from .embed import EMBEDDINGS_FORMAT, EmbedError, spec_yaml
from .ray_workers import Embedder, decode_batch, load_error

#: DataContext() assigns its own deprecated fields in __init__ (ray 2.60), warning about each;
#: they are Ray's, not ours, and say nothing about our use, so these three alone are filtered
RAY_OWN_DEPRECATIONS = (
    r"`use_push_based_shuffle` is deprecated",
    r"`use_polars` is deprecated",
    r"`use_arrow_tensor_v2` is deprecated",
)
#: seconds between plain progress lines when stderr is not a terminal
PLAIN_PROGRESS_EVERY_S = 10.0


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


# ---------------------------------------------------------------------------------------------
# Ray: start or join, quietly
# ---------------------------------------------------------------------------------------------


def _ray() -> Any:
    try:
        import ray
        import ray.data  # registers ray.data on the ray module
    except ImportError as err:
        raise EmbedError(
            "--engine ray: Ray Data is not installed; install the 'distributed' extra "
            "(pip install 'fm-adapters[distributed]', or pip install 'ray[data]')"
        ) from err
    return ray


def data_context() -> Any:
    """Ray Data's current context, created without Ray's warnings about its own fields."""
    ray = _ray()
    with warnings.catch_warnings():
        for message in RAY_OWN_DEPRECATIONS:
            warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
        return ray.data.DataContext.get_current()


def start_ray(address: str | None = None, *, verbose: bool = False) -> bool:
    """Start a local Ray (``address`` None) or join the cluster at ``address``, unless this
    process is already connected; returns whether this call connected (and should shut down).

    Ray logs at ERROR unless ``verbose`` (then INFO, with the workers' output forwarded).
    """
    ray = _ray()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.INFO if verbose else logging.ERROR,
        "log_to_driver": verbose,
    }
    saved = os.environ.get("RAY_BACKEND_LOG_LEVEL")
    if not verbose and saved is None:
        # Ray's C++ core logs an ERROR line for every actor pool Ray Data starts ("constructor
        # arguments in the object store and max_restarts > 0", ray 2.60), about Ray's own
        # design; read once, when this process connects
        os.environ["RAY_BACKEND_LOG_LEVEL"] = "fatal"
    try:
        # "local": a new Ray here, even when 'ray start' left a cluster running on this machine
        ray.init(address=address or "local", **kwargs)
    except ConnectionError as err:
        raise EmbedError(
            f"--address: cannot join a Ray cluster at {address!r} ({err}); start one with "
            "'ray start --head' on the head node (Ray 2.60 clusters check a token: run with "
            "RAY_AUTH_MODE=token and the head's ~/.ray/auth_token), or drop --address for a "
            "local Ray"
        ) from err
    finally:
        if saved is None:
            os.environ.pop("RAY_BACKEND_LOG_LEVEL", None)
    return True


@contextlib.contextmanager
def _quiet(verbose: bool) -> Iterator[Any]:
    """Ray Data without its progress bars and INFO logs (ours replace them), unless verbose;
    the previous settings come back afterwards."""
    ctx = data_context()
    saved = {k: getattr(ctx, k) for k in ("enable_progress_bars", "print_on_execution_start")}
    loggers = [logging.getLogger(name) for name in ("ray", "ray.data")]
    levels = [lg.level for lg in loggers]
    if not verbose:
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
        for lg in loggers:
            lg.setLevel(logging.ERROR)
    try:
        yield ctx
    finally:
        for key, value in saved.items():
            setattr(ctx, key, value)
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


# ---------------------------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------------------------


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
    seed: int = 0,
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
    from .cli import build_backbone, resolve_spec
    from .data import load_dataset

    t0 = time.perf_counter()
    if gpus_per_worker < 0:
        raise EmbedError(f"--gpus-per-worker: expected a number >= 0, got {gpus_per_worker}")
    if num_workers is not None and (isinstance(num_workers, bool) or num_workers < 1):
        raise EmbedError(f"--num-workers: expected an integer >= 1, got {num_workers!r}")
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
                                 gpus_per_worker, spec_yaml(spec), build, kill_at)  # fmt: skip
                written, pooling = _gather(rows, ds, blocks, todo, out, job, progress)
    finally:
        if started:
            _ray().shutdown()
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
        "seconds": f"{time.perf_counter() - t0:.3f}",
    }
    extra = {"engine": "ray", "workers": workers, "gpus_per_worker": gpus_per_worker}
    shards.write_manifest(out, all_shards, job=job, metadata=metadata, extra=extra)
    return RayEmbedResult(
        out=out,
        rows=sum(s.rows for s in all_shards),
        shards=len(blocks),
        written=len(written),
        reused=len(done),
        seconds=time.perf_counter() - t0,
        startup_s=startup_s,
        workers=workers,
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
    bar = _Progress(sum(hi - lo for lo, hi in (blocks[k] for k in todo)), len(todo), progress)
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


def _pooling_of(out: Path, done: Mapping[int, shards.ShardInfo]) -> str:
    from safetensors import safe_open

    for info in done.values():
        with safe_open(str(out / info.file), framework="numpy") as f:
            return (f.metadata() or {}).get("pooling", "")
    return ""


def _skipped_of(out: Path, infos: Sequence[shards.ShardInfo]) -> list[str]:
    import json

    from safetensors import safe_open

    skipped: list[str] = []
    for info in sorted(infos, key=lambda s: s.index):
        with safe_open(str(out / info.file), framework="numpy") as f:
            skipped += json.loads((f.metadata() or {}).get("skipped", "[]"))
    return skipped


class _Progress:
    """One tqdm bar (rows/s, shards done) in a terminal; a plain line every
    `PLAIN_PROGRESS_EVERY_S` seconds otherwise; nothing when disabled."""

    def __init__(self, rows: int, shards_total: int, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.rows, self.shards, self.total, self.shards_total = 0, 0, rows, shards_total
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()
        self.t0 = self.last = time.perf_counter()
        self.bar = tqdm(total=rows, unit="row", desc="embed (ray)", disable=not self.tty)
        self.bar.set_postfix_str(f"shards 0/{shards_total}")

    def update(self, rows: int = 0, shards: int = 0) -> None:
        self.rows += rows
        self.shards += shards
        self.bar.update(rows)
        if shards:
            self.bar.set_postfix_str(f"shards {self.shards}/{self.shards_total}")
        now = time.perf_counter()
        if self.enabled and not self.tty and now - self.last >= PLAIN_PROGRESS_EVERY_S:
            self.last = now
            self._line(now)

    def _line(self, now: float) -> None:
        rate = self.rows / max(now - self.t0, 1e-9)
        print(
            f"embed (ray): {self.rows}/{self.total} rows, {self.shards}/{self.shards_total} "
            f"shards, {rate:.1f} rows/s",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        self.bar.close()
        if self.enabled and not self.tty:
            self._line(time.perf_counter())


# ---------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------


def cmd_embed_ray(args: argparse.Namespace) -> int:
    """``python -m adapters embed ... --engine ray``."""
    result = embed_on_ray(
        args.spec,
        args.data,
        args.out,
        labels=args.labels,
        limit=args.limit,
        batch_size=args.batch_size,
        strict=args.strict_images,
        runtime=args.runtime,
        image_size=args.image_size,
        mean=args.mean,
        std=args.std,
        address=args.address,
        num_workers=args.num_workers,
        gpus_per_worker=args.gpus_per_worker,
        verbose=args.verbose,
    )
    rate = result.rows / max(result.seconds, 1e-9)
    print(
        f"embedded {result.rows} images into {result.shards} shard(s) "
        f"({result.written} written, {result.reused} reused) with {result.workers} Ray "
        f"worker(s) in {result.seconds:.1f}s ({rate:.1f} img/s; Ray start {result.startup_s:.1f}s)",
        flush=True,
    )
    print(f"wrote {result.out}", flush=True)
    return 0
