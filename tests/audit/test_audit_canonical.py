"""Known-answer vectors pin the canonical form and the chain: any serializer change fails."""

from __future__ import annotations

import ast
import hashlib
import pathlib
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.canonical import CanonicalError, _check, canonical, in_subset
from audit.chain import entry_hash, genesis_hash
from audit.entry import AuditAnchor, ChainHead, build_entry

VECTORS: list[tuple[Any, bytes, str]] = [
    (
        {"name": "Bộ Thông tin và Truyền thông"},
        b'{"name":"B\xe1\xbb\x99 Th\xc3\xb4ng tin v\xc3\xa0 Truy\xe1\xbb\x81n th\xc3\xb4ng"}',
        "48c1803b9fbeb7c3cefc20715cfa0df2c7a3e1f66cd8b8b9aae1624953fcea98",
    ),
    (
        {"e": "😀 ok"},
        b'{"e":"\xf0\x9f\x98\x80 ok"}',
        "67dc676c849daba5667e55fd7d935a4b3d94aecb7c64feb0919fbc1bef53d182",
    ),
    (
        {"z": {"b": [3, {"y": None, "x": True}], "a": False}, "A": -(2**53), "@t": 0},
        b'{"@t":0,"A":-9007199254740992,"z":{"a":false,"b":[3,{"x":true,"y":null}]}}',
        "9f038895a86ae1e9974ac595d02bc85824594364f132b529aaac9aebec3fe28b",
    ),
    (
        {"q": 'a"b\\c/d'},
        b'{"q":"a\\"b\\\\c/d"}',
        "8b2aa6673ef61878882445e842a370de36d7ace15fabd3e85563bd66e47492c9",
    ),
    (
        {"c": "\x00\x01\x08\t\n\x0b\x0c\r\x1f\x7f\u2028\u2029"},
        b'{"c":"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f\x7f\xe2\x80\xa8\xe2\x80\xa9"}',
        "1fef4078096590f3c6b418c5b14d9ce8a4b9f0ce6924eefd2df4b34d7c5b9219",
    ),
]


@pytest.mark.parametrize(("value", "expected", "digest"), VECTORS)
def test_canonical_known_answers(value: Any, expected: bytes, digest: str) -> None:
    assert canonical(value) == expected
    assert hashlib.sha256(canonical(value)).hexdigest() == digest


def test_genesis_and_entry_hash_known_answers() -> None:
    g = genesis_hash("req-mic-cv1234-2026")
    assert g == "f0ceddea3c45ed4ea66e5521e4dd1698da268dd12eb67feb549eb9dc1de9e553"
    assert entry_hash(g, {"name": "Bộ Thông tin và Truyền thông"}) == (
        "6dcc7113623771e3a0cbafa251e38d20780c8bfbb86488ee97a9cd05126e1f00"
    )
    # The construction itself, spelled out.
    assert g == hashlib.sha256(b"docket.audit.v1/genesis\x00req-mic-cv1234-2026").hexdigest()


