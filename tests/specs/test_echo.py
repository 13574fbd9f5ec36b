"""What errors echo and what is printed or stored of a spec: long values shortened, the
credentials of URLs hidden (`specs/_src/echo.py`, used by `SpecError`, `BuildError`, the CLI's
error line and `specs.dumps(..., redact=True)`)."""

from __future__ import annotations

import pytest

import specs
from specs import SpecError
from specs._src.echo import MAX_MESSAGE, clean_message, redact, shorten

#: (text, what it must become)
REDACTED = [
    ("https://user:TOKEN@host/w.pth", "https://***@host/w.pth"),
    ("https://TOKEN@github.com/org/repo", "https://***@github.com/org/repo"),
    ("s3://AKIA:SECRET@bucket/key.pth", "s3://***@bucket/key.pth"),
    (
        "https://acct.blob.core.windows.net/c/w.pth?sv=2022&sig=SECRET&se=2030",
        "https://acct.blob.core.windows.net/c/w.pth?sv=2022&sig=***&se=2030",
    ),
    (
        "https://b.s3.amazonaws.com/w?X-Amz-Credential=SECRET&X-Amz-Signature=SECRET&x=1",
        "https://b.s3.amazonaws.com/w?X-Amz-Credential=***&X-Amz-Signature=***&x=1",
    ),
    ("https://h/w?token=SECRET#access_token=SECRET", "https://h/w?token=***#access_token=***"),
    ("see https://u:SECRET@h/a and https://h/b?api_key=SECRET.", None),
    # nothing to hide: left as it is
    ("https://huggingface.co/org/model/resolve/main/w.pth", None),
    ("https://h/w.pth?download=true&v=2", None),
    ("/data/user@host/w.pth", None),
    ("hub/model@main", None),
]


@pytest.mark.parametrize(("text", "want"), REDACTED)
def test_redact_hides_url_credentials_and_nothing_else(text: str, want: str | None) -> None:
    got = redact(text)
    assert "SECRET" not in got and "TOKEN" not in got
    if want is not None:
        assert got == want
    elif "SECRET" not in text and "TOKEN" not in text:
        assert got == text


def test_redact_walks_nested_data_and_hides_values_of_credential_keys() -> None:
    data = {
        "checkpoint_path": "https://u:SECRET@h/w.pth",
        "model_kwargs": {"token": "hf_SECRET", "hf_token": "SECRET", "use_auth_token": True},
        "transforms": [{"url": "https://h/x?sig=SECRET"}],
        "num_tokens": "3",
        "n": 3,
    }
    got = redact(data)
    assert "SECRET" not in repr(got)
    assert got["model_kwargs"]["use_auth_token"] is True and got["num_tokens"] == "3"
    assert data["model_kwargs"]["token"] == "hf_SECRET"  # the input is left alone


def test_shorten_keeps_both_ends_and_says_how_much_is_left_out() -> None:
    assert shorten("abc") == "abc"
    text = "a" * 100 + "b" * 4_999_800 + "c" * 100
    short = shorten(text)
    assert len(short) < 250 and short.startswith("a" * 50) and short.endswith("c" * 40)
    assert "characters]" in short


def test_clean_message_bounds_long_runs_and_the_whole() -> None:
    message = f"model_name: unknown registry name {'x' * 5_000_000!r}; did you mean 'a'?"
    assert len(clean_message(message)) < 400
    assert clean_message(message).endswith("did you mean 'a'?")
    spaced = " ".join(["word"] * 2_000_000)
    assert len(clean_message(spaced)) <= MAX_MESSAGE + 100


def test_spec_error_echoes_a_huge_value_shortly() -> None:
    name = "x" * 5_000_000
    with pytest.raises(SpecError) as info:
        specs.structure({"source": "timm", name: 1})
    assert len(str(info.value)) < 2000
    assert info.value.location == (name,)  # the attributes keep what was given


def test_spec_error_hides_a_token_interpolated_into_a_url(monkeypatch) -> None:
    monkeypatch.setenv("FMA_E_TOKEN", "SECRET-TOKEN")
    device = "https://user:${oc.env:FMA_E_TOKEN}@host/x"  # a value in the wrong field
    with pytest.raises(SpecError) as info:
        specs.structure({"source": "onnx", "path": "m.onnx", "device": device})
    assert info.value.path == "device"
    assert info.value.got == "https://user:SECRET-TOKEN@host/x"
    assert "SECRET-TOKEN" not in str(info.value) and "https://***@host/x" in str(info.value)


def test_dumps_redact_hides_credentials_and_still_loads(monkeypatch) -> None:
    monkeypatch.setenv("FMA_E_TOKEN", "SECRET-TOKEN")
    spec = specs.loads(
        "source: timm\nmodel_name: resnet18\npretrained: false\n"
        "checkpoint_path: https://user:${oc.env:FMA_E_TOKEN}@host/w.pth?sig=SECRET-SIG\n"
    )
    assert spec.checkpoint_path == "https://user:SECRET-TOKEN@host/w.pth?sig=SECRET-SIG"
    assert specs.loads(specs.dumps(spec)) == spec  # by default: the spec, whole
    for fmt in ("yaml", "json"):
        text = specs.dumps(spec, fmt, redact=True)
        assert "SECRET" not in text
        assert specs.loads(text).checkpoint_path == "https://***@host/w.pth?sig=***"
