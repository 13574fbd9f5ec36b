"""``embed --engine ray`` (adapters._src.app.ray: engine, workers, shards) on one local Ray per
module: bit-identical to the single-process embed on digits and an image folder, resume, a
changed spec refused, a killed actor, a spec no worker can build, the directory read back.

The `work` fixture (a tiny ViT, its spec, an image folder) is in tests/adapters/conftest.py."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import adapters
import specs
from adapters._src.app import cli, store
from adapters._src.app.data import loader
from adapters._src.app.data.datasets import load_dataset
from adapters._src.app.errors import EmbedError, UnreadableImageError
from adapters._src.app.ray import shards
from adapters._src.preprocess import Preprocess

ray = pytest.importorskip("ray", reason="Ray is optional: pip install 'fm-adapters[distributed]'")
ray_engine = pytest.importorskip("adapters._src.app.ray.engine")
ray_workers = pytest.importorskip("adapters._src.app.ray.workers")

# Ray forks helper processes from the driver; when an earlier test in the same pytest process
# has started JAX, JAX's at-fork hook warns that forking a multithreaded process may deadlock.
# Ray's forked children exec or never touch JAX, so that warning is noise here (and, raised as
# an error inside the hook, it would surface as an unraisable-exception error).
# Under pytest-xdist (`--dist loadgroup`) the module runs in one worker: one local Ray at a
# time, started once (the `local_ray` fixture is per module, so per worker).
pytestmark = [
    pytest.mark.filterwarnings(r"ignore:os\.fork\(\) was called:RuntimeWarning"),
    pytest.mark.xdist_group("ray"),
]

ROOT = Path(__file__).resolve().parents[4]
BATCH = 8
SHARD_BATCHES = 2  # 16 rows per shard


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module: 2 CPUs, no dashboard, Ray's logs at ERROR."""
    ray.init("local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR,
             log_to_driver=False)  # fmt: skip
    yield
    ray.shutdown()


def single_process(work, data_arg, out, limit=None):
    """The reference: the single-process CLI embed, read back."""
    argv = ["embed", work["spec"], "--data", data_arg, "--batch-size", str(BATCH)]
    argv += ["--out", str(out)] + (["--limit", str(limit)] if limit else [])
    assert cli.main(argv) == 0
    return store.load_embeddings(out)


def assert_same(got, ref):
    """Bit for bit: the same rows (sorted by id), embeddings, labels and item names."""
    order = np.argsort(got.ids, kind="stable")
    assert len(np.unique(got.ids)) == len(got.ids)  # no duplicates
    np.testing.assert_array_equal(got.ids[order], ref.ids)
    np.testing.assert_array_equal(got.labels[order], ref.labels)
    np.testing.assert_array_equal(got.embeddings[order], ref.embeddings)
    assert [got.items[i] for i in order] == ref.items
    for key in ("spec", "preprocess", "pooling", "class_names", "skipped", "data"):
        assert got.metadata[key] == ref.metadata[key], key


@pytest.fixture(scope="module")
def digits_run(local_ray, work):
    """digits (150 rows, 10 shards) with 2 actors, one of which is killed on its 3rd batch."""
    out = work["root"] / "digits_ray"
    marker = work["root"] / "killed"
    result = ray_engine.embed_on_ray(
        work["spec"], "digits", out, limit=150, batch_size=BATCH, shard_batches=SHARD_BATCHES,
        num_workers=2, kill_at=(3, str(marker)), progress=False,
    )  # fmt: skip
    return {"out": out, "result": result, "marker": marker}


@pytest.mark.slow  # a local Ray and its actors start here
def test_killed_actor_still_gives_every_row_once_bit_identical(digits_run, work, tmp_path):
    assert digits_run["marker"].exists()  # an actor process did die on its 3rd batch
    result = digits_run["result"]
    assert (result.rows, result.shards, result.written, result.reused) == (150, 10, 10, 0)
    got = store.load_embeddings(digits_run["out"])
    ref = single_process(work, "digits", tmp_path / "ref.safetensors", limit=150)
    assert_same(got, ref)
    np.testing.assert_array_equal(got.ids, ref.ids)  # already in dataset order


