"""Provision a whole roster's identities in one directory: a certification authority per
organization, a key and a credential per actor, and the trust file a worker reads.

The demo runs this on first use (under its var directory) and the tests run it per session;
a real deployment does the same steps with `./run keys` (docs/identity.md), each organization
on its own machine with its own CA. Layout:

    <dir>/trust.toml                  the operator's trust roots (DOCKET_TRUST_FILE)
    <dir>/ca/<organization>           an organization's CA private key (mode 600)
    <dir>/keys/<actor>                an actor's private key (mode 600, no passphrase: demo)
    <dir>/keys/<actor>-cert.pub       its credential (OpenSSH user certificate)

Running it again reuses what exists, issues what is missing, and renews credentials that
expire within a day.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from docket import sshsig
from docket.credentials import TrustRoots, load_trust
from docket.keys import (
    generate_key,
    issue_certificate,
    organization_stanza,
    private_key_text,
    public_key_line_of,
)
from docket.lifecycle import Role
from docket.reference import ReferenceData
from docket.signer import KeySigner, load_certificate, load_private_key

RENEW_BEFORE = timedelta(days=1)


@dataclass(frozen=True)
class Identities:
    """A provisioned roster: where each actor's key is, and the trust roots."""

    directory: Path
    trust_file: Path
    trust: TrustRoots

    def key_file(self, actor_id: str) -> Path:
        return self.directory / "keys" / actor_id

    def signer(self, actor_id: str) -> KeySigner:
        """The actor's signer (their key and credential), as `--as ACTOR` would load it."""
        path = self.key_file(actor_id)
        if not path.exists():
            raise KeyError(f"no key for {actor_id!r} under {self.directory / 'keys'}")
        key = load_private_key(path.read_bytes(), str(path), passphrase=None)
        return KeySigner(key, load_certificate(Path(f"{path}-cert.pub")))


def provision(
    directory: Path | str,
    roster: ReferenceData,
    *,
    now: datetime,
    validity: timedelta = timedelta(days=365),
    signing_required_from: datetime | None = None,
) -> Identities:
    """Make (or complete) the identities of every organization and actor of `roster`."""
    root = Path(directory)
    (root / "ca").mkdir(parents=True, exist_ok=True)
    (root / "keys").mkdir(parents=True, exist_ok=True)
    stanzas = []
    for org in roster.organizations.values():
        members = [a for a in roster.actors.values() if a.organization == org.id]
        may_grant = sorted({role for a in members for role in a.roles}, key=list(Role).index)
        if not may_grant:
            continue
        ca_key = _key(root / "ca" / org.id)
        stanzas.append(
            organization_stanza(
                org.id,
                org.name,
                org.acts_for,
                may_grant,
                public_key_line_of(ca_key, f"{org.id}-ca"),
                actors=[a.id for a in members],
            )
        )
        for serial, actor in enumerate(members, start=1):
            key = _key(root / "keys" / actor.id)
            cert_path = root / "keys" / f"{actor.id}-cert.pub"
            if _still_valid(cert_path, now):
                continue
            line = issue_certificate(
                ca_key,
                public_key_line_of(key),
                actor.id,
                actor.roles,
                now - timedelta(minutes=5),
                now + validity,
                serial,
            )
            cert_path.write_text(line + "\n", encoding="ascii")
    trust_file = root / "trust.toml"
    required = signing_required_from or now
    header = (
        "# Trust roots of a provisioned roster (docket.provision): the organizations' CA keys\n"
        f"signing_required_from = {required.strftime('%Y-%m-%dT%H:%M:%SZ')}\n\n"
    )
    trust_file.write_text(header + "\n".join(stanzas), encoding="utf-8")
    return Identities(root, trust_file, load_trust(trust_file))


def _key(path: Path) -> sshsig.PrivateKey:
    """The private key at `path`, made (mode 600) if it does not exist yet."""
    if path.exists():
        return load_private_key(path.read_bytes(), str(path), passphrase=None)
    key = generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private_key_text(key, None))
    path.with_name(path.name + ".pub").write_text(public_key_line_of(key, path.name) + "\n")
    return key


def _still_valid(cert_path: Path, now: datetime) -> bool:
    if not cert_path.exists():
        return False
    certificate = load_certificate(cert_path)
    return bool(certificate.valid_before > (now + RENEW_BEFORE).timestamp())
