"""``embed --engine ray``: the single-process embed as a Ray Data job, sharded and resumable.

The driver loads the dataset (the project's own readers), resolves the preprocessing (building
the backbone once on its CPU, unless given one), and cuts the dataset into blocks of
``shard_batches`` loader batches (`shards.plan_blocks`). Blocks whose shard file already
exists (same job) are skipped. The rest flow through Ray Data, one row per loader batch:

1. a ``map`` task decodes and preprocesses the batch with the loader's own code
   (`loader.make_batch`: the same images, skipped files and tensors as one process);
2. a ``map_batches`` actor pool (``ActorPoolStrategy``) runs the backbone: each actor builds
   its adapter once from the spec's YAML (specs are data; nothing framework-specific is
   pickled), on ``cuda`` when it holds GPUs, and pools the output like the process engine;
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

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

import specs

from ...precision import check_precision, with_precision
from ...preprocess import Preprocess
from ...registry import registry_spec
from ..backbone import build_backbone, resolve_spec
from ..data.datasets import Dataset, load_dataset
from ..embeddings import EMBEDDINGS_FORMAT
from ..errors import EmbedError
from ..interrupts import shielded
from ..out_dtypes import OUT_DTYPES
from ..store import spec_precision
from ..weights import weights_digest
from . import shards
from .pipeline import default_workers, gather, pipeline
from .setup import quiet, ray_module, start_ray


@attrs.frozen
class RayEmbedResult:
    """What a run did: ``rows`` in the directory, ``new_rows`` of them embedded by this run
    (the others were in reused shards), ``written`` / ``reused`` shard counts, ``seconds`` of
    the whole call, ``startup_s`` spent starting or joining Ray, the actors' ``pooling`` and
    the item names of the unreadable images ``skipped``."""

    out: Path
    rows: int
    new_rows: int
    shards: int
    written: int
    reused: int
    seconds: float
    startup_s: float
    workers: int
    pooling: str
    skipped: tuple[str, ...]


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
    precision: str | None = None,
    out_dtype: str = "float32",
    on_backbone: Callable[[Any, Preprocess], None] | None = None,
    kill_at: tuple[int, str] | None = None,
) -> RayEmbedResult:
    """Embed ``data`` with ``spec`` on Ray Data into the shard directory ``out``.

    The result equals `engine.embed_dataset`'s bit for bit (same rows in the same order, read back
    with ``adapters.load_embeddings``). Rerunning the same call reuses the complete shards; a
    different job (spec, weights, data, preprocessing, batching, runtime) refuses to write
    into ``out``. A run that fails or is interrupted before its first shard leaves no ``out``
    it created.

    Args:
        spec: a spec record, a spec file path or a registry name.
        data: what `datasets.load_dataset` takes (``labels``, ``limit`` as there), or a `Dataset`.
        runtime: what runs the backbone on the workers (`backbone.build_backbone`'s);
            ``"auto"`` is chosen once, on the driver's CPU (``torch`` for workers with GPUs),
            and the job records the runtime chosen, so every worker runs the same one.
        preprocess: the backbone's preprocessing; default: resolved by building the backbone
            once on the driver's CPU (which also fails a bad spec before Ray starts, and
            gives the weights' digest for random or downloaded weights).
        address: a Ray cluster to join (``ray start --head`` prints it); None starts a local
            Ray with every core of this machine, unless this process already runs Ray.
        num_workers: actors in the pool; default one per ``gpus_per_worker`` GPUs of the
            cluster, or half its CPUs (the other half decodes) without GPUs.
        gpus_per_worker: GPUs each actor holds (its backbone then runs on ``cuda``).
        shard_batches: loader batches per shard file.
        verbose: Ray's own INFO logs, progress bars and worker output.
        progress: say how far it got (`progress.Progress`).
        precision: what the backbone runs at (``adapters.build``'s), on the driver and every
            worker; None: the spec's. It becomes the spec's ``precision`` (part of the job).
        out_dtype: what the shards store the embeddings in (``float32`` or ``float16``, half
            the size; part of the job); ``load_embeddings`` reads them back as float32.
        on_backbone: called with the driver's backbone (CPU) and the preprocessing once it
            is built and ``auto`` has chosen, before Ray starts (the command line describes
            them): the torch one, or with ``"auto"`` for CPU workers the one ``auto`` served
            (its ``info["auto"]`` says what it chose and why).
        kill_at: test hook, see `Embedder`.

    Raises:
        EmbedError: bad arguments, Ray not installed, an ``out`` holding another job, no
            readable images.
        The builder's own error (e.g. `adapters.BuildError`, ``specs.SpecError``) when an
        actor cannot build the backbone; `errors.UnreadableImageError` with ``strict``.
    """
    t0 = time.perf_counter()
    _check_workers(num_workers, gpus_per_worker)
    spec = resolve_spec(spec) if isinstance(spec, str) else spec
    spec = with_precision(spec, check_precision(precision))
    if out_dtype not in OUT_DTYPES:
        raise EmbedError(f"--out-dtype: expected one of {', '.join(OUT_DTYPES)}, got {out_dtype!r}")
    ds = data if isinstance(data, Dataset) else load_dataset(data, labels=labels, limit=limit)
    build = {"runtime": runtime, "image_size": image_size, "mean": mean, "std": std, "seed": seed}
    shown_spec, preprocess, weights, driver = _driver_build(spec, build, preprocess)
    if runtime == "auto":  # chosen once here, so that every worker runs the same runtime
        served = _auto_backbone(spec, build, gpus_per_worker, min(batch_size, len(ds)))
        runtime = "torch" if served is None else str(served.info["runtime"])
        build = {**build, "runtime": runtime}
        driver = driver if served is None or driver is None else served
    if on_backbone is not None and driver is not None:  # described as the workers run it
        on_backbone(driver, preprocess)
    blocks = shards.plan_blocks(len(ds), batch_size, shard_batches)
    job = shards.job_identity(
        spec_yaml=specs.dumps(spec, redact=True),
        weights=weights,
        preprocess=preprocess.as_dict(),
        data=ds.name,
        ids=ds.ids,
        index=ds.index,
        batch_size=batch_size,
        shard_batches=shard_batches,
        runtime=runtime,
        out_dtype=out_dtype,
    )
    out = Path(out)
    with _removed_if_left_empty(out):
        done = shards.prepare_dir(out, job)
        todo = [k for k in range(len(blocks)) if k not in done]
        if todo:
            ray_module()  # not installed: say so before anything starts
        run = {"t0": t0, "startup_s": 0.0, "workers": 0, "gpus": gpus_per_worker}
        options = (address, num_workers, verbose, progress, kill_at)
        written, pooling = _run(ds, blocks, todo, out, job, preprocess, spec, build, strict,
                                run, options)  # fmt: skip
    return _finish(
        out, ds, job, preprocess, shown_spec, pooling or shards.pooling_of(out, done),
        (done, written), len(blocks), run,
    )  # fmt: skip


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
    skipped = shards.skipped_of(out, all_shards)
    metadata = {
        "format": EMBEDDINGS_FORMAT,
        "spec": shown_spec,
        "data": ds.name,
        "preprocess": json.dumps(preprocess.as_dict()),
        "pooling": pooling,
        "class_names": json.dumps(list(ds.class_names)),
        "skipped": json.dumps(skipped),
        "seconds": f"{time.perf_counter() - run['t0']:.3f}",
    }
    metadata |= {"dtype": shards.stored_dtype(job), "precision": spec_precision(metadata)}
    extra = {"engine": "ray", "workers": run["workers"], "gpus_per_worker": run["gpus"]}
    shards.write_manifest(out, all_shards, job=job, metadata=metadata, extra=extra)
    return RayEmbedResult(
        out=out,
        rows=sum(s.rows for s in all_shards),
        new_rows=sum(s.rows for s in written.values()),
        shards=n_blocks,
        written=len(written),
        reused=len(done),
        seconds=time.perf_counter() - run["t0"],
        startup_s=run["startup_s"],
        workers=run["workers"],
        pooling=pooling,
        skipped=tuple(skipped),
    )


def _driver_build(
    spec: Any, build: Mapping[str, Any], preprocess: Preprocess | None
) -> tuple[str, Preprocess, dict[str, str], Any]:
    """The spec as shown (resolved), the preprocessing, the weights' digest and the backbone
    built once on the driver's CPU (torch), unless ``preprocess`` is given (then None)."""
    if preprocess is not None:
        resolved = _registry_resolved(spec)
        digest = weights_digest(resolved, seed=build["seed"])
        return specs.dumps(resolved, redact=True), preprocess, digest, None
    backbone, preprocess = build_backbone(spec, **{**build, "runtime": "torch"}, device="cpu")
    shown = specs.dumps(backbone.spec, redact=True)
    return shown, preprocess, weights_digest(backbone.spec, backbone.params), backbone


def _auto_backbone(spec: Any, build: Mapping[str, Any], gpus: float, batch: int) -> Any:
    """The backbone ``auto`` serves on the driver's CPU (its cached choice, or measured) for
    CPU workers, its ``info["runtime"]`` the runtime chosen; None for workers with GPUs, which
    run ``torch`` (the driver cannot time their device)."""
    if gpus:
        return None
    backbone, _ = build_backbone(spec, **build, device="cpu", batch_size=max(1, batch))
    return backbone


def _registry_resolved(spec: Any) -> Any:
    """A registry name's own spec (the one that names its checkpoint), else ``spec``."""
    if not isinstance(spec, specs.RegistrySpec):
        return spec
    return with_precision(registry_spec(spec.model_name, spec.model_kwargs), spec.precision)


@contextlib.contextmanager
def _removed_if_left_empty(out: Path) -> Iterator[None]:
    """``out`` removed again when this run created it and fails (or is interrupted) before
    writing anything into it."""
    created = not out.exists()
    try:
        yield
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def _run(
    ds: Dataset,
    blocks: Sequence[tuple[int, int]],
    todo: Sequence[int],
    out: Path,
    job: Mapping[str, Any],
    preprocess: Preprocess,
    spec: Any,
    build: Mapping[str, Any],
    strict: bool,
    run: dict[str, Any],
    options: tuple[str | None, int | None, bool, bool, tuple[int, str] | None],
) -> tuple[dict[int, shards.ShardInfo], str]:
    """Start (or join) Ray, embed the blocks of ``todo`` and write their shards; Ray is shut
    down after (when this call started it). Ctrl-C cuts neither the start nor the shutdown
    off: a driver whose Ray connection breaks halfway is ended by Ray's own threads with
    status 1, whatever the command meant to return. Records the Ray start time and the
    workers in ``run``."""
    if not todo:
        return {}, ""
    address, num_workers, verbose, progress, kill_at = options
    t_ray, started = time.perf_counter(), False
    try:
        with shielded():  # started whole, so that it can be shut down whole
            started = start_ray(address, verbose=verbose)
        run["startup_s"] = time.perf_counter() - t_ray
        batches = sum(len(range(*blocks[k], job["batch_size"])) for k in todo)
        # more actors than batches would idle (and Ray Data warns about it)
        workers = min(num_workers or default_workers(run["gpus"]), batches)
        run["workers"] = workers
        with quiet(verbose):
            rows = pipeline(ds, blocks, todo, preprocess, strict, job["batch_size"], workers,
                            run["gpus"], specs.dumps(spec), build, kill_at)  # fmt: skip
            return gather(rows, ds, blocks, todo, out, job, progress)
    finally:
        if started:
            with shielded():
                ray_module().shutdown()


def _check_workers(num_workers: int | None, gpus_per_worker: float) -> None:
    if gpus_per_worker < 0:
        raise EmbedError(f"--gpus-per-worker: expected a number >= 0, got {gpus_per_worker}")
    if num_workers is not None and (isinstance(num_workers, bool) or num_workers < 1):
        raise EmbedError(f"--num-workers: expected an integer >= 1, got {num_workers!r}")
