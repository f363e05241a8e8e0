"""Interop with stock OpenSSH `ssh-keygen`, both ways.

- ssh-keygen's keys, certificates and signatures verify with Docket's code;
- Docket's keys, certificates and signatures verify with `ssh-keygen -Y verify` and the
  allowed_signers file `./run keys allowed-signers` exports, and `-r` (the KRL from
  `./run keys revoked-keys`) refuses a revoked user key or CA key;
- FIDO (sk-) keys: no hardware here, so the token's signature is computed in software
  (tests/identity_support.sk_sign, per OpenSSH PROTOCOL.u2f) and both verifiers must agree.
"""

from __future__ import annotations

import base64
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from identity_support import (
    SSH_KEYGEN,
    Official,
    make_official,
    make_org,
    make_trust,
    sk_ecdsa_public_blob,
    sk_ed25519_public_blob,
    sk_sign,
)

from docket import sshsig
from docket.credentials import IdentityError, TrustRoots, verify_signed
from docket.keys import allowed_signers_text, generate_key, private_key_text, public_key_line_of
from docket.lifecycle import Role
from docket.signer import load_signer

pytestmark = pytest.mark.skipif(SSH_KEYGEN is None, reason="OpenSSH's ssh-keygen is not installed")

NS = "docket-command@v1"
MESSAGE = '{"actor":"tran.thi.binh","payload":{"reason":"Đúng"},"v":1}'.encode()


def keygen(
    *args: str, stdin: bytes | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    assert SSH_KEYGEN is not None
    done = subprocess.run(
        [SSH_KEYGEN, *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"ssh-keygen {' '.join(args)} failed: {done.stderr}")
    return done


def keygen_verify(
    d: Path,
    trust: TrustRoots,
    actor: str,
    armored: str,
    message: bytes = MESSAGE,
    *,
    revoked: Path | None = None,
    verify_time: datetime | None = None,
) -> bool:
    allowed = d / "allowed_signers"
    allowed.write_text(allowed_signers_text(trust))
    sig = d / "msg.sig"
    sig.write_text(armored)
    args = ["-Y", "verify", "-f", str(allowed), "-I", actor, "-n", NS, "-s", str(sig)]
    if revoked is not None:
        args += ["-r", str(revoked)]
    if verify_time is not None:
        args += [f"-Overify-time={verify_time.astimezone(UTC):%Y%m%d%H%M%S}Z"]
    done = keygen(*args, stdin=message, check=False)
    good = done.returncode == 0
    assert good == done.stdout.startswith(f'Good "{NS}" signature for {actor}'), done
    return good


def ours(
    trust: TrustRoots, armored: str, message: bytes = MESSAGE, now: datetime | None = None
) -> str | None:
    """None if Docket accepts, else the refusal code."""
    try:
        verify_signed(message, armored, trust, now or datetime.now(UTC))
    except IdentityError as exc:
        return exc.code
    return None


def _live_official(
    org: object, actor: str, roles: tuple[Role, ...], key_type: str = "ed25519"
) -> Official:
    now = datetime.now(UTC).replace(microsecond=0)
    return make_official(
        org,  # type: ignore[arg-type]
        actor,
        roles,
        key_type=key_type,
        valid_after=now - timedelta(hours=1),
        valid_before=now + timedelta(days=30),
    )


# --- ssh-keygen -> Docket ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_type", "bits"), [("ed25519", None), ("ecdsa", "256"), ("rsa", "3072")]
)
def test_ssh_keygen_signatures_verify_with_docket(
    tmp_path: Path, key_type: str, bits: str | None
) -> None:
    size = ["-b", bits] if bits else []
    keygen("-q", "-t", key_type, *size, "-N", "", "-C", "ca", "-f", str(tmp_path / "ca"))
    keygen("-q", "-t", key_type, *size, "-N", "", "-C", "binh", "-f", str(tmp_path / "binh"))
    keygen(
        "-q",
        "-s",
        str(tmp_path / "ca"),
        "-I",
        "tran.thi.binh",
        "-n",
        "tran.thi.binh",
        "-V",
        "-1h:+30d",
        "-z",
        "5",
        "-O",
        "clear",
        "-O",
        "extension:roles@docket=officer,approver",
        str(tmp_path / "binh.pub"),
    )
    msg = tmp_path / "msg"
    msg.write_bytes(MESSAGE)
    keygen("-Y", "sign", "-f", str(tmp_path / "binh-cert.pub"), "-n", NS, str(msg))
    armored = (tmp_path / "msg.sig").read_text()
    org = make_org("mic")
    trust = TrustRoots.model_validate(
        {
            "signing_required_from": "2026-01-01T00:00:00Z",
            "organizations": [{**org.entry(), "ca_keys": [(tmp_path / "ca.pub").read_text()]}],
        }
    )
    credential = verify_signed(MESSAGE, armored, trust, datetime.now(UTC))
    assert credential.actor_id == "tran.thi.binh" and credential.serial == 5
    assert [r.value for r in credential.roles] == ["officer", "approver"]
    fingerprint = keygen("-l", "-f", str(tmp_path / "binh.pub")).stdout.split()[1]
    ca_fingerprint = keygen("-l", "-f", str(tmp_path / "ca.pub")).stdout.split()[1]
    assert (credential.key_fingerprint, credential.ca_fingerprint) == (fingerprint, ca_fingerprint)
    # And ssh-keygen itself agrees with the allowed_signers Docket exports.
    assert keygen_verify(tmp_path, trust, "tran.thi.binh", armored)
    assert ours(trust, armored, MESSAGE + b"x") == "bad_signature"


def test_ssh_keygen_passphrase_key_file_signs_through_docket(tmp_path: Path) -> None:
    passphrase = "mật khẩu rất dài đây"
    org = make_org("mic")
    (tmp_path / "ca").write_bytes(private_key_text(org.ca_key, None))
    (tmp_path / "ca").chmod(0o600)
    keygen("-q", "-t", "ed25519", "-N", passphrase, "-f", str(tmp_path / "binh"))
    keygen(
        "-q",
        "-s",
        str(tmp_path / "ca"),
        "-I",
        "tran.thi.binh",
        "-n",
        "tran.thi.binh",
        "-V",
        "-1h:+1d",
        "-O",
        "extension:roles@docket=approver",
        str(tmp_path / "binh.pub"),
    )  # fmt: skip  (no -O clear: ssh-keygen's default permit-* extensions are ignored)
    signer = load_signer(
        key=tmp_path / "binh", environ={"DOCKET_KEY_PASSPHRASE": passphrase}, interactive=False
    )
    armored = signer.sign(MESSAGE)
    trust = make_trust(org)
    assert ours(trust, armored) is None
    assert keygen_verify(tmp_path, trust, "tran.thi.binh", armored)


def test_ssh_keygen_certificate_without_an_end_is_refused(tmp_path: Path) -> None:
    org = make_org("mic")
    (tmp_path / "ca").write_bytes(private_key_text(org.ca_key, None))
    (tmp_path / "ca").chmod(0o600)
    keygen("-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k"))
    keygen(
        "-q", "-s", str(tmp_path / "ca"), "-I", "a.b", "-n", "a.b",
        "-O", "extension:roles@docket=officer", str(tmp_path / "k.pub"),
    )  # fmt: skip
    msg = tmp_path / "msg"
    msg.write_bytes(MESSAGE)
    keygen("-Y", "sign", "-f", str(tmp_path / "k-cert.pub"), "-n", NS, str(msg))
    trust = make_trust(org)
    armored = (tmp_path / "msg.sig").read_text()
    assert keygen_verify(tmp_path, trust, "a.b", armored)  # OpenSSH allows "forever"...
    assert ours(trust, armored) == "bad_credential"  # ... Docket needs an end date


