"""HMAC request signing: known answers, every rejection reason, constant-time compare."""

from __future__ import annotations

import contextlib
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from docket.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    sign,
    signed_headers,
    verify,
)

SECRET = b"test-secret"
NOW = 1_700_000_000


def test_known_answer_vector() -> None:
    body = b'{"a":1}'
    expected = hmac.new(SECRET, b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, body) == "sha256=" + expected
    assert sign(b"k", 0, b"") == "sha256=" + hmac.new(b"k", b"0.", hashlib.sha256).hexdigest()


def test_signed_headers_roundtrip() -> None:
    body = "xin chào".encode()
    headers = signed_headers(SECRET, body, NOW)
    assert headers[TIMESTAMP_HEADER] == str(NOW)
    verify(SECRET, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], body, NOW)


@pytest.mark.parametrize(
    ("timestamp", "signature", "reason"),
    [
        (None, "sha256=" + "0" * 64, "missing timestamp"),
        ("", "sha256=" + "0" * 64, "missing timestamp"),
        (str(NOW), None, "missing signature"),
        ("12a", "sha256=" + "0" * 64, "malformed timestamp"),
        ("-5", "sha256=" + "0" * 64, "malformed timestamp"),
        (str(NOW), "md5=abc", "malformed signature"),
        (str(NOW), "sha256=" + "A" * 64, "malformed signature"),
        (str(NOW), "sha256=" + "0" * 64, "signature mismatch"),
    ],
)
def test_rejections(timestamp: str | None, signature: str | None, reason: str) -> None:
    with pytest.raises(SignatureError) as info:
        verify(SECRET, timestamp, signature, b"{}", NOW)
    assert info.value.reason == reason


def test_stale_and_future_timestamps() -> None:
    body = b"{}"
    old = NOW - 301
    with pytest.raises(SignatureError, match="stale timestamp"):
        verify(SECRET, str(old), sign(SECRET, old, body), body, NOW)
    future = NOW + 301
    with pytest.raises(SignatureError, match="timestamp in the future"):
        verify(SECRET, str(future), sign(SECRET, future, body), body, NOW)
    edge = NOW - 300
    verify(SECRET, str(edge), sign(SECRET, edge, body), body, NOW)
    verify(SECRET, str(edge), sign(SECRET, edge, body), body, NOW, window_seconds=300)


def test_wrong_secret_and_tampered_body() -> None:
    body = b'{"x":1}'
    good = sign(SECRET, NOW, body)
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(b"other", str(NOW), good, body, NOW)
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(SECRET, str(NOW), good, b'{"x":2}', NOW)
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(SECRET, str(NOW + 1), good, body, NOW)


def test_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        sign(b"", NOW, b"")


@given(st.binary(max_size=512), st.integers(min_value=0, max_value=10**12 - 1))
def test_any_body_roundtrips(body: bytes, ts: int) -> None:
    verify(SECRET, str(ts), sign(SECRET, ts, body), body, ts)


@given(st.text(max_size=80), st.text(max_size=80), st.binary(max_size=64))
def test_verify_only_raises_signature_error(ts: str, sig: str, body: bytes) -> None:
    with contextlib.suppress(SignatureError):
        verify(SECRET, ts, sig, body, NOW)
