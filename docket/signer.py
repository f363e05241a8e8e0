"""Signing commands on the client side: a key file, ``DOCKET_KEY`` or the SSH agent.

Where the key comes from (first that applies, see :func:`load_signer`):

1. a private key file given by the caller (``--key FILE``), its certificate beside it as
   ``FILE-cert.pub`` (the OpenSSH convention) unless one is given;
2. ``DOCKET_KEY``: the OpenSSH private key text itself, or the path of the key file; the
   certificate from ``DOCKET_CERT`` (text or path), else ``<path>-cert.pub`` beside the file;
3. the SSH agent at ``SSH_AUTH_SOCK`` (the key never leaves the agent; FIDO tokens work
   this way): the certificate from ``DOCKET_CERT`` or the caller, else the agent's own
   certificate for the actor (``ssh-add`` loads ``KEY-cert.pub`` with ``KEY``).

A passphrase-protected key asks for its passphrase on the terminal, or takes it from
``DOCKET_KEY_PASSPHRASE`` when there is no terminal. Private keys and passphrases never
appear in any output, exception message or log: errors name files, variables and
fingerprints only.
"""

from __future__ import annotations

import base64
import getpass
import os
import secrets
import socket
import struct
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from docket import sshsig
from docket.credentials import NAMESPACE
from docket.statement import SignedCommand, build_statement

__all__ = [
    "AgentSigner",
    "KeySigner",
    "Signer",
    "SignerError",
    "agent_identities",
    "load_private_key",
    "load_signer",
    "sign_command",
]

ENV_KEY = "DOCKET_KEY"
ENV_CERT = "DOCKET_CERT"
ENV_PASSPHRASE = "DOCKET_KEY_PASSPHRASE"
ENV_AGENT = "SSH_AUTH_SOCK"
_MAX_KEY_FILE = 64 * 1024

# ssh-agent protocol (draft-miller-ssh-agent)
_AGENT_FAILURE = 5
_AGENTC_REQUEST_IDENTITIES = 11
_AGENT_IDENTITIES_ANSWER = 12
_AGENTC_SIGN_REQUEST = 13
_AGENT_SIGN_RESPONSE = 14
_AGENT_RSA_SHA2_512 = 0x04
_MAX_AGENT_REPLY = 256 * 1024
_AGENT_TIMEOUT_SECONDS = 60.0  # a FIDO token waits for a touch


class SignerError(Exception):
    """No usable key or certificate, or the agent refused. Never carries key material."""


class Signer(ABC):
    """Signs statements as one actor, with one certificate (the credential)."""

    def __init__(self, certificate: sshsig.Certificate) -> None:
        self.certificate = certificate

    @property
    def actor_id(self) -> str:
        return self.certificate.key_id

    @property
    def certificate_line(self) -> str:
        return self.certificate.line

    @property
    def key_fingerprint(self) -> str:
        return self.certificate.key.fingerprint

    @abstractmethod
    def _sign_data(self, data: bytes) -> bytes:
        """The SSH signature blob over ``data``."""

    def sign(self, message: bytes, namespace: str = NAMESPACE) -> str:
        """An armored SSH signature over ``message`` that carries the certificate."""
        return sshsig.build_sshsig(self.certificate.blob, namespace, message, self._sign_data)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.actor_id} key {self.key_fingerprint}>"


class KeySigner(Signer):
    """Signs with a private key held in this process."""

    def __init__(self, private_key: sshsig.PrivateKey, certificate: sshsig.Certificate) -> None:
        super().__init__(certificate)
        public = private_key.public_key()
        blob = _public_blob(public)
        if blob != certificate.key.blob:
            raise SignerError(
                f"the certificate of {certificate.key_id} is for key {certificate.key.fingerprint}"
                f", but the private key is {sshsig.fingerprint(blob)}: they do not belong together"
            )
        self._private_key = private_key

    def _sign_data(self, data: bytes) -> bytes:
        return sshsig.sign_with_private_key(self._private_key, data)


def _public_blob(public: Any) -> bytes:
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    key, _ = sshsig.parse_public_key_line(line.decode("ascii"))
    return key.blob


@dataclass(frozen=True)
class AgentIdentity:
    blob: bytes
    comment: str

    @property
    def key_type(self) -> str:
        return sshsig.WireReader(self.blob, "agent key").text("key type")


