"""adapters._src.app.data and the process engine: datasets, preprocessing against plain PIL /
torch calls, the prefetching loader, aligned buffers and the atomic embeddings file."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from adapters._src.app import store
from adapters._src.app.data import loader
from adapters._src.app.data.datasets import load_dataset
from adapters._src.app.data.images import decode_image, preprocess_batch, raw_pixels
from adapters._src.app.data.loader import LoaderStats, iter_batches
from adapters._src.app.embeddings import (
    ALIGNMENT,
    EMBEDDINGS_FORMAT,
    Embeddings,
    aligned_empty,
    as_aligned,
)
from adapters._src.app.engine import embed_dataset, pool_features
from adapters._src.app.errors import DataError, EmbedError, UnreadableImageError
from adapters._src.app.out_paths import check_output_path
from adapters._src.devices import input_device
from adapters._src.preprocess import Preprocess


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """3 classes x 4 PNGs of different sizes and modes, one corrupt file, one README."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog", "eel"]):
        (root / name).mkdir()
        for i in range(4):
            h, w = 20 + 3 * i, 30 - 2 * i
            arr = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
            arr[..., c] = 255
            Image.fromarray(arr).convert("L" if i == 3 else "RGB").save(root / name / f"{i}.png")
    (root / "dog" / "broken.png").write_bytes(b"not a png at all")
    (root / "dog" / "README.txt").write_text("ignored")
    return root


def test_digits_and_limit():
    ds = load_dataset("digits")
    assert len(ds) == 1797 and ds.images.shape == (1797, 8, 8)
    assert ds.images.min() >= 0 and ds.images.max() == 1.0
    sub = load_dataset("digits", limit=200)
    assert len(sub) == 200
    assert (np.diff(sub.index) > 0).all()  # original order kept
    np.testing.assert_array_equal(sub.labels, ds.labels[sub.index])
    np.testing.assert_array_equal(sub.images, ds.images[sub.index])
    assert set(sub.labels.tolist()) == set(range(10))


def test_folder(folder):
    ds = load_dataset(str(folder))
    assert ds.class_names == ("cat", "dog", "eel")
    assert len(ds) == 13  # README ignored, broken.png listed (found unreadable when decoded)
    assert ds.labels.tolist() == [0] * 4 + [1] * 5 + [2] * 4
    assert ds.ids[4] == "dog/0.png"