@pytest.mark.slow  # a local Ray and its actors start here
def test_manifest_lists_shards_ranges_checksums_versions(digits_run, work):
    out = digits_run["out"]
    manifest = json.loads((out / shards.MANIFEST).read_text())
    assert manifest["format"] == shards.MANIFEST_FORMAT and manifest["rows"] == 150
    assert specs.loads(manifest["job"]["spec"]) == specs.load(work["spec"])
    assert manifest["job"]["preprocess"]["size"] == [32, 32]
    ranges = [(s["start"], s["stop"]) for s in manifest["shards"]]
    assert ranges == [(lo, min(lo + 16, 150)) for lo in range(0, 150, 16)]
    assert sum(s["rows"] for s in manifest["shards"]) == 150
    for s in manifest["shards"]:
        assert hashlib.sha256((out / s["file"]).read_bytes()).hexdigest() == s["sha256"]
    assert manifest["versions"]["ray"] == ray.__version__
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [shards.MANIFEST] + [shards.shard_name(k) for k in range(10)]
    )


@pytest.mark.slow  # a local Ray and its actors start here
def test_folder_through_the_cli_bit_identical_then_probe(local_ray, work, tmp_path, capsys):
    out = tmp_path / "folder_ray"
    argv = ["embed", work["spec"], "--data", work["images"], "--batch-size", str(BATCH),
            "--out", str(out), "--engine", "ray", "--num-workers", "1"]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert "embedded 18 images into 1 shard(s) (1 written, 0 reused)" in captured.out
    assert "embed (ray): 19/19 rows, 1/1 shards" in captured.err  # the plain progress line
    got = store.load_embeddings(out)
    ref = single_process(work, work["images"], tmp_path / "ref.safetensors")
    assert_same(got, ref)
    # the lines of the process engine: the backbone, its weights, preprocessing, skipped
    ray_lines, process_lines = captured.out.splitlines(), capsys.readouterr().out.splitlines()
    assert ray_lines[0] == f"embed {work['spec']} on {work['images']} -> {out} (--engine ray)"
    ray_lines, process_lines = ray_lines[1:], process_lines[1:]  # then the same lines
    assert ray_lines[0] == process_lines[0] == f"loading backbone {work['spec']} ..."
    assert ray_lines[1].startswith("backbone: 594,048 parameters (") and ray_lines[1].endswith(
        "on cpu per Ray worker (torch, 32-true)"
    )
    for head in ("weights: ", "preprocessing (", "skipped 1 unreadable image(s): green/broken"):
        assert [x for x in ray_lines if x.startswith(head)] == [
            x for x in process_lines if x.startswith(head)
        ], head
    # a rerun reuses the shard: no rate, no Ray
    assert cli.main(argv) == 0
    again = capsys.readouterr().out
    assert "embedded 18 images into 1 shard(s) (0 written, 1 reused): every shard was complete" in (
        again
    )
    assert "img/s" not in again
    assert json.loads(got.metadata["skipped"]) == ["green/broken.jpg"]
    # probe reads the directory as if it were one file
    code = cli.main(["probe", str(out), "--epochs", "5", "--data", work["images"]])
    assert code == 0, capsys.readouterr().err
    assert "linear head" in capsys.readouterr().out


@pytest.mark.slow  # a local Ray and its actors start here
def test_jax_runtime_workers_embed_as_in_one_process(local_ray, work, tmp_path, capsys):
    """--engine ray --runtime jax: the workers' backbone answers with jax.Arrays (they raised
    AttributeError on ``.cpu()``, which only torch tensors have)."""
    jax_args = ["--runtime", "jax", "--limit", "16"]
    out = tmp_path / "jax_ray"
    argv = ["embed", work["spec"], "--data", "digits", "--batch-size", str(BATCH), *jax_args,
            "--out", str(out), "--engine", "ray", "--num-workers", "1"]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    got = store.load_embeddings(out)
    ref_path = tmp_path / "jax.safetensors"
    ref_argv = ["embed", work["spec"], "--data", "digits", "--batch-size", str(BATCH), *jax_args]
    assert cli.main([*ref_argv, "--out", str(ref_path)]) == 0
    ref = store.load_embeddings(ref_path)
    np.testing.assert_array_equal(got.embeddings, ref.embeddings)  # the same lowered forward


