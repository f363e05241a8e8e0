"""`python -m docket.keys`: an organization's administrator, end to end on real files."""

from __future__ import annotations

import stat
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from identity_support import SSH_KEYGEN

from docket.credentials import load_trust, verify_signed
from docket.keys import KeysError, main, parse_validity
from docket.signer import SignerError, load_certificate, load_private_key, load_signer

CA_PASS = "correct horse battery staple"
KEY_PASS = "một con vịt xòe ra hai cái cánh"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _passphrases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKET_CA_PASSPHRASE", CA_PASS)
    monkeypatch.setenv("DOCKET_KEY_PASSPHRASE", KEY_PASS)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    return out


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 2, out
    assert err.startswith(f"keys {argv[0]}: ")
    assert "Traceback" not in err
    return err


def _org(
    capsys: pytest.CaptureFixture[str],
    d: Path,
    org: str = "mic",
    acts_for: str = "authority:mic",
    may_grant: str = "officer,approver",
    *extra: str,
) -> str:
    return ok(
        capsys,
        "ca-init",
        "--org",
        org,
        "--name",
        f"Org {org}",
        "--acts-for",
        acts_for,
        "--may-grant",
        may_grant,
        "--out",
        str(d),
        *extra,
    )


def _trust_file(d: Path, *stanzas: str) -> Path:
    path = d / "trust.toml"
    body = "\n".join(stanzas)
    path.write_text("signing_required_from = 2026-01-01T00:00:00Z\n\n" + body)
    return path


@pytest.fixture
def setup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Path]:
    """A ministry CA, a platform CA, the trust file, and Binh's key with a credential."""
    mic = _org(capsys, tmp_path)
    meta = _org(capsys, tmp_path, "meta", "platform:facebook", "platform_liaison")
    trust = _trust_file(tmp_path, mic, meta)
    ok(capsys, "new", "--actor", "tran.thi.binh", "--out", str(tmp_path))
    ok(
        capsys,
        "issue",
        "--ca",
        str(tmp_path / "mic-ca"),
        "--key",
        str(tmp_path / "tran.thi.binh.pub"),
        "--actor",
        "tran.thi.binh",
        "--roles",
        "approver",
        "--trust",
        str(trust),
    )
    return {
        "dir": tmp_path,
        "trust": trust,
        "key": tmp_path / "tran.thi.binh",
        "pub": tmp_path / "tran.thi.binh.pub",
        "cert": tmp_path / "tran.thi.binh-cert.pub",
        "ca": tmp_path / "mic-ca",
        "ca_pub": tmp_path / "mic-ca.pub",
    }


# --- ca-init and new ---------------------------------------------------------------------------


