"""docket.signer: signing from a key file, DOCKET_KEY and a real ssh-agent; secrets stay secret."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from identity_support import (
    NOW,
    SSH_ADD,
    SSH_AGENT,
    Official,
    make_official,
    make_org,
    make_trust,
    ssh_add,
    ssh_agent,
)

from docket import sshsig
from docket.credentials import verify_signed
from docket.keys import private_key_text
from docket.lifecycle import Role
from docket.signer import (
    AgentSigner,
    KeySigner,
    Signer,
    SignerError,
    load_signer,
    sign_command,
    signer_from_agent,
)
from docket.statement import verify_command

MIC = make_org("mic", ("authority:mic",), (Role.OFFICER, Role.APPROVER))
TRUST = make_trust(MIC)
PASSPHRASE = "hai con mèo ngồi trên mái nhà"
MESSAGE = b"a statement"


def _official(actor: str = "tran.thi.binh", key_type: str = "ed25519") -> Official:
    return make_official(
        MIC,
        actor,
        (Role.APPROVER,),
        key_type=key_type,
        valid_after=datetime.now(UTC) - timedelta(days=1),
        valid_before=datetime.now(UTC) + timedelta(days=30),
    )


BINH = _official()


def _write_key(
    directory: Path, official: Official, passphrase: str | None = None, cert: bool = True
) -> Path:
    path = directory / official.actor
    path.write_bytes(private_key_text(official.key, passphrase))
    path.chmod(0o600)
    if cert:
        Path(f"{path}-cert.pub").write_text(official.certificate_line + "\n")
    return path


def _check(signer: Signer, official: Official = BINH) -> None:
    armored = signer.sign(MESSAGE)
    credential = verify_signed(MESSAGE, armored, TRUST, datetime.now(UTC))
    assert credential.actor_id == official.actor
    assert credential.key_fingerprint == official.fingerprint


def _secrets_of(official: Official, passphrase: str | None = None) -> list[str]:
    """Fragments that must never appear in any output: the key's text and the passphrase."""
    text = private_key_text(official.key, None).decode()
    body = "".join(text.splitlines()[1:-1])
    fragments = [body[i : i + 24] for i in range(0, len(body) - 24, 24)]
    return fragments + ([passphrase] if passphrase else [])


def _assert_clean(message: str, official: Official = BINH, passphrase: str | None = None) -> None:
    for fragment in _secrets_of(official, passphrase):
        assert fragment not in message


# --- key files ---------------------------------------------------------------------------------


def test_key_file_with_its_certificate_beside_it(tmp_path: Path) -> None:
    path = _write_key(tmp_path, BINH)
    signer = load_signer(key=path, environ={}, interactive=False)
    assert isinstance(signer, KeySigner) and signer.actor_id == "tran.thi.binh"
    _check(signer)
    assert repr(signer) == f"<KeySigner tran.thi.binh key {BINH.fingerprint}>"
    _assert_clean(repr(signer))


def test_passphrase_from_the_environment(tmp_path: Path) -> None:
    path = _write_key(tmp_path, BINH, PASSPHRASE)
    environ = {"DOCKET_KEY_PASSPHRASE": PASSPHRASE}
    _check(load_signer(key=path, environ=environ, interactive=False))


def test_passphrase_from_the_prompt(tmp_path: Path) -> None:
    path = _write_key(tmp_path, BINH, PASSPHRASE)
    asked: list[str] = []

    def prompt(label: str) -> str:
        asked.append(label)
        return PASSPHRASE

    _check(load_signer(key=path, environ={}, prompt=prompt))
    assert asked == [str(path)]


def test_passphrase_needed_without_a_terminal(tmp_path: Path) -> None:
    path = _write_key(tmp_path, BINH, PASSPHRASE)
    with pytest.raises(SignerError, match="DOCKET_KEY_PASSPHRASE") as info:
        load_signer(key=path, environ={}, interactive=False)
    assert str(path) in str(info.value)


def test_wrong_passphrase(tmp_path: Path) -> None:
    path = _write_key(tmp_path, BINH, PASSPHRASE)
    wrong = "not the passphrase at all"
    with pytest.raises(SignerError, match="wrong passphrase") as info:
        load_signer(key=path, environ={"DOCKET_KEY_PASSPHRASE": wrong}, interactive=False)
    _assert_clean(str(info.value), passphrase=PASSPHRASE)
    assert wrong not in str(info.value)


def test_missing_certificate(tmp_path: Path) -> None:
    path = _write_key(tmp_path, BINH, cert=False)
    with pytest.raises(SignerError, match=r"-cert\.pub") as info:
        load_signer(key=path, environ={}, interactive=False)
    assert "keys issue" in str(info.value)


def test_certificate_of_another_key(tmp_path: Path) -> None:
    path = _write_key(tmp_path, BINH, cert=False)
    other = _official()
    Path(f"{path}-cert.pub").write_text(other.certificate_line)
    with pytest.raises(SignerError, match="do not belong together") as info:
        load_signer(key=path, environ={}, interactive=False)
    assert other.fingerprint in str(info.value) and BINH.fingerprint in str(info.value)


