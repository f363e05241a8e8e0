"""Request files and orders, fuzzed: every input is accepted as a valid Order or refused with
InvalidRequest naming the problems; never another exception. What is accepted always makes a
one-line audit entry (CR/LF, U+2028 and control characters cannot forge log lines).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.entry import ChainHead, build_entry
from audit.writer import render_line
from docket.reference import default_reference
from docket.validation import InvalidRequest, read_request_file, validate_order

ROOT = Path(__file__).resolve().parents[2]
SEED = json.loads((ROOT / "examples" / "seed" / "mic-youtube-2017.json").read_text("utf-8"))
NASTY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "line one\r\nline two",
        'fake\n{"event": {"action": "approve"}}',
        "nul\x00byte",
        "bell\x07",
        "sep\u2028arator\u2029",
        "Gỡ bỏ nội dung — удалить 删除 🙂",
        "x" * 25_000,
        "\ud7ff\ue000",
        "tab\there",
    ]
)
TEXT = st.one_of(NASTY_TEXT, st.text(max_size=40))
URL = st.one_of(
    st.sampled_from(
        [
            "http://127.0.0.1:8700/facebook/content/x",
            "https://www.facebook.com/post/1",
            "ftp://example.com/x",
            "http://",
            "http://exa mple.com/",
            "http://example.com:99999/",
            "javascript:alert(1)",
            "https://example.com/" + "a" * 3000,
            "https://пример.рф/путь",
            "http://example.com/\r\nX-Injected: 1",
        ]
    ),
    st.text(max_size=30),
)
DATE = st.one_of(
    st.sampled_from(
        ["2017-04-26T09:00:00+07:00", "2017-04-26T09:00:00", "2999-01-01T00:00:00Z", "26/04/2017"]
    ),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
FIELDS = [
    "authority", "reference", "officer", "channel", "platform", "statement_of_reasons",
    "territorial_scope", "scope_justification", "redress", "priority", "sla_policy", "language",
    "issued_at", "items", "legal_bases", "unknown_field",
]  # fmt: skip
ITEM_FIELDS = ["item_id", "url", "content_type", "category", "reason", "platform", "extra"]


@st.composite
def orders(draw: st.DrawFn) -> Any:
    data: dict[str, Any] = copy.deepcopy(SEED)
    data["reference"] = draw(st.one_of(st.just("REF-1"), TEXT))
    for _ in range(draw(st.integers(0, 4))):
        field = draw(st.sampled_from(FIELDS))
        value = draw(st.one_of(TEXT, JSON, DATE, URL))
        if draw(st.booleans()):
            data.pop(field, None)
        else:
            data[field] = value
    if isinstance(data.get("items"), list) and data["items"]:
        for _ in range(draw(st.integers(0, 3))):
            item = data["items"][draw(st.integers(0, len(data["items"]) - 1))]
            if isinstance(item, dict):
                key = draw(st.sampled_from(ITEM_FIELDS))
                item[key] = draw(URL if key == "url" else st.one_of(TEXT, JSON))
    items = data.get("items")
    if draw(st.booleans()) and (items is None or isinstance(items, list)):
        data["items"] = (items or []) * draw(st.integers(0, 3))
    return data if draw(st.integers(0, 9)) else draw(JSON)


def one_line(order: Any) -> None:
    """The submission entry of an accepted order renders as exactly one line."""
    entry, _ = build_entry(
        ChainHead.genesis("req-fuzz"),
        timestamp=datetime.now(UTC),
        action="submit",
        from_state=None,
        to_state="pending_approval",
        actor_id=order.officer,
        actor_roles=["officer"],
        organization="Bộ",
        reason=order.statement_of_reasons,
        items=[i.model_dump(mode="json") for i in order.items],
        request={"reference": order.reference, "redress": order.redress},
    )
    line = render_line(entry)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert b"\r" not in line and "\u2028".encode() not in line
    assert json.loads(line) == {k: v for k, v in entry.items()}


@settings(max_examples=300, deadline=None)
@given(raw=orders())
def test_orders_are_valid_or_refused_with_issues(raw: Any) -> None:
    try:
        order = validate_order(raw, default_reference())
    except InvalidRequest as exc:
        assert exc.issues and all(str(issue) for issue in exc.issues)
        return
    one_line(order)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    suffix=st.sampled_from([".json", ".jsonl"]),
    content=st.one_of(
        st.binary(max_size=300),
        orders().map(lambda o: json.dumps(o, ensure_ascii=False).encode()),
        st.lists(orders(), max_size=3).map(
            lambda os: "\n".join(json.dumps(o) for o in os).encode()
        ),
        st.sampled_from([b"[" * 5000, b'{"a":' * 5000, b"\xef\xbb\xbf{}", b"\n\n\n", b"null"]),
    ),
)
def test_request_files_parse_or_are_refused(tmp_path: Path, suffix: str, content: bytes) -> None:
    path = tmp_path / f"request{suffix}"
    path.write_bytes(content)
    try:
        raws = list(read_request_file(path))
    except InvalidRequest as exc:
        assert exc.issues
        return
    for raw in raws:
        try:
            validate_order(raw.data, default_reference(), source=raw.source)
        except InvalidRequest as exc:
            assert exc.source == raw.source


@pytest.mark.parametrize("text", ["a\r\nb", "a\nb", "a\u2028b", "a\x1b[31mred", "ok"])
def test_reason_text_never_breaks_the_line(text: str) -> None:
    entry, _ = build_entry(
        ChainHead.genesis("req-fuzz"),
        timestamp=datetime.now(UTC),
        action="approve",
        from_state="pending_approval",
        to_state="delivering",
        actor_id="tran.thi.binh",
        actor_roles=["approver"],
        organization="Bộ",
        reason=text,
    )
    line = render_line(entry)
    assert line.count(b"\n") == 1 and json.loads(line)["event"]["reason"] == text
