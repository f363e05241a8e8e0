"""The published contract and the code cannot drift.

* docs/platform-protocol.openapi.json is exactly what the wire models generate, and the
  simulator serves the same bytes.
* The JSON Schemas and the wire models (validated with the WIRE context) give the same verdict
  on every body tried: hand-picked edge cases and a property test over mutations.
* The text policy of the schemas is docket.text's, code point by code point.
* What Docket's client sends (for real example orders) and what it accepts are valid per the
  contract.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from docket.intake import resolve
from docket.lifecycle import Role
from docket.models import Actor, Order
from docket.platform_openapi import render
from docket.platform_protocol import (
    UNSAFE_LINE_PATTERN,
    UNSAFE_TEXT_PATTERN,
    MarkerList,
    Notice,
    OrderPayload,
    PlatformItemEffect,
    PlatformStatus,
    TicketResponse,
    check_wire,
)
from docket.reference import default_reference
from docket.text import find_unsafe
from docket.validation import workflow_id_for
from platform_check import contract
from platform_sim.server import PlatformSimulator

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "docs" / "platform-protocol.openapi.json"


def test_the_published_document_is_generated_from_the_models() -> None:
    assert PUBLISHED.read_text(encoding="utf-8") == render(), (
        "the wire models changed without the contract: regenerate it with\n"
        "  .venv/bin/python -m docket.platform_openapi > docs/platform-protocol.openapi.json\n"
        "and say what changed in docs/platform-protocol.md (and bump CONTRACT_VERSION)"
    )


def test_the_simulator_serves_the_published_document() -> None:
    with PlatformSimulator(secrets={"facebook": b"s"}) as sim:
        served = httpx.get(sim.base_url("facebook") + "/v1/openapi.json")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json"
    assert served.content == PUBLISHED.read_bytes()


def test_every_schema_is_valid_draft_2020_12() -> None:
    doc = json.loads(PUBLISHED.read_text(encoding="utf-8"))
    assert doc["openapi"] == "3.1.0"
    for name, schema in doc["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema), name
    operations = [(p, m) for p, ops in doc["paths"].items() for m in ops]
    assert len(operations) == 7
    for path, method in operations:
        for status, answer in doc["paths"][path][method]["responses"].items():
            assert "description" in answer, (path, method, status)


def test_the_schemas_text_policy_is_docket_text_for_every_code_point() -> None:
    import re

    line = re.compile(UNSAFE_LINE_PATTERN)
    text = re.compile(UNSAFE_TEXT_PATTERN)
    differ = []
    for point in range(0x110000):
        char = chr(point)
        if bool(line.search(char)) != (find_unsafe(char) is not None):
            differ.append(("line", hex(point)))
        if bool(text.search(char)) != (find_unsafe(char, multiline=True) is not None):
            differ.append(("text", hex(point)))
    assert differ == []


def _model_verdict(model: type[BaseModel], data: Any) -> bool:
    try:
        check_wire(model, data)
    except ValidationError:
        return False
    return True


def _schema_verdict(name: str, data: Any) -> bool:
    return contract.check_body(name, data) == []


GOOD_ITEM: dict[str, Any] = {
    "item_id": "item-1",
    "effect": "declined",
    "restricted_in": [],
    "reason": "Lawful speech under our terms.",
    "question": None,
    "effect_at": "2026-11-29T08:38:11.626839Z",
    "platform_ref": "FA-1/item-1",
    "uploader_notified": False,
    "reinstated_at": None,
}
ITEM_CASES: list[dict[str, Any]] = [
    {},
    {"reason": None},
    {"reason": "ab"},
    {"reason": "  ab  "},
    {"reason": " abc "},
    {"reason": "x" * 4000},
    {"reason": "x" * 4001},
    {"reason": "tab\tand\nnewline ok"},
    {"reason": "carriage\rreturn"},
    {"reason": "bidi \u202e"},
    {"reason": "zero width \u200b"},
    {"reason": "tag \U000e0041"},
    {"reason": "Gỡ bỏ nội dung vi phạm"},
    {"effect": "restricted", "reason": None, "restricted_in": ["VN"]},
    {"effect": "restricted", "reason": None, "restricted_in": []},
    {"effect": "restricted", "reason": None, "restricted_in": ["VN", "VN"]},
    {"effect": "restricted", "reason": None, "restricted_in": ["vn"]},
    {"effect": "removed_globally", "restricted_in": ["VN"]},
    {"effect": "needs_more_info", "question": "Which post?"},
    {"effect": "needs_more_info", "question": None},
    {"effect": "needs_more_info", "question": "   "},
    {"effect": None, "reason": None},
    {"effect": "gone"},
    {"effect_at": "2026-11-29T08:38:11"},
    {"effect_at": "2026-11-29T15:38:11+07:00"},
    {"effect_at": "2026-11-29t08:38:11z"},
    {"effect_at": "2026-02-30T08:38:11Z"},
    {"effect_at": "2026-11-29 08:38:11Z"},
    {"effect_at": "2026-11-29T08:38Z"},
    {"effect_at": 1767225600},
    {"effect_at": "2026-11-29T08:38:11.123456789Z"},
    {"uploader_notified": "yes"},
    {"uploader_notified": 1},
    {"item_id": "Item 1"},
    {"item_id": "x" * 41},
    {"platform_ref": "line\nbreak"},
    {"platform_ref": ""},
    {"extra_field": "ignored"},
]


@pytest.mark.parametrize("change", ITEM_CASES, ids=lambda c: repr(c)[:60])
def test_model_and_schema_agree_on_item_effects(change: dict[str, Any]) -> None:
    data = {**GOOD_ITEM, **change}
    model = _model_verdict(PlatformItemEffect, data)
    assert model == _schema_verdict("PlatformItemEffect", data), (model, data)


def test_required_fields_agree() -> None:
    for field in GOOD_ITEM:
        data = {k: v for k, v in GOOD_ITEM.items() if k != field}
        model = _model_verdict(PlatformItemEffect, data)
        assert model == _schema_verdict("PlatformItemEffect", data), field


VALUES = st.sampled_from(
    [
        None,
        "",
        "ab",
        "abc",
        "VN",
        "vn",
        ["VN"],
        [],
        ["VN", "DE"],
        "removed_globally",
        "restricted",
        "declined",
        "needs_more_info",
        "not_found",
        "already_removed",
        "2026-11-29T08:38:11Z",
        "2026-11-29T08:38:11",
        True,
        0,
        "a\u2028b",
        "item-2",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(sorted(GOOD_ITEM)), VALUES, max_size=4),
    st.sets(st.sampled_from(sorted(GOOD_ITEM)), max_size=2),
)
def test_model_and_schema_agree_on_mutated_items(
    changes: dict[str, Any], removed: set[str]
) -> None:
    data = {k: v for k, v in {**GOOD_ITEM, **changes}.items() if k not in removed}
    model = _model_verdict(PlatformItemEffect, data)
    assert model == _schema_verdict("PlatformItemEffect", data), data


STATUS_CASES: list[dict[str, Any]] = [
    {},
    {"status": "info_requested"},
    {"status": "info_requested", "info_request": "Which decision?"},
    {"status": "bogus"},
    {"acknowledged_at": "2026-11-29T08:38:11"},
    {"acknowledged_at": None},
    {"info_request": ""},
    {"items": None},
]


@pytest.mark.parametrize("change", STATUS_CASES, ids=lambda c: repr(c)[:60])
def test_model_and_schema_agree_on_status(change: dict[str, Any]) -> None:
    data = {"ticket": "FA-1", "status": "decided", "items": [GOOD_ITEM], **change}
    model = _model_verdict(PlatformStatus, data)
    assert model == _schema_verdict("PlatformStatus", data), data


@pytest.mark.parametrize(
    "data",
    [
        {"ticket": "FA-1", "received_at": "2026-11-29T08:38:11Z"},
        {"ticket": "FA 1", "received_at": "2026-11-29T08:38:11Z"},
        {"ticket": "x" * 101, "received_at": "2026-11-29T08:38:11Z"},
        {"ticket": "FA-1", "received_at": "2026-11-29T08:38:11"},
        {"ticket": "FA-1"},
    ],
)
def test_model_and_schema_agree_on_tickets(data: dict[str, Any]) -> None:
    assert _model_verdict(TicketResponse, data) == _schema_verdict("TicketResponse", data)


@pytest.mark.parametrize(
    "data",
    [
        {"version": "fb-1", "removed": ["This content isn't available"]},
        {"version": "fb 1"},
        {"version": "fb-1", "removed": ["ab"]},
        {"version": "fb-1", "login_wall": ["Log in\u202e"]},
    ],
)
def test_model_and_schema_agree_on_markers(data: dict[str, Any]) -> None:
    assert _model_verdict(MarkerList, data) == _schema_verdict("MarkerList", data)


def _example_orders() -> list[Order]:
    orders = []
    for path in sorted((ROOT / "examples").glob("*/*.json")):
        if path.parent.name == "broken":
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        orders.append(Order.model_validate(data))
    return orders


@pytest.mark.parametrize("order", _example_orders(), ids=lambda o: o.reference)
def test_what_docket_sends_for_real_orders_is_valid(order: Order) -> None:
    reference = default_reference()
    officer = Actor(id=order.officer, roles=(Role.OFFICER,), organization="test")
    request = resolve(
        order,
        officer,
        reference,
        workflow_id=workflow_id_for(order.authority, order.reference),
        now=datetime.now(UTC),
    )
    wire = request.wire_order().model_dump(mode="json")
    assert contract.check_body("OrderPayload", wire) == []
    check_wire(OrderPayload, wire)
    notice = Notice(kind="renotify", request_id=request.request_id, message="x", items=["i"])
    # item ids in notices are Docket's own: a short example id
    notice = notice.model_copy(update={"items": [order.items[0].item_id], "notice_id": "n-1"})
    assert contract.check_body("Notice", notice.model_dump(mode="json")) == []


def test_refusals_name_the_field() -> None:
    problems = contract.check_body(
        "PlatformItemEffect", {"item_id": "item-1", "effect": "declined", "reason": None}
    )
    assert any("reason" in str(p) for p in problems), problems
    late = contract.check_body(
        "TicketResponse", {"ticket": "FA-1", "received_at": "2026-11-29T08:38:11"}
    )
    assert [p.path for p in late] == ["received_at"]
    assert "RFC 3339" in late[0].message


def test_the_document_loads_as_openapi_and_lists_every_operation() -> None:
    import schemathesis

    schema = schemathesis.openapi.from_dict(orjson.loads(PUBLISHED.read_bytes()))
    labels = sorted(op.ok().label for op in schema.get_all_operations())  # type: ignore[union-attr]
    assert labels == sorted(
        [
            "POST /v1/requests",
            "GET /v1/requests/{ticket}",
            "POST /v1/requests/{ticket}/notices",
            "GET /v1/markers",
            "GET /v1/conformance",
            "POST /v1/conformance/content",
            "POST /v1/conformance/requests/{ticket}/actions",
        ]
    )


def test_response_signing_known_answer_and_domain_separation() -> None:
    """The worked example of docs/platform-protocol.md, and a response signature can never
    pass as a request signature (or the reverse)."""
    from docket.signing import SignatureError, sign, sign_response, verify, verify_response

    secret = b"example-secret"
    request_signature = sign(secret, 1767225600, b'{"request_id":"req-x"}')
    assert request_signature == (
        "sha256=f0d1ab80bb4c74e875590b9e2369648908158440d8577300851642ccb94832be"
    )
    body = b'{"ticket":"FA-1","received_at":"2026-01-01T00:00:01Z"}'
    answer = sign_response(secret, 1767225601, request_signature, body)
    assert answer == "sha256=90310a90d361fec3e69f81d578aca05eb4ef6b46249304e49e165a09d70345e5"
    doc = (ROOT / "docs" / "platform-protocol.md").read_text(encoding="utf-8")
    assert request_signature.removeprefix("sha256=") in doc and answer in doc
    verify_response(secret, "1767225601", answer, request_signature, body, 1767225601)
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify(secret, "1767225601", answer, body, 1767225601)  # not a request signature
    other_request = sign(secret, 1767225600, b'{"request_id":"req-y"}')
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify_response(secret, "1767225601", answer, other_request, body, 1767225601)
    with pytest.raises(SignatureError, match="stale timestamp"):
        verify_response(secret, "1767225601", answer, request_signature, body, 1767226000)
