"""The CLI's offline paths: validate, triggers, argument errors (exit codes and messages)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from docket_harness import identities

import starter

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_validate_accepts_every_example(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted(str(p) for p in (EXAMPLES / "seed").glob("*.json"))
    files += sorted(str(p) for p in (EXAMPLES / "other").glob("*.json*"))
    assert starter.main(["validate", *files]) == 0
    out = capsys.readouterr()
    assert out.out == ""
    assert "0 problem(s)" in out.err


def test_validate_reports_every_problem_with_its_path(capsys: pytest.CaptureFixture[str]) -> None:
    broken = EXAMPLES / "broken" / "several-errors.json"
    assert starter.main(["validate", str(broken)]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 4  # several problems in one pass, not just the first
    assert all(line.startswith(f"{broken}: ") for line in lines)
    assert any(": platform: unknown platform 'zalo'" in line for line in lines)


def test_validate_json_output_for_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    broken = EXAMPLES / "broken" / "unknown-platform.json"
    assert starter.main(["validate", "--json", str(broken)]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["valid"] == 0
    assert data["problems"] == [
        f"{broken}: platform: unknown platform 'zalo'; known: facebook, tiktok, youtube"
    ]


def test_validate_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert starter.main(["validate", "no/such/file.json"]) == 2
    assert "no/such/file.json: (file): cannot read: No such file or directory" in (
        capsys.readouterr().out
    )


def test_validate_refuses_an_empty_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty array is a mistake to report, not "0 valid request(s)" and success."""
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert starter.main(["validate", str(empty)]) == 2
    assert f"{empty}: (file): holds no request" in capsys.readouterr().out
    assert starter.main(["submit", str(empty), "--as", "nguyen.van.an"]) == 2


def test_a_file_name_longer_than_the_os_allows_is_bad_input(
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "x" * 5000 + ".json"
    assert starter.main(["validate", name]) == 2
    out = capsys.readouterr().out
    assert "cannot read: File name too long" in out
    assert "(5005 characters)" in out  # the name is cut, not printed whole


def test_submit_refuses_a_batch_with_any_invalid_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = EXAMPLES / "seed" / "mic-facebook-2017.json"
    bad = EXAMPLES / "broken" / "bad-url.json"
    # Fails before any connection: nothing is half-submitted.
    assert starter.main(["submit", str(good), str(bad), "--as", "nguyen.van.an"]) == 2
    err = capsys.readouterr().err
    assert "nothing submitted" in err
    assert "items[0].url" in err


@pytest.fixture(autouse=True)
def keys_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    """`--as ID` finds ID's key under $DOCKET_KEYS_DIR (the session's provisioned roster)."""
    directory = identities().directory / "keys"
    monkeypatch.setenv("DOCKET_KEYS_DIR", str(directory))
    for name in ("DOCKET_KEY", "DOCKET_CERT", "SSH_AUTH_SOCK", "DOCKET_ACTOR"):
        monkeypatch.delenv(name, raising=False)
    return directory


def test_commands_need_the_actors_key(capsys: pytest.CaptureFixture[str]) -> None:
    code = starter.main(["approve", "req-x", "--as", "nobody", "--reason", "because"])
    assert code == 2
    assert "--as nobody: no signing key: give --key FILE" in capsys.readouterr().err


def test_a_key_of_someone_else_is_refused_before_sending(
    keys_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = keys_dir / "tran.thi.binh"
    code = starter.main(
        ["approve", "req-x", "--as", "nguyen.van.an", "--key", str(key), "--reason", "because"]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "you act as 'nguyen.van.an'" in err and "'tran.thi.binh''s" in err


def test_sign_prints_a_payload_any_client_can_send(capsys: pytest.CaptureFixture[str]) -> None:
    code = starter.main(
        ["sign", "approve", "req-mic-1", "--as", "tran.thi.binh", "--reason", "Checked"]
    )
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) == {"statement", "signature"}
    statement = json.loads(payload["statement"])
    assert statement["actor"] == "tran.thi.binh"
    assert statement["request_id"] == "req-mic-1"
    assert statement["trigger"] == "approve"
    assert statement["payload"] == {"reason": "Checked"}
    assert payload["signature"].startswith("-----BEGIN SSH SIGNATURE-----")
    # a private key never appears in any output
    assert "PRIVATE KEY" not in json.dumps(payload)


def test_command_payload_errors_are_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code = starter.main(
        ["effect", "req-x", "--as", "liaison.facebook", "--reason", "done", "--item", "fb-1"]
    )
    assert code == 2
    assert "expected ITEM=EFFECT" in capsys.readouterr().err
    code = starter.main(
        [
            "effect",
            "req-x",
            "--as",
            "liaison.facebook",
            "--reason",
            "done",
            "--item",
            "fb-1=vanished",
        ]
    )
    assert code == 2
    assert "effects[0].effect" in capsys.readouterr().err


def test_triggers_for_a_state(capsys: pytest.CaptureFixture[str]) -> None:
    assert starter.main(["triggers", "pending_approval"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == ["approve", "reject", "withdraw"]
    assert "approve          roles: approver" in out
    assert starter.main(["triggers", "nowhere"]) == 2
    assert "unknown state 'nowhere'" in capsys.readouterr().err


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as exc:
        starter.main(["approve"])
    assert exc.value.code == 2
