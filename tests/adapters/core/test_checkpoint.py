"""Checkpoints: local or fsspec, safetensors or weights_only torch files, unwrapping,
prefix stripping, strict key errors with counts, sha256 verified before loading."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import fsspec
import pytest
import torch
from safetensors.torch import save_file

import adapters
import specs

INIT = {"in_features": 6, "out_features": 3}


def linear_spec(path: str, **kw) -> specs.ModuleSpec:
    return specs.ModuleSpec(
        class_path="torch.nn.Linear", init_args=INIT, checkpoint_path=path, **kw
    )


def weights(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"weight": torch.randn(3, 6, generator=g), "bias": torch.randn(3, generator=g)}


def write(path: Path, kind: str, state: dict) -> Path:
    if kind == "safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


LAYOUTS = [
    ("plain.pt", "torch", lambda sd: sd, {}),
    ("wrapped.pth", "torch", lambda sd: {"state_dict": sd, "epoch": 3}, {}),
    ("nested.bin", "torch", lambda sd: {"model": {"state_dict": sd}}, {}),
    (
        "ddp.pt",
        "torch",
        lambda sd: {f"module.{k}": v for k, v in sd.items()},
        {"checkpoint_prefix": "module."},
    ),
    ("plain.safetensors", "safetensors", lambda sd: sd, {}),
    (
        "prefixed.safetensors",
        "safetensors",
        lambda sd: {f"backbone.{k}": v for k, v in sd.items()},
        {"checkpoint_prefix": "backbone."},
    ),
]


@pytest.mark.parametrize(("name", "kind", "layout", "kw"), LAYOUTS, ids=[c[0] for c in LAYOUTS])
def test_checkpoint_layouts_load(tmp_path, name, kind, layout, kw) -> None:
    state = weights()
    path = write(tmp_path / name, kind, layout(state))
    backbone = adapters.build(linear_spec(str(path), **kw))
    for k, v in state.items():
        torch.testing.assert_close(backbone.params[k], v, rtol=0, atol=0)
    x = torch.randn(4, 6)
    torch.testing.assert_close(
        backbone(x), x @ state["weight"].T + state["bias"], rtol=0, atol=1e-6
    )


def test_fsspec_url(tmp_path) -> None:
    state = weights(1)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with fsspec.open("memory://ckpt/weights.pt", "wb") as f:
        f.write(buffer.getvalue())
    backbone = adapters.build(linear_spec("memory://ckpt/weights.pt"))
    torch.testing.assert_close(backbone.params["weight"], state["weight"], rtol=0, atol=0)
    local = write(tmp_path / "w.pt", "torch", state)
    assert torch.equal(adapters.build(linear_spec(f"file://{local}")).params["bias"], state["bias"])


def test_sha256_is_verified(tmp_path) -> None:
    path = write(tmp_path / "w.safetensors", "safetensors", weights())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    backbone = adapters.build(linear_spec(str(path), checkpoint_sha256=digest.upper()))
    assert torch.equal(backbone.params["bias"], weights()["bias"])
    wrong = "0" * 64
    with pytest.raises(
        adapters.BuildError, match=r"checkpoint_sha256: the sha256 of .* does not match"
    ) as info:
        adapters.build(linear_spec(str(path), checkpoint_sha256=wrong))
    assert digest not in str(info.value)  # verified, not printed


def test_strict_error_lists_keys_with_counts(tmp_path) -> None:
    state = {**{f"extra.{i}": torch.zeros(1) for i in range(7)}, "weight": torch.zeros(3, 6)}
    path = write(tmp_path / "bad.pt", "torch", state)
    with pytest.raises(adapters.BuildError) as info:
        adapters.build(linear_spec(str(path)))
    message = str(info.value)
    assert message.startswith("checkpoint_path:")
    assert "1 missing key (bias)" in message
    assert "7 unexpected keys (extra.0, extra.1, extra.2, extra.3, extra.4, ...)" in message


def test_non_strict_loads_matching_keys_only(tmp_path) -> None:
    state = {"weight": weights()["weight"], "unused": torch.zeros(2)}
    path = write(tmp_path / "partial.pt", "torch", state)
    backbone = adapters.build(linear_spec(str(path), strict=False))
    assert torch.equal(backbone.params["weight"], state["weight"])


def test_prefix_hint_and_shape_mismatch(tmp_path) -> None:
    prefixed = write(tmp_path / "p.pt", "torch", {f"module.{k}": v for k, v in weights().items()})
    with pytest.raises(
        adapters.BuildError, match=r"share the prefix 'module\.': set checkpoint_prefix"
    ):
        adapters.build(linear_spec(str(prefixed)))
    wrong = write(tmp_path / "s.pt", "torch", {"weight": torch.zeros(3, 5), "bias": torch.zeros(3)})
    with pytest.raises(adapters.BuildError, match=r"weight: checkpoint \(3, 5\) vs model \(3, 6\)"):
        adapters.build(linear_spec(str(wrong)))


class NotATensor:
    pass


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"checkpoint_path: checkpoint file .* does not exist"),
        (
            b"not a checkpoint",
            r"checkpoint_path: cannot load .* with torch.load\(weights_only=True\)",
        ),
        ("pickle", r"checkpoint_path: checkpoint .* was not loaded: it pickles 1 Python object"),
        ("no-tensors", r"checkpoint_path: .* does not hold a state dict of tensors"),
    ],
    ids=["missing", "garbage", "pickled-object", "no-tensors"],
)
def test_bad_checkpoint_files(tmp_path, content, message) -> None:
    path = tmp_path / "ckpt.pt"
    if content == "pickle":
        torch.save({"weight": NotATensor()}, path)
    elif content == "no-tensors":
        torch.save({"epoch": 3, "lr": 0.1}, path)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(adapters.BuildError, match=message):
        adapters.build(linear_spec(str(path)))


def test_remote_checkpoint_while_offline_fails_fast(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(adapters.BuildError, match="this process is offline"):
        adapters.build(linear_spec("https://example.invalid/weights.pt"))


def test_timm_checkpoint_round_trip(tmp_path) -> None:
    spec = specs.TimmSpec("resnet10t", pretrained=False, model_kwargs={"num_classes": 0})
    source = adapters.build(spec)
    state = {k: v + 1.0 if v.is_floating_point() else v for k, v in source.params.items()}
    path = write(
        tmp_path / "r.safetensors", "safetensors", {k: v.contiguous() for k, v in state.items()}
    )
    loaded = adapters.build(
        specs.TimmSpec(
            "resnet10t", pretrained=True, checkpoint_path=str(path), model_kwargs={"num_classes": 0}
        )
    )
    for k, v in state.items():
        torch.testing.assert_close(loaded.params[k], v, rtol=0, atol=0)


def _mapped_ranges(path: Path) -> list[tuple[int, int]]:
    """Address ranges of this process that map ``path`` (from /proc/self/maps)."""
    target = str(path.resolve())
    ranges = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5] == target:
            start, end = (int(x, 16) for x in parts[0].split("-"))
            ranges.append((start, end))
    return ranges


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc/self/maps")
@pytest.mark.parametrize("kind", ["safetensors", "torch"])
def test_local_checkpoint_is_memory_mapped_after_a_streamed_hash(tmp_path, kind) -> None:
    from adapters._src.checkpoint import read_state_dict

    state = {"weight": torch.randn(64, 64), "bias": torch.randn(64)}
    path = write(tmp_path / f"w.{'safetensors' if kind == 'safetensors' else 'pt'}", kind, state)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = read_state_dict(str(path), sha256=digest)
    ranges = _mapped_ranges(path)
    assert ranges, "the checkpoint file is not memory-mapped"
    for key, tensor in loaded.items():
        assert any(lo <= tensor.data_ptr() < hi for lo, hi in ranges), key
        torch.testing.assert_close(tensor, state[key], rtol=0, atol=0)
    with pytest.raises(adapters.BuildError, match="checkpoint_sha256: the sha256 of"):
        read_state_dict(str(path), sha256="f" * 64)


def test_hash_over_many_chunks_equals_hashlib(tmp_path, monkeypatch) -> None:
    from adapters._src import checkpoint

    path = tmp_path / "w.safetensors"
    save_file({"weight": torch.randn(50, 50)}, str(path))
    monkeypatch.setattr(checkpoint, "HASH_CHUNK", 1000)  # the file is ~10 chunks
    assert path.stat().st_size > 5 * checkpoint.HASH_CHUNK
    assert checkpoint.file_sha256(str(path)) == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(adapters.BuildError, match=r"checkpoint_path: checkpoint file .* not exist"):
        checkpoint.file_sha256(str(tmp_path / "absent.safetensors"))


def test_legacy_torch_file_still_loads(tmp_path) -> None:
    path = tmp_path / "legacy.pt"
    torch.save(weights(2), path, _use_new_zipfile_serialization=False)
    backbone = adapters.build(linear_spec(str(path)))
    assert torch.equal(backbone.params["weight"], weights(2)["weight"])


class Custom(dict):
    """A dict subclass: weights_only refuses its global."""


@pytest.mark.parametrize("where", ["local", "memory"])
def test_refused_pickle_names_the_global_without_unsafe_advice(tmp_path, where) -> None:
    import traceback

    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(3, 6), "bias": torch.zeros(3), "meta": Custom()}, buffer)
    if where == "local":
        path = str(tmp_path / "pickled.pt")
        Path(path).write_bytes(buffer.getvalue())
    else:
        path = "memory://pickled/ckpt.pt"
        with fsspec.open(path, "wb") as f:
            f.write(buffer.getvalue())
    with pytest.raises(adapters.BuildError) as info:
        adapters.build(linear_spec(path))
    message = str(info.value)
    assert message.startswith("checkpoint_path: checkpoint ")
    assert f"{Custom.__module__}.Custom" in message
    shown = "".join(traceback.format_exception(info.value))
    assert "weights_only=False" not in shown.replace(" ", "")
    assert "`weights_only` set to `False`" not in shown


#: each loader entry point, run on a path that is not a regular file, in a child process whose
#: heap is capped: reading /dev/zero would otherwise grow without end, and a FIFO would hang
_NON_REGULAR = """
import json, sys
import adapters, specs
from adapters._src import checkpoint

