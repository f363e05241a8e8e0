"""docket.credentials: the trust file, and every reason verify_signed refuses a signature."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import ssh as ssh_serialization
from hypothesis import given, settings
from hypothesis import strategies as st
from identity_support import (
    NOW,
    Official,
    encode_certificate,
    make_official,
    make_org,
    make_trust,
    odd_certificate,
    sk_ed25519_public_blob,
    sk_sign,
    trust_toml,
)
from temporalio.contrib.pydantic import pydantic_data_converter

from docket import sshsig
from docket.credentials import (
    IDENTITY_CODES,
    Credential,
    IdentityError,
    TrustFileError,
    TrustRoots,
    load_trust,
    verify_signed,
)
from docket.keys import generate_key, public_key_line_of
from docket.lifecycle import Role

MESSAGE = b'{"v":1,"trigger":"approve","payload":{"reason":"\xc4\x91\xc3\xba ng"}}'

MIC = make_org("mic", ("authority:mic",), (Role.OFFICER, Role.APPROVER), name="Bộ TT&TT")
META = make_org("meta", ("platform:facebook",), (Role.PLATFORM_LIAISON,))
BINH = make_official(MIC, "tran.thi.binh", (Role.APPROVER,), serial=7)
TRUST = make_trust(MIC, META)


def _sign(
    official: Official, message: bytes = MESSAGE, namespace: str = "docket-command@v1"
) -> str:
    return official.signer.sign(message, namespace)


def _sign_with_cert(
    key: sshsig.PrivateKey, cert: sshsig.Certificate, message: bytes = MESSAGE
) -> str:
    return sshsig.build_sshsig(
        cert.blob, "docket-command@v1", message, lambda d: sshsig.sign_with_private_key(key, d)
    )


def _refused(
    code: str,
    armored: str,
    trust: TrustRoots = TRUST,
    *,
    now: datetime = NOW,
    message: bytes = MESSAGE,
) -> str:
    assert code in IDENTITY_CODES
    with pytest.raises(IdentityError) as info:
        verify_signed(message, armored, trust, now)
    assert info.value.code == code, info.value.message
    assert str(info.value) == info.value.message
    return info.value.message


# --- the happy path ----------------------------------------------------------------------------


def test_a_valid_signature_proves_the_credential() -> None:
    credential = verify_signed(MESSAGE, _sign(BINH), TRUST, NOW)
    assert credential == Credential(
        actor_id="tran.thi.binh",
        roles=(Role.APPROVER,),
        organization_id="mic",
        organization_name="Bộ TT&TT",
        acts_for=("authority:mic",),
        key_fingerprint=BINH.fingerprint,
        ca_fingerprint=MIC.ca_fingerprint,
        serial=7,
        valid_after=NOW - timedelta(days=1),
        valid_before=NOW + timedelta(days=90),
        certificate=BINH.certificate_line.rsplit(" ", 1)[0],
    )
    assert credential.may_act_for("authority", "mic")
    assert not credential.may_act_for("authority", "mst")
    assert not credential.may_act_for("platform", "mic")
    # JSON-serialisable (it goes into audit entries and Update results).
    assert Credential.model_validate_json(credential.model_dump_json()) == credential


@pytest.mark.parametrize("key_type", ["ecdsa", "rsa"])
def test_ecdsa_and_rsa_officials_and_cas(key_type: str) -> None:
    org = make_org("mic", key_type=key_type)
    official = make_official(org, "le.van.cuong", (Role.OFFICER, Role.APPROVER), key_type=key_type)
    credential = verify_signed(MESSAGE, _sign(official), make_trust(org), NOW)
    assert credential.roles == (Role.OFFICER, Role.APPROVER)


def test_the_organization_comes_from_the_ca_not_the_certificate() -> None:
    # Same actor id, certified by the platform's CA: it is the platform's liaison, nothing more.
    impostor = make_official(META, "tran.thi.binh", (Role.PLATFORM_LIAISON,))
    credential = verify_signed(MESSAGE, _sign(impostor), TRUST, NOW)
    assert credential.organization_id == "meta"
    assert credential.roles == (Role.PLATFORM_LIAISON,)
    assert credential.may_act_for("platform", "facebook")
    assert not credential.may_act_for("authority", "mic")


def test_any_organization_acts_for_every_request() -> None:
    board = make_org("board", ("any",), (Role.APPEAL_REVIEWER,))
    reviewer = make_official(board, "pham.thi.dung", (Role.APPEAL_REVIEWER,))
    credential = verify_signed(MESSAGE, _sign(reviewer), make_trust(board), NOW)
    assert credential.may_act_for("authority", "mic") and credential.may_act_for("platform", "x")


def test_fido_key_with_touch_verifies() -> None:
    token = generate_key("ed25519")
    cert = sshsig.parse_certificate(encode_certificate(MIC.ca_key, sk_ed25519_public_blob(token)))
    armored = sshsig.build_sshsig(
        cert.blob, "docket-command@v1", MESSAGE, lambda d: sk_sign(token, d, flags=0x01)
    )
    credential = verify_signed(MESSAGE, armored, TRUST, NOW)
    assert credential.key_fingerprint == cert.key.fingerprint
    untouched = sshsig.build_sshsig(
        cert.blob, "docket-command@v1", MESSAGE, lambda d: sk_sign(token, d, flags=0x00)
    )
    assert "touch" in _refused("bad_signature", untouched)


# --- every refusal -----------------------------------------------------------------------------


@pytest.mark.parametrize("signature", ["", "   \n"])
def test_unsigned(signature: str) -> None:
    assert "no signature" in _refused("unsigned", signature)


@pytest.mark.parametrize(
    "signature",
    [
        "hello",
        "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n",
        sshsig.armor(b"SSHSIG\x00\x00\x00\x01"),
        sshsig.armor(b"SSHSIG\x00\x00\x00\x01" + b"\x00\x00\x00\x03abc" * 3),
    ],
)
def test_malformed_signature(signature: str) -> None:
    _refused("malformed_signature", signature)


def test_wrong_namespace() -> None:
    message = _refused("wrong_namespace", _sign(BINH, namespace="git"))
    assert "'git'" in message and "docket-command@v1" in message


def test_bad_signature_when_the_message_changed() -> None:
    message = _refused("bad_signature", _sign(BINH), message=MESSAGE + b" ")
    assert "tran.thi.binh" in message and "altered" in message


def test_bad_signature_with_someone_elses_certificate() -> None:
    # Mallory signs with her own key but attaches Binh's certificate.
    mallory = generate_key()
    armored = _sign_with_cert(mallory, BINH.certificate)
    assert BINH.fingerprint in _refused("bad_signature", armored)


def test_not_a_certificate() -> None:
    key = generate_key()
    blob = sshsig.parse_public_key_line(public_key_line_of(key))[0].blob
    armored = sshsig.build_sshsig(
        blob, "docket-command@v1", MESSAGE, lambda d: sshsig.sign_with_private_key(key, d)
    )
    message = _refused("not_a_certificate", armored)
    assert sshsig.fingerprint(blob) in message and "cert" in message


def test_unknown_key() -> None:
    rogue = make_org("mic")  # same id and name, a CA the operator never configured
    official = make_official(rogue, "tran.thi.binh", (Role.APPROVER,))
    message = _refused("unknown_key", _sign(official))
    assert rogue.ca_fingerprint in message and "tran.thi.binh" in message
    assert official.fingerprint in message


def test_credential_expired() -> None:
    message = _refused("credential_expired", _sign(BINH), now=NOW + timedelta(days=90))
    assert "2026-05-31T09:00:00Z" in message and "tran.thi.binh" in message
    # One second earlier it is still valid: the end is exclusive, as in OpenSSH.
    verify_signed(MESSAGE, _sign(BINH), TRUST, NOW + timedelta(days=90, seconds=-1))


def test_credential_not_yet_valid() -> None:
    message = _refused("credential_not_yet_valid", _sign(BINH), now=NOW - timedelta(days=2))
    assert "2026-03-01T09:00:00Z" in message


def test_key_revoked_by_fingerprint_and_by_key_line() -> None:
    by_fp = make_trust(MIC, META, revoked=[BINH.fingerprint])
    message = _refused("key_revoked", _sign(BINH), by_fp)
    assert BINH.fingerprint in message and "new key" in message
    by_line = make_trust(
        MIC,
        META,
        revoked=[{"key": BINH.public_line, "reason": "laptop stolen", "revoked_at": NOW}],
    )
    message = _refused("key_revoked", _sign(BINH), by_line)
    assert "laptop stolen" in message and "2026-03-02T09:00:00Z" in message


def test_a_revocation_applies_from_its_time() -> None:
    trust = make_trust(
        MIC, META, revoked=[{"key": BINH.fingerprint, "revoked_at": NOW + timedelta(hours=1)}]
    )
    # Checked at a time before the revocation (an audit of an older entry): still valid.
    assert verify_signed(MESSAGE, _sign(BINH), trust, NOW).actor_id == "tran.thi.binh"
    message = _refused("key_revoked", _sign(BINH), trust, now=NOW + timedelta(hours=1))
    assert "2026-03-02T10:00:00Z" in message


def test_ca_key_revoked() -> None:
    trust = make_trust(MIC, META, revoked=[MIC.ca_fingerprint])
    message = _refused("key_revoked", _sign(BINH), trust)
    assert MIC.ca_fingerprint in message and "new CA key" in message


def test_role_not_granted() -> None:
    # The platform's CA puts "approver" in a liaison's credential: the trust file forbids it.
    liaison = make_official(META, "liaison.facebook", (Role.PLATFORM_LIAISON, Role.APPROVER))
    message = _refused("role_not_granted", _sign(liaison))
    assert "approver" in message and "meta" in message and META.ca_fingerprint in message


def test_role_not_granted_within_an_authority() -> None:
    narrow = make_org("mst", ("authority:mst",), (Role.OFFICER,))
    official = make_official(narrow, "an.officer", (Role.APPROVER,))
    _refused("role_not_granted", _sign(official), make_trust(narrow))


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"principals": ["someone.else"]}, "principals"),
        ({"principals": ["tran.thi.binh", "nguyen.van.an"]}, "exactly its key id"),
        ({"principals": []}, "none (any)"),
        ({"roles": None}, "no roles@docket"),
        ({"roles": "approver,superuser"}, "unknown role 'superuser'"),
        ({"roles": "system"}, "system"),
        ({"roles": "approver,approver"}, "twice"),
        ({"roles": ""}, "unknown role"),
        ({"key_id": "Tran Thi Binh"}, "not an actor id"),
        ({"cert_type": ssh_serialization.SSHCertificateType.HOST}, "host certificate"),
        ({"critical": [("force-command", "/bin/true")]}, "force-command"),
        ({"valid_before": 2**64 - 1}, "never expires"),
        ({"serial": 2**60}, "2**53"),
    ],
)
def test_bad_credential(overrides: dict[str, object], needle: str) -> None:
    key = generate_key()
    cert = odd_certificate(MIC.ca_key, key, **overrides)  # type: ignore[arg-type]
    assert needle in _refused("bad_credential", _sign_with_cert(key, cert))


def test_bad_credential_when_the_certificate_was_altered() -> None:
    # Binh edits her own certificate to add "officer": the CA's signature no longer holds.
    cert = BINH.certificate
    forged_blob = cert.blob.replace(b"approver", b"officer,")
    assert forged_blob != cert.blob
    forged = sshsig.parse_certificate(forged_blob)
    message = _refused("bad_credential", _sign_with_cert(BINH.key, forged))
    assert "altered or forged" in message


def test_actor_patterns_limit_what_a_ca_certifies() -> None:
    scoped = make_org("mic", actors=("*.mic", "ops-?"))
    trust = make_trust(scoped)
    ok = make_official(scoped, "binh.mic", (Role.APPROVER,))
    assert verify_signed(MESSAGE, _sign(ok), trust, NOW).actor_id == "binh.mic"
    assert verify_signed(
        MESSAGE, _sign(make_official(scoped, "ops-1", (Role.OFFICER,))), trust, NOW
    )
    outside = make_official(scoped, "tran.thi.binh", (Role.APPROVER,))
    assert "*.mic" in _refused("bad_credential", _sign(outside), trust)
    _refused("bad_credential", _sign(make_official(scoped, "ops-12", (Role.OFFICER,))), trust)


def test_verify_required_needs_the_pin_on_fido_keys() -> None:
    token = generate_key("ed25519")
    blob = sk_ed25519_public_blob(token)
    cert_blob = encode_certificate(MIC.ca_key, blob)
    cert = sshsig.parse_certificate(cert_blob)
    assert cert.critical_options == ()
    # Re-sign it with the verify-required critical option put in (cryptography cannot
    # certify FIDO keys, and the test helper writes no options).

    body = cert.signed_part
    empty_critical = struct.pack(">I", 0)
    option = sshsig.ssh_string(b"verify-required") + sshsig.ssh_string(b"")
    marker = struct.pack(">Q", cert.valid_before) + empty_critical
    assert body.count(marker) == 1
    new_body = body.replace(
        marker, struct.pack(">Q", cert.valid_before) + sshsig.ssh_string(option)
    )
    signed = new_body + sshsig.ssh_string(sshsig.sign_with_private_key(MIC.ca_key, new_body))
    cert_uv = sshsig.parse_certificate(signed)
    assert cert_uv.critical_options == (("verify-required", b""),)

    def armored(flags: int) -> str:
        return sshsig.build_sshsig(
            cert_uv.blob, "docket-command@v1", MESSAGE, lambda d: sk_sign(token, d, flags=flags)
        )

    assert "PIN" in _refused("bad_signature", armored(0x01))
    assert verify_signed(MESSAGE, armored(0x05), TRUST, NOW).actor_id == "tran.thi.binh"


def test_hostile_text_in_a_signature_is_shown_escaped() -> None:
    key = generate_key()
    hostile = "binh\u202etxt.exe\x1b[2J"
    cert = odd_certificate(MIC.ca_key, key, key_id=hostile)
    message = _refused("bad_credential", _sign_with_cert(key, cert))
    assert "\u202e" not in message and "\x1b" not in message
    assert "\\u202e" in message and "\\x1b" in message
    message = _refused("wrong_namespace", _sign(BINH, namespace="\x1b]0;owned\x07"))
    assert "\x1b" not in message and "\x07" not in message
    sig = sshsig.SshSignature(BINH.certificate.blob, "docket-command@v1", b"", "sha1\u202e", b"")
    message = _refused("malformed_signature", sshsig.armor(sshsig.encode_sshsig(sig)))
    assert "\u202e" not in message


def test_a_weak_ca_key_is_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak_ca = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    key = generate_key()
    cert = encode_certificate(
        weak_ca, sshsig.parse_public_key_line(public_key_line_of(key))[0].blob
    )
    armored = sshsig.build_sshsig(
        cert, "docket-command@v1", MESSAGE, lambda d: sshsig.sign_with_private_key(key, d)
    )
    assert "1024 bits" in _refused("bad_credential", armored)


def test_every_code_is_exercised_here() -> None:
    source = Path(__file__).read_text()
    for code in IDENTITY_CODES:
        assert f'"{code}"' in source.split("def test_every_code_is_exercised_here")[0], code


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone"):
        verify_signed(MESSAGE, _sign(BINH), TRUST, NOW.replace(tzinfo=None))


# --- properties --------------------------------------------------------------------------------

_ARMORED = _sign(BINH)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_altered_byte_of_the_message_is_refused(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(MESSAGE) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda b: b != MESSAGE[index]))
    altered = MESSAGE[:index] + bytes([value]) + MESSAGE[index + 1 :]
    _refused("bad_signature", _ARMORED, message=altered)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_altered_character_of_the_signature_is_refused(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(_ARMORED) - 1))
    char = data.draw(st.characters(codec="utf-8").filter(lambda c: c != _ARMORED[index]))
    altered = _ARMORED[:index] + char + _ARMORED[index + 1 :]
    with pytest.raises(IdentityError):
        verify_signed(MESSAGE, altered, TRUST, NOW)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_as_a_signature_are_refused_cleanly(blob: bytes) -> None:
    with pytest.raises(IdentityError) as info:
        verify_signed(MESSAGE, sshsig.armor(b"SSHSIG" + blob), TRUST, NOW)
    assert info.value.code in IDENTITY_CODES


# --- the trust file ----------------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trust.toml"
    path.write_text(text, "utf-8")
    return path


def test_load_trust_reads_what_the_operator_wrote(tmp_path: Path) -> None:
    path = _write(tmp_path, trust_toml(MIC, META, revoked=[BINH.fingerprint, BINH.public_line]))
    trust = load_trust(path)
    assert [o.id for o in trust.organizations] == ["mic", "meta"]
    assert trust.signing_required_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert trust.organization_for_ca(MIC.ca_fingerprint) == trust.organizations[0]
    assert trust.organizations[0].ca_keys == (MIC.ca_line,)
    assert [r.fingerprint for r in trust.revoked] == [BINH.fingerprint, BINH.fingerprint]
    assert trust.revoked[0].key is None and trust.revoked[1].key is not None
    assert trust.revocation(BINH.fingerprint) is not None


def test_bare_revoked_list_at_the_top(tmp_path: Path) -> None:
    text = f'revoked = ["{BINH.fingerprint}"]\n' + trust_toml(MIC)
    assert load_trust(_write(tmp_path, text)).revocation(BINH.fingerprint) is not None


def test_trust_roots_travel_through_temporal_payloads() -> None:
    trust = make_trust(MIC, META, revoked=[{"key": BINH.public_line, "reason": "lost"}])
    converter = pydantic_data_converter.payload_converter
    payloads = converter.to_payloads([trust])
    (back,) = converter.from_payloads(payloads, [TrustRoots])
    assert back == trust and back.digest == trust.digest
    assert back.organization_for_ca(MIC.ca_fingerprint) is not None


def test_digest_tells_snapshots_apart() -> None:
    same = make_trust(MIC, META)
    assert same.digest == TRUST.digest and TRUST.digest.startswith("sha256:")
    assert make_trust(MIC, META, revoked=[BINH.fingerprint]).digest != TRUST.digest
    assert make_trust(META, MIC).digest != TRUST.digest  # order is part of the configuration


def _load_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(TrustFileError) as info:
        load_trust(_write(tmp_path, text))
    message = str(info.value)
    assert message.startswith(str(tmp_path / "trust.toml"))
    return message


def test_trust_file_missing(tmp_path: Path) -> None:
    with pytest.raises(TrustFileError, match="cannot read"):
        load_trust(tmp_path / "nope.toml")


def test_trust_file_syntax_error_names_the_line(tmp_path: Path) -> None:
    assert "line 2" in _load_error(
        tmp_path, 'signing_required_from = 2026-01-01T00:00:00Z\nx = "\n'
    )


def test_trust_file_unknown_top_level_key(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "revoke = []\n" + trust_toml(MIC))
    assert "revoke" in message and "allowed" in message


def _org_text(**fields: object) -> str:
    from identity_support import toml_value

    entry = {**MIC.entry(), **fields}
    body = "\n".join(f"{k} = {toml_value(v)}" for k, v in entry.items() if v is not None)
    return "signing_required_from = 2026-01-01T00:00:00Z\n[[organization]]\n" + body + "\n"


@pytest.mark.parametrize(
    ("fields", "needles"),
    [
        ({"ca_keys": None}, ["organization[0] (id 'mic').ca_keys", "Field required"]),
        ({"ca_keys": ["ssh-ed25519 AAAA"]}, ["ca_keys", "[0]"]),
        ({"ca_keys": ["ssh-ed25519"]}, ["ca_keys", "expected '<type> <base64>"]),
        (
            {"acts_for": ["platform:facebook"], "may_grant": ["approver"]},
            ["may not grant approver"],
        ),
        ({"acts_for": ["authority:mic", "platform:facebook"]}, ["mixes kinds"]),
        ({"acts_for": ["ministry"]}, ["'ministry'", "authority:<id>"]),
        ({"may_grant": ["platform_liaison"]}, ["may not grant platform_liaison"]),
        ({"may_grant": ["system"]}, ["may_grant"]),
        ({"may_grant": ["superuser"]}, ["may_grant", "officer"]),
        ({"name": "Bộ\u202eTT"}, ["name", "bidi"]),
        ({"ca_key": ["x"]}, ["ca_key", "Extra inputs"]),
        ({"actors": ["Tran*"]}, ["actors"]),
        ({"id": "MIC!"}, ["id", "pattern"]),
    ],
)
def test_trust_file_errors_name_entry_and_field(
    tmp_path: Path, fields: dict[str, object], needles: list[str]
) -> None:
    message = _load_error(tmp_path, _org_text(**fields))
    for needle in needles:
        assert needle in message, message
    assert "should have at least 1 item" not in message  # no echo of the item's own error


def test_trust_file_refuses_fido_ca_keys(tmp_path: Path) -> None:
    token = generate_key("ed25519")
    line = sshsig.public_key_line(sk_ed25519_public_blob(token))
    assert "FIDO" in _load_error(tmp_path, _org_text(ca_keys=[line]))


def test_trust_file_refuses_a_ca_key_shared_by_two_organizations(tmp_path: Path) -> None:
    twin = make_org("mst", ("authority:mst",))
    twin.ca_key = MIC.ca_key
    message = _load_error(tmp_path, trust_toml(MIC, twin))
    assert "exactly one organization" in message and MIC.ca_fingerprint in message


def test_trust_file_refuses_duplicate_organization_ids(tmp_path: Path) -> None:
    assert "appears twice" in _load_error(tmp_path, trust_toml(MIC, make_org("mic")))


def test_trust_file_needs_utc_offsets(tmp_path: Path) -> None:
    text = trust_toml(MIC).replace("2026-01-01T00:00:00Z", "2026-01-01T00:00:00")
    assert "UTC offset" in _load_error(tmp_path, text)


def test_trust_file_refuses_bad_revocations(tmp_path: Path) -> None:
    text = trust_toml(MIC) + '\n[[revoked]]\nkey = "SHA256:short"\n'
    assert "revoked[0]" in _load_error(tmp_path, text)
    text = (
        trust_toml(MIC)
        + f'\n[[revoked]]\nkey = "{BINH.public_line}"\nfingerprint = "{MIC.ca_fingerprint}"\n'
    )
    assert "not the key's" in _load_error(tmp_path, text)


def test_trust_file_needs_an_organization(tmp_path: Path) -> None:
    assert "organization" in _load_error(tmp_path, "signing_required_from = 2026-01-01T00:00:00Z\n")


def test_trust_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "trust.toml"
    path.write_bytes(b"name = '\xff'\n")
    with pytest.raises(TrustFileError, match="not UTF-8"):
        load_trust(path)


# --- inside Temporal's workflow sandbox --------------------------------------------------------


@pytest.mark.integration
async def test_verification_runs_in_the_workflow_sandbox(ts_env: object) -> None:
    from identity_sandbox_workflow import CheckInput, CheckResult, IdentityCheckWorkflow
    from temporalio.testing import WorkflowEnvironment
    from temporalio.worker import Worker
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    from docket.signer import sign_command

    assert isinstance(ts_env, WorkflowEnvironment)
    # docket and audit are NOT passed through here: the sandbox imports them afresh under
    # its restrictions, so a clock read or I/O in the verifying code would fail this test.
    runner = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "cryptography", "pydantic", "pydantic_core", "annotated_types", "transitions"
        )
    )
    queue = f"identity-{uuid.uuid4()}"
    command = sign_command(
        BINH.signer, "req-mic-1", "approve", "tran.thi.binh", {"reason": "ok"}, NOW
    )
    async with Worker(
        ts_env.client,
        task_queue=queue,
        workflows=[IdentityCheckWorkflow],
        workflow_runner=runner,
        # A sandbox violation fails the run at once (instead of retrying the task forever).
        workflow_failure_exception_types=[Exception],
    ):

        async def check(trust: TrustRoots, request_id: str = "req-mic-1") -> CheckResult:
            return await ts_env.client.execute_workflow(
                IdentityCheckWorkflow.run,
                CheckInput(
                    command=command, trust=trust, now=NOW, request_id=request_id, trigger="approve"
                ),
                id=f"identity-{uuid.uuid4()}",
                task_queue=queue,
                execution_timeout=timedelta(minutes=5),
            )

        ok = await check(TRUST)
        assert ok == CheckResult(
            ok=True,
            actor_id="tran.thi.binh",
            organization_id="mic",
            roles=("approver",),
            trust_digest=TRUST.digest,
        )
        revoked = make_trust(MIC, META, revoked=[BINH.fingerprint])
        assert (await check(revoked)).code == "key_revoked"
        assert (await check(TRUST, "req-mic-2")).code == "wrong_request"