def test_build_entry_known_answers() -> None:
    head = ChainHead.genesis("req-mic-cv1234-2026")
    e1, head = build_entry(
        head,
        timestamp=datetime(2026, 11, 29, 8, 0, 0, 123456, tzinfo=UTC),
        action="submit",
        from_state=None,
        to_state="pending_approval",
        actor_id="nguyen.van.a",
        actor_roles=["maker"],
        organization="Bộ Thông tin và Truyền thông",
        reason="Mạo danh lãnh đạo",
        request={"authority": "mic", "platform": "facebook"},
        items=[{"item_id": "i1", "url": "https://facebook.example/p/1"}],
    )
    e2, head = build_entry(
        head,
        timestamp=datetime(2026, 11, 29, 9, 0, tzinfo=UTC),
        action="approve",
        from_state="pending_approval",
        to_state="delivering",
        actor_id="tran.van.b",
        actor_roles=("approver",),
        organization="Bộ Thông tin và Truyền thông",
        reason="Legal basis checked",
    )
    assert e1["hash"] == "1b03918bb6d64a82ac4b6e65f2b177dd28df3ab7b68a22d12be9b85427755daa"
    assert e2["hash"] == "ae950a7d5cb1deabd3904808e52530c4d1e2b96ab4885665dab4c31d3d4758b4"
    assert e1["prev_hash"] == genesis_hash("req-mic-cv1234-2026")
    assert e2["prev_hash"] == e1["hash"]
    assert e2["event"] == {
        "id": "req-mic-cv1234-2026:2",
        "sequence": 2,
        "action": "approve",
        "outcome": "success",
        "reason": "Legal basis checked",
        "kind": "event",
    }
    assert e2["message"] == "approve: pending_approval -> delivering"
    assert e1["@timestamp"] == "2026-11-29T08:00:00.123456Z"
    assert e1["docket"]["from_state"] is None
    assert "items" not in e2["docket"] and "data" not in e2["docket"]
    assert "writer" not in e2
    assert head == ChainHead("req-mic-cv1234-2026", 2, e2["hash"])
    assert head.anchor() == AuditAnchor("req-mic-cv1234-2026", 2, e2["hash"])


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"a": {"b": [1, 2.5]}}, "$.a.b[1]"),
        ({"a": float("nan")}, "$.a"),
        ({"a": 2**53 + 1}, "$.a"),
        ({"é": 1}, "$"),
        ({1: 1}, "$"),
        ({"a": "\ud800"}, "$.a"),
        ({"a": {1, 2}}, "$.a"),
    ],
)
def test_canonical_rejects_values_outside_the_subset(value: Any, path: str) -> None:
    with pytest.raises(CanonicalError) as info:
        canonical(value)
    assert info.value.path == path


def test_build_entry_rejects_floats_naming_the_path() -> None:
    with pytest.raises(CanonicalError, match=r"\$\.docket\.data\.score"):
        build_entry(
            ChainHead.genesis("req-x-1"),
            timestamp=datetime(2026, 1, 1, tzinfo=UTC),
            action="delivered",
            from_state="delivering",
            to_state="awaiting_ack",
            actor_id="system",
            actor_roles=["system"],
            organization="X",
            reason=None,
            data={"score": 0.5},
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        build_entry(
            ChainHead.genesis("req-x-1"),
            timestamp=datetime(2026, 1, 1),
            action="a",
            from_state=None,
            to_state="b",
            actor_id="u",
            actor_roles=[],
            organization="X",
            reason=None,
        )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"])),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(alphabet=st.characters(max_codepoint=127), max_size=6), children, max_size=4
        )
    ),
    max_leaves=20,
)


@given(json_values)
def test_orjson_fast_path_equals_canonical(value: Any) -> None:
    """verify hashes with orjson; it must agree byte for byte with the pinned form."""
    assert orjson.dumps(value, option=orjson.OPT_SORT_KEYS) == canonical(value)


def test_pure_modules_import_only_stdlib() -> None:
    """canonical/chain/entry run inside Temporal's workflow sandbox."""
    root = pathlib.Path(__file__).resolve().parents[2] / "audit"
    allowed = {
        "__future__",
        "hashlib",
        "json",
        "datetime",
        "dataclasses",
        "typing",
        "collections",
        "audit",
    }
    for name in ("canonical.py", "chain.py", "entry.py"):
        tree = ast.parse((root / name).read_text())
        for node in ast.walk(tree):
            mods: list[str] = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module or ""]
            for m in mods:
                assert m.split(".")[0] in allowed, f"{name} imports {m}"
                if m.startswith("audit."):
                    assert m in ("audit.canonical", "audit.chain"), f"{name} imports {m}"


any_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=True)
    | st.text()
    | st.just("lone \ud800 surrogate")
    | st.datetimes(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=3) | st.integers(0, 3), children, max_size=4)
    ),
    max_leaves=20,
)


@given(any_values)
def test_the_fast_subset_check_agrees_with_the_path_naming_one(value: Any) -> None:
    """Every entry takes the fast check; the slow one only names the path when it fails."""
    try:
        _check(value, ["$"])
    except CanonicalError:
        assert not in_subset(value)
    else:
        assert in_subset(value)


def test_a_cyclic_value_fails_instead_of_hanging() -> None:
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(CanonicalError, match="nested deeper than 254"):
        canonical(cyclic)
