"""The stored line of an audit entry, byte for byte (pure; no I/O).

A line is the entry's canonical body with the chain fields appended, then a newline::

    canonical(body)[:-1] + b',"prev_hash":"' + prev_hash + b'","hash":"' + hash + b'"'
                         + (b',"writer":' + writer JSON)?  + b'}' + b'\\n'

so the bytes before ``,"prev_hash":"`` plus ``}`` ARE ``canonical(body)``, the bytes the hash
covers, and a verifier hashes them as stored. Writer metadata (one JSON object, not hashed)
may only come last. Anything else (duplicate keys, other escapes, reordered keys, spaces, a
CRLF or a byte order mark) is a line no Docket writer wrote: :func:`inspect_line` says what
differs.

One exception keeps old logs verifying: writers before this layout escaped U+2028 and U+2029
as ``\\u2028``/``\\u2029`` inside the body (the canonical form keeps them literal). Such a line
is accepted as the *legacy* form of its canonical bytes, and its hash is checked over the
canonical bytes (which is what was hashed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from audit.canonical import MAX_NESTING, CanonicalError, canonical, check_canonicalizable
from audit.chain import ENTRY_TAG, UNHASHED_KEYS, is_hex64

__all__ = [
    "BOM",
    "TAIL_MARK",
    "LineCheck",
    "inspect_line",
    "legacy_form",
    "max_depth",
    "render_line",
    "split_line",
]

TAIL_MARK = b',"prev_hash":"'
_HASH_SEP = b'","hash":"'
_WRITER = b',"writer":'
# len(',"prev_hash":"') + 64 + len('","hash":"') + 64 + len('"')
_TAIL_LEN = 14 + 64 + 10 + 64 + 1
BOM = b"\xef\xbb\xbf"
_LS, _PS = "\u2028".encode(), "\u2029".encode()
_HEX = b"0123456789abcdef"


def render_line(entry: Mapping[str, Any], body: bytes | None = None) -> bytes:
    """The stored line of ``entry`` (with ``prev_hash`` and ``hash``; ``writer`` optional),
    newline included. ``body``: ``canonical(hashed body)`` when the caller already has it."""
    if body is None:
        body = canonical({k: v for k, v in entry.items() if k not in UNHASHED_KEYS})
    prev, digest = str(entry["prev_hash"]).encode(), str(entry["hash"]).encode()
    tail = TAIL_MARK + prev + _HASH_SEP + digest + b'"'
    if "writer" in entry:
        tail += _WRITER + orjson.dumps(entry["writer"])
    return body[:-1] + (tail if len(body) > 2 else tail[1:]) + b"}\n"


def split_line(raw: bytes) -> tuple[bytes, bytes, bytes, bytes | None] | None:
    """(body, prev_hash, hash, writer) of a line in the exact layout, else None.

    ``body`` is the stored hashed bytes (``...}``), the hashes are their 64 lowercase hex
    characters, ``writer`` the writer object's bytes or None. Only the layout is checked here:
    the body may still be non-canonical and ``writer`` may still not be JSON."""
    k = raw.rfind(TAIL_MARK)
    if k < 1 or raw[-1:] != b"}":
        return None
    end = k + _TAIL_LEN
    if raw[k + 78 : k + 88] != _HASH_SEP or raw[end - 1 : end] != b'"':
        return None
    prev, digest = raw[k + 14 : k + 78], raw[k + 88 : k + 152]
    if prev.translate(None, _HEX) or digest.translate(None, _HEX):
        return None
    rest = raw[end:]
    if rest == b"}":
        writer = None
    elif rest[:10] == _WRITER:
        writer = rest[10:-1]
    else:
        return None
    return raw[:k] + b"}", prev, digest, writer


def legacy_form(canonical_body: bytes) -> bytes:
    """How writers before the byte-exact layout stored ``canonical_body``: U+2028 and U+2029
    escaped (the only difference)."""
    return canonical_body.replace(_LS, b"\\u2028").replace(_PS, b"\\u2029")


def max_depth(raw: bytes) -> int:
    """The deepest bracket nesting in JSON text (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x7B, 0x5B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x7D, 0x5D):
            depth -= 1
    return deepest


@dataclass(slots=True)
class LineCheck:
    """What one line is.

    ``entry``: the whole line as a JSON reader parses it (for a duplicated key, the last value
    wins, as in orjson, jq and Python), or None if it is not a JSON object. ``code``/``message``:
    ``unparseable``, ``invalid_entry`` or ``non_canonical`` and why, or None for a line in the
    exact layout. ``recomputed``: the hash recomputed over the canonical form of the parsed body
    (None when it cannot be computed); ``found``/``expected``: what differs, for a finding."""

    entry: dict[str, Any] | None
    code: str | None = None
    message: str | None = None
    recomputed: str | None = None
    found: str | None = None
    expected: str | None = None
    legacy: bool = False  # stored in the pre-byte-exact form (U+2028/U+2029 escaped)


def _hash(prev_hex: str, body: bytes) -> str:
    return hashlib.sha256(ENTRY_TAG + bytes.fromhex(prev_hex) + body).hexdigest()