def spec(path, **kw):
    return specs.ModuleSpec(class_path="torch.nn.Linear",
        init_args={"in_features": 6, "out_features": 3}, checkpoint_path=path, **kw)

for kind, path in json.loads(sys.argv[1]).items():
    calls = {
        "build": lambda: adapters.build(spec(path)),
        "build with sha256": lambda: adapters.build(spec(path, checkpoint_sha256="0" * 64)),
        "file_sha256": lambda: checkpoint.file_sha256(path),
        "read_bytes": lambda: checkpoint.read_bytes(path),
    }
    for name, call in calls.items():
        try:
            call()
            outcome = "no error"
        except BaseException as err:
            outcome = f"{type(err).__name__}: {err}"
        print(json.dumps([kind, name, outcome]), flush=True)
"""
NON_REGULAR_KINDS = {
    "dev-zero": "a character device",
    "fifo": "a FIFO (named pipe)",
    "link-to-dev-zero": "a character device",
    "directory": "a directory",
}
#: seconds the child may take (imports included) before it counts as hung
HANG_AFTER = 90


def _cap_heap() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_DATA, (2 << 30, 2 << 30))


@pytest.fixture(scope="module")
def non_regular(tmp_path_factory) -> dict[str, tuple[str, dict[str, str]]]:
    """``{kind: (path, {call: outcome})}`` for every kind of NON_REGULAR_KINDS."""
    import json
    import os
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("non-regular")
    os.mkfifo(root / "pipe.pth")
    (root / "zero.pth").symlink_to("/dev/zero")
    (root / "folder.pth").mkdir()
    paths = {
        "dev-zero": "/dev/zero",
        "fifo": str(root / "pipe.pth"),
        "link-to-dev-zero": str(root / "zero.pth"),
        "directory": str(root / "folder.pth"),
    }
    repo = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(repo), "FM_ADAPTERS_CACHE": str(root / "cache")}
    try:
        run = subprocess.run(
            [sys.executable, "-c", _NON_REGULAR, json.dumps(paths)],
            capture_output=True,
            text=True,
            env=env,
            timeout=HANG_AFTER,
            preexec_fn=_cap_heap,
        )
        stdout = run.stdout
    except subprocess.TimeoutExpired as err:
        out = err.stdout or b""
        stdout = out.decode() if isinstance(out, bytes) else out
    outcomes: dict[str, dict[str, str]] = {kind: {} for kind in paths}
    for line in stdout.splitlines():
        kind, call, outcome = json.loads(line)
        outcomes[kind][call] = outcome
    return {kind: (paths[kind], outcomes[kind]) for kind in paths}


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs os.mkfifo (POSIX)")
@pytest.mark.parametrize("kind", sorted(NON_REGULAR_KINDS))
def test_non_regular_checkpoint_is_refused_before_reading(non_regular, kind) -> None:
    path, outcomes = non_regular[kind]
    calls = ("build", "build with sha256", "file_sha256", "read_bytes")
    for call in calls:
        outcome = outcomes.get(call, f"hung: no answer within {HANG_AFTER} s")
        assert outcome.startswith(f"BuildError: checkpoint_path: checkpoint {path!r}"), (
            call,
            outcome,
        )
        assert f"is {NON_REGULAR_KINDS[kind]}, not a regular file; nothing was read" in outcome
        if kind == "link-to-dev-zero":
            assert "(a link to '/dev/zero')" in outcome


def test_link_to_a_checkpoint_file_still_loads(tmp_path) -> None:
    target = write(tmp_path / "w.pt", "torch", weights(3))
    link = tmp_path / "link.pt"
    link.symlink_to(target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    backbone = adapters.build(linear_spec(str(link), checkpoint_sha256=digest))
    assert torch.equal(backbone.params["weight"], weights(3)["weight"])


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_hash_reads_no_more_than_the_file_size() -> None:
    from adapters._src import checkpoint

    # a /proc file is regular with size 0 but yields text: only its size's worth is hashed
    proc = Path("/proc/self/status")
    assert proc.stat().st_size == 0 and proc.read_bytes()
    assert checkpoint.file_sha256(str(proc)) == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("sha256", [None, "0" * 64])
def test_nul_byte_in_checkpoint_path_names_the_field(tmp_path, sha256) -> None:
    path = str(write(tmp_path / "w.pt", "torch", weights())) + "\x00.bak"
    with pytest.raises(
        adapters.BuildError, match=r"^checkpoint_path: the path contains a NUL byte"
    ):
        adapters.build(linear_spec(path, checkpoint_sha256=sha256))