@pytest.mark.slow  # a local Ray and its actors start here
def test_precision_and_out_dtype_through_ray_as_in_one_process(local_ray, work, tmp_path, capsys):
    low = ["--precision", "bf16-true", "--out-dtype", "float16", "--limit", "32"]
    out = tmp_path / "low_ray"
    argv = ["embed", work["spec"], "--data", "digits", "--batch-size", str(BATCH), *low,
            "--out", str(out), "--engine", "ray", "--num-workers", "1"]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert "(torch, bf16-true)" in capsys.readouterr().out  # the driver's backbone line
    manifest = json.loads((out / shards.MANIFEST).read_text())
    assert manifest["job"]["out_dtype"] == "float16"
    assert specs.loads(manifest["job"]["spec"]).precision == "bf16-true"
    assert (manifest["metadata"]["dtype"], manifest["metadata"]["precision"]) == (
        "float16",
        "bf16-true",
    )
    from safetensors.numpy import load_file

    assert load_file(str(out / shards.shard_name(0)))["embeddings"].dtype == np.float16
    got = store.load_embeddings(out)
    assert got.embeddings.dtype == np.float32  # read back upcast
    ref_path = tmp_path / "low.safetensors"
    ref_argv = ["embed", work["spec"], "--data", "digits", "--batch-size", str(BATCH), *low]
    assert cli.main([*ref_argv, "--out", str(ref_path)]) == 0
    ref = store.load_embeddings(ref_path)
    np.testing.assert_array_equal(got.embeddings, ref.embeddings)  # the same bf16 forward
    assert (got.metadata["dtype"], got.metadata["precision"]) == ("float16", "bf16-true")
    assert got.metadata["spec"] == ref.metadata["spec"]
    capsys.readouterr()
    # the stored dtype and the precision are the job's: another of either is refused
    for other in (["--out-dtype", "float32"], ["--precision", "bf16-mixed"]):
        code = cli.main([*argv[: argv.index("--precision")], "--limit", "32", *other,
                         *argv[argv.index("--out"):]])  # fmt: skip
        assert code != 0 and "different job" in capsys.readouterr().err


@pytest.mark.slow  # a local Ray and its actors start here
def test_resume_rewrites_only_missing_shards(local_ray, digits_run, work, tmp_path):
    out = tmp_path / "resume"
    shutil.copytree(digits_run["out"], out)
    (out / shards.shard_name(4)).unlink()
    (out / shards.MANIFEST).unlink()
    (out / f".{shards.shard_name(7)}.x1y2.tmp").write_bytes(b"half a shard")  # killed writer
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")}
    kwargs = {"limit": 150, "batch_size": BATCH, "shard_batches": SHARD_BATCHES, "num_workers": 1}
    result = ray_engine.embed_on_ray(work["spec"], "digits", out, progress=False, **kwargs)
    assert (result.written, result.reused) == (1, 9)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*") if p.name in before} == (
        before
    )
    assert not list(out.glob(".*.tmp"))
    assert_same(store.load_embeddings(out), store.load_embeddings(digits_run["out"]))
    # complete: nothing left to do, Ray is not needed
    again = ray_engine.embed_on_ray(work["spec"], "digits", out, progress=False, **kwargs)
    assert (again.written, again.reused, again.workers) == (0, 10, 0)


@pytest.mark.slow  # a local Ray and its actors start here
def test_changed_spec_refuses_to_mix(digits_run, work, tmp_path):
    other = {**work["raw"], "transforms": ["l2_normalize"]}
    spec = specs.structure(other)
    out = digits_run["out"]
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir())
    with pytest.raises(EmbedError, match=r"different job \(spec differs\)"):
        ray_engine.embed_on_ray(spec, "digits", out, limit=150, batch_size=BATCH,
                               shard_batches=SHARD_BATCHES)  # fmt: skip
    with pytest.raises(EmbedError, match=r"different job \(batch_size differs\)"):
        ray_engine.embed_on_ray(work["spec"], "digits", out, limit=150, batch_size=4,
                               shard_batches=SHARD_BATCHES)  # fmt: skip
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir()) == before


