"""docket.sshsig: the SSHSIG envelope, its armor, key blobs, certificates and signature blobs.

Cross-checked against `cryptography`'s own OpenSSH parsers; stock ssh-keygen interop is in
tests/interop/test_ssh_keygen.py."""

from __future__ import annotations

import base64
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.serialization import load_ssh_public_identity
from cryptography.hazmat.primitives.serialization import ssh as ssh_serialization
from hypothesis import given, settings
from hypothesis import strategies as st
from identity_support import (
    encode_certificate,
    make_official,
    make_org,
    sk_ecdsa_public_blob,
    sk_ed25519_public_blob,
    sk_sign,
)

from docket import sshsig
from docket.keys import generate_key, public_key_line_of
from docket.lifecycle import Role

MESSAGE = b'{"v":1,"hello":"xin ch\xc3\xa0o"}'
NS = "docket-command@v1"


def _blob(key: sshsig.PrivateKey) -> bytes:
    return sshsig.parse_public_key_line(public_key_line_of(key))[0].blob


def _sign(key: sshsig.PrivateKey, message: bytes = MESSAGE, namespace: str = NS) -> str:
    return sshsig.build_sshsig(
        _blob(key), namespace, message, lambda d: sshsig.sign_with_private_key(key, d)
    )


def _verify(armored: str, message: bytes = MESSAGE) -> sshsig.SignatureDetails:
    sig = sshsig.parse_sshsig(sshsig.dearmor(armored))
    key = sshsig.parse_public_key(sig.public_key)
    data = sshsig.signed_data(sig.namespace, sig.hash_algorithm, message)
    return sshsig.verify_signature_blob(key, sig.signature, data)


# --- armor and envelope ------------------------------------------------------------------------


def test_armor_is_what_ssh_keygen_writes() -> None:
    blob = bytes(range(256))
    text = sshsig.armor(blob)
    lines = text.split("\n")
    assert lines[0] == "-----BEGIN SSH SIGNATURE-----"
    assert lines[-2] == "-----END SSH SIGNATURE-----" and lines[-1] == ""
    assert all(len(line) == 70 for line in lines[1:-3]) and 0 < len(lines[-3]) <= 70
    assert sshsig.dearmor(text) == blob
    assert sshsig.dearmor(text.rstrip("\n")) == blob  # a stripped final newline is fine
    assert sshsig.dearmor(text.replace("\n", "\r\n")) == blob  # so are CRLF line ends


BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"


def _rewrap(text: str) -> str:
    """The same base64 in 64-column lines instead of ssh-keygen's 70."""
    body = "".join(text.split("\n")[1:-2])
    return "\n".join([BEGIN, *(body[i : i + 64] for i in range(0, len(body), 64)), END]) + "\n"


@pytest.mark.parametrize(
    ("mangle", "expected"),
    [
        (lambda t: t.replace(BEGIN, "-----BEGIN SIGNATURE-----"), "not an armored"),
        (lambda t: t.replace(END + "\n", ""), "not an armored"),
        (_rewrap, "not canonical"),
        (lambda t: t.replace("\nU1NIU0lH", "\nU1NIU0l*"), "base64 is malformed"),
        (lambda t: "  " + t, "not an armored"),
        (lambda t: t + "\n", "not an armored"),
        (lambda t: t.replace("\n", "\n ", 1), "base64 is malformed"),
        (lambda t: "x" * (sshsig.MAX_ARMORED_CHARS + 1), "at most"),
    ],
)
def test_dearmor_refuses_any_other_form(mangle: object, expected: str) -> None:
    text = _sign(generate_key())
    assert callable(mangle)
    with pytest.raises(sshsig.SshsigError, match=expected) as info:
        sshsig.dearmor(mangle(text))
    assert info.value.code == "malformed_signature"


def test_non_canonical_base64_padding_bits_are_refused() -> None:
    # Two bytes left over: the last base64 digit carries 2 unused bits. "E=" and "F=" decode
    # to the same bytes; only the canonical one (unused bits zero) is accepted.
    blob = b"SSHSIG\x00\x00"
    text = sshsig.armor(blob)
    assert text.split("\n")[1] == "U1NIU0lHAAA="
    assert base64.b64decode("U1NIU0lHAAB=") == blob
    with pytest.raises(sshsig.SshsigError, match="not canonical"):
        sshsig.dearmor(text.replace("AAA=", "AAB="))