def inspect_line(raw: bytes) -> LineCheck:
    """Everything about one line (without its newline): the slow, thorough path. Verify's
    fast path gives the same verdict on every line (tests check both agree)."""
    if not raw.strip():
        return LineCheck(None, "unparseable", "empty line")
    text = raw[len(BOM) :] if raw.startswith(BOM) else raw
    try:
        entry = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            return LineCheck(
                None,
                "invalid_entry",
                f"containers nested {max_depth(text)} deep (at most {MAX_NESTING} allowed, the "
                "same limit the writer applies)",
            )
        return LineCheck(None, "unparseable", f"line is not valid JSON ({exc})")
    if type(entry) is not dict:
        return LineCheck(None, "unparseable", f"not a JSON object but {type(entry).__name__}")
    prev, digest = entry.get("prev_hash"), entry.get("hash")
    if not is_hex64(digest):
        return LineCheck(
            entry, "invalid_entry", f"hash must be 64 lowercase hex characters, got {digest!r}"
        )
    if not is_hex64(prev):
        return LineCheck(
            entry, "invalid_entry", f"prev_hash must be 64 lowercase hex characters, got {prev!r}"
        )
    writer = entry.get("writer", None)
    if "writer" in entry and type(writer) is not dict:
        return LineCheck(entry, "invalid_entry", "writer metadata must be a JSON object")
    body = {k: v for k, v in entry.items() if k not in UNHASHED_KEYS}
    try:
        check_canonicalizable(body)
    except CanonicalError as exc:
        return LineCheck(entry, "invalid_entry", f"non-canonical value: {exc}")
    canon = canonical(body)
    recomputed = _hash(str(prev), canon)
    split = split_line(raw)
    if split is not None:
        stored, _p, _h, writer_bytes = split
        writer_ok = writer_bytes is None or _is_object(writer_bytes)
        if writer_ok and stored == canon:
            return LineCheck(entry, recomputed=recomputed)
        if writer_ok and stored == legacy_form(canon):
            return LineCheck(entry, recomputed=recomputed, legacy=True)
    expected = canon[:-1] + TAIL_MARK + str(prev).encode() + _HASH_SEP + str(digest).encode()
    expected += b'"' + (_WRITER + orjson.dumps(writer) if "writer" in entry else b"") + b"}"
    why, found, wanted = _difference(raw, expected)
    return LineCheck(
        entry,
        "non_canonical",
        f"the stored line is not the canonical form of its entry: {why}; a Docket writer never "
        "writes this, and JSON readers may not agree on what it says",
        recomputed,
        found,
        wanted,
    )


def _is_object(raw: bytes) -> bool:
    try:
        return type(orjson.loads(raw)) is dict
    except orjson.JSONDecodeError:
        return False


def _duplicate_keys(raw: bytes) -> list[str]:
    """JSON paths of keys that appear twice in one object."""
    found: list[str] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                found.append(key)
            seen.add(key)
        return dict(pairs)

    try:
        json.loads(raw.decode("utf-8", errors="replace"), object_pairs_hook=hook)
    except (ValueError, RecursionError):
        return []
    return found


def _unsorted_keys(raw: bytes) -> list[str]:
    out: list[str] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if keys != sorted(keys) and len(set(keys)) == len(keys):
            out.append(", ".join(keys[:6]) + (", ..." if len(keys) > 6 else ""))
        return dict(pairs)

    try:
        json.loads(raw.decode("utf-8", errors="replace"), object_pairs_hook=hook)
    except (ValueError, RecursionError):
        return []
    return out


def _snippet(data: bytes, at: int) -> str:
    piece = data[max(0, at - 20) : at + 30]
    return piece.decode("utf-8", errors="backslashreplace")


def _difference(raw: bytes, expected: bytes) -> tuple[str, str, str]:
    """(what differs, found snippet, expected snippet) between a stored line and its
    canonical form."""
    reasons: list[str] = []
    body = raw
    if body.startswith(BOM):
        reasons.append("it starts with a UTF-8 byte order mark")
        body = body[len(BOM) :]
    stripped = body.rstrip(b" \t\r\n\f\v")
    if stripped != body:
        tail = body[len(stripped) :]
        reasons.append(
            "it ends in a carriage return (CRLF line ending)"
            if tail == b"\r"
            else f"it ends in whitespace ({tail!r})"
        )
        body = stripped
    dups = _duplicate_keys(body)
    if dups:
        reasons.append(
            "duplicate key " + ", ".join(repr(k) for k in dups) + " (readers disagree on which "
            "of the values counts: one may show a forged value)"
        )
    unsorted = _unsorted_keys(body)
    if unsorted:
        reasons.append("keys not in sorted order (" + "; ".join(unsorted[:3]) + ")")
    at = next(
        (i for i, (a, b) in enumerate(zip(body, expected, strict=False)) if a != b),
        min(len(body), len(expected)),
    )
    if body != expected and not reasons:
        found_piece = body[at : at + 12]
        if b"\\u" in found_piece[:6] or b"\\/" in found_piece[:6]:
            reasons.append(f"characters escaped differently at byte {at}")
        elif found_piece[:1] in (b" ", b"\t", b"\r", b"\n"):
            reasons.append(f"whitespace between tokens at byte {at}")
        else:
            reasons.append(f"the bytes differ from byte {at} on")
    if not reasons:
        reasons.append("the layout differs")
    return "; ".join(reasons), _snippet(body, at), _snippet(expected, at)
