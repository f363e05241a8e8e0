"""HMAC-SHA256 request signing for platform protocol v1 (pure, no I/O).

The signed message is ``f"{timestamp}.".encode() + body`` where ``timestamp`` is the sender's
Unix time in whole seconds, sent as ``X-Docket-Timestamp``. The signature travels as
``X-Docket-Signature: sha256=<lowercase hex>``. Receivers reject a missing or malformed header,
a wrong signature (compared in constant time) and a timestamp outside ``window_seconds`` of their
own clock, in either direction.

v1 signs the timestamp and the body only: method and path are not covered (see
docs/platform-protocol.md, "Known limits of v1").

**Responses** (contract 1.1): a platform signs its answer to a signed request with the same
secret and headers, over ``b"response." + f"{timestamp}.".encode() + request_signature + b"."
+ body``, where ``request_signature`` is the request's ``X-Docket-Signature`` value. The
``response.`` prefix keeps a response signature from ever verifying as a request (a request's
signed bytes start with a digit), and the request's signature binds the answer to the request
it answers: an answer recorded for one request cannot be replayed as the answer to another.
"""

from __future__ import annotations

import hashlib
import hmac
import re

TIMESTAMP_HEADER = "X-Docket-Timestamp"
SIGNATURE_HEADER = "X-Docket-Signature"
SIGNATURE_PREFIX = "sha256="
DEFAULT_WINDOW_SECONDS = 300

_TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE_RE = re.compile(r"^sha256=[0-9a-f]{64}$")


class SignatureError(Exception):
    """A request signature was missing, malformed, wrong, stale or from the future."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def signing_input(timestamp: int, body: bytes) -> bytes:
    """The exact bytes that are MACed: ``b"<timestamp>." + body``."""
    return f"{timestamp}.".encode("ascii") + body


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """Return ``"sha256=<hex>"``, the HMAC-SHA256 of ``f"{timestamp}."`` + body under secret."""
    if not secret:
        raise ValueError("signing secret must not be empty")
    if timestamp < 0:
        raise ValueError("timestamp must be a non-negative Unix time")
    digest = hmac.new(secret, signing_input(timestamp, body), hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def signed_headers(secret: bytes, body: bytes, now: int) -> dict[str, str]:
    """Headers to send with ``body``: ``X-Docket-Timestamp`` and ``X-Docket-Signature``."""
    return {TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: sign(secret, now, body)}


def response_signing_input(timestamp: int, request_signature: str, body: bytes) -> bytes:
    """The exact bytes a platform MACs for an answer: ``response.<ts>.<request sig>.<body>``."""
    return b"response." + f"{timestamp}.".encode("ascii") + request_signature.encode() + b"." + body


def sign_response(secret: bytes, timestamp: int, request_signature: str, body: bytes) -> str:
    """``"sha256=<hex>"`` for an answer to the request that carried ``request_signature``."""
    if not secret:
        raise ValueError("signing secret must not be empty")
    if timestamp < 0:
        raise ValueError("timestamp must be a non-negative Unix time")
    message = response_signing_input(timestamp, request_signature, body)
    return SIGNATURE_PREFIX + hmac.new(secret, message, hashlib.sha256).hexdigest()


def signed_response_headers(
    secret: bytes, request_signature: str, body: bytes, now: int
) -> dict[str, str]:
    """Headers a platform sends with an answer: ``X-Docket-Timestamp``, ``X-Docket-Signature``."""
    return {
        TIMESTAMP_HEADER: str(now),
        SIGNATURE_HEADER: sign_response(secret, now, request_signature, body),
    }


def verify_response(
    secret: bytes,
    timestamp: str | None,
    signature: str | None,
    request_signature: str,
    body: bytes,
    now: int,
    window_seconds: int = DEFAULT_WINDOW_SECONDS,
) -> None:
    """Check an answer's signature (same reasons as :func:`verify`); None if valid."""
    ts, given = _checked_headers(timestamp, signature, now, window_seconds)
    expected = sign_response(secret, ts, request_signature, body)
    if not hmac.compare_digest(expected.encode("ascii"), given.encode("ascii")):
        raise SignatureError("signature mismatch")


def _checked_headers(
    timestamp: str | None, signature: str | None, now: int, window_seconds: int
) -> tuple[int, str]:
    """The timestamp and signature headers, well-formed and within the window."""
    if timestamp is None or timestamp == "":
        raise SignatureError("missing timestamp")
    if signature is None or signature == "":
        raise SignatureError("missing signature")
    if not _TIMESTAMP_RE.match(timestamp):
        raise SignatureError("malformed timestamp")
    if not _SIGNATURE_RE.match(signature):
        raise SignatureError("malformed signature")
    ts = int(timestamp)
    if now - ts > window_seconds:
        raise SignatureError("stale timestamp")
    if ts - now > window_seconds:
        raise SignatureError("timestamp in the future")
    return ts, signature


def verify(
    secret: bytes,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: int,
    window_seconds: int = DEFAULT_WINDOW_SECONDS,
) -> None:
    """Check a received signature; return None if valid, raise SignatureError(reason) if not.

    ``timestamp`` and ``signature`` are the raw header values (None when absent).
    Reasons: ``missing timestamp``, ``missing signature``, ``malformed timestamp``,
    ``malformed signature``, ``stale timestamp``, ``timestamp in the future``,
    ``signature mismatch``.
    """
    ts, given = _checked_headers(timestamp, signature, now, window_seconds)
    expected = sign(secret, ts, body)
    if not hmac.compare_digest(expected.encode("ascii"), given.encode("ascii")):
        raise SignatureError("signature mismatch")