def test_envelope_round_trip_and_refusals() -> None:
    sig = sshsig.SshSignature(b"key", NS, b"", "sha512", b"sig")
    blob = sshsig.encode_sshsig(sig)
    assert sshsig.parse_sshsig(blob) == sig
    version_2 = blob[:6] + struct.pack(">I", 2) + blob[10:]
    cases = {
        b"SSHSIH" + blob[6:]: "preamble",
        version_2: "version 2",
        blob + b"\x00": "trailing",
        blob[:-1]: "truncated",
        sshsig.encode_sshsig(sshsig.SshSignature(b"k", NS, b"x", "sha512", b"s")): "reserved",
        sshsig.encode_sshsig(sshsig.SshSignature(b"k", NS, b"", "sha1", b"s")): "sha1",
        sshsig.encode_sshsig(sshsig.SshSignature(b"k", NS, b"", "md5", b"s")): "md5",
    }
    for bad, needle in cases.items():
        with pytest.raises(sshsig.SshsigError, match=needle):
            sshsig.parse_sshsig(bad)


def test_signed_data_layout() -> None:
    import hashlib

    data = sshsig.signed_data(NS, "sha256", b"m")
    expected = (
        b"SSHSIG"
        + struct.pack(">I", len(NS))
        + NS.encode()
        + struct.pack(">I", 0)
        + struct.pack(">I", 6)
        + b"sha256"
        + struct.pack(">I", 32)
        + hashlib.sha256(b"m").digest()
    )
    assert data == expected


# --- keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa", "rsa"])
def test_fingerprints_match_cryptography(key_type: str) -> None:
    key = generate_key(key_type)
    ours = sshsig.parse_public_key_line(public_key_line_of(key))[0].fingerprint
    digest = ssh_serialization.ssh_key_fingerprint(key.public_key(), hashes.SHA256())
    assert ours == "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()])