@pytest.mark.parametrize(
    ("images", "labels"),
    [
        (np.random.default_rng(0).integers(0, 255, (6, 10, 12), dtype=np.uint8), None),
        (np.random.default_rng(1).random((6, 10, 12, 3), dtype=np.float32), ["a", "b"] * 3),
        (np.random.default_rng(2).random((6, 3, 10, 12), dtype=np.float32), [3, 1, 2] * 2),
    ],
    ids=["gray-uint8", "hwc-float", "chw-float"],
)
@pytest.mark.parametrize("kind", ["npz", "npy"])
def test_arrays(tmp_path, images, labels, kind):
    if kind == "npz":
        path = tmp_path / "d.npz"
        arrays = {"images": images} | ({"labels": np.asarray(labels)} if labels else {})
        np.savez(path, **arrays)
        ds = load_dataset(str(path))
    else:
        path = tmp_path / "d.npy"
        np.save(path, images)
        lab = None
        if labels:
            lab = str(tmp_path / "l.npy")
            np.save(lab, np.asarray(labels))
        ds = load_dataset(str(path), labels=lab)
    assert len(ds) == 6 and ds.images.shape[1:3] == (10, 12)
    assert ds.images.dtype == np.float32 and 0 <= ds.images.min() and ds.images.max() <= 1
    if labels is None:
        assert not ds.has_labels
    else:
        names = sorted({str(v) for v in labels})
        assert [ds.class_names[i] for i in ds.labels] == [str(v) for v in labels]
        assert list(ds.class_names) == names


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: str(p / "missing"), "does not exist"),
        (lambda p: (p / "flat").mkdir() or str(p / "flat"), "no sub-folders"),
        (lambda p: (p / "x.txt").write_text("x") and str(p / "x.txt"), "got the file"),
        (
            lambda p: (
                np.savez(p / "w.npz", images=np.zeros((4, 5, 5)), labels=np.zeros(3))
                or str(p / "w.npz")
            ),
            r"one label per image, shape \(4,\), got shape \(3,\)",
        ),
        (lambda p: np.savez(p / "n.npz", foo=np.zeros(3)) or str(p / "n.npz"), "'images' array"),
    ],
    ids=["missing", "no-classes", "other-file", "labels-mismatch", "npz-keys"],
)
def test_bad_data(tmp_path, make, match):
    with pytest.raises(DataError, match=match):
        load_dataset(make(tmp_path))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_preprocess_batch_matches_torch(mode, channels):
    imgs = np.random.default_rng(0).random((3, 8, 8), dtype=np.float32)
    mean, std = (0.2, 0.3, 0.4)[:channels], (0.5, 0.6, 0.7)[:channels]
    pre = Preprocess(size=(24, 20), channels=channels, mean=mean, std=std, interpolation=mode)
    got = preprocess_batch(imgs, pre)
    assert got.shape == (3, channels, 24, 20) and got.is_contiguous()
    x = torch.from_numpy(imgs)[:, None]
    kw = {} if mode == "nearest" else {"align_corners": False, "antialias": True}
    ref = F.interpolate(x, size=(24, 20), mode=mode, **kw)
    ref = ref.clamp(0, 1).expand(-1, channels, -1, -1)
    ref = (ref - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    torch.testing.assert_close(got, ref)


def _preprocess_expand_first(images: np.ndarray, pre: Preprocess) -> torch.Tensor:
    """The plain torch pipeline with the channel change first (a grey image repeated to RGB
    before resizing), as `preprocess_batch` did before it resized grey channels once."""
    x = torch.from_numpy(images)
    x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
    c = x.shape[1]
    if c == 4:
        x, c = x[:, :3], 3
    if c != pre.channels:
        x = x.mean(1, keepdim=True) if pre.channels == 1 else x.expand(-1, pre.channels, -1, -1)
    if tuple(x.shape[-2:]) != pre.size:
        kw = {} if pre.interpolation == "nearest" else {"align_corners": False, "antialias": True}
        x = F.interpolate(x, size=pre.size, mode=pre.interpolation, **kw)
        x = x.clamp(0, 1) if pre.interpolation == "bicubic" else x
    mean = torch.tensor(pre.mean[: pre.channels]).view(1, -1, 1, 1)
    std = torch.tensor(pre.std[: pre.channels]).view(1, -1, 1, 1)
    return ((x - mean) / std).contiguous()


@pytest.mark.parametrize("size", [(8, 8), (13, 11)], ids=["same-size", "resized"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("shape", [(5, 8, 8), (5, 8, 8, 1), (5, 8, 8, 3), (5, 8, 8, 4)], ids=str)
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_preprocess_batch_equals_expand_first_exactly(mode, shape, channels, size):
    """Resizing before repeating a grey channel changes no value: bit-equal, not just close."""
    imgs = np.random.default_rng(1).random(shape, dtype=np.float32)
    mean, std = (0.2, 0.3, 0.4)[:channels], (0.5, 0.6, 0.7)[:channels]
    pre = Preprocess(size=size, channels=channels, mean=mean, std=std, interpolation=mode)
    got = preprocess_batch(imgs, pre)
    assert got.shape == (5, channels, *size) and got.is_contiguous()
    torch.testing.assert_close(got, _preprocess_expand_first(imgs, pre), rtol=0, atol=0)


def test_preprocess_batch_leaves_its_input_alone():
    imgs = np.random.default_rng(2).random((3, 8, 8, 3), dtype=np.float32)
    before = imgs.copy()
    preprocess_batch(imgs, Preprocess(size=(8, 8)))  # no resize: x views imgs
    np.testing.assert_array_equal(imgs, before)


@pytest.fixture
def two_torch_threads():
    """At least 2 torch threads, so that one thread is distinguishable; restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(2, before))
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("two_torch_threads")
@pytest.mark.parametrize(
    ("device", "producer_threads"), [(None, 1), ("cpu", 1), ("meta", None)], ids=str
)
@pytest.mark.parametrize("strict", [False, True], ids=["ok", "raises"])
def test_loader_preprocesses_single_threaded_on_the_cpu(
    folder, monkeypatch, device, producer_threads, strict
):
    """A CPU forward has every core: the prefetch thread uses one torch thread, and the
    count threads start with is restored afterwards (also when the producer fails)."""
    main = torch.get_num_threads()
    seen = []
    real = loader.make_batch

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(loader, "make_batch", spy)
    pre = Preprocess(size=(8, 8))
    ds = load_dataset(str(folder))  # holds one unreadable file: strict raises
    try:
        for _ in iter_batches(ds, pre, 4, device=device, strict=strict):
            assert torch.get_num_threads() == main  # the consumer keeps all of its threads
    except UnreadableImageError:
        assert strict
    assert seen and set(seen) == {main if producer_threads is None else producer_threads}
    assert torch.get_num_threads() == main
    fresh = []
    t = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
    t.start()
    t.join()
    assert fresh == [main]


def test_decode_image_matches_pil(folder):
    pre = Preprocess(size=(16, 16), channels=3, interpolation="bilinear", crop_pct=0.8)
    path = folder / "cat" / "1.png"  # 23 x 28
    got = decode_image(path, pre)
    img = Image.open(path).convert("RGB")
    short = 20  # 16 / 0.8: shorter side (height 23) -> 20, width 28 * 20 / 23 -> 24
    img = img.resize((round(28 * short / 23), short), Image.Resampling.BILINEAR)
    left, top = (img.size[0] - 16) // 2, (img.size[1] - 16) // 2
    ref = np.asarray(img.crop((left, top, left + 16, top + 16)), dtype=np.float32) / 255
    np.testing.assert_allclose(got, ref)


@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_loader_equals_one_batch(batch_size):
    ds = load_dataset("digits", limit=37)
    pre = Preprocess(size=(16, 16))
    batches = list(iter_batches(ds, pre, batch_size))
    x = torch.cat([b[0] for b in batches])
    idx = np.concatenate([b[1] for b in batches])
    np.testing.assert_array_equal(idx, np.arange(37))
    torch.testing.assert_close(x, preprocess_batch(ds.images, pre))


def test_loader_skips_or_raises_on_unreadable(folder):
    ds = load_dataset(str(folder))
    pre = Preprocess(size=(8, 8))
    stats = LoaderStats()
    idx = np.concatenate([b[1] for b in iter_batches(ds, pre, 4, stats=stats)])
    assert stats.skipped == ["dog/broken.png"]
    assert len(idx) == 12 and ds.ids.index("dog/broken.png") not in idx
    # one single-threaded producer on the CPU: its CPU time is real and within its wall time
    assert 0 < stats.produce_cpu_s <= stats.produce_s + 1e-3
    with pytest.raises(UnreadableImageError, match=r"broken\.png.*--strict-images"):
        list(iter_batches(ds, pre, 4, strict=True))


def test_loader_thread_stops_when_consumer_stops():
    ds = load_dataset("digits", limit=300)
    before = threading.active_count()
    it = iter_batches(ds, Preprocess(size=(8, 8)), 4, prefetch=1)
    next(it)
    it.close()
    assert threading.active_count() == before


def test_raw_pixels(folder):
    digits = load_dataset("digits", limit=10)
    np.testing.assert_array_equal(raw_pixels(digits), digits.images.reshape(10, 64))
    ds = load_dataset(str(folder)).subset([0, 1])
    assert raw_pixels(ds, max_side=8).shape == (2, 64)


@pytest.mark.parametrize("shape", [(3,), (5, 7), (2, 3, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8])
def test_aligned_buffers(shape, dtype):
    a = aligned_empty(shape, dtype)
    assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous
    assert a.ctypes.data % ALIGNMENT == 0
    assert as_aligned(a) is a
    b = np.arange(int(np.prod(shape)) + 1, dtype=dtype)[1:].reshape(shape)  # off by itemsize
    c = as_aligned(b)
    assert c.ctypes.data % ALIGNMENT == 0
    np.testing.assert_array_equal(b, c)


def test_embeddings_file_roundtrip_and_atomic(tmp_path, monkeypatch):
    e = Embeddings(
        embeddings=np.random.default_rng(0).random((5, 4), dtype=np.float32),
        labels=np.arange(5, dtype=np.int64),
        ids=np.arange(5, dtype=np.int64) * 2,
        metadata={"format": EMBEDDINGS_FORMAT, "class_names": '["a"]', "items": "[]"},
    )
    out = store.save_embeddings(e, tmp_path / "e.safetensors")
    back = store.load_embeddings(out)
    np.testing.assert_array_equal(back.embeddings, e.embeddings)
    np.testing.assert_array_equal(back.ids, e.ids)
    assert back.metadata == e.metadata and back.class_names == ["a"]
    assert back.embeddings.ctypes.data % ALIGNMENT == 0
    # a failure while writing leaves nothing behind: no partial file, no temp file
    import safetensors.numpy

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        store.save_embeddings(e, tmp_path / "f.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.safetensors"]
    with pytest.raises(EmbedError, match="directory"):
        check_output_path(tmp_path / "nope" / "x.safetensors")


@pytest.mark.parametrize(
    ("y", "shape", "how"),
    [
        (torch.ones(2, 5), (2, 5), "as is"),
        (torch.arange(24.0).view(2, 3, 4), (2, 4), "token 0 (CLS)"),
        (torch.arange(48.0).view(2, 3, 4, 2), (2, 3), "spatial mean"),
        ([torch.ones(2, 3, 4, 4), torch.ones(2, 6)], (2, 6), "last output"),
    ],
    ids=["2d", "tokens", "maps", "list"],
)
def test_pool_features(y, shape, how):
    out, got_how = pool_features(y)
    assert tuple(out.shape) == shape and got_how == how
    if how == "token 0 (CLS)":
        torch.testing.assert_close(out, y[:, 0])
    if how == "spatial mean":
        torch.testing.assert_close(out, y.mean(dim=(2, 3)))


CUDA = torch.cuda.is_available()


@pytest.mark.parametrize(
    "device",
    [
        None,
        "cpu",
        torch.device("cpu"),
        # a device the batches must be moved to; "meta" stands in for a GPU on CPU machines
        "meta",
        pytest.param(
            "cuda",
            marks=[pytest.mark.cuda, pytest.mark.skipif(not CUDA, reason="needs a CUDA device")],
        ),
    ],
    ids=repr,
)
def test_loader_yields_batches_on_the_device(device):
    ds = load_dataset("digits", limit=11)
    pre = Preprocess(size=(8, 8))
    batches = list(iter_batches(ds, pre, 4, device=device))
    want = torch.device("cpu" if device is None else device)
    assert [b[0].device.type for b in batches] == [want.type] * 3
    assert [tuple(b[0].shape) for b in batches] == [(4, 3, 8, 8), (4, 3, 8, 8), (3, 3, 8, 8)]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), np.arange(11))
    ref = preprocess_batch(ds.images, pre)
    if want.type == "cpu":
        # no move on the CPU: the loader's own tensors, nothing copied or pinned
        assert not any(b[0].is_pinned() for b in batches)
        torch.testing.assert_close(torch.cat([b[0] for b in batches]), ref)
    elif want.type == "cuda":
        torch.testing.assert_close(torch.cat([b[0].cpu() for b in batches]), ref)


@pytest.mark.cuda
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_loader_pins_batches_for_cuda():
    ds = load_dataset("digits", limit=8)
    pinned = []
    real_pin = torch.Tensor.pin_memory

    def spy(self, *args, **kwargs):
        out = real_pin(self, *args, **kwargs)
        pinned.append(out.is_pinned())
        return out

    mp = pytest.MonkeyPatch()
    mp.setattr(torch.Tensor, "pin_memory", spy)
    try:
        list(iter_batches(ds, Preprocess(size=(8, 8)), 4, device="cuda"))
    finally:
        mp.undo()
    assert pinned == [True, True]


def test_embed_dataset_feeds_the_adapter_its_device():
    import adapters
    import specs

    backbone = adapters.build(specs.ModuleSpec(class_path="torch.nn.Flatten"), device="cpu")
    assert input_device(backbone) is None  # the CPU: batches stay where they are made
    ds = load_dataset("digits", limit=6)
    pre = Preprocess(size=(4, 4), channels=1, mean=(0.0,), std=(1.0,))
    emb = embed_dataset(backbone, ds, pre, batch_size=4, progress=False)
    np.testing.assert_allclose(
        emb.embeddings, preprocess_batch(ds.images, pre).reshape(6, -1).numpy()
    )
    # batches sent elsewhere reach forward there, which names the mismatch
    with pytest.raises(ValueError, match="argument x is on device 'meta', expected 'cpu'"):
        embed_dataset(backbone, ds, pre, batch_size=4, progress=False, device="meta")


@pytest.mark.parametrize("n", [1, 3, 5, 9])
def test_embeddings_first_rows(n):
    e = Embeddings(
        embeddings=as_aligned(np.arange(20, dtype=np.float32).reshape(5, 4)),
        labels=np.array([0, 1, 0, 1, 2]),
        ids=np.array([7, 3, 9, 1, 4]),
        metadata={"items": '["a", "b", "c", "d", "e"]', "data": "x"},
    )
    head = e.first(n)
    k = min(n, 5)
    np.testing.assert_array_equal(head.embeddings, e.embeddings[:k])
    assert head.embeddings.ctypes.data == e.embeddings.ctypes.data  # a prefix view, no copy
    assert head.labels.tolist() == e.labels[:k].tolist() and head.ids.tolist() == e.ids[:k].tolist()
    assert head.items == ["a", "b", "c", "d", "e"][:k] and head.metadata["data"] == "x"


@pytest.mark.parametrize("n", [0, -2, 1.5, True])
def test_embeddings_first_refuses_bad_limits(n):
    e = Embeddings(np.zeros((2, 2), np.float32), np.zeros(2), np.arange(2), {})
    with pytest.raises(EmbedError, match=r"--limit: expected an integer >= 1"):
        e.first(n)