@pytest.mark.slow  # a local Ray and its actors start here
def test_manifest_and_shards_hold_the_spec_without_credentials(
    local_ray, work, tmp_path, monkeypatch
):
    """The actors build from the whole spec; what is stored has its URL credentials hidden."""
    token, sig = "SECRET-TOKEN-1234", "SECRET-SIG-5678"
    monkeypatch.setenv("FMA_RAY_TOKEN", token)
    url = "https://user:${oc.env:FMA_RAY_TOKEN}@host.invalid/w.pth?sig=" + sig
    kwargs = {**work["raw"]["model_kwargs"], "pretrained_cfg_overlay": {"url": url}}
    spec = specs.structure({**work["raw"], "model_kwargs": kwargs})
    out = tmp_path / "ray"
    result = ray_engine.embed_on_ray(spec, "digits", out, limit=16, batch_size=BATCH,
                                    shard_batches=SHARD_BATCHES, num_workers=1, progress=False)  # fmt: skip
    assert result.rows == 16 and result.written == 1
    for path in out.iterdir():
        assert token.encode() not in path.read_bytes() and sig.encode() not in path.read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    assert "https://***@host.invalid/w.pth?sig=***" in json.dumps(manifest)
    assert store.load_embeddings(out).metadata["spec"] == specs.dumps(spec, redact=True)


@pytest.mark.slow  # a local Ray and its actors start here
def test_changed_checkpoint_bytes_refuse_to_mix(local_ray, digits_run, work, tmp_path):
    """Same spec text, other weights in the checkpoint file: a rerun of an interrupted job
    must not add shards of the new weights to those of the old."""
    from safetensors.torch import save_file

    out = tmp_path / "changed"
    shutil.copytree(digits_run["out"], out)
    (out / shards.shard_name(4)).unlink()  # an interrupted run: one shard and the manifest
    (out / shards.MANIFEST).unlink()
    before = sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir())
    checkpoint = work["root"] / "tiny.safetensors"
    original = checkpoint.read_bytes()
    try:
        save_file({k: v + 1 for k, v in work["model"].state_dict().items()}, checkpoint)
        with pytest.raises(EmbedError, match=r"different job \(weights differs\)"):
            ray_engine.embed_on_ray(work["spec"], "digits", out, limit=150, batch_size=BATCH,
                                   shard_batches=SHARD_BATCHES, num_workers=1, progress=False)  # fmt: skip
    finally:
        checkpoint.write_bytes(original)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in out.iterdir()) == before


def test_without_ray_no_directory_is_left(work, tmp_path, monkeypatch):
    """Ray missing: one clear error, and the --out it would have created is not there."""
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(EmbedError, match=r"--engine ray: Ray Data is not installed"):
        ray_engine.embed_on_ray(work["spec"], "digits", tmp_path / "o", limit=20, progress=False)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow  # a Ray embed in a subprocess, interrupted as a terminal does