def test_explicit_certificate_path_and_text(tmp_path: Path) -> None:
    path = _write_key(tmp_path, BINH, cert=False)
    cert_path = tmp_path / "elsewhere.pub"
    cert_path.write_text(BINH.certificate_line)
    _check(load_signer(key=path, certificate=cert_path, environ={}, interactive=False))
    environ = {"DOCKET_CERT": BINH.certificate_line}
    _check(load_signer(key=path, environ=environ, interactive=False))


def test_not_a_key_file(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text("hello")
    with pytest.raises(SignerError, match="not a readable private key"):
        load_signer(key=path, environ={}, interactive=False)
    with pytest.raises(SignerError, match="cannot read"):
        load_signer(key=tmp_path / "absent", environ={}, interactive=False)
    huge = tmp_path / "huge"
    huge.write_bytes(b"x" * 100_000)
    with pytest.raises(SignerError, match="a few KB"):
        load_signer(key=huge, environ={}, interactive=False)


def test_not_a_certificate_file(tmp_path: Path) -> None:
    path = _write_key(tmp_path, BINH, cert=False)
    Path(f"{path}-cert.pub").write_text(BINH.public_line)  # a plain key, not a certificate
    with pytest.raises(SignerError, match="not an OpenSSH certificate"):
        load_signer(key=path, environ={}, interactive=False)


@pytest.mark.parametrize("key_type", ["ecdsa", "rsa"])
def test_ecdsa_and_rsa_key_files(tmp_path: Path, key_type: str) -> None:
    official = _official("le.van.cuong", key_type)
    _check(load_signer(key=_write_key(tmp_path, official), environ={}), official)


# --- DOCKET_KEY --------------------------------------------------------------------------------


def test_docket_key_text_with_docket_cert(tmp_path: Path) -> None:
    environ = {
        "DOCKET_KEY": private_key_text(BINH.key, None).decode(),
        "DOCKET_CERT": BINH.certificate_line,
    }
    _check(load_signer(environ=environ, interactive=False))


def test_docket_key_encrypted_text(tmp_path: Path) -> None:
    environ = {
        "DOCKET_KEY": private_key_text(BINH.key, PASSPHRASE).decode(),
        "DOCKET_KEY_PASSPHRASE": PASSPHRASE,
        "DOCKET_CERT": BINH.certificate_line,
    }
    _check(load_signer(environ=environ, interactive=False))


def test_docket_key_text_needs_docket_cert() -> None:
    environ = {"DOCKET_KEY": private_key_text(BINH.key, None).decode()}
    with pytest.raises(SignerError, match="DOCKET_CERT") as info:
        load_signer(environ=environ, interactive=False)
    _assert_clean(str(info.value))


def test_docket_key_path(tmp_path: Path) -> None:
    path = _write_key(tmp_path, BINH)
    _check(load_signer(environ={"DOCKET_KEY": str(path)}, interactive=False))


def test_docket_key_mangled_is_never_echoed() -> None:
    text = private_key_text(BINH.key, None).decode()
    mangled = text.replace("PRIVATE KEY", "KEY")
    with pytest.raises(SignerError, match="neither") as info:
        load_signer(environ={"DOCKET_KEY": mangled}, interactive=False)
    _assert_clean(str(info.value))
    damaged = text[:200] + "AAAA" + text[204:]
    with pytest.raises(SignerError) as info:
        load_signer(
            environ={"DOCKET_KEY": damaged, "DOCKET_CERT": BINH.certificate_line},
            interactive=False,
        )
    _assert_clean(str(info.value))
    assert "DOCKET_KEY" in str(info.value)


def test_a_private_key_in_docket_cert_is_never_echoed(tmp_path: Path) -> None:
    path = _write_key(tmp_path, BINH, cert=False)
    key_text = private_key_text(BINH.key, None).decode()
    for value in (key_text, key_text.replace("PRIVATE KEY", "KEY")):
        with pytest.raises(SignerError) as info:
            load_signer(key=path, environ={"DOCKET_CERT": value}, interactive=False)
        _assert_clean(str(info.value))


def test_no_key_anywhere() -> None:
    with pytest.raises(SignerError, match="no signing key"):
        load_signer(environ={}, interactive=False)


def test_the_actor_must_match_the_credential(tmp_path: Path) -> None:
    path = _write_key(tmp_path, BINH)
    with pytest.raises(SignerError, match=r"'tran\.thi\.binh'"):
        load_signer(key=path, actor="nguyen.van.an", environ={}, interactive=False)
    signer = load_signer(key=path, actor="tran.thi.binh", environ={}, interactive=False)
    with pytest.raises(SignerError, match=r"cannot sign as 'nguyen\.van\.an'"):
        sign_command(signer, "req-mic-1", "approve", "nguyen.van.an", {}, NOW)


def test_sign_command_verifies() -> None:
    now = datetime.now(UTC)
    command = sign_command(BINH.signer, "req-mic-1", "approve", BINH.actor, {"reason": "ok"}, now)
    statement, credential = verify_command(
        command, TRUST, now, request_id="req-mic-1", trigger="approve"
    )
    assert statement.payload == {"reason": "ok"} and credential.actor_id == BINH.actor
    _assert_clean(command.model_dump_json())


# --- the SSH agent (a real ssh-agent started by the test) --------------------------------------

needs_agent = pytest.mark.skipif(
    SSH_AGENT is None or SSH_ADD is None, reason="OpenSSH's ssh-agent/ssh-add are not installed"
)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[str]:
    with ssh_agent(tmp_path) as sock:
        yield sock


@needs_agent
def test_agent_signs_with_the_certificate_it_holds(tmp_path: Path, agent: str) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    ssh_add(agent, _write_key(keys, BINH))
    other = _official("nguyen.van.an")
    ssh_add(agent, _write_key(keys, other))
    signer = load_signer(actor="tran.thi.binh", environ={"SSH_AUTH_SOCK": agent})
    assert isinstance(signer, AgentSigner)
    _check(signer)
    _check(signer_from_agent(agent, actor="nguyen.van.an"), other)


@pytest.mark.parametrize("key_type", ["ecdsa", "rsa"])
@needs_agent
def test_agent_ecdsa_and_rsa(tmp_path: Path, agent: str, key_type: str) -> None:
    official = _official("le.van.cuong", key_type)
    ssh_add(agent, _write_key(tmp_path, official))
    signer = signer_from_agent(agent, actor="le.van.cuong")
    armored = signer.sign(MESSAGE)
    sig = sshsig.parse_sshsig(sshsig.dearmor(armored))
    algorithm = sshsig.WireReader(sig.signature, "s").text("a")
    assert algorithm == ("rsa-sha2-512" if key_type == "rsa" else "ecdsa-sha2-nistp256")
    _check(signer, official)


@needs_agent
def test_agent_with_the_certificate_from_a_file(tmp_path: Path, agent: str) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    ssh_add(agent, _write_key(bare, BINH, cert=False))  # the agent holds only the plain key
    with pytest.raises(SignerError, match="holds no valid Docket certificate"):
        signer_from_agent(agent, actor="tran.thi.binh")
    cert_path = tmp_path / "binh-cert.pub"
    cert_path.write_text(BINH.certificate_line)
    _check(load_signer(environ={"SSH_AUTH_SOCK": agent, "DOCKET_CERT": str(cert_path)}))


@needs_agent
def test_agent_without_the_key(tmp_path: Path, agent: str) -> None:
    with pytest.raises(SignerError, match="does not hold the key"):
        signer_from_agent(agent, certificate=BINH.certificate_line)
    with pytest.raises(SignerError, match=r"holds no valid Docket certificate for tran\.thi\.binh"):
        signer_from_agent(agent, actor="tran.thi.binh")


@needs_agent
def test_agent_skips_expired_certificates(tmp_path: Path, agent: str) -> None:
    old = make_official(
        MIC,
        "tran.thi.binh",
        (Role.APPROVER,),
        valid_after=datetime.now(UTC) - timedelta(days=60),
        valid_before=datetime.now(UTC) - timedelta(days=1),
    )
    ssh_add(agent, _write_key(tmp_path, old))
    with pytest.raises(SignerError, match=r"holds no valid Docket certificate for tran\.thi\.binh"):
        signer_from_agent(agent, actor="tran.thi.binh")


@needs_agent
def test_agent_refusing_to_sign(tmp_path: Path) -> None:
    # An agent whose key needs confirmation, with an askpass that always says no.
    sock = str(tmp_path / "agent.sock")
    env = {
        **os.environ,
        "SSH_ASKPASS": shutil.which("false") or "/bin/false",
        "SSH_ASKPASS_REQUIRE": "force",
        "DISPLAY": ":0",
    }
    assert SSH_AGENT is not None and SSH_ADD is not None
    proc = subprocess.Popen([SSH_AGENT, "-D", "-a", sock], env=env, stdout=subprocess.DEVNULL)
    try:
        import time

        while not os.path.exists(sock):
            time.sleep(0.02)
        path = _write_key(tmp_path, BINH)
        subprocess.run(
            [SSH_ADD, "-c", str(path)],
            env={**env, "SSH_AUTH_SOCK": sock},
            check=True,
            capture_output=True,
        )
        signer = signer_from_agent(sock, actor="tran.thi.binh")
        with pytest.raises(SignerError, match="refused to sign"):
            signer.sign(MESSAGE)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_agent_socket_missing(tmp_path: Path) -> None:
    with pytest.raises(SignerError, match="cannot talk to the SSH agent"):
        load_signer(environ={"SSH_AUTH_SOCK": str(tmp_path / "none.sock")})
