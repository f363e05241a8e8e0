"""C2SP signed notes (c2sp.org/signed-note), Ed25519 keys and witness cosignatures.

A note is UTF-8 text ending in a newline, a blank line, then signature lines
``— <key name> base64(4-byte key ID || signature)``. Keys:

* log key, signature type 0x01: Ed25519 over the note text;
  ``key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4]``;
* witness key, type 0x04 (c2sp.org/tlog-cosignature, cosignature/v1): the signature is
  ``u64 timestamp (big-endian) || Ed25519("cosignature/v1\\ntime <t>\\n" || note text)``.

Public keys are *vkeys*: ``<name>+<hex key ID>+base64(type || 32-byte public key)``. Private keys
use the same shape as Go's golang.org/x/mod/sumdb/note: ``PRIVATE+KEY+<name>+<hex key ID>+
base64(type || 32-byte seed)``; they live in a file only the worker can read, never in Temporal
history, the audit log or any output.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "Note",
    "NoteError",
    "NoteKeyError",
    "NoteSignature",
    "SignerKey",
    "Verified",
    "VerifierKey",
    "generate_key",
    "load_signer",
    "load_verifier",
    "parse_note",
    "verify_note",
]

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
_ALG_NAMES = {ALG_ED25519: "Ed25519", ALG_COSIGNATURE_V1: "Ed25519 cosignature/v1"}
EM_DASH = "\u2014"
MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 64
# Key names: non-empty, no Unicode spaces, no "+".
_BAD_NAME = re.compile(r"[\s+]")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


class NoteError(ValueError):
    """A note, key or signature is malformed or does not verify (the message says which)."""


class NoteKeyError(NoteError):
    """A key file or vkey is malformed, unreadable or too widely readable."""


def _check_name(name: str, what: str) -> None:
    if not name or _BAD_NAME.search(name) or _CONTROL.search(name):
        raise NoteKeyError(f"{what} name {name!r} must be non-empty, without spaces or '+'")


def _key_id(name: str, alg: int, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()[:4]


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise NoteError(f"{what} is not valid base64") from None


def _cosigned_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: bytes  # 4 bytes
    signature: bytes  # what follows the key ID

    def line(self) -> str:
        blob = base64.b64encode(self.key_id + self.signature).decode()
        return f"{EM_DASH} {self.name} {blob}\n"


@dataclass(frozen=True, slots=True)
class Note:
    text: str  # the signed text, ending in a newline
    signatures: tuple[NoteSignature, ...]

    def render(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    def with_signatures(self, extra: Iterable[NoteSignature]) -> Note:
        sigs = list(self.signatures)
        for s in extra:
            if s not in sigs:
                sigs.append(s)
        return Note(self.text, tuple(sigs))


def parse_note(data: bytes | str) -> Note:
    """Parse a signed note; raises NoteError naming what is wrong (nothing is verified here)."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_NOTE_BYTES:
        raise NoteError(f"note is {len(raw)} bytes; at most {MAX_NOTE_BYTES} accepted")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError(f"note is not UTF-8 (byte {exc.start})") from None
    if _CONTROL.search(text):
        raise NoteError("note contains a control character other than newline (CRLF line ends?)")
    split = text.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line separating the text from its signatures")
    body, sig_block = text[: split + 1], text[split + 2 :]
    if not sig_block.endswith("\n"):
        raise NoteError("the signature block must end with a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has {len(lines)} signatures; at most {MAX_SIGNATURES} accepted")
    signatures = []
    for n, line in enumerate(lines, 1):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != EM_DASH:
            raise NoteError(f"signature line {n} is not '— <name> <base64>': {line[:80]!r}")
        name, blob = parts[1], _b64decode(parts[2], f"signature line {n}")
        if not name or "+" in name:
            raise NoteError(f"signature line {n}: bad key name {name!r}")
        if len(blob) < 5:
            raise NoteError(f"signature line {n}: signature too short")
        signatures.append(NoteSignature(name, blob[:4], blob[4:]))
    return Note(body, tuple(signatures))


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A public key (vkey) that verifies note signatures of one type."""

    name: str
    key_id: bytes
    alg: int
    public: bytes  # 32-byte Ed25519 public key

    @classmethod
    def parse(cls, vkey: str) -> VerifierKey:
        vkey = vkey.strip()
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise NoteKeyError(
                f"not a verifier key (vkey) '<name>+<hex key ID>+<base64 key>': {vkey[:80]!r}"
            )
        name, hex_id, blob = parts
        _check_name(name, "vkey")
        try:
            key_id = bytes.fromhex(hex_id)
        except ValueError:
            raise NoteKeyError(f"vkey {name}: key ID {hex_id!r} is not 8 hex digits") from None
        if len(key_id) != 4:
            raise NoteKeyError(f"vkey {name}: key ID {hex_id!r} is not 8 hex digits")
        raw = _b64decode(blob, f"vkey {name} key")
        if len(raw) != 33 or raw[0] not in _ALG_NAMES:
            raise NoteKeyError(
                f"vkey {name}: expected type 0x01 (Ed25519) or 0x04 (cosignature/v1) and a "
                "32-byte Ed25519 key"
            )
        alg, public = raw[0], raw[1:]
        if _key_id(name, alg, public) != key_id:
            raise NoteKeyError(f"vkey {name}: key ID {hex_id} does not match the key")
        return cls(name, key_id, alg, public)

    def vkey(self) -> str:
        blob = base64.b64encode(bytes([self.alg]) + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{blob}"

    def matches(self, sig: NoteSignature) -> bool:
        return sig.name == self.name and sig.key_id == self.key_id

    def verify(self, text: str, sig: NoteSignature) -> int | None:
        """Raise NoteError if ``sig`` (by this key) does not verify over ``text``; return the
        cosignature's timestamp (None for a plain Ed25519 signature)."""
        key = Ed25519PublicKey.from_public_bytes(self.public)
        try:
            if self.alg == ALG_ED25519:
                key.verify(sig.signature, text.encode())
                return None
            if len(sig.signature) != 72:
                raise NoteError(f"cosignature by {self.name} is not 8 + 64 bytes")
            timestamp = int.from_bytes(sig.signature[:8], "big")
            if timestamp >= 1 << 63:
                raise NoteError(f"cosignature by {self.name} has an impossible timestamp")
            key.verify(sig.signature[8:], _cosigned_message(text, timestamp))
            return timestamp
        except InvalidSignature:
            raise NoteError(
                f"signature by {self.name} ({self.key_id.hex()}) does not verify: the note "
                "was altered or signed by another key"
            ) from None


