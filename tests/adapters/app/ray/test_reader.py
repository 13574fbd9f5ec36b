"""Reading embeddings back (adapters.load_embeddings; app.shard_reader, app.store): an
``embed --engine ray`` directory whose manifest does not match its shards is refused, never
read as rows it does not hold; a single file must hold one row per embedding; the layout
(every field per row, ``ids`` positions in the full dataset) is what the docs say.

The directories here are written with the engine's own writers (`shards.write_shard`,
`shards.write_manifest`), without Ray; test_engine.py covers the engine itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import adapters
import specs
from adapters._src.app import cli, store, weights
from adapters._src.app.data.datasets import load_dataset
from adapters._src.app.embeddings import EMBEDDINGS_FORMAT, Embeddings
from adapters._src.app.errors import EmbedError
from adapters._src.app.ray import shards

#: 40 dataset positions in 4 blocks of 10; the image at position 13 is unreadable
ROWS, BLOCK, UNREADABLE, DIM = 40, 10, 13, 6
JOB = {"spec": "source: timm\n", "weights": {"params": "ab"}, "rows": ROWS, "batch_size": 5}


def _write_dir(out: Path, job: dict = JOB) -> np.ndarray:
    """A complete directory of ``ROWS - 1`` rows; returns their embeddings."""
    out.mkdir()
    rng = np.random.default_rng(0)
    keep = np.array([i for i in range(ROWS) if i != UNREADABLE])
    emb = rng.standard_normal((len(keep), DIM)).astype(np.float32)
    infos = []
    for k, lo in enumerate(range(0, ROWS, BLOCK)):
        rows = (keep >= lo) & (keep < lo + BLOCK)
        infos.append(
            shards.write_shard(
                out,
                k,
                (lo, lo + BLOCK),
                embeddings=emb[rows],
                labels=keep[rows] % 3,
                ids=keep[rows],
                items=[f"img{i}.png" for i in keep[rows]],
                skipped=["img13.png"] if lo <= UNREADABLE < lo + BLOCK else [],
                pooling="as is",
                job=job,
            )
        )
    metadata = {"format": EMBEDDINGS_FORMAT, "data": "x", "class_names": '["a","b","c"]'}
    shards.write_manifest(out, infos, job=job, metadata=metadata)
    return emb


@pytest.fixture
def ray_dir(tmp_path):
    out = tmp_path / "emb"
    return out, _write_dir(out)


def _edit(out: Path, change) -> None:
    path = out / shards.MANIFEST
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_a_consistent_directory_reads_as_one_file(ray_dir):
    out, emb = ray_dir
    got = adapters.load_embeddings(out)  # the public name
    np.testing.assert_array_equal(got.embeddings, emb)
    assert got.ids.tolist() == [i for i in range(ROWS) if i != UNREADABLE]
    assert got.items == [f"img{i}.png" for i in got.ids]
    assert got.labels.tolist() == (got.ids % 3).tolist()


def _claim_more_rows(m):
    m["rows"] += 50


def _list_a_shard_twice(m):
    m["shards"].insert(2, m["shards"][1])
    m["rows"] += m["shards"][1]["rows"]


def _drop_a_shard(m):
    m["rows"] -= m["shards"].pop(2)["rows"]


def _drop_the_last_shard(m):
    m["rows"] -= m["shards"].pop()["rows"]


def _overlap(m):
    m["shards"][1]["start"] -= 5


def _claim_more_rows_in_a_shard(m):
    m["shards"][1]["rows"] += 1  # 9 readable of its 10 positions: 10 fits its range
    m["rows"] += 1


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (_claim_more_rows, r"claims 89 rows, its shards hold 39"),
        (_list_a_shard_twice, r"shard-00001\.safetensors' \(index 1\) as shard 2: a shard listed twice"),
        (_drop_a_shard, r"shard-00003\.safetensors' \(index 3\) as shard 2: .*left out"),
        (_drop_the_last_shard, r"covering the rows \[0, 30\), its job has 40"),
        (_overlap, r"rows \[5, 20\) .* expected a range starting at 10"),
        (_claim_more_rows_in_a_shard, r"shard-00001\.safetensors' does not hold the 10 rows"),
    ],
)  # fmt: skip
def test_a_manifest_that_does_not_match_its_shards_is_refused(ray_dir, edit, match):
    out, _ = ray_dir
    _edit(out, edit)
    with pytest.raises(EmbedError, match=match) as caught:
        store.load_embeddings(out)
    assert "rerun the same embed command" in str(caught.value)


def test_probe_refuses_it_in_one_line(ray_dir, capsys):
    out, _ = ray_dir
    _edit(out, _claim_more_rows)
    assert cli.main(["probe", str(out), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "claims 89 rows, its shards hold 39" in err[0], err


def test_a_shard_of_another_job_is_refused(ray_dir, tmp_path):
    """Its checksum listed (an edited manifest), but its own header names another job."""
    out, _ = ray_dir
    other = tmp_path / "other"
    _write_dir(other, {**JOB, "spec": "source: onnx\n"})
    name = shards.shard_name(2)
    (out / name).write_bytes((other / name).read_bytes())

    def list_its_checksum(m):
        m["shards"][2]["sha256"] = shards.sha256_file(out / name)

    _edit(out, list_its_checksum)
    with pytest.raises(EmbedError, match=r"shard-00002.* another block or job .*\(job differs\)"):
        store.load_embeddings(out)


def test_a_shard_repeating_rows_is_refused(ray_dir):
    out, emb = ray_dir
    info = shards.write_shard(
        out, 2, (20, 30), embeddings=emb[:2], labels=np.zeros(2, np.int64),
        ids=np.array([15, 16]), items=["a", "b"], skipped=[], pooling="as is", job=JOB,
    )  # fmt: skip

    def point_at_it(m):
        m["rows"] += 2 - m["shards"][2]["rows"]
        m["shards"][2] = info.as_dict()

    _edit(out, point_at_it)
    with pytest.raises(EmbedError, match=r"shard-00002.* repeats or reorders"):
        store.load_embeddings(out)


def test_a_file_must_hold_one_row_per_embedding(tmp_path):
    e = Embeddings(
        np.zeros((3, 2), np.float32),
        np.zeros(3, np.int64),
        np.arange(3),
        {"format": EMBEDDINGS_FORMAT, "items": json.dumps(["a", "b", "c"])},
    )
    store.save_embeddings(e, tmp_path / "ok.safetensors")
    assert store.load_embeddings(tmp_path / "ok.safetensors").items == ["a", "b", "c"]
    tensors = {"embeddings": torch.zeros(3, 2), "labels": torch.zeros(2, dtype=torch.int64)}
    tensors["ids"] = torch.arange(3)
    save_file(tensors, tmp_path / "bad.safetensors", metadata=dict(e.metadata))
    with pytest.raises(EmbedError, match=r"one row per embedding .*labels \(2,\)"):
        store.load_embeddings(tmp_path / "bad.safetensors")
    tensors["labels"] = torch.zeros(3, dtype=torch.int64)
    save_file(tensors, tmp_path / "items.safetensors", metadata={**e.metadata, "items": '["a"]'})
    with pytest.raises(EmbedError, match=r"one row per embedding .*1 item names"):
        store.load_embeddings(tmp_path / "items.safetensors")


def test_rows_are_per_row_and_ids_are_dataset_positions(work, tmp_path):
    """The layout the docs describe: row i is embeddings[i], labels[i], ids[i], items[i];
    ids are positions in the full listing (the unreadable file counted), not into items."""
    out = tmp_path / "e.safetensors"
    argv = ["embed", work["spec"], "--data", work["images"], "--out", str(out)]
    assert cli.main(argv) == 0
    emb = adapters.load_embeddings(out)
    ds = load_dataset(work["images"])
    assert emb.embeddings.shape == (len(ds) - 1, 192) and emb.embeddings.dtype == np.float32
    assert len(emb.labels) == len(emb.ids) == len(emb.items) == len(ds) - 1
    assert [ds.ids[i] for i in emb.ids] == emb.items  # ids index the dataset listing
    np.testing.assert_array_equal(ds.labels[emb.ids], emb.labels)
    broken = ds.ids.index("green/broken.jpg")
    after = [i for i, pos in enumerate(emb.ids) if pos > broken]
    assert after and all(emb.ids[i] == i + 1 for i in after)  # one past the row number


def test_weights_digest_follows_the_checkpoint_bytes(work, tmp_path, save_tiny_vit):
    """The job identity's weights: the checkpoint file's bytes (its pinned sha256 when the
    spec gives one), else the built params' bytes."""
    model, raw = save_tiny_vit(tmp_path, "w")
    spec = specs.structure(raw)
    first = weights.weights_digest(spec)
    assert set(first) == {"checkpoint_path"}
    state = {k: v + 1 for k, v in model.state_dict().items()}
    save_file(state, raw["checkpoint_path"])  # same path, same spec text, other bytes
    assert weights.weights_digest(spec) != first
    pinned = specs.structure({**raw, "checkpoint_sha256": "0" * 64})
    assert weights.weights_digest(pinned) == {"checkpoint_sha256": "0" * 64}
    random = specs.structure({k: v for k, v in raw.items() if k != "checkpoint_path"})
    a = weights.weights_digest(random, dict(model.state_dict()))
    b = weights.weights_digest(random, state)
    assert set(a) == {"params"} and a != b