def test_ctrl_c_to_the_process_group_keeps_shards_and_exits_130(work, tmp_path):
    """Two Ctrl-C 50 ms apart, sent to the process group (Ray's processes included): the
    finished shards stay, one 'interrupted' line, no traceback, exit status 130."""
    out = tmp_path / "interrupted"
    argv = ["embed", work["spec"], "--data", "digits", "--batch-size", "1", "--engine", "ray",
            "--num-workers", "1", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FM_ADAPTERS_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "adapters", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while len(list(out.glob("shard-*"))) < 3 and proc.poll() is None:  # well under way
            assert time.monotonic() < deadline, "no shard written in 300 s"
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        for _ in range(2):
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(0.05)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "interrupted: finished shards kept; rerun to resume"
    names = sorted(p.name for p in out.iterdir())
    assert names and all(n.startswith("shard-") and n.endswith(".safetensors") for n in names)


def _bad_spec(work):
    return specs.structure({**work["raw"], "checkpoint_path": str(work["root"] / "gone.pt")})


def test_bad_spec_fails_before_ray_with_the_builders_error(work, tmp_path):
    with pytest.raises(Exception) as ref:
        adapters.build(_bad_spec(work))
    with pytest.raises(type(ref.value)) as got:
        ray_engine.embed_on_ray(_bad_spec(work), "digits", tmp_path / "o", limit=20)
    assert str(got.value) == str(ref.value)
    assert not (tmp_path / "o").exists()


@pytest.mark.slow  # a local Ray and its actors start here
def test_worker_that_cannot_build_fails_the_job_with_the_builders_error(local_ray, work, tmp_path):
    """With the preprocessing given, only the actors build: their error comes back as is."""
    with pytest.raises(Exception) as ref:
        adapters.build(_bad_spec(work))
    pre = Preprocess(size=(32, 32))
    with pytest.raises(type(ref.value)) as got:
        ray_engine.embed_on_ray(_bad_spec(work), "digits", tmp_path / "o", limit=20,
                               preprocess=pre, num_workers=1, progress=False)  # fmt: skip
    assert str(got.value) == str(ref.value)
    assert not (tmp_path / "o").exists()  # no shard, no manifest, no empty directory


@pytest.mark.slow  # a local Ray and its actors start here
def test_directory_checksums_are_checked(digits_run, tmp_path):
    out = tmp_path / "corrupt"
    shutil.copytree(digits_run["out"], out)
    path = out / shards.shard_name(2)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(EmbedError, match=r"shard-00002\.safetensors.*checksum differs"):
        store.load_embeddings(out)


def test_out_with_foreign_files_or_a_file_is_refused(work, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(EmbedError, match=r"holding other files \(notes\.txt\)"):
        shards.prepare_dir(tmp_path, {"spec": "x"})
    with pytest.raises(EmbedError, match="output is a directory of shards"):
        shards.prepare_dir(tmp_path / "notes.txt", {"spec": "x"})


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--address", "127.0.0.1:6379"], "--address: only read with --engine ray"),
        (["--engine", "ray", "--device", "cpu"], "--device: with --engine ray"),
    ],
)
def test_engine_flags_misuse_one_line(capsys, work, tmp_path, argv, match):
    code = cli.main(
        ["embed", work["spec"], "--data", "digits", "--out", str(tmp_path / "o"), *argv]
    )
    assert code == 2
    assert match in capsys.readouterr().err


def test_plan_blocks_start_on_batch_boundaries():
    assert shards.plan_blocks(150, 8, 2) == [(lo, min(lo + 16, 150)) for lo in range(0, 150, 16)]
    with pytest.raises(EmbedError, match="shard_batches: expected an integer >= 1"):
        shards.plan_blocks(10, 8, 0)


def test_decode_batch_is_the_loaders_batch(work):
    """The Ray task's output for one batch equals the single-process loader's batch."""
    ds = load_dataset(work["images"])
    pre = Preprocess(size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3)
    row = {
        "shard": 0,
        "lo": 8,
        "ids": list(ds.ids[8:16]),
        "paths": [str(p) for p in ds.paths[8:16]],
    }
    got = ray_workers.decode_batch(row, preprocess=pre.as_dict(), strict=False)
    x, index = loader.make_batch(ds, pre, 8, 16, False, loader.LoaderStats())
    np.testing.assert_array_equal(got["x"], x.numpy())
    np.testing.assert_array_equal(got["pos"], index)
    assert json.loads(got["skipped"]) == ["green/broken.jpg"]


