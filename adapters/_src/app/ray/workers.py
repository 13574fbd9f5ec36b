"""The two Ray Data stages of ``embed --engine ray``; they run in Ray workers.

`decode_batch` (a ``map`` task) makes one loader batch with the single-process loader's own
code; `Embedder` (a ``map_batches`` actor) builds the adapter once from the spec's YAML and
embeds one batch per call. An error that is the user's to fix travels back as data
(`dump_error` / `load_error`) and is raised on the driver as the original exception.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ...preprocess import Preprocess
from ..data.datasets import Dataset
from ..data.loader import LoaderStats, make_batch
from ..errors import UnreadableImageError


def _preprocess_of(pre: Mapping[str, Any]) -> Preprocess:
    return Preprocess(**{k: tuple(v) if isinstance(v, list) else v for k, v in pre.items()})


def dump_error(err: BaseException) -> bytes:
    """``err`` as bytes that `load_error` turns back into the same exception (class, message,
    attributes), also for exceptions whose ``__init__`` pickle cannot call again (such as
    `adapters.BuildError`, whose constructor takes keyword-only parts of the message)."""
    try:
        whole = pickle.dumps(err)
        pickle.loads(whole)  # the way back calls __init__(*args): check it works
        return pickle.dumps(("whole", whole))
    except (pickle.PicklingError, TypeError, AttributeError):
        pass
    state = dict(vars(err))
    try:
        pickle.dumps(state)
    except (pickle.PicklingError, TypeError, AttributeError):
        state = {}  # attributes that cannot travel: the class and message still do
    return pickle.dumps(("parts", (type(err), err.args, state)))


def load_error(blob: bytes) -> BaseException:
    """The exception `dump_error` wrote."""
    how, payload = pickle.loads(blob)
    if how == "whole":
        return pickle.loads(payload)
    cls, args, state = payload
    err = cls.__new__(cls, *args)  # without calling its __init__ again
    err.args = args
    vars(err).update(state)
    return err


def _error_row(row: Mapping[str, Any], err: BaseException) -> dict[str, Any]:
    """A batch's result that carries ``err`` to the driver, which raises it there as is."""
    return {
        "shard": row["shard"],
        "lo": row["lo"],
        "pos": np.zeros(0, np.int64),
        "x": np.zeros((0, 1, 1, 1), np.float32),
        "skipped": "[]",
        "error": dump_error(err),
    }


def decode_batch(row: dict[str, Any], *, preprocess: Mapping[str, Any], strict: bool) -> dict:
    """Ray Data ``map`` task: one loader batch -> its preprocessed images.

    ``row`` holds the batch's ``ids`` and either ``images`` (in-memory data) or ``paths``;
    the work is the single-process loader's own (`loader.make_batch`).

    Returns:
        ``shard``, ``lo``, ``x`` (b, channels, H, W) float32, ``pos`` (b,) positions of the
        readable images in the dataset, ``skipped`` (JSON list of item names), ``error``.
    """
    import json

    pre = _preprocess_of(preprocess)
    ids = tuple(str(i) for i in row["ids"])
    images = row.get("images")
    paths = row.get("paths")
    batch = Dataset(
        name="",
        ids=ids,
        labels=np.zeros(len(ids), np.int64),
        class_names=(),
        images=None if images is None else _writable(images),
        paths=None if paths is None else tuple(Path(str(p)) for p in paths),
    )
    stats = LoaderStats()
    try:
        made = make_batch(batch, pre, 0, len(ids), strict, stats)
    except UnreadableImageError as err:
        return _error_row(row, err)
    if made is None:  # every image of the batch unreadable
        x, local = np.zeros((0, pre.channels, *pre.size), np.float32), np.zeros(0, np.int64)
    else:
        x, local = made[0].numpy(), made[1]
    return {
        "shard": row["shard"],
        "lo": row["lo"],
        "pos": local + int(row["lo"]),
        "x": x,
        "skipped": json.dumps(stats.skipped),
        "error": b"",
    }


def _writable(x: Any) -> np.ndarray:
    """``x`` as an array torch can wrap without a warning (Ray hands out read-only views)."""
    x = np.asarray(x)
    return x if x.flags.writeable else x.copy()


class Embedder:
    """Ray Data ``map_batches`` actor: builds the adapter once from the spec's YAML, then
    embeds one loader batch per call (``batch_size=1`` rows of `decode_batch`).

    Args:
        spec_yaml: the spec as YAML text (``specs.dumps``, not redacted).
        build: keywords of `backbone.build_backbone` (runtime, image_size, mean, std, seed).
        device: ``cuda`` when the actor holds GPUs, else ``cpu``.
        kill_at: test hook: (n, marker file) kills this actor's process on its n-th batch,
            once per marker (the first actor to create the marker dies).
    """

    def __init__(
        self,
        spec_yaml: str,
        build: Mapping[str, Any],
        device: str,
        kill_at: tuple[int, str] | None = None,
    ) -> None:
        import specs

        from ..backbone import build_backbone

        self.kill_at, self.calls, self.error = kill_at, 0, None
        try:
            self.backbone, _ = build_backbone(specs.loads(spec_yaml), device=device, **build)
        except Exception as err:
            # Raised from __init__, Ray keeps only the traceback text and retries the actor;
            # carried as data, it reaches the driver as the builder's own exception
            self.error = err

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        import torch

        from ...devices import input_device
        from ..engine import pool_features

        self.calls += 1
        self._maybe_die()
        row = {k: v[0] for k, v in batch.items()}
        if self.error is not None:
            return _as_batch(_error_row(row, self.error), emb=np.zeros((0, 0), np.float32))
        if len(row["error"]):
            return _as_batch(row, emb=np.zeros((0, 0), np.float32), pooling="")
        x = _writable(row["x"])
        if len(x) == 0:
            return _as_batch(row, emb=np.zeros((0, 0), np.float32), pooling="")
        device = input_device(self.backbone)
        with torch.inference_mode():
            xt = torch.from_numpy(x)
            y = self.backbone.forward(self.backbone.params, xt if device is None else xt.to(device))
            y, pooling = pool_features(y)
        # the JAX runtime answers with a jax.Array, torch and ONNX Runtime with a tensor
        emb = y.cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
        return _as_batch(row, emb=emb, pooling=pooling)

    def _maybe_die(self) -> None:
        if self.kill_at is None or self.calls != self.kill_at[0]:
            return
        try:
            fd = os.open(self.kill_at[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return  # another actor (or this one, before its restart) already died for it
        os.close(fd)
        os._exit(1)


def _as_batch(row: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    """One output row as a Ray Data batch of one (every column gets a leading axis of 1)."""
    keep = ("shard", "lo", "pos", "skipped", "error", "pooling")
    out = {k: row[k] for k in keep if k in row}
    out.setdefault("pooling", "")
    out.update(fields)
    return {k: [v] if isinstance(v, (str, bytes)) else np.asarray(v)[None] for k, v in out.items()}
