"""docket.statement: the canonical statement an official signs, and what binds it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from identity_support import NOW, make_official, make_org, make_trust
from pydantic import ValidationError

from docket.credentials import IdentityError
from docket.lifecycle import Role
from docket.signer import sign_command
from docket.statement import (
    MAX_STATEMENT_CHARS,
    STATEMENT_CODES,
    SignedCommand,
    StatementError,
    build_statement,
    format_issued_at,
    parse_statement,
    verify_command,
)

MIC = make_org("mic", ("authority:mic",), (Role.OFFICER, Role.APPROVER))
BINH = make_official(MIC, "tran.thi.binh", (Role.APPROVER,))
AN = make_official(MIC, "nguyen.van.an", (Role.OFFICER,))
TRUST = make_trust(MIC)
NONCE = "0123456789abcdef0123456789abcdef"
PAYLOAD = {"reason": "Đúng quy định: nội dung vi phạm Điều 8", "items": ["i-1", "i-2"]}


def _text(**overrides: Any) -> str:
    return build_statement(
        overrides.pop("request_id", "req-mic-2026-0042"),
        overrides.pop("trigger", "approve"),
        overrides.pop("actor", "tran.thi.binh"),
        overrides.pop("payload", PAYLOAD),
        overrides.pop("issued_at", NOW),
        overrides.pop("nonce", NONCE),
    )


def _fields(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(_text())
    value.update(overrides)
    return value


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_build_and_parse_round_trip() -> None:
    text = _text()
    assert text == (
        '{"actor":"tran.thi.binh","issued_at":"2026-03-02T09:00:00.000000Z","namespace":'
        '"docket-command@v1","nonce":"0123456789abcdef0123456789abcdef","payload":{"items":'
        '["i-1","i-2"],"reason":"Đúng quy định: nội dung vi phạm Điều 8"},"request_id":'
        '"req-mic-2026-0042","trigger":"approve","v":1}'
    )
    statement = parse_statement(text)
    assert statement.text == text and statement.message == text.encode("utf-8")
    assert statement.issued_at == NOW and statement.payload == PAYLOAD
    assert (statement.request_id, statement.trigger, statement.actor, statement.nonce) == (
        "req-mic-2026-0042",
        "approve",
        "tran.thi.binh",
        NONCE,
    )


def test_issued_at_format() -> None:
    assert format_issued_at(NOW + timedelta(microseconds=5)) == "2026-03-02T09:00:00.000005Z"
    with pytest.raises(ValueError, match="timezone"):
        format_issued_at(NOW.replace(tzinfo=None))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("not json", "not JSON"),
        ("[1,2]", "JSON object"),
        (_text().replace('"v":1', '"v": 1'), "canonical form"),
        (_text().replace("Đúng", "\\u0110úng"), "canonical form"),
        ('{"v":1,"actor":"a"}', "canonical form"),
        (_text()[:-1] + ',"v":1}', "repeats the key 'v'"),
        (_canonical(_fields(payload={"x": 1.5})), "float"),
        (_canonical(_fields(payload={"x": 2**60})), "2**53"),
        (_canonical(_fields(payload={"x": "\ud800"})).replace("\ud800", "\\ud800"), "surrogate"),
        ('{"a":NaN}', "NaN"),
        (
            _canonical(_fields(payload={"a": [1, {}], "x": _nested(40)})),
            "levels at $.payload.x" + "[0]" * 31,
        ),
        ("[" * 100_000 + "]" * 100_000, "nested deeper"),
        (_canonical({k: v for k, v in _fields().items() if k != "nonce"}), "missing nonce"),
        (_canonical(_fields(extra=1)), "unknown 'extra'"),
        (_canonical(_fields(v=2)), "version 2"),
        (_canonical(_fields(v=True)), "version true is not known"),
        (_canonical(_fields(namespace="git")), "statement.namespace"),
        (_canonical(_fields(issued_at="2026-03-02T09:00:00Z")), "statement.issued_at"),
        (_canonical(_fields(issued_at="2026-02-30T09:00:00.000000Z")), "not a real date"),
        (_canonical(_fields(issued_at=1700000000)), "statement.issued_at"),
        (_canonical(_fields(nonce="0123456789ABCDEF0123456789ABCDEF")), "statement.nonce"),
        (_canonical(_fields(nonce="00")), "statement.nonce"),
        (_canonical(_fields(request_id="req/mic")), "statement.request_id"),
        (_canonical(_fields(trigger="Approve")), "statement.trigger"),
        (_canonical(_fields(actor="Mallory Unknown")), "statement.actor"),
        (_canonical(_fields(actor=["tran.thi.binh"])), "statement.actor"),
        (_canonical(_fields(payload=["reason"])), "statement.payload"),
        (_canonical(_fields(payload={"actor": {"id": "x"}})), "payload.actor"),
        ("x" * (MAX_STATEMENT_CHARS + 1), "at most"),
    ],
)
def test_parse_refuses_with_the_field(text: str, needle: str) -> None:
    with pytest.raises(StatementError) as info:
        parse_statement(text)
    assert info.value.code == "malformed_statement"
    assert needle in info.value.message, info.value.message


def test_parse_refuses_non_text() -> None:
    with pytest.raises(StatementError, match="must be text"):
        parse_statement(b"{}")  # type: ignore[arg-type]


def test_build_refuses_what_cannot_be_signed_exactly() -> None:
    with pytest.raises(StatementError, match=r"\$.payload.ratio: float"):
        _text(payload={"ratio": 0.5})
    with pytest.raises(StatementError, match=r"statement\.trigger"):
        _text(trigger="DROP TABLE")


# --- verify_command ----------------------------------------------------------------------------


def _command(**overrides: Any) -> SignedCommand:
    signer = overrides.pop("signer", BINH.signer)
    text = _text(**overrides)
    return SignedCommand(statement=text, signature=signer.sign(text.encode()))


def _verify(command: SignedCommand, **kwargs: Any) -> Any:
    return verify_command(
        command,
        TRUST,
        kwargs.pop("now", NOW + timedelta(seconds=3)),
        request_id=kwargs.pop("request_id", "req-mic-2026-0042"),
        trigger=kwargs.pop("trigger", "approve"),
        **kwargs,
    )


def _refused(code: str, command: SignedCommand, **kwargs: Any) -> str:
    with pytest.raises(IdentityError) as info:
        _verify(command, **kwargs)
    assert info.value.code == code, info.value.message
    return info.value.message


def test_a_signed_command_verifies() -> None:
    statement, credential = _verify(_command())
    assert credential.actor_id == statement.actor == "tran.thi.binh"
    assert credential.roles == (Role.APPROVER,)
    assert statement.payload == PAYLOAD


def test_actor_mismatch() -> None:
    # Binh signs a statement that names An: she can only sign for herself.
    message = _refused("actor_mismatch", _command(actor="nguyen.van.an"))
    assert "nguyen.van.an" in message and "tran.thi.binh" in message


def test_wrong_request_and_wrong_trigger() -> None:
    assert "req-mic-2026-0042" in _refused("wrong_request", _command(), request_id="req-mic-9")
    assert "'approve'" in _refused("wrong_trigger", _command(), trigger="reject")


def test_stale_and_issued_in_future() -> None:
    command = _command()
    _verify(command, now=NOW + timedelta(minutes=15))
    assert "sign it again" in _refused("stale", command, now=NOW + timedelta(minutes=15, seconds=1))
    _verify(command, now=NOW - timedelta(minutes=2))
    assert "clock" in _refused(
        "issued_in_future", command, now=NOW - timedelta(minutes=2, seconds=1)
    )
    _verify(command, now=NOW + timedelta(hours=2), max_age=timedelta(hours=3))


def test_identity_errors_pass_through() -> None:
    unsigned = SignedCommand(statement=_text(), signature="")
    _refused("unsigned", unsigned)
    _refused("malformed_statement", SignedCommand(statement="{}", signature="x"))


def test_payload_altered_after_signing() -> None:
    command = _command()
    altered = command.statement.replace("Điều 8", "Điều 9")
    assert altered != command.statement
    _refused("bad_signature", SignedCommand(statement=altered, signature=command.signature))


def test_every_statement_code_is_exercised_here() -> None:
    from pathlib import Path

    source = Path(__file__).read_text().split("def test_every_statement_code")[0]
    for code in STATEMENT_CODES:
        assert f'"{code}"' in source, code


def test_signed_command_wire_form() -> None:
    command = sign_command(BINH.signer, "req-mic-1", "approve", "tran.thi.binh", PAYLOAD, NOW)
    assert SignedCommand.model_validate_json(command.model_dump_json()) == command
    assert set(json.loads(command.model_dump_json())) == {"statement", "signature"}
    with pytest.raises(ValidationError):
        SignedCommand.model_validate({"statement": "{}", "signature": "", "actor": "x"})
    with pytest.raises(ValidationError):
        SignedCommand(statement="{}", signature="x" * 40_000)
    # Each signing draws a fresh nonce.
    again = sign_command(BINH.signer, "req-mic-1", "approve", "tran.thi.binh", PAYLOAD, NOW)
    assert parse_statement(again.statement).nonce != parse_statement(command.statement).nonce


# --- properties --------------------------------------------------------------------------------

_COMMAND = _command()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.characters(codec="ascii"), max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

payload_keys = st.text(st.characters(codec="ascii"), min_size=1, max_size=8).filter(
    lambda k: k != "actor"
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(payload_keys, json_values, max_size=5))
def test_any_payload_round_trips(payload: dict[str, Any]) -> None:
    text = _text(payload=payload)
    assert parse_statement(text).payload == payload


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_altered_character_of_the_statement_is_refused(data: st.DataObject) -> None:
    text = _COMMAND.statement
    index = data.draw(st.integers(0, len(text) - 1))
    # a lone surrogate cannot even become a SignedCommand (not valid Unicode: refused at
    # parsing, before any check): the alteration must be a real character
    char = data.draw(st.characters(exclude_categories=["Cs"]).filter(lambda c: c != text[index]))
    altered_text = text[:index] + char + text[index + 1 :]
    altered = SignedCommand(statement=altered_text, signature=_COMMAND.signature)
    with pytest.raises(IdentityError) as info:
        _verify(altered)
    assert info.value.code in ("malformed_statement", "bad_signature")
