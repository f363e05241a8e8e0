"""SSH signatures (OpenSSH PROTOCOL.sshsig) and OpenSSH certificates, read and checked (pure).

The wire formats Docket's identity layer needs, nothing more:

- the SSH wire encoding (RFC 4251 ``string``, ``uint32``, ``uint64``, ``mpint``);
- public key blobs (RFC 4253/5656/8709, and the FIDO ``sk-`` types of OpenSSH
  PROTOCOL.u2f), their ``SHA256:`` fingerprints exactly as ``ssh-keygen -l`` prints them;
- OpenSSH certificates (PROTOCOL.certkeys), parsed field by field;
- SSH signature blobs (``ssh-ed25519``, ``ecdsa-sha2-nistp*``, ``rsa-sha2-256/512``,
  ``sk-ssh-ed25519@openssh.com``, ``sk-ecdsa-sha2-nistp256@openssh.com``), verified with
  ``cryptography``; the same routine checks an SSHSIG signature and a certificate's CA
  signature, which use the same format;
- the SSHSIG envelope and its armor (``-----BEGIN SSH SIGNATURE-----``), built and read.

No I/O, no clock, no randomness on the verifying side: this module runs inside Temporal's
workflow sandbox (``cryptography`` is passed through). Signing helpers take the key (or an
agent's sign callback) from the caller. Errors are :class:`SshsigError` with a ``code``
from Docket's identity vocabulary (``malformed_signature``, ``bad_signature``) and a message
that never contains key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from docket.text import escape_unsafe

__all__ = [
    "ARMOR_BEGIN",
    "ARMOR_END",
    "CERT_SUFFIX",
    "MAX_ARMORED_CHARS",
    "Certificate",
    "PublicKey",
    "SshSignature",
    "SshsigError",
    "WireReader",
    "armor",
    "build_sshsig",
    "dearmor",
    "encode_sshsig",
    "fingerprint",
    "parse_certificate",
    "parse_public_key",
    "parse_public_key_line",
    "parse_sshsig",
    "public_key_line",
    "quoted",
    "sign_with_private_key",
    "signed_data",
    "ssh_string",
    "verify_signature_blob",
]

MAGIC = b"SSHSIG"
SIG_VERSION = 1
ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOR_END = "-----END SSH SIGNATURE-----"
ARMOR_WIDTH = 70  # ssh-keygen's line width (sshsig.c: sshbuf_dtob64 with 70 columns)
HASH_ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
CERT_SUFFIX = "-cert-v01@openssh.com"
# A certificate with an RSA-8192 key signed by an RSA-8192 CA is about 3 KB of binary; the cap
# keeps hostile input from costing more than a quick refusal.
MAX_ARMORED_CHARS = 32_768
MIN_RSA_BITS = 2048

USER_PRESENCE = 0x01  # FIDO flags (PROTOCOL.u2f): the token was touched
USER_VERIFIED = 0x04  # ... and the holder was verified (PIN or biometrics)

_ED25519 = "ssh-ed25519"
_SK_ED25519 = "sk-ssh-ed25519@openssh.com"
_SK_ECDSA = "sk-ecdsa-sha2-nistp256@openssh.com"
_RSA = "ssh-rsa"
_ECDSA_CURVES: dict[str, tuple[ec.EllipticCurve, hashes.HashAlgorithm]] = {
    "nistp256": (ec.SECP256R1(), hashes.SHA256()),
    "nistp384": (ec.SECP384R1(), hashes.SHA384()),
    "nistp521": (ec.SECP521R1(), hashes.SHA512()),
}
_CURVE_HASHES = {curve.name: digest for curve, digest in _ECDSA_CURVES.values()}
KEY_TYPES = (
    _ED25519,
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    _RSA,
    _SK_ED25519,
    _SK_ECDSA,
)
# Certificate type -> certified key type (the FIDO ones keep their @openssh.com at the end).
CERT_TYPES = {
    key_type.removesuffix("@openssh.com") + CERT_SUFFIX: key_type for key_type in KEY_TYPES
}
_RSA_SIGNATURE_HASHES: dict[str, hashes.HashAlgorithm] = {
    "rsa-sha2-512": hashes.SHA512(),
    "rsa-sha2-256": hashes.SHA256(),
}


class SshsigError(ValueError):
    """A signature, key or certificate that is malformed or does not verify.

    ``code`` is ``malformed_signature`` (cannot be read), ``bad_signature`` (readable but
    does not verify, or uses an algorithm Docket refuses) or ``unsupported_key``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def quoted(value: str, limit: int = 60) -> str:
    """Untrusted text for a message: quoted, cut short, every unsafe character escaped."""
    cut = value if len(value) <= limit else value[:limit] + "…"
    return "'" + escape_unsafe(cut) + "'"


