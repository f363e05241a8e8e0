"""Validated models: the order, actors, commands; Vietnamese text survives byte for byte."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from docket.lifecycle import HUMAN_TRIGGERS, Role
from docket.models import (
    COMMANDS,
    Acknowledge,
    Actor,
    Approve,
    DecideAppeal,
    ItemEffect,
    Order,
    ReportEffect,
    check_url,
    check_url_fully,
    is_plain_url,
    parse_command,
    utc_iso,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VALID = sorted([*EXAMPLES.glob("seed/*.json"), *EXAMPLES.glob("other/*.json")])
OFFICER = Actor(id="nguyen.van.an", roles=(Role.OFFICER,), organization="Bộ Thông tin")


def _raw(name: str = "seed/mic-facebook-2017.json") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return data


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _errors(model: type[Any], data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [
        (".".join(str(p) for p in e["loc"]), e["msg"].removeprefix("Value error, "))
        for e in info.value.errors()
    ]


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.name)
def test_vietnamese_round_trips_byte_for_byte(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    order = Order.model_validate(raw)
    dumped = order.model_dump_json()
    assert "\\u" not in dumped  # readable UTF-8, never escaped
    again = Order.model_validate_json(dumped)
    assert again == order
    assert again.model_dump_json() == dumped
    file_bytes = path.read_bytes()
    dumped_bytes = dumped.encode("utf-8")
    for text in _strings({k: v for k, v in raw.items() if k != "issued_at"}):
        assert text.encode("utf-8") in dumped_bytes, text
        assert text.encode("utf-8") in file_bytes
    assert again.statement_of_reasons == raw["statement_of_reasons"]
    assert [i.reason for i in again.items] == [i["reason"] for i in raw["items"]]


def test_decomposed_vietnamese_is_kept_as_written() -> None:
    """No silent normalisation: what the authority signed is what is stored and hashed."""
    raw = _raw()
    nfd = "Đie\u0300u 5 kho\u0309an 1"
    raw["legal_bases"][0]["provision"] = nfd
    order = Order.model_validate(raw)
    assert order.legal_bases[0].provision == nfd
    assert Order.model_validate_json(order.model_dump_json()).legal_bases[0].provision == nfd


def test_order_is_frozen_and_strict() -> None:
    order = Order.model_validate(_raw())
    with pytest.raises(ValidationError):
        order.platform = "youtube"  # type: ignore[misc]
    raw = _raw()
    raw["items"][0]["colour"] = "red"
    assert _errors(Order, raw) == [("items.0.colour", "Extra inputs are not permitted")]


def test_order_categories_in_first_seen_order() -> None:
    order = Order.model_validate(_raw())
    assert order.categories == ("impersonation", "incitement", "defamation", "false_information")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("statement_of_reasons", "Too short", "String should have at least 20 characters"),
        (
            "reference",
            "12/\nBTTTT",
            "contains U+000A (control character) at position 3: such characters make text "
            "display differently from what is stored; remove it",
        ),
        (
            "language",
            "Vietnamese",
            "String should match pattern '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$'",
        ),
        ("priority", "urgent", "Input should be 'normal' or 'emergency'"),
    ],
)
def test_order_field_checks(field: str, value: Any, message: str) -> None:
    raw = _raw()
    raw[field] = value
    assert _errors(Order, raw) == [(field, message)]


def test_scope_listed_twice() -> None:
    raw = _raw()
    raw["territorial_scope"] = ["VN", "VN"]
    assert _errors(Order, raw) == [("", "territorial_scope: countries are listed twice")]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "ftp://example.com/x",
            "URL must start with http:// or https:// (got 'ftp://example.com/x')",
        ),
        ("https://example.com/a b", "URL must not contain spaces, control or invisible characters"),
        (
            "https://example.com/a\u2028b",
            "URL must not contain spaces, control or invisible characters",
        ),
        (
            "https://example.com/a\u202eb",
            "URL must not contain spaces, control or invisible characters",
        ),
        ("https:///path-only", "URL has no host"),
        ("https://example.com:99999/x", "URL has an invalid port: Port out of range 0-65535"),
        ("https://e.com/" + "a" * 2040, "URL is longer than 2,048 characters"),
    ],
)
def test_check_url_refuses(url: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_url(url)
    assert str(info.value) == message


def test_the_plain_url_fast_path_accepts_only_what_the_full_check_accepts() -> None:
    """check_url skips the parsing for plain ASCII URLs; each one it lets through that way
    must pass the full check (random strings built from the characters that matter)."""
    rng = random.Random(16)
    alphabet = "htps:/.-?#[]@%Aa09!~\\ \u202e"
    accepted = 0
    for _ in range(20_000):
        head = rng.choice(["http://", "https://", "HTTP://", "http:/", "http://a.b:"])
        url = head + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        if is_plain_url(url):
            accepted += 1
            assert check_url_fully(url) == url
    assert accepted > 1_000
    assert is_plain_url("https://example.com:443/a?b=1#c")
    assert not is_plain_url("https://example.com:65536/x")  # out of range: the full check says so


def test_check_url_accepts_unicode_paths() -> None:
    url = "https://www.facebook.com/Nguyễn.Xuân.Phúc.giả/posts/1"
    assert check_url(url) == url


def test_reason_allows_newlines_but_not_escape_codes() -> None:
    ok = Approve(actor=OFFICER, reason="Dòng một\nDòng hai\tcó tab")
    assert "\n" in ok.reason
    assert _errors(Approve, {"actor": OFFICER, "reason": "x\x1b[31mred"}) == [
        (
            "reason",
            "contains U+001B (control character) at position 1: such characters make text "
            "display differently from what is stored; remove it (line breaks and tabs are fine)",
        )
    ]


def test_actor_checks() -> None:
    assert (
        _errors(Actor, {"id": "Nguyen Van An", "roles": ["officer"], "organization": "X"})[0][0]
        == "id"
    )
    assert _errors(Actor, {"id": "a", "roles": [], "organization": "X"}) == [
        ("roles", "Tuple should have at least 1 item after validation, not 0")
    ]
    assert _errors(Actor, {"id": "a", "roles": ["king"], "organization": "X"})[0][0] == "roles.0"
    assert OFFICER.has_any(frozenset({Role.OFFICER, Role.APPROVER}))
    assert not OFFICER.has_any(frozenset({Role.APPROVER}))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"effect": "restricted"},
            "restricted_in: name the countries where the item is restricted",
        ),
        (
            {"effect": "removed_globally", "restricted_in": ["VN"]},
            "restricted_in: only allowed when effect is 'restricted'",
        ),
        ({"effect": "declined"}, "reason: a decline must state its reasons"),
    ],
)
def test_item_effect_consistency(data: dict[str, Any], message: str) -> None:
    assert _errors(ItemEffect, {"item_id": "fb-1", **data}) == [("", message)]


def test_report_effect_refuses_duplicates() -> None:
    effect = {"item_id": "fb-1", "effect": "removed_globally"}
    data = {"actor": OFFICER, "reason": "done", "effects": [effect, effect]}
    assert _errors(ReportEffect, data) == [
        ("", "effects: an item is reported twice in one command")
    ]


@pytest.mark.parametrize(
    ("outcome", "items", "message"),
    [
        (
            "partially_reversed",
            [],
            "reversed_items: name the items reversed when partially reversing",
        ),
        ("upheld", ["fb-1"], "reversed_items: an upheld decision reverses no items"),
    ],
)
def test_decide_appeal_consistency(outcome: str, items: list[str], message: str) -> None:
    data = {"actor": OFFICER, "reason": "decided", "outcome": outcome, "reversed_items": items}
    assert _errors(DecideAppeal, data) == [("", message)]


def test_one_command_per_human_trigger() -> None:
    assert set(COMMANDS) == set(HUMAN_TRIGGERS)
    for trigger, model in COMMANDS.items():
        assert model.trigger == trigger


def test_parse_command() -> None:
    payload = {"actor": OFFICER.model_dump(mode="json"), "reason": "Received"}
    command = parse_command("acknowledge", payload)
    assert isinstance(command, Acknowledge)
    assert parse_command("acknowledge", command) is command
    with pytest.raises(ValueError, match=r"^unknown command 'teleport'; commands: acknowledge, "):
        parse_command("teleport", payload)
    with pytest.raises(ValidationError):
        parse_command("request_info", payload)  # the question is missing


def test_utc_iso() -> None:
    hanoi = timezone(timedelta(hours=7))
    assert utc_iso(datetime(2017, 4, 26, 9, 0, tzinfo=hanoi)) == "2017-04-26T02:00:00.000000Z"
    assert utc_iso(datetime(2017, 4, 26, 2, 0, 0, 123, tzinfo=UTC)).endswith(":00.000123Z")
    with pytest.raises(ValueError, match="timestamps must carry a timezone"):
        utc_iso(datetime(2017, 4, 26, 9, 0))