def _agent_call(socket_path: str, request: bytes) -> tuple[int, bytes]:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(_AGENT_TIMEOUT_SECONDS)
            sock.connect(socket_path)
            sock.sendall(struct.pack(">I", len(request)) + request)
            header = _recv_exact(sock, 4)
            (length,) = struct.unpack(">I", header)
            if not 1 <= length <= _MAX_AGENT_REPLY:
                raise SignerError(f"the SSH agent at {socket_path} sent a reply of {length} bytes")
            reply = _recv_exact(sock, length)
    except OSError as exc:
        raise SignerError(
            f"cannot talk to the SSH agent at {socket_path} ({exc.strerror or exc}); is "
            "ssh-agent running and SSH_AUTH_SOCK set?"
        ) from None
    return reply[0], reply[1:]


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(n - len(chunks))
        if not chunk:
            raise SignerError("the SSH agent closed the connection mid-reply")
        chunks += chunk
    return bytes(chunks)


def agent_identities(socket_path: str) -> list[AgentIdentity]:
    """The keys and certificates an SSH agent holds."""
    kind, body = _agent_call(socket_path, bytes([_AGENTC_REQUEST_IDENTITIES]))
    if kind != _AGENT_IDENTITIES_ANSWER:
        raise SignerError(f"the SSH agent at {socket_path} would not list its keys")
    try:
        reader = sshsig.WireReader(body, "agent identities")
        out = []
        for _ in range(reader.u32()):
            blob = reader.string()
            comment = reader.string().decode("utf-8", "replace")
            out.append(AgentIdentity(blob, comment))
        reader.done()
    except sshsig.SshsigError:
        raise SignerError(f"the SSH agent at {socket_path} sent a malformed key list") from None
    return out


class AgentSigner(Signer):
    """Signs through ssh-agent: the private key never enters this process."""

    def __init__(self, socket_path: str, certificate: sshsig.Certificate) -> None:
        super().__init__(certificate)
        self.socket_path = socket_path

    def _sign_data(self, data: bytes) -> bytes:
        flags = _AGENT_RSA_SHA2_512 if self.certificate.key.key_type == "ssh-rsa" else 0
        request = (
            bytes([_AGENTC_SIGN_REQUEST])
            + sshsig.ssh_string(self.certificate.key.blob)
            + sshsig.ssh_string(data)
            + struct.pack(">I", flags)
        )
        kind, body = _agent_call(self.socket_path, request)
        if kind == _AGENT_FAILURE:
            raise SignerError(
                f"the SSH agent refused to sign with key {self.key_fingerprint} (is it still "
                "loaded? was a confirmation or a FIDO touch declined or timed out?)"
            )
        if kind != _AGENT_SIGN_RESPONSE:
            raise SignerError(f"the SSH agent answered a sign request with message type {kind}")
        try:
            reader = sshsig.WireReader(body, "agent signature")
            signature = reader.string()
            reader.done()
        except sshsig.SshsigError:
            raise SignerError("the SSH agent sent a malformed signature") from None
        return signature


# --- loading keys and certificates -------------------------------------------------------------


def _shown_path(path: Path) -> str:
    """A path for a message, unless it is really some pasted text (which could be a key)."""
    text = str(path)
    return text if "\n" not in text and len(text) <= 256 else "(a value that is not a path)"


def _read_small(path: Path, what: str) -> bytes:
    shown = _shown_path(path)
    try:
        size = path.stat().st_size
        if size > _MAX_KEY_FILE:
            raise SignerError(f"{what} {shown} is {size} bytes; a key file is a few KB at most")
        return path.read_bytes()
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or "not a usable path"
        raise SignerError(f"cannot read {what} {shown} ({reason})") from None


