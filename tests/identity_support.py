"""Keys, certificates and trust roots for the identity tests (real keys, made in memory).

Everything is built with the production code (`docket.keys.issue_certificate`,
`cryptography`'s certificate builder for the deliberately odd certificates), so the tests
exercise the same bytes an organization's administrator would produce.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.serialization import ssh as ssh_serialization

from docket import sshsig
from docket.credentials import ROLES_EXTENSION, TrustRoots
from docket.keys import generate_key, issue_certificate, public_key_line_of
from docket.lifecycle import Role
from docket.signer import KeySigner

NOW = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)
SSH_KEYGEN = shutil.which("ssh-keygen")
SSH_AGENT = shutil.which("ssh-agent")
SSH_ADD = shutil.which("ssh-add")


@dataclass
class Org:
    id: str
    name: str
    acts_for: tuple[str, ...]
    may_grant: tuple[Role, ...]
    ca_key: sshsig.PrivateKey
    actors: tuple[str, ...] = ("*",)

    @property
    def ca_line(self) -> str:
        return public_key_line_of(self.ca_key, f"{self.id}-ca")

    @property
    def ca_fingerprint(self) -> str:
        return sshsig.parse_public_key_line(self.ca_line)[0].fingerprint

    def entry(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "acts_for": list(self.acts_for),
            "may_grant": [r.value for r in self.may_grant],
            "actors": list(self.actors),
            "ca_keys": [self.ca_line],
        }


@dataclass
class Official:
    actor: str
    key: sshsig.PrivateKey
    certificate_line: str

    @property
    def certificate(self) -> sshsig.Certificate:
        return sshsig.parse_certificate(base64.b64decode(self.certificate_line.split()[1]))

    @property
    def public_line(self) -> str:
        return public_key_line_of(self.key, self.actor)

    @property
    def fingerprint(self) -> str:
        return sshsig.parse_public_key_line(self.public_line)[0].fingerprint

    @property
    def signer(self) -> KeySigner:
        return KeySigner(self.key, self.certificate)


def make_org(
    org_id: str = "mic",
    acts_for: Sequence[str] = ("authority:mic",),
    may_grant: Sequence[Role] = (Role.OFFICER, Role.APPROVER),
    key_type: str = "ed25519",
    name: str | None = None,
    actors: Sequence[str] = ("*",),
) -> Org:
    return Org(
        id=org_id,
        name=name or f"Organization {org_id}",
        acts_for=tuple(acts_for),
        may_grant=tuple(may_grant),
        ca_key=generate_key(key_type),
        actors=tuple(actors),
    )


def make_official(
    org: Org,
    actor: str,
    roles: Sequence[Role],
    *,
    key_type: str = "ed25519",
    valid_after: datetime = NOW - timedelta(days=1),
    valid_before: datetime = NOW + timedelta(days=90),
    serial: int = 1,
    key: sshsig.PrivateKey | None = None,
) -> Official:
    key = key or generate_key(key_type)
    line = issue_certificate(
        org.ca_key, public_key_line_of(key), actor, roles, valid_after, valid_before, serial
    )
    return Official(actor, key, line)


def odd_certificate(
    ca_key: sshsig.PrivateKey,
    key: sshsig.PrivateKey,
    *,
    key_id: str = "tran.thi.binh",
    principals: Sequence[str] | None = None,
    roles: str | None = "approver",
    cert_type: ssh_serialization.SSHCertificateType = ssh_serialization.SSHCertificateType.USER,
    valid_after: int | None = None,
    valid_before: int | None = None,
    critical: Sequence[tuple[str, str]] = (),
    serial: int = 1,
) -> sshsig.Certificate:
    """A certificate with whatever fields a test needs, including ones Docket refuses."""
    builder = (
        ssh_serialization.SSHCertificateBuilder()
        .public_key(key.public_key())
        .serial(serial)
        .type(cert_type)
        .key_id(key_id.encode())
        .valid_after(valid_after if valid_after is not None else int(NOW.timestamp()) - 86400)
        .valid_before(valid_before if valid_before is not None else int(NOW.timestamp()) + 86400)
    )
    chosen = [key_id] if principals is None else list(principals)
    builder = (
        builder.valid_principals([p.encode() for p in chosen])
        if chosen
        else builder.valid_for_all_principals()  # type: ignore[no-untyped-call]
    )
    if roles is not None:
        builder = builder.add_extension(ROLES_EXTENSION.encode(), roles.encode())
    for name, value in critical:
        builder = builder.add_critical_option(name.encode(), value.encode())
    cert = builder.sign(ca_key)
    return sshsig.parse_certificate(base64.b64decode(cert.public_bytes().split()[1]))


def make_trust(
    *orgs: Org,
    revoked: Sequence[object] = (),
    signing_required_from: datetime = datetime(2026, 1, 1, tzinfo=UTC),
) -> TrustRoots:
    return TrustRoots.model_validate(
        {
            "signing_required_from": signing_required_from,
            "organizations": [org.entry() for org in orgs],
            "revoked": list(revoked),
        }
    )


def toml_value(value: object) -> str:
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(type(value))


def trust_toml(*orgs: Org, revoked: Sequence[str] = ()) -> str:
    """A trust file as an operator would write it."""
    lines = ["signing_required_from = 2026-01-01T00:00:00Z", ""]
    for org in orgs:
        lines.append("[[organization]]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in org.entry().items())
        lines.append("")
    for key in revoked:
        lines += ["[[revoked]]", f"key = {toml_value(key)}", 'reason = "test"', ""]
    return "\n".join(lines)


@contextmanager
def ssh_agent(directory: Path) -> Iterator[str]:
    """A real ssh-agent on a socket in ``directory``; yields the socket path."""
    assert SSH_AGENT is not None
    sock = str(directory / "agent.sock")
    proc = subprocess.Popen(
        [SSH_AGENT, "-D", "-a", sock],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("ssh-agent did not start")
            time.sleep(0.02)
        yield sock
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def ssh_add(sock: str, key_path: Path) -> None:
    """Load a key (and KEY-cert.pub beside it) into the agent at ``sock``."""
    assert SSH_ADD is not None
    env = {**os.environ, "SSH_AUTH_SOCK": sock}
    subprocess.run([SSH_ADD, str(key_path)], env=env, check=True, capture_output=True)


# --- FIDO (sk-) keys without hardware: what a token signs, computed in software -------------


def sk_ed25519_public_blob(private: object, application: str = "ssh:") -> bytes:
    """The public blob of an sk-ssh-ed25519@openssh.com key whose token key is ``private``."""
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    assert isinstance(private, ed25519.Ed25519PrivateKey)
    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return (
        sshsig.ssh_string(b"sk-ssh-ed25519@openssh.com")
        + sshsig.ssh_string(raw)
        + sshsig.ssh_string(application.encode())
    )


def sk_ecdsa_public_blob(private: object, application: str = "ssh:") -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    assert isinstance(private, ec.EllipticCurvePrivateKey)
    point = private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return (
        sshsig.ssh_string(b"sk-ecdsa-sha2-nistp256@openssh.com")
        + sshsig.ssh_string(b"nistp256")
        + sshsig.ssh_string(point)
        + sshsig.ssh_string(application.encode())
    )


def sk_sign(
    private: object, data: bytes, application: str = "ssh:", flags: int = 0x01, counter: int = 7
) -> bytes:
    """The SSH signature blob a FIDO token returns (OpenSSH PROTOCOL.u2f), made in software."""
    import hashlib
    import struct

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    signed = (
        hashlib.sha256(application.encode()).digest()
        + bytes([flags])
        + struct.pack(">I", counter)
        + hashlib.sha256(data).digest()
    )
    tail = bytes([flags]) + struct.pack(">I", counter)
    if isinstance(private, ed25519.Ed25519PrivateKey):
        return (
            sshsig.ssh_string(b"sk-ssh-ed25519@openssh.com")
            + sshsig.ssh_string(private.sign(signed))
            + tail
        )
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(private.sign(signed, ec.ECDSA(hashes.SHA256())))
    inner = _mpint(r) + _mpint(s)
    return (
        sshsig.ssh_string(b"sk-ecdsa-sha2-nistp256@openssh.com") + sshsig.ssh_string(inner) + tail
    )


def _mpint(value: int) -> bytes:
    return sshsig.ssh_string(value.to_bytes((value.bit_length() + 8) // 8, "big"))


def encode_certificate(
    ca_key: sshsig.PrivateKey,
    key_blob: bytes,
    *,
    key_id: str = "tran.thi.binh",
    principals: Sequence[str] | None = None,
    roles: str = "approver",
    serial: int = 1,
    valid_after: int | None = None,
    valid_before: int | None = None,
    nonce: bytes = b"\x01" * 32,
) -> bytes:
    """A user certificate for any plain key blob (FIDO ones included), signed by ``ca_key``."""
    import struct

    reader = sshsig.WireReader(key_blob, "key")
    key_type = reader.string()
    fields = key_blob[reader.pos :]
    principal_list = [key_id] if principals is None else list(principals)
    extensions = sshsig.ssh_string(ROLES_EXTENSION.encode()) + sshsig.ssh_string(
        sshsig.ssh_string(roles.encode())
    )
    body = (
        sshsig.ssh_string(key_type.removesuffix(b"@openssh.com") + b"-cert-v01@openssh.com")
        + sshsig.ssh_string(nonce)
        + fields
        + struct.pack(">Q", serial)
        + struct.pack(">I", 1)
        + sshsig.ssh_string(key_id.encode())
        + sshsig.ssh_string(b"".join(sshsig.ssh_string(p.encode()) for p in principal_list))
        + struct.pack(">Q", valid_after if valid_after is not None else int(NOW.timestamp()) - 60)
        + struct.pack(
            ">Q", valid_before if valid_before is not None else int(NOW.timestamp()) + 86400
        )
        + sshsig.ssh_string(b"")
        + sshsig.ssh_string(extensions)
        + sshsig.ssh_string(b"")
        + sshsig.ssh_string(base64.b64decode(public_key_line_of(ca_key).split()[1]))
    )
    return body + sshsig.ssh_string(sshsig.sign_with_private_key(ca_key, body))