def _malformed(message: str) -> SshsigError:
    return SshsigError("malformed_signature", message)


# --- SSH wire encoding -------------------------------------------------------------------------


class WireReader:
    """Reads RFC 4251 wire types from a byte string; every short read is a clean error."""

    __slots__ = ("data", "pos", "what")

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def _take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise _malformed(f"{self.what}: truncated (needs {n} more bytes at offset {self.pos})")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self._take(1)[0]

    def u32(self) -> int:
        value: int = struct.unpack(">I", self._take(4))[0]
        return value

    def u64(self) -> int:
        value: int = struct.unpack(">Q", self._take(8))[0]
        return value

    def string(self) -> bytes:
        return self._take(self.u32())

    def text(self, field: str) -> str:
        raw = self.string()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed(f"{self.what}: {field} is not UTF-8 text") from None

    def mpint(self, field: str) -> int:
        raw = self.string()
        if raw and raw[0] & 0x80:
            raise _malformed(f"{self.what}: {field} is negative")
        return int.from_bytes(raw, "big")

    def done(self) -> None:
        if self.pos != len(self.data):
            raise _malformed(f"{self.what}: {len(self.data) - self.pos} unexpected trailing bytes")


def ssh_string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _mpint(value: int) -> bytes:
    if value == 0:
        return ssh_string(b"")
    raw = value.to_bytes((value.bit_length() + 8) // 8, "big")  # room for the sign bit
    return ssh_string(raw)


# --- public keys -------------------------------------------------------------------------------

VerifyingKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A public key as OpenSSH sees it: its type, its wire blob and the usable key.

    ``application`` is the FIDO relying party (``ssh:`` by default) of ``sk-`` keys, else
    None. ``fingerprint`` is what ``ssh-keygen -l`` prints (``SHA256:`` + unpadded base64)."""

    key_type: str
    blob: bytes
    key: VerifyingKey
    application: str | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)

    @property
    def description(self) -> str:
        """Type and size for messages, e.g. ``ED25519`` or ``RSA-3072``."""
        if isinstance(self.key, rsa.RSAPublicKey):
            return f"RSA-{self.key.key_size}"
        return self.key_type


def fingerprint(blob: bytes) -> str:
    """``SHA256:<unpadded base64>`` of a public key blob, as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def _read_key_fields(reader: WireReader, key_type: str) -> tuple[VerifyingKey, str | None]:
    """The type-specific fields of a public key (the part after the type string)."""
    if key_type in (_ED25519, _SK_ED25519):
        raw = reader.string()
        if len(raw) != 32:
            raise _malformed(f"{reader.what}: an Ed25519 key has 32 bytes, not {len(raw)}")
        key: VerifyingKey = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    elif key_type.startswith("ecdsa-sha2-") or key_type == _SK_ECDSA:
        curve_name = reader.text("curve name")
        expected = "nistp256" if key_type == _SK_ECDSA else key_type.removeprefix("ecdsa-sha2-")
        if curve_name != expected or curve_name not in _ECDSA_CURVES:
            raise _malformed(f"{reader.what}: curve {quoted(curve_name)} does not match {key_type}")
        point = reader.string()
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(_ECDSA_CURVES[curve_name][0], point)
        except ValueError:
            raise _malformed(f"{reader.what}: not a point on {curve_name}") from None
    elif key_type == _RSA:
        e = reader.mpint("RSA exponent")
        n = reader.mpint("RSA modulus")
        try:
            key = rsa.RSAPublicNumbers(e, n).public_key()
        except ValueError:
            raise _malformed(f"{reader.what}: not a valid RSA public key") from None
        if key.key_size < MIN_RSA_BITS:
            raise SshsigError(
                "unsupported_key",
                f"{reader.what}: RSA key of {key.key_size} bits; Docket refuses RSA keys "
                f"under {MIN_RSA_BITS} bits (use ed25519)",
            )
    else:
        raise SshsigError(
            "unsupported_key",
            f"{reader.what}: key type {quoted(key_type)} is not supported "
            f"(supported: {', '.join(KEY_TYPES)})",
        )
    application = None
    if key_type in (_SK_ED25519, _SK_ECDSA):
        application = reader.text("FIDO application")
        if not application.startswith("ssh:"):
            raise _malformed(f"{reader.what}: FIDO application {quoted(application)} lacks 'ssh:'")
    return key, application


def parse_public_key(blob: bytes, what: str = "public key") -> PublicKey:
    """Parse a plain (not certificate) public key blob."""
    reader = WireReader(blob, what)
    key_type = reader.text("key type")
    if key_type.endswith(CERT_SUFFIX):
        raise SshsigError("unsupported_key", f"{what}: is a certificate, not a plain key")
    key, application = _read_key_fields(reader, key_type)
    reader.done()
    return PublicKey(key_type, blob, key, application)


def parse_public_key_line(line: str, what: str = "public key") -> tuple[PublicKey, str]:
    """Parse ``<type> <base64> [comment]`` (an OpenSSH ``.pub`` line); returns (key, comment)."""
    parts = line.strip().split(None, 2)
    if len(parts) < 2:
        raise _malformed(f"{what}: expected '<type> <base64> [comment]'")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except binascii.Error:
        raise _malformed(f"{what}: the key's base64 is malformed") from None
    key = parse_public_key(blob, what)
    if key.key_type != parts[0]:
        raise _malformed(
            f"{what}: line says {quoted(parts[0])} but the key is {quoted(key.key_type)}"
        )
    return key, parts[2] if len(parts) == 3 else ""


def public_key_line(blob: bytes, comment: str = "") -> str:
    """The OpenSSH one-line form of a key or certificate blob."""
    key_type = WireReader(blob, "key").text("key type")
    line = f"{key_type} {base64.b64encode(blob).decode('ascii')}"
    return f"{line} {comment}" if comment else line


# --- certificates ------------------------------------------------------------------------------

USER_CERT = 1
HOST_CERT = 2


@dataclass(frozen=True, slots=True)
class Certificate:
    """An OpenSSH certificate (PROTOCOL.certkeys), every field as signed.

    ``key`` is the certified key (its ``blob`` is the plain key's, so its fingerprint is the
    one ``ssh-keygen -l`` prints for the key or the certificate). ``signed_part`` is what the
    CA signed; ``signature`` its signature blob, checked with :func:`verify_signature_blob`."""

    blob: bytes
    cert_type: str
    nonce: bytes
    key: PublicKey
    serial: int
    kind: int
    key_id: str
    principals: tuple[str, ...]
    valid_after: int
    valid_before: int
    critical_options: tuple[tuple[str, bytes], ...]
    extensions: tuple[tuple[str, bytes], ...]
    ca_key: PublicKey
    signature: bytes
    signed_part: bytes

    @property
    def line(self) -> str:
        return public_key_line(self.blob)

    def extension(self, name: str) -> bytes | None:
        for key, value in self.extensions:
            if key == name:
                return value
        return None


def _options(raw: bytes, what: str) -> tuple[tuple[str, bytes], ...]:
    """Critical options or extensions: sorted, unique names; each value a string or empty."""
    reader = WireReader(raw, what)
    out: list[tuple[str, bytes]] = []
    while reader.pos < len(raw):
        name = reader.text("option name")
        data = reader.string()
        if data:
            inner = WireReader(data, f"{what} {quoted(name)}")
            value = inner.string()
            inner.done()
        else:
            value = b""
        if out and name <= out[-1][0]:
            raise _malformed(f"{what}: names not in strictly sorted order at {quoted(name)}")
        out.append((name, value))
    return tuple(out)


def parse_certificate(blob: bytes, what: str = "certificate") -> Certificate:
    """Parse an OpenSSH certificate blob. Checks the format only, not the CA signature."""
    reader = WireReader(blob, what)
    cert_type = reader.text("certificate type")
    if not cert_type.endswith(CERT_SUFFIX):
        raise SshsigError("not_a_certificate", f"{what}: {quoted(cert_type)} is not a certificate")
    if cert_type not in CERT_TYPES:
        raise SshsigError(
            "unsupported_key",
            f"{what}: certificate type {quoted(cert_type)} is not supported "
            f"(supported: {', '.join(CERT_TYPES)})",
        )
    key_type = CERT_TYPES[cert_type]
    nonce = reader.string()
    key_start = reader.pos
    key, application = _read_key_fields(reader, key_type)
    plain_blob = ssh_string(key_type.encode("ascii")) + blob[key_start : reader.pos]
    serial = reader.u64()
    kind = reader.u32()
    key_id = reader.text("key id")
    principals_reader = WireReader(reader.string(), f"{what} principals")
    principals: list[str] = []
    while principals_reader.pos < len(principals_reader.data):
        principals.append(principals_reader.text("principal"))
    valid_after = reader.u64()
    valid_before = reader.u64()
    critical = _options(reader.string(), f"{what} critical options")
    extensions = _options(reader.string(), f"{what} extensions")
    reader.string()  # reserved
    ca_blob = reader.string()
    signed_part = blob[: reader.pos]
    signature = reader.string()
    reader.done()
    ca_key = parse_public_key(ca_blob, f"{what} signing CA")
    return Certificate(
        blob=blob,
        cert_type=cert_type,
        nonce=nonce,
        key=PublicKey(key_type, plain_blob, key, application),
        serial=serial,
        kind=kind,
        key_id=key_id,
        principals=tuple(principals),
        valid_after=valid_after,
        valid_before=valid_before,
        critical_options=critical,
        extensions=extensions,
        ca_key=ca_key,
        signature=signature,
        signed_part=signed_part,
    )


# --- signature blobs ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignatureDetails:
    """What a verified signature says beyond "valid": the FIDO flags and counter, if any."""

    algorithm: str
    sk_flags: int | None = None
    sk_counter: int | None = None


def _allowed_algorithms(key_type: str) -> tuple[str, ...]:
    if key_type == _RSA:
        return tuple(_RSA_SIGNATURE_HASHES)
    return (key_type,)


def verify_signature_blob(key: PublicKey, signature: bytes, data: bytes) -> SignatureDetails:
    """Check an SSH signature blob (``string algorithm, string signature[, flags, counter]``)
    over ``data`` with ``key``. Raises SshsigError("bad_signature") if it does not verify."""
    reader = WireReader(signature, "signature")
    algorithm = reader.text("signature algorithm")
    if algorithm not in _allowed_algorithms(key.key_type):
        if algorithm == _RSA:
            hint = " (ssh-rsa signs with SHA-1, which Docket refuses; sign with rsa-sha2-512)"
        else:
            hint = f" (allowed for this key: {', '.join(_allowed_algorithms(key.key_type))})"
        raise SshsigError(
            "bad_signature",
            f"signature algorithm {quoted(algorithm)} does not fit a {key.key_type} key{hint}",
        )
    raw = reader.string()
    sk_flags = sk_counter = None
    if key.application is not None:
        sk_flags = reader.u8()
        sk_counter = reader.u32()
    reader.done()
    try:
        if isinstance(key.key, ed25519.Ed25519PublicKey):
            message = data
            if key.application is not None:
                message = _sk_message(key.application, sk_flags, sk_counter, data)
            key.key.verify(raw, message)
        elif isinstance(key.key, ec.EllipticCurvePublicKey):
            inner = WireReader(raw, "ECDSA signature")
            r = inner.mpint("r")
            s = inner.mpint("s")
            inner.done()
            curve_hash = _CURVE_HASHES[key.key.curve.name]
            message = data
            if key.application is not None:
                message = _sk_message(key.application, sk_flags, sk_counter, data)
            key.key.verify(encode_dss_signature(r, s), message, ec.ECDSA(curve_hash))
        else:
            modulus_bytes = (key.key.key_size + 7) // 8
            if len(raw) > modulus_bytes:
                raise InvalidSignature
            key.key.verify(
                raw.rjust(modulus_bytes, b"\0"), data, PKCS1v15(), _RSA_SIGNATURE_HASHES[algorithm]
            )
    except (InvalidSignature, ValueError) as exc:
        if isinstance(exc, SshsigError):
            raise
        raise SshsigError(
            "bad_signature", f"the {algorithm} signature does not verify with key {key.fingerprint}"
        ) from None
    if sk_flags is not None and not sk_flags & USER_PRESENCE:
        raise SshsigError(
            "bad_signature",
            f"the FIDO key {key.fingerprint} signed without the user's touch "
            "(user-presence flag not set)",
        )
    return SignatureDetails(algorithm, sk_flags, sk_counter)


def _sk_message(application: str, flags: int | None, counter: int | None, data: bytes) -> bytes:
    """What a FIDO authenticator signs (OpenSSH PROTOCOL.u2f): SHA-256 of the application,
    the flags byte, the counter, SHA-256 of the data."""
    assert flags is not None and counter is not None
    return (
        hashlib.sha256(application.encode("utf-8")).digest()
        + bytes([flags])
        + struct.pack(">I", counter)
        + hashlib.sha256(data).digest()
    )


PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def sign_with_private_key(private_key: PrivateKey, data: bytes) -> bytes:
    """An SSH signature blob over ``data`` (rsa-sha2-512 for RSA keys, as ssh-keygen does)."""
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return ssh_string(_ED25519.encode()) + ssh_string(private_key.sign(data))
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        curve = {"secp256r1": "nistp256", "secp384r1": "nistp384", "secp521r1": "nistp521"}
        name = curve.get(private_key.curve.name)
        if name is None:
            raise SshsigError("unsupported_key", f"ECDSA curve {private_key.curve.name} is not SSH")
        der = private_key.sign(data, ec.ECDSA(_ECDSA_CURVES[name][1]))
        r, s = decode_dss_signature(der)
        return ssh_string(f"ecdsa-sha2-{name}".encode()) + ssh_string(_mpint(r) + _mpint(s))
    return ssh_string(b"rsa-sha2-512") + ssh_string(
        private_key.sign(data, PKCS1v15(), hashes.SHA512())
    )


# --- the SSHSIG envelope -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SshSignature:
    """A decoded SSHSIG envelope (PROTOCOL.sshsig)."""

    public_key: bytes  # a key or certificate blob
    namespace: str
    reserved: bytes
    hash_algorithm: str
    signature: bytes


def signed_data(namespace: str, hash_algorithm: str, message: bytes) -> bytes:
    """The blob an SSHSIG signature signs: preamble, namespace, reserved, hash, H(message)."""
    digest = HASH_ALGORITHMS[hash_algorithm](message).digest()
    return (
        MAGIC
        + ssh_string(namespace.encode("utf-8"))
        + ssh_string(b"")
        + ssh_string(hash_algorithm.encode("ascii"))
        + ssh_string(digest)
    )


def encode_sshsig(sig: SshSignature) -> bytes:
    return (
        MAGIC
        + struct.pack(">I", SIG_VERSION)
        + ssh_string(sig.public_key)
        + ssh_string(sig.namespace.encode("utf-8"))
        + ssh_string(sig.reserved)
        + ssh_string(sig.hash_algorithm.encode("utf-8"))
        + ssh_string(sig.signature)
    )


def parse_sshsig(blob: bytes) -> SshSignature:
    """Decode an SSHSIG envelope; refuses an unknown version, hash or trailing bytes."""
    if blob[: len(MAGIC)] != MAGIC:
        raise _malformed("not an SSH signature (the SSHSIG preamble is missing)")
    reader = WireReader(blob, "SSH signature")
    reader.pos = len(MAGIC)
    version = reader.u32()
    if version != SIG_VERSION:
        raise _malformed(f"SSH signature version {version}; only version {SIG_VERSION} exists")
    public_key = reader.string()
    namespace = reader.text("namespace")
    reserved = reader.string()
    hash_algorithm = reader.text("hash algorithm")
    signature = reader.string()
    reader.done()
    if reserved:
        # OpenSSH writes it empty and never signs it: a value here could change unnoticed.
        raise _malformed("the SSH signature's reserved field is not empty")
    if hash_algorithm not in HASH_ALGORITHMS:
        raise _malformed(
            f"SSH signature hash {quoted(hash_algorithm)} is not allowed (sha256 or sha512)"
        )
    return SshSignature(public_key, namespace, reserved, hash_algorithm, signature)


def armor(blob: bytes) -> str:
    """The armored text ssh-keygen writes: BEGIN line, base64 in 70 columns, END line, newline."""
    text = base64.b64encode(blob).decode("ascii")
    lines = [text[i : i + ARMOR_WIDTH] for i in range(0, len(text), ARMOR_WIDTH)]
    return "\n".join([ARMOR_BEGIN, *lines, ARMOR_END]) + "\n"


def dearmor(text: str) -> bytes:
    """Decode armored text. Only the canonical armor is accepted (what :func:`armor` and
    ssh-keygen write; CRLF line ends and a missing final newline are tolerated), so a
    signature has exactly one text form and any altered character is refused."""
    if len(text) > MAX_ARMORED_CHARS:
        raise _malformed(f"the signature is {len(text)} characters; at most {MAX_ARMORED_CHARS}")
    normalized = text.replace("\r\n", "\n")
    if not normalized.endswith("\n"):
        normalized += "\n"
    lines = normalized[:-1].split("\n")
    if len(lines) < 3 or lines[0] != ARMOR_BEGIN or lines[-1] != ARMOR_END:
        raise _malformed(
            f"not an armored SSH signature (expected '{ARMOR_BEGIN}' ... '{ARMOR_END}')"
        )
    body = "".join(lines[1:-1])
    try:
        blob = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed("the signature's base64 is malformed") from None
    if armor(blob) != normalized:
        raise _malformed(
            "the signature's armor is not canonical (base64 in 70-column lines, "
            "as ssh-keygen writes it)"
        )
    return blob


def build_sshsig(
    public_key_blob: bytes,
    namespace: str,
    message: bytes,
    sign: Callable[[bytes], bytes],
    hash_algorithm: str = "sha512",
) -> str:
    """An armored SSH signature over ``message``. ``sign`` returns the SSH signature blob over
    the bytes it is given (a private key, or an ssh-agent request); ``public_key_blob`` is the
    key or, for Docket, the certificate that the signature carries."""
    sig_blob = sign(signed_data(namespace, hash_algorithm, message))
    return armor(
        encode_sshsig(SshSignature(public_key_blob, namespace, b"", hash_algorithm, sig_blob))
    )