# --- Docket -> ssh-keygen ----------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa", "rsa"])
def test_docket_signatures_verify_with_ssh_keygen(tmp_path: Path, key_type: str) -> None:
    org = make_org("mic", key_type=key_type)
    binh = _live_official(org, "tran.thi.binh", (Role.APPROVER,), key_type)
    trust = make_trust(org)
    armored = binh.signer.sign(MESSAGE)
    assert ours(trust, armored) is None
    assert keygen_verify(tmp_path, trust, "tran.thi.binh", armored)
    # Both refuse: another identity, an altered message, a foreign namespace.
    assert not keygen_verify(tmp_path, trust, "nguyen.van.an", armored)
    assert not keygen_verify(tmp_path, trust, "tran.thi.binh", armored, MESSAGE + b" ")
    assert ours(trust, armored, MESSAGE + b" ") == "bad_signature"
    other_ns = binh.signer.sign(MESSAGE, "file")
    assert not keygen_verify(tmp_path, trust, "tran.thi.binh", other_ns)
    assert ours(trust, other_ns) == "wrong_namespace"


def test_ssh_keygen_reads_docket_keys_and_certificates(tmp_path: Path) -> None:
    org = make_org("mic")
    binh = _live_official(org, "tran.thi.binh", (Role.APPROVER,))
    cert = tmp_path / "binh-cert.pub"
    cert.write_text(binh.certificate_line + "\n")
    listing = keygen("-L", "-f", str(cert)).stdout
    assert 'Key ID: "tran.thi.binh"' in listing and "roles@docket" in listing
    assert binh.fingerprint in listing and org.ca_fingerprint in listing
    private = tmp_path / "binh"
    private.write_bytes(private_key_text(binh.key, "một cụm mật khẩu"))
    private.chmod(0o600)
    public = keygen("-y", "-P", "một cụm mật khẩu", "-f", str(private)).stdout
    assert public.split()[:2] == public_key_line_of(binh.key).split()[:2]
    assert keygen("-y", "-P", "wrong", "-f", str(private), check=False).returncode != 0


def _krl(d: Path, *keys: str) -> Path:
    spec = d / "spec"
    spec.write_text("".join(f"key: {k}\n" for k in keys))
    krl = d / "revoked.krl"
    krl.unlink(missing_ok=True)
    keygen("-q", "-k", "-f", str(krl), str(spec))
    return krl