def test_ca_init_writes_a_protected_key_and_prints_the_stanza(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _org(capsys, tmp_path)
    private = tmp_path / "mic-ca"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    with pytest.raises(SignerError, match="passphrase-protected"):
        load_private_key(private.read_bytes(), "ca", environ={})
    load_private_key(private.read_bytes(), "ca", passphrase=CA_PASS)
    entry = tomllib.loads(out)["organization"][0]
    assert entry["id"] == "mic" and entry["may_grant"] == ["officer", "approver"]
    assert entry["ca_keys"][0].split()[:2] == (tmp_path / "mic-ca.pub").read_text().split()[:2]
    assert "SHA256:" in out
    trust = load_trust(_trust_file(tmp_path, out))
    assert trust.organizations[0].acts_for == ("authority:mic",)


def test_ca_init_refuses_a_platform_that_grants_approver(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(
        capsys,
        "ca-init",
        "--org",
        "meta",
        "--name",
        "Meta",
        "--acts-for",
        "platform:facebook",
        "--may-grant",
        "platform_liaison,approver",
        "--out",
        str(tmp_path),
    )
    assert "may not grant approver" in err
    assert not (tmp_path / "meta-ca").exists()


def test_ca_init_refuses_bad_names_and_roles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["ca-init", "--org", "mic", "--acts-for", "authority:mic", "--out", str(tmp_path)]
    err = refused(capsys, *base, "--name", "Bộ\u202eTT", "--may-grant", "officer")
    assert "bidi" in err and "\u202e" not in err
    assert "unknown role 'boss'" in refused(capsys, *base, "--name", "x", "--may-grant", "boss")


def test_passphrase_required_without_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKET_KEY_PASSPHRASE")
    err = refused(capsys, "new", "--actor", "a.b", "--out", str(tmp_path))
    assert "DOCKET_KEY_PASSPHRASE" in err and "--no-passphrase" in err
    code, _, err = run(capsys, "new", "--actor", "a.b", "--out", str(tmp_path), "--no-passphrase")
    assert code == 0 and "WITHOUT a passphrase" in err
    load_private_key((tmp_path / "a.b").read_bytes(), "k", environ={})


def test_new_refuses_bad_ids_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "actor id" in refused(capsys, "new", "--actor", "Trần Bình", "--out", str(tmp_path))
    ok(capsys, "new", "--actor", "a.b", "--out", str(tmp_path))
    before = (tmp_path / "a.b").read_bytes()
    assert "exists already" in refused(capsys, "new", "--actor", "a.b", "--out", str(tmp_path))
    assert (tmp_path / "a.b").read_bytes() == before


# --- issue -------------------------------------------------------------------------------------


def test_issued_credential_signs_and_verifies(setup: dict[str, Path]) -> None:
    signer = load_signer(
        key=setup["key"], environ={"DOCKET_KEY_PASSPHRASE": KEY_PASS}, interactive=False
    )
    now = datetime.now(UTC)
    credential = verify_signed(b"m", signer.sign(b"m"), load_trust(setup["trust"]), now)
    assert credential.actor_id == "tran.thi.binh" and credential.organization_id == "mic"
    assert [r.value for r in credential.roles] == ["approver"]
    lifetime = credential.valid_before - credential.valid_after
    assert lifetime == timedelta(days=90, minutes=5)  # starts 5 min early for drifting clocks
    assert now - timedelta(minutes=6) <= credential.valid_after <= now - timedelta(minutes=4)


def _issue(setup: dict[str, Path], *extra: str, roles: str = "approver") -> list[str]:
    return [
        "issue",
        "--ca",
        str(setup["ca"]),
        "--key",
        str(setup["pub"]),
        "--actor",
        "tran.thi.binh",
        "--roles",
        roles,
        "--out",
        str(setup["dir"] / "again-cert.pub"),
        *extra,
    ]


def test_issue_refuses_what_the_organization_may_not_grant(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(capsys, *_issue(setup, "--trust", str(setup["trust"]), roles="platform_liaison"))
    assert "mic may not grant platform_liaison" in err
    assert not (setup["dir"] / "again-cert.pub").exists()
    # Without a trust file the tool cannot know; the workflow refuses it later (role_not_granted).
    ok(capsys, *_issue(setup, roles="platform_liaison"))


def test_issue_refuses_a_ca_that_is_not_trusted(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _org(capsys, setup["dir"], "rogue", "authority:mic", "approver")
    args = _issue(setup, "--trust", str(setup["trust"]))
    args[2] = str(setup["dir"] / "rogue-ca")
    assert "is not in" in refused(capsys, *args)


def test_issue_options(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(
        capsys,
        *_issue(setup, "--validity", "36h", "--serial", "99", "--not-before", "2026-06-01T00:00Z"),
    )
    assert "serial 99" in out and "2026-06-01T00:00:00Z to 2026-06-02T12:00:00Z" in out
    cert = load_certificate(setup["dir"] / "again-cert.pub")
    assert cert.serial == 99 and cert.principals == ("tran.thi.binh",)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--validity", "90x"], "e.g. 90d"),
        (["--validity", "2000d"], "three years"),
        (["--serial", "-1"], "serial"),
        (["--not-before", "yesterday"], "ISO time"),
        (["--not-before", "2026-06-01T00:00"], "UTC offset"),
    ],
)
def test_issue_refuses_bad_options(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str], extra: list[str], needle: str
) -> None:
    assert needle in refused(capsys, *_issue(setup, *extra))


def test_issue_with_the_wrong_ca_passphrase(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKET_CA_PASSPHRASE", "nope nope nope")
    err = refused(capsys, *_issue(setup))
    assert "wrong passphrase" in err and "nope" not in err


def test_parse_validity() -> None:
    assert parse_validity("90d") == timedelta(days=90)
    assert parse_validity("2w") == timedelta(weeks=2)
    assert parse_validity("30m") == timedelta(minutes=30)
    with pytest.raises(KeysError):
        parse_validity("0d")


# --- revoke ------------------------------------------------------------------------------------


def test_revoke_a_certificate_appends_to_the_trust_file(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    trust_path = setup["trust"]
    trust_path.chmod(0o640)
    before = trust_path.read_text()
    out = ok(capsys, "revoke", "--trust", str(trust_path), str(setup["cert"]), "--reason", "lost")
    after = trust_path.read_text()
    assert after.startswith(before) and "[[revoked]]" in after and 'reason = "lost"' in after
    assert stat.S_IMODE(trust_path.stat().st_mode) == 0o640
    fingerprint = load_certificate(setup["cert"]).key.fingerprint
    assert fingerprint in out
    trust = load_trust(trust_path)
    entry = trust.revocation(fingerprint)
    assert entry is not None and entry.key is not None and entry.revoked_at is not None
    again = ok(capsys, "revoke", "--trust", str(trust_path), fingerprint)
    assert "already" in again and trust_path.read_text() == after


def test_revoke_a_ca_key_and_a_fingerprint(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = ok(capsys, "revoke", "--trust", str(setup["trust"]), str(setup["ca_pub"]))
    assert "the CA key of mic" in out
    fp = "SHA256:" + "A" * 43
    ok(capsys, "revoke", "--trust", str(setup["trust"]), fp)
    trust = load_trust(setup["trust"])
    assert trust.revocation(fp) is not None and len(trust.revoked) == 2


def test_revoke_refusals(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    trust = str(setup["trust"])
    assert "neither" in refused(capsys, "revoke", "--trust", trust, "SHA256:short")
    bad = setup["dir"] / "bad.pub"
    bad.write_text("ssh-ed25519 AAAA")
    refused(capsys, "revoke", "--trust", trust, str(bad))
    listed = setup["dir"] / "listed.toml"
    listed.write_text('revoked = ["SHA256:' + "B" * 43 + '"]\n' + setup["trust"].read_text())
    assert "[[revoked]] tables" in refused(
        capsys, "revoke", "--trust", str(listed), str(setup["pub"])
    )
    broken = setup["dir"] / "broken.toml"
    broken.write_text("x = ")
    assert "not valid TOML" in refused(capsys, "revoke", "--trust", str(broken), str(setup["pub"]))


# --- exports -----------------------------------------------------------------------------------


def test_allowed_signers(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "allowed-signers", "--trust", str(setup["trust"]))
    lines = [line for line in out.splitlines() if not line.startswith("#")]
    ca_body = setup["ca_pub"].read_text().split()[1]
    assert f'* cert-authority,namespaces="docket-command@v1" ssh-ed25519 {ca_body} mic' in lines
    assert len(lines) == 2
    ok(capsys, "revoke", "--trust", str(setup["trust"]), str(setup["ca_pub"]))
    target = setup["dir"] / "allowed_signers"
    ok(capsys, "allowed-signers", "--trust", str(setup["trust"]), "--out", str(target))
    text = target.read_text()
    assert ca_body not in text and "revoked and left out" in text


def test_revoked_keys_formats(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    trust = str(setup["trust"])
    ok(capsys, "revoke", "--trust", trust, str(setup["pub"]))
    keys = ok(capsys, "revoked-keys", "--trust", trust, "--format", "keys")
    assert keys.split()[:2] == setup["pub"].read_text().split()[:2]
    fp = "SHA256:" + "C" * 43
    ok(capsys, "revoke", "--trust", trust, fp)
    spec = ok(capsys, "revoked-keys", "--trust", trust, "--format", "spec")
    assert spec.splitlines()[0].startswith("key: ssh-ed25519 ") and f"hash: {fp}" in spec
    assert "only a fingerprint" in refused(
        capsys, "revoked-keys", "--trust", trust, "--format", "keys"
    )
    assert "--out" in refused(capsys, "revoked-keys", "--trust", trust)


@pytest.mark.skipif(SSH_KEYGEN is None, reason="OpenSSH's ssh-keygen is not installed")
def test_revoked_keys_krl_is_read_by_ssh_keygen(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert SSH_KEYGEN is not None
    ok(capsys, "revoke", "--trust", str(setup["trust"]), str(setup["cert"]))
    krl = setup["dir"] / "revoked.krl"
    ok(capsys, "revoked-keys", "--trust", str(setup["trust"]), "--out", str(krl))
    ok(capsys, "new", "--actor", "x.y", "--out", str(setup["dir"]))
    query = subprocess.run(
        [SSH_KEYGEN, "-Q", "-f", str(krl), str(setup["pub"]), str(setup["dir"] / "x.y.pub")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "tran.thi.binh.pub (tran.thi.binh): REVOKED" in query.stdout
    assert "x.y.pub (x.y): ok" in query.stdout


# --- inspect -----------------------------------------------------------------------------------


def test_inspect(setup: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "inspect", str(setup["cert"]))
    cert = load_certificate(setup["cert"])
    assert "actor:        tran.thi.binh" in out and "roles:        approver" in out
    assert cert.key.fingerprint in out and cert.ca_key.fingerprint in out
    assert "give --trust" in out
    out = ok(capsys, "inspect", str(setup["cert"]), "--trust", str(setup["trust"]))
    assert "organization: mic (Org mic)" in out and "verdict:      accepted" in out
    code, out, _ = run(
        capsys,
        "inspect",
        str(setup["cert"]),
        "--trust",
        str(setup["trust"]),
        "--at",
        "2030-01-01T00:00:00Z",
    )
    assert code == 2 and "REFUSED" in out and "credential_expired" in out
    ok(capsys, "revoke", "--trust", str(setup["trust"]), str(setup["cert"]))
    code, out, _ = run(capsys, "inspect", str(setup["cert"]), "--trust", str(setup["trust"]))
    assert code == 2 and "key_revoked" in out


def test_inspect_refuses_a_non_certificate(
    setup: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert "not an OpenSSH certificate" in refused(capsys, "inspect", str(setup["pub"]))


def test_module_entry_point_and_usage_errors() -> None:
    help_run = subprocess.run(
        [sys.executable, "-m", "docket.keys", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert help_run.returncode == 0 and "allowed-signers" in help_run.stdout
    usage = subprocess.run(
        [sys.executable, "-m", "docket.keys", "issue"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert usage.returncode == 2 and "required" in usage.stderr