def _parse_certificate_text(text: str, where: str) -> sshsig.Certificate:
    line = text.strip()
    parts = line.split()
    if len(parts) < 2 or not parts[0].endswith(sshsig.CERT_SUFFIX):
        raise SignerError(
            f"{where} is not an OpenSSH certificate (expected '<type>-cert-v01@openssh.com "
            "AAAA...', as written by ssh-keygen -s or ./run keys issue)"
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
        return sshsig.parse_certificate(blob, where)
    except (ValueError, sshsig.SshsigError) as exc:
        detail = exc.message if isinstance(exc, sshsig.SshsigError) else "bad base64"
        raise SignerError(f"{where} is not a readable certificate: {detail}") from None


def load_certificate(source: str | Path) -> sshsig.Certificate:
    """A certificate from a ``-cert.pub`` file, or from its text (one line)."""
    text = str(source)
    if "PRIVATE KEY" in text:
        raise SignerError(
            "a private key was given where the certificate belongs (DOCKET_CERT or --cert "
            "takes the -cert.pub line or its path)"
        )
    if isinstance(source, str) and sshsig.CERT_SUFFIX in text.split(" ", 1)[0]:
        return _parse_certificate_text(text, "the certificate text")
    path = Path(source)
    raw = _read_small(path, "certificate file")
    return _parse_certificate_text(raw.decode("utf-8", "replace"), f"certificate file {path}")


Prompt = Callable[[str], str]


def _terminal_prompt(label: str) -> str:
    return getpass.getpass(f"Passphrase for {label}: ")


def load_private_key(
    data: bytes,
    label: str,
    *,
    passphrase: str | None = None,
    environ: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
) -> sshsig.PrivateKey:
    """Load an OpenSSH (or PEM) private key. ``label`` names it in errors (a path or a
    variable name, never the text). An encrypted key takes ``passphrase``, else
    ``DOCKET_KEY_PASSPHRASE``, else ``prompt`` (given only when a terminal is there)."""
    environ = os.environ if environ is None else environ
    try:
        return _checked_key(_load_key_bytes(data, None), label)
    except TypeError:
        pass  # encrypted: cryptography raises TypeError when no password is given
    except ValueError:
        raise SignerError(f"{label} is not a readable private key (OpenSSH or PEM)") from None
    except UnsupportedAlgorithm:
        raise SignerError(_UNUSABLE.format(label=label)) from None
    if passphrase is None:
        passphrase = environ.get(ENV_PASSPHRASE)
    if passphrase is None and prompt is not None:
        passphrase = prompt(label)
    if passphrase is None:
        raise SignerError(
            f"the private key {label} is passphrase-protected: run in a terminal to be "
            f"asked, or set {ENV_PASSPHRASE}"
        )
    try:
        return _checked_key(_load_key_bytes(data, passphrase.encode("utf-8")), label)
    except (TypeError, ValueError):
        raise SignerError(
            f"wrong passphrase for the private key {label} (or the key file is damaged)"
        ) from None
    except UnsupportedAlgorithm:
        raise SignerError(_UNUSABLE.format(label=label)) from None


_UNUSABLE = (
    "the private key {label} cannot be used directly (a FIDO key, or an algorithm Docket "
    "does not sign with); load it into ssh-agent and sign through the agent"
)


def _checked_key(key: Any, label: str) -> sshsig.PrivateKey:
    if not isinstance(
        key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    ):
        raise SignerError(f"the private key {label} is not ed25519, ECDSA or RSA")
    return key


def _load_key_bytes(data: bytes, password: bytes | None) -> Any:
    if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
        return serialization.load_ssh_private_key(data, password)
    return serialization.load_pem_private_key(data, password)


def signer_from_key_file(
    path: str | Path,
    certificate: str | Path | None = None,
    *,
    passphrase: str | None = None,
    environ: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
) -> KeySigner:
    """A signer from a private key file and its certificate (``PATH-cert.pub`` by default)."""
    path = Path(path)
    data = _read_small(path, "private key file")
    key = load_private_key(data, str(path), passphrase=passphrase, environ=environ, prompt=prompt)
    cert_source: str | Path = certificate or Path(f"{path}-cert.pub")
    if certificate is None and not Path(cert_source).exists():
        raise SignerError(
            f"no certificate for the key {path}: expected {cert_source} beside it (issued by "
            "your organization: ./run keys issue), or give one with --cert / DOCKET_CERT"
        )
    return KeySigner(key, load_certificate(cert_source))


def signer_from_agent(
    socket_path: str,
    certificate: str | Path | None = None,
    *,
    actor: str | None = None,
    now: datetime | None = None,
) -> AgentSigner:
    """A signer through ssh-agent. Without ``certificate``: the agent's certificate for
    ``actor`` (key id), valid at ``now``; several: the one that stays valid longest."""
    identities = agent_identities(socket_path)
    if certificate is not None:
        cert = load_certificate(certificate)
        blobs = {i.blob for i in identities}
        if cert.key.blob not in blobs and cert.blob not in blobs:
            raise SignerError(
                f"the SSH agent does not hold the key {cert.key.fingerprint} of the certificate "
                f"for {cert.key_id}; add it with ssh-add KEY"
            )
        return AgentSigner(socket_path, cert)
    now = now or datetime.now(UTC)
    seconds = int((now - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(seconds=1))
    candidates: list[sshsig.Certificate] = []
    seen: list[str] = []
    for identity in identities:
        if not identity.key_type.endswith(sshsig.CERT_SUFFIX):
            continue
        try:
            cert = sshsig.parse_certificate(identity.blob)
        except sshsig.SshsigError:
            continue
        seen.append(f"{cert.key_id} ({cert.key.fingerprint})")
        if actor is not None and cert.key_id != actor:
            continue
        if cert.valid_after <= seconds < cert.valid_before:
            candidates.append(cert)
    if not candidates:
        who = f" for {actor}" if actor else ""
        held = "; it holds certificates for " + ", ".join(seen) if seen else ""
        raise SignerError(
            f"the SSH agent at {socket_path} holds no valid Docket certificate{who}{held}. "
            "Add your key with its certificate beside it (ssh-add KEY loads KEY-cert.pub too), "
            "or give the certificate with --cert / DOCKET_CERT"
        )
    best = max(candidates, key=lambda c: (c.valid_before, c.serial))
    return AgentSigner(socket_path, best)


def load_signer(
    *,
    key: str | Path | None = None,
    certificate: str | Path | None = None,
    actor: str | None = None,
    passphrase: str | None = None,
    environ: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    interactive: bool | None = None,
    now: datetime | None = None,
) -> Signer:
    """The signer a CLI or script should use: ``key`` file, else ``DOCKET_KEY``, else the
    agent. ``interactive`` (default: stdin is a terminal) allows a passphrase prompt. If
    ``actor`` is given, the credential must be that actor's."""
    environ = os.environ if environ is None else environ
    if prompt is None and (interactive if interactive is not None else sys.stdin.isatty()):
        prompt = _terminal_prompt
    certificate = certificate or environ.get(ENV_CERT) or None
    signer: Signer
    if key is not None:
        signer = signer_from_key_file(
            key, certificate, passphrase=passphrase, environ=environ, prompt=prompt
        )
    elif environ.get(ENV_KEY):
        signer = _signer_from_env(
            environ[ENV_KEY], certificate, passphrase=passphrase, environ=environ, prompt=prompt
        )
    elif environ.get(ENV_AGENT):
        signer = signer_from_agent(environ[ENV_AGENT], certificate, actor=actor, now=now)
    else:
        raise SignerError(
            "no signing key: give --key FILE (with FILE-cert.pub beside it), set DOCKET_KEY, "
            "or load your key and certificate into ssh-agent (SSH_AUTH_SOCK); see "
            "docs/identity.md"
        )
    if actor is not None and signer.actor_id != actor:
        raise SignerError(
            f"you act as {sshsig.quoted(actor)}, but the credential found "
            f"({signer.key_fingerprint}) is {sshsig.quoted(signer.actor_id)}'s"
        )
    return signer


def _signer_from_env(
    value: str,
    certificate: str | Path | None,
    *,
    passphrase: str | None,
    environ: Mapping[str, str],
    prompt: Prompt | None,
) -> KeySigner:
    if "PRIVATE KEY-----" in value:
        key = load_private_key(
            value.encode("utf-8"), ENV_KEY, passphrase=passphrase, environ=environ, prompt=prompt
        )
        if certificate is None:
            raise SignerError(
                f"{ENV_KEY} holds a key's text, so its certificate must be given too: set "
                f"{ENV_CERT} to the certificate line or the path of the -cert.pub file"
            )
        return KeySigner(key, load_certificate(certificate))
    path = Path(value)
    try:
        is_file = "\n" not in value and len(value) < 4096 and path.is_file()
    except (OSError, ValueError):  # their messages would carry the value
        is_file = False
    if not is_file:
        # The value is never echoed: it may be a mangled private key.
        raise SignerError(
            f"{ENV_KEY} is neither an OpenSSH private key (text with '-----BEGIN OPENSSH "
            "PRIVATE KEY-----') nor the path of an existing file"
        )
    return signer_from_key_file(
        path, certificate, passphrase=passphrase, environ=environ, prompt=prompt
    )


def sign_command(
    signer: Signer,
    request_id: str,
    trigger: str,
    actor_id: str,
    payload: dict[str, Any],
    now: datetime,
    nonce: str | None = None,
) -> SignedCommand:
    """Build the statement for a command and sign it."""
    if actor_id != signer.actor_id:
        raise SignerError(
            f"cannot sign as {sshsig.quoted(actor_id)} with the credential of "
            f"{sshsig.quoted(signer.actor_id)} "
            f"({signer.key_fingerprint})"
        )
    statement = build_statement(
        request_id, trigger, actor_id, payload, now, nonce or secrets.token_hex(16)
    )
    return SignedCommand(statement=statement, signature=signer.sign(statement.encode("utf-8")))