def test_revocation_agrees(tmp_path: Path) -> None:
    org = make_org("mic")
    binh = _live_official(org, "tran.thi.binh", (Role.APPROVER,))
    armored = binh.signer.sign(MESSAGE)
    unrelated = public_key_line_of(generate_key())
    trust = make_trust(org)
    assert keygen_verify(
        tmp_path, trust, "tran.thi.binh", armored, revoked=_krl(tmp_path, unrelated)
    )
    # The user key revoked: Docket's trust roots and ssh-keygen's KRL both refuse.
    assert ours(make_trust(org, revoked=[binh.public_line]), armored) == "key_revoked"
    assert not keygen_verify(
        tmp_path, trust, "tran.thi.binh", armored, revoked=_krl(tmp_path, binh.public_line)
    )
    # The CA key revoked.
    assert ours(make_trust(org, revoked=[org.ca_line]), armored) == "key_revoked"
    assert not keygen_verify(
        tmp_path, trust, "tran.thi.binh", armored, revoked=_krl(tmp_path, org.ca_line)
    )
    # A plain key list works for ssh-keygen too (what `revoked-keys --format keys` writes).
    flat = tmp_path / "revoked_keys"
    flat.write_text(binh.public_line + "\n")
    assert not keygen_verify(tmp_path, trust, "tran.thi.binh", armored, revoked=flat)


def test_expiry_agrees_at_the_time_of_signing(tmp_path: Path) -> None:
    # An auditor checks old entries at the time they were signed (-Overify-time).
    org = make_org("mic")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    binh = make_official(
        org,
        "tran.thi.binh",
        (Role.APPROVER,),
        valid_after=start,
        valid_before=start + timedelta(days=30),
    )
    trust = make_trust(org)
    armored = binh.signer.sign(MESSAGE)
    inside = start + timedelta(days=10)
    after = start + timedelta(days=31)
    before = start - timedelta(days=1)
    assert keygen_verify(tmp_path, trust, "tran.thi.binh", armored, verify_time=inside)
    assert ours(trust, armored, now=inside) is None
    assert not keygen_verify(tmp_path, trust, "tran.thi.binh", armored, verify_time=after)
    assert ours(trust, armored, now=after) == "credential_expired"
    assert not keygen_verify(tmp_path, trust, "tran.thi.binh", armored, verify_time=before)
    assert ours(trust, armored, now=before) == "credential_not_yet_valid"


def test_actor_patterns_agree(tmp_path: Path) -> None:
    org = make_org("mic", actors=("*.mic",))
    trust = make_trust(org)
    inside = _live_official(org, "binh.mic", (Role.APPROVER,))
    outside = _live_official(org, "tran.thi.binh", (Role.APPROVER,))
    assert keygen_verify(tmp_path, trust, "binh.mic", inside.signer.sign(MESSAGE))
    assert ours(trust, inside.signer.sign(MESSAGE)) is None
    assert not keygen_verify(tmp_path, trust, "tran.thi.binh", outside.signer.sign(MESSAGE))
    assert ours(trust, outside.signer.sign(MESSAGE)) == "bad_credential"


# --- FIDO keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa"])
def test_fido_signatures_agree(tmp_path: Path, kind: str) -> None:
    org = make_org("mic")
    (tmp_path / "ca").write_bytes(private_key_text(org.ca_key, None))
    (tmp_path / "ca").chmod(0o600)
    token = generate_key(kind)
    blob = (sk_ed25519_public_blob if kind == "ed25519" else sk_ecdsa_public_blob)(token)
    (tmp_path / "token.pub").write_text(sshsig.public_key_line(blob, "token") + "\n")
    # Stock ssh-keygen certifies the FIDO public key (no hardware needed for that).
    keygen(
        "-q", "-s", str(tmp_path / "ca"), "-I", "tran.thi.binh", "-n", "tran.thi.binh",
        "-V", "-1h:+1d", "-O", "clear", "-O", "extension:roles@docket=approver",
        str(tmp_path / "token.pub"),
    )  # fmt: skip
    cert_text = (tmp_path / "token-cert.pub").read_text().split()
    cert = sshsig.parse_certificate(base64.b64decode(cert_text[1]))
    assert cert.key.blob == blob
    trust = make_trust(org)

    def signed(flags: int) -> str:
        return sshsig.build_sshsig(cert.blob, NS, MESSAGE, lambda d: sk_sign(token, d, flags=flags))

    for flags in (0x01, 0x05):  # touched; touched and PIN-verified
        armored = signed(flags)
        assert ours(trust, armored) is None
        assert keygen_verify(tmp_path, trust, "tran.thi.binh", armored)
    # Not touched: Docket refuses, as sshd does by default. (Stock `ssh-keygen -Y verify` in
    # OpenSSH 9.2 does not check the flag; docs/identity.md says so. Such a signature can
    # never reach the log, since the workflow refuses it first.)
    assert ours(trust, signed(0x00)) == "bad_signature"