def test_every_ecdsa_curve_signs_and_verifies(curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    details = _verify(_sign(key))
    assert details.algorithm == f"ecdsa-sha2-nistp{curve.key_size}"


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa", "rsa"])
def test_altered_message_fails(key_type: str) -> None:
    armored = _sign(generate_key(key_type))
    _verify(armored)
    with pytest.raises(sshsig.SshsigError) as info:
        _verify(armored, MESSAGE + b" ")
    assert info.value.code == "bad_signature"


def test_rsa_sha256_accepted_and_sha1_refused() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = sshsig.parse_public_key(_blob(key))
    data = b"data"
    sha256 = sshsig.ssh_string(b"rsa-sha2-256") + sshsig.ssh_string(
        key.sign(data, PKCS1v15(), hashes.SHA256())
    )
    assert sshsig.verify_signature_blob(pub, sha256, data).algorithm == "rsa-sha2-256"
    sha1 = sshsig.ssh_string(b"ssh-rsa") + sshsig.ssh_string(
        key.sign(data, PKCS1v15(), hashes.SHA1())
    )
    with pytest.raises(sshsig.SshsigError, match="SHA-1"):
        sshsig.verify_signature_blob(pub, sha1, data)


def test_small_rsa_keys_are_refused() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(sshsig.SshsigError, match="1024 bits") as info:
        sshsig.parse_public_key(_blob(key))
    assert info.value.code == "unsupported_key"


def test_signature_algorithm_must_fit_the_key() -> None:
    ed = generate_key("ed25519")
    ecdsa = generate_key("ecdsa")
    blob = sshsig.sign_with_private_key(ed, b"d")
    with pytest.raises(sshsig.SshsigError, match="does not fit"):
        sshsig.verify_signature_blob(sshsig.parse_public_key(_blob(ecdsa)), blob, b"d")


def test_unknown_and_dsa_key_types_are_refused() -> None:
    blob = sshsig.ssh_string(b"ssh-dss") + sshsig.ssh_string(b"\x01")
    with pytest.raises(sshsig.SshsigError, match="not supported"):
        sshsig.parse_public_key(blob)


def test_public_key_line_checks_type_and_base64() -> None:
    line = public_key_line_of(generate_key(), "me")
    _, comment = sshsig.parse_public_key_line(line)
    assert comment == "me"
    with pytest.raises(sshsig.SshsigError, match="base64"):
        sshsig.parse_public_key_line("ssh-ed25519 !!!")
    with pytest.raises(sshsig.SshsigError, match="line says"):
        sshsig.parse_public_key_line("ssh-rsa " + line.split()[1])
    with pytest.raises(sshsig.SshsigError, match="expected"):
        sshsig.parse_public_key_line("ssh-ed25519")


# --- FIDO keys (software test vectors: what a token computes, PROTOCOL.u2f) --------------------


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa"])
def test_fido_signature_verifies_and_needs_the_touch(kind: str) -> None:
    token = generate_key(kind)
    blob = (sk_ed25519_public_blob if kind == "ed25519" else sk_ecdsa_public_blob)(token)
    key = sshsig.parse_public_key(blob)
    assert key.application == "ssh:"
    data = sshsig.signed_data(NS, "sha512", MESSAGE)
    details = sshsig.verify_signature_blob(key, sk_sign(token, data, flags=0x05), data)
    assert details.sk_flags == 0x05 and details.sk_counter == 7
    with pytest.raises(sshsig.SshsigError, match="touch"):
        sshsig.verify_signature_blob(key, sk_sign(token, data, flags=0x00), data)
    with pytest.raises(sshsig.SshsigError, match="does not verify"):
        sshsig.verify_signature_blob(key, sk_sign(token, data, application="ssh:x"), data)


def test_fido_application_must_start_with_ssh() -> None:
    token = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(sshsig.SshsigError, match="lacks 'ssh:'"):
        sshsig.parse_public_key(sk_ed25519_public_blob(token, "https://evil.example"))


def test_fido_certificate_parses_with_the_plain_key_fingerprint() -> None:
    org = make_org()
    token = generate_key("ed25519")
    blob = sk_ed25519_public_blob(token)
    cert = sshsig.parse_certificate(encode_certificate(org.ca_key, blob))
    assert cert.cert_type == "sk-ssh-ed25519-cert-v01@openssh.com"
    assert cert.key.blob == blob and cert.key.fingerprint == sshsig.fingerprint(blob)
    sshsig.verify_signature_blob(cert.ca_key, cert.signature, cert.signed_part)


# --- certificates ------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa", "rsa"])
def test_certificate_fields_match_cryptography(key_type: str) -> None:
    org = make_org(key_type=key_type)
    official = make_official(org, "tran.thi.binh", (Role.APPROVER,), key_type=key_type, serial=42)
    ours = official.certificate
    theirs = load_ssh_public_identity(official.certificate_line.encode())
    assert isinstance(theirs, ssh_serialization.SSHCertificate)
    assert ours.key_id == theirs.key_id.decode()
    assert ours.principals == tuple(p.decode() for p in theirs.valid_principals)
    assert (ours.valid_after, ours.valid_before) == (theirs.valid_after, theirs.valid_before)
    assert ours.serial == theirs.serial == 42
    assert dict(ours.extensions) == {k.decode(): v for k, v in theirs.extensions.items()}
    assert ours.extension("roles@docket") == b"approver"
    assert ours.kind == sshsig.USER_CERT
    assert ours.key.fingerprint == official.fingerprint
    assert ours.ca_key.fingerprint == org.ca_fingerprint
    theirs.verify_cert_signature()
    sshsig.verify_signature_blob(ours.ca_key, ours.signature, ours.signed_part)
    assert ours.line == official.certificate_line.rsplit(" ", 1)[0]


def test_certificate_parse_refusals() -> None:
    org = make_org()
    cert = make_official(org, "a.b", (Role.OFFICER,)).certificate
    with pytest.raises(sshsig.SshsigError, match="trailing"):
        sshsig.parse_certificate(cert.blob + b"\x00")
    with pytest.raises(sshsig.SshsigError, match="truncated"):
        sshsig.parse_certificate(cert.blob[:-10])
    with pytest.raises(sshsig.SshsigError) as info:
        sshsig.parse_certificate(_blob(generate_key()))
    assert info.value.code == "not_a_certificate"


def test_unsorted_extensions_are_refused() -> None:
    raw = (
        sshsig.ssh_string(b"z@docket")
        + sshsig.ssh_string(b"")
        + sshsig.ssh_string(b"a@docket")
        + sshsig.ssh_string(b"")
    )
    with pytest.raises(sshsig.SshsigError, match="sorted"):
        sshsig._options(raw, "extensions")


# --- the property: any altered byte fails ------------------------------------------------------

_KEY = generate_key("ed25519")
_ARMORED = _sign(_KEY)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_altered_character_of_the_armored_signature_fails(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(_ARMORED) - 1))
    replacement = data.draw(st.characters(codec="ascii").filter(lambda c: c != _ARMORED[index]))
    altered = _ARMORED[:index] + replacement + _ARMORED[index + 1 :]
    # A CR before the final LF, or a changed final LF, could be harmless in theory: the rules
    # say both are refused unless they form CRLF, so every alteration must fail.
    with pytest.raises(sshsig.SshsigError):
        _verify(altered)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_altered_byte_of_the_message_fails(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(MESSAGE) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda b: b != MESSAGE[index]))
    altered = MESSAGE[:index] + bytes([value]) + MESSAGE[index + 1 :]
    with pytest.raises(sshsig.SshsigError) as info:
        _verify(_ARMORED, altered)
    assert info.value.code == "bad_signature"