@dataclass(frozen=True, slots=True)
class Verified:
    key: VerifierKey
    timestamp: int | None  # cosignatures only


def verify_note(note: Note, keys: Sequence[VerifierKey]) -> list[Verified]:
    """Check every signature made by one of ``keys`` (others are ignored, as the spec says).

    Raises NoteError if a known key's signature fails (the whole note is rejected) or if no known
    key signed it."""
    verified: list[Verified] = []
    for sig in note.signatures:
        for key in keys:
            if key.matches(sig):
                verified.append(Verified(key, key.verify(note.text, sig)))
    if not verified:
        names = ", ".join(f"{k.name}+{k.key_id.hex()}" for k in keys) or "none given"
        raise NoteError(f"the note carries no signature by a trusted key ({names})")
    return verified


@dataclass(frozen=True, slots=True)
class SignerKey:
    """A private key that signs notes (type 0x01) or cosigns checkpoints (type 0x04)."""

    name: str
    alg: int
    private: Ed25519PrivateKey

    @property
    def public(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> bytes:
        return _key_id(self.name, self.alg, self.public)

    def verifier(self) -> VerifierKey:
        return VerifierKey(self.name, self.key_id, self.alg, self.public)

    def sign(self, text: str, *, timestamp: int | None = None) -> NoteSignature:
        if not text.endswith("\n"):
            raise NoteError("note text must end with a newline")
        if self.alg == ALG_ED25519:
            return NoteSignature(self.name, self.key_id, self.private.sign(text.encode()))
        if timestamp is None or not 0 < timestamp < 1 << 63:
            raise NoteError("a cosignature needs a positive POSIX timestamp")
        sig = self.private.sign(_cosigned_message(text, timestamp))
        return NoteSignature(self.name, self.key_id, timestamp.to_bytes(8, "big") + sig)

    def encode(self) -> str:
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
        )

        seed = self.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        blob = base64.b64encode(bytes([self.alg]) + seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{blob}\n"

    def __repr__(self) -> str:  # never print the key material
        return f"SignerKey({self.name!r}, {self.key_id.hex()}, alg={self.alg})"

    @classmethod
    def parse(cls, text: str, *, where: str = "key") -> SignerKey:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteKeyError(f"{where}: not a 'PRIVATE+KEY+<name>+<hex id>+<base64>' key")
        name, hex_id, blob = parts[2:]
        _check_name(name, where)
        try:
            raw = base64.b64decode(blob.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise NoteKeyError(f"{where}: the key is not valid base64") from None
        if len(raw) != 33 or raw[0] not in _ALG_NAMES:
            raise NoteKeyError(f"{where}: expected type 0x01 or 0x04 and a 32-byte Ed25519 seed")
        key = cls(name, raw[0], Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if key.key_id.hex() != hex_id.lower():
            raise NoteKeyError(f"{where}: key ID {hex_id} does not match the key")
        return key


def generate_key(name: str, alg: int = ALG_ED25519) -> SignerKey:
    _check_name(name, "key")
    if alg not in _ALG_NAMES:
        raise NoteKeyError(f"unknown signature type {alg:#04x}")
    return SignerKey(name, alg, Ed25519PrivateKey.generate())


def load_signer(path: str | os.PathLike[str], *, alg: int | None = None) -> SignerKey:
    """Read a private key file. Refuses a file that group or others may read (like ssh does)."""
    p = Path(path)
    try:
        st = p.stat()
        text = p.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise NoteKeyError(f"cannot read private key {p}: {exc}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise NoteKeyError(
            f"private key {p} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); "
            f"run: chmod 600 {p}"
        )
    key = SignerKey.parse(text, where=str(p))
    if alg is not None and key.alg != alg:
        raise NoteKeyError(
            f"{p}: expected a key of type {_ALG_NAMES[alg]}, got {_ALG_NAMES[key.alg]}"
        )
    return key


def load_verifier(spec: str) -> VerifierKey:
    """A vkey given inline or as the path of a file holding one."""
    text = spec
    if "+" not in spec or os.path.exists(spec):
        try:
            text = Path(spec).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise NoteKeyError(f"{spec!r} is neither a vkey nor a readable file: {exc}") from None
    return VerifierKey.parse(text)
