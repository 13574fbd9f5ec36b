"""Every public name of `adapters` imports and is what it says."""

from __future__ import annotations

import importlib

import pytest

import adapters

PUBLIC = sorted(adapters.__all__)


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_resolves(name) -> None:
    value = getattr(adapters, name)
    assert value is not None
    assert name in dir(adapters)


def test_callables_have_docs_and_hints() -> None:
    import inspect

    names = ("build", "register_source", "list_models", "register", "registry_spec")
    for name in (*names, "load_embeddings"):
        fn = getattr(adapters, name)
        assert inspect.getdoc(fn), name
        assert "return" in fn.__annotations__, name


def test_lazy_names_are_the_real_objects() -> None:
    assert adapters.transforms is importlib.import_module("adapters.transforms")
    assert callable(adapters.transforms.from_specs)
    onnx_export = importlib.import_module("adapters._src.runtimes.onnxruntime.export")
    assert adapters.export_onnx is onnx_export.export_onnx
    parity = importlib.import_module("adapters._src.runtimes.parity")
    assert adapters.parity is parity.parity
    assert adapters.ParityReport is parity.ParityReport
    assert adapters.heads is importlib.import_module("adapters.heads")
    assert callable(adapters.heads.fit)
    store = importlib.import_module("adapters._src.app.store")
    assert adapters.load_embeddings is store.load_embeddings  # what the README names


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        adapters.nope  # noqa: B018


def test_build_error_and_adapter_types() -> None:
    assert issubclass(adapters.BuildError, ValueError)
    fields = [a.name for a in adapters.Adapter.__attrs_attrs__]
    assert fields == ["forward", "params", "spec", "framework", "module", "info"]