def test_decode_batch_of_unreadable_files_and_strict(work):
    pre = Preprocess(size=(32, 32))
    broken = str(work["root"] / "images" / "green" / "broken.jpg")
    row = {"shard": 1, "lo": 16, "ids": ["green/broken.jpg"], "paths": [broken]}
    got = ray_workers.decode_batch(row, preprocess=pre.as_dict(), strict=False)
    assert got["x"].shape == (0, 3, 32, 32) and got["pos"].shape == (0,)
    assert json.loads(got["skipped"]) == ["green/broken.jpg"] and got["error"] == b""
    got = ray_workers.decode_batch(row, preprocess=pre.as_dict(), strict=True)
    err = ray_workers.load_error(got["error"])
    assert isinstance(err, UnreadableImageError) and "broken.jpg" in str(err)


def test_errors_cross_processes_as_themselves(work):
    """A BuildError cannot be unpickled by its own __init__; it still comes back whole."""
    with pytest.raises(adapters.BuildError) as caught:
        adapters.build(_bad_spec(work))
    back = ray_workers.load_error(ray_workers.dump_error(caught.value))
    assert type(back) is adapters.BuildError and str(back) == str(caught.value)
    assert back.field == caught.value.field
    os_err = ray_workers.load_error(ray_workers.dump_error(FileNotFoundError(2, "gone", "/x")))
    assert str(os_err) == "[Errno 2] gone: '/x'"


@pytest.mark.slow  # a local Ray and its actors start here
def test_auto_backbone_line_names_the_runtime_the_workers_run(
    local_ray, work, tmp_path, capsys, monkeypatch
):
    """With --runtime auto the backbone line names the runtime auto chose on the driver (the
    one the job records and every worker runs), not "auto", and a runtime line says why, as
    the process engine's lines do."""
    monkeypatch.setenv("FM_ADAPTERS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "auto_ray"
    argv = ["embed", work["spec"], "--data", work["images"], "--batch-size", str(BATCH),
            "--out", str(out), "--engine", "ray", "--num-workers", "1", "--runtime", "auto"]  # fmt: skip
    assert cli.main(argv) == 0, capsys.readouterr().err
    lines = capsys.readouterr().out.splitlines()
    chosen = json.loads((out / shards.MANIFEST).read_text())["job"]["runtime"]
    assert chosen in ("torch", "onnxruntime", "jax")
    (backbone,) = [x for x in lines if x.startswith("backbone: ")]
    assert f"on cpu per Ray worker ({chosen}, chosen by --runtime auto" in backbone, backbone
    assert "(auto, " not in backbone
    (line,) = [x for x in lines if x.startswith("runtime: ")]
    assert line.startswith(f"runtime: {chosen}, ") and "measured at build" in line, line


def test_gpu_workers_under_auto_are_described_as_running_torch(work, capsys):
    """GPU workers run torch under --runtime auto (the driver cannot time their device): the
    backbone line says so, not "auto"."""
    import argparse

    from adapters._src.app.backbone import resolve_preprocess
    from adapters._src.app.ray import command

    backbone = adapters.build(specs.load(work["spec"]))
    args = argparse.Namespace(gpus_per_worker=1.0, runtime="auto")
    command._describe(args, backbone, resolve_preprocess(backbone))
    (line,) = [x for x in capsys.readouterr().out.splitlines() if x.startswith("backbone: ")]
    assert line.endswith(
        "on cuda (1 GPU each) per Ray worker (torch, --runtime auto's choice for GPU workers, "
        "32-true)"
    ), line


def test_auto_is_chosen_once_on_the_driver_for_every_worker(work, tmp_path, monkeypatch):
    """runtime='auto' is resolved on the driver, so the job (and every actor) names one
    runtime: the driver's cached choice for CPU workers; torch for GPU workers (the driver
    cannot time their device)."""
    monkeypatch.setenv("FM_ADAPTERS_CACHE", str(tmp_path / "cache"))
    build = {"runtime": "auto", "image_size": 32, "mean": None, "std": None, "seed": None}
    chosen = ray_engine._auto_backbone(work["spec"], build, 0, 4).info["runtime"]
    served, _ = ray_engine.build_backbone(work["spec"], **build, device="cpu", batch_size=4)
    assert served.info["auto"]["cache"] == "hit" and served.info["runtime"] == chosen
    assert ray_engine._auto_backbone(work["spec"], build, 1, 4) is None  # GPU workers: torch
