"""Intake: every example is accepted or rejected with the exact path and message."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from docket.reference import ReferenceData, default_reference
from docket.validation import (
    MAX_CLOCK_SKEW,
    InvalidRequest,
    Issue,
    RawRequest,
    fingerprint,
    read_request_file,
    validate_order,
    workflow_id_for,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
CATEGORIES = (
    "defamation, false_information, government_criticism, impersonation, incitement, "
    "national_security, privacy"
)
BASES = "eu-dsa-2022, vn-c38-2016, vn-csl-2025, vn-d147-2024, vn-d72-2013, vn-penal-code-2015"

BROKEN: dict[str, list[tuple[str, str]]] = {
    "missing-legal-basis": [
        ("legal_bases", "Tuple should have at least 1 item after validation, not 0")
    ],
    "bad-url": [
        (
            "items[0].url",
            "URL must start with http:// or https:// (got 'ftp://127.0.0.1/facebook/content/gia-mao')",
        ),
        ("items[1].url", "URL must not contain spaces, control or invisible characters"),
    ],
    "unknown-platform": [("platform", "unknown platform 'zalo'; known: facebook, tiktok, youtube")],
    "empty-items": [("items", "Tuple should have at least 1 item after validation, not 0")],
    "global-scope-without-justification": [
        (
            "scope_justification",
            "required when territorial_scope is 'global' "
            "(DSA Art. 9: scope limited to what is strictly necessary)",
        )
    ],
    "naive-datetime": [("issued_at", "Input should have timezone info")],
    "issued-in-the-future": [("issued_at", "2099-04-26T09:00:00+07:00 is in the future")],
    "authority-after-merger": [
        (
            "authority",
            "'mic' (Ministry of Information and Communications) ceased on 2025-02-28, "
            "before issued_at; its successor is 'mst'",
        )
    ],
    "unknown-category": [
        ("items[1].category", f"unknown category 'fake_news'; known: {CATEGORIES}")
    ],
    "duplicate-item-ids": [("items[1].item_id", "'fb-1' is used twice")],
    "control-characters-in-reason": [
        (
            "items[0].reason",
            "contains U+001B (control character) at position 28: such characters make text "
            "display differently from what is stored; remove it (line breaks and tabs are fine)",
        )
    ],
    "bidi-override-in-reason": [
        (
            "items[0].reason",
            "contains U+202E RIGHT-TO-LEFT OVERRIDE (bidi embedding/override) at position 18: "
            "such characters make text display differently from what is stored; remove it "
            "(line breaks and tabs are fine)",
        )
    ],
    "several-errors": [
        ("issued_at", "Input should have timezone info"),
        (
            "items[0].url",
            "URL must start with http:// or https:// (got 'ftp://127.0.0.1/facebook/content/gia-mao')",
        ),
        ("items[1].item_id", "String should match pattern '^[a-z0-9][a-z0-9-]{0,39}$'"),
        ("platform", "unknown platform 'zalo'; known: facebook, tiktok, youtube"),
        ("items[1].category", f"unknown category 'fake_news'; known: {CATEGORIES}"),
        ("legal_bases[1].basis", f"unknown basis 'vn-luat-bao-chi'; known: {BASES}"),
    ],
}


@pytest.fixture(scope="module")
def reference() -> ReferenceData:
    return default_reference()


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _valid_files() -> list[Path]:
    return sorted([*EXAMPLES.glob("seed/*.json*"), *EXAMPLES.glob("other/*.json*")])


def _issues(raw: Any, reference: ReferenceData) -> list[tuple[str, str]]:
    with pytest.raises(InvalidRequest) as info:
        validate_order(raw, reference, now=NOW)
    return [(i.path, i.message) for i in info.value.issues]


def test_every_broken_example_is_covered() -> None:
    assert sorted(p.stem for p in (EXAMPLES / "broken").glob("*.json")) == sorted(BROKEN)


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_example_rejected_with_exact_issues(name: str, reference: ReferenceData) -> None:
    raw = _load(EXAMPLES / "broken" / f"{name}.json")
    assert _issues(raw, reference) == BROKEN[name]


def test_several_errors_are_reported_together_in_one_exception(reference: ReferenceData) -> None:
    path = EXAMPLES / "broken" / "several-errors.json"
    (raw,) = list(read_request_file(path))
    with pytest.raises(InvalidRequest) as info:
        validate_order(raw.data, reference, now=NOW, source=raw.source)
    text = str(info.value)
    assert text.startswith(f"{path}: 6 problem(s)\n")
    assert "  platform: unknown platform 'zalo'; known: facebook, tiktok, youtube" in text
    assert info.value.source == str(path)


def test_broken_example_differs_from_the_seed_only_in_its_mistake(
    reference: ReferenceData,
) -> None:
    """Each one-mistake file is otherwise valid: fixing the mistake makes it pass."""
    raw = _load(EXAMPLES / "broken" / "unknown-platform.json")
    raw["platform"] = "facebook"
    validate_order(raw, reference, now=NOW)
    raw = _load(EXAMPLES / "broken" / "naive-datetime.json")
    raw["issued_at"] += "+07:00"
    validate_order(raw, reference, now=NOW)


@pytest.mark.parametrize("path", _valid_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_seed_and_other_examples_are_accepted(path: Path, reference: ReferenceData) -> None:
    requests = list(read_request_file(path))
    assert requests
    for raw in requests:
        order = validate_order(raw.data, reference, now=NOW, source=raw.source)
        assert order.reference == raw.data["reference"]


def test_examples_cover_the_seed_scenario(reference: ReferenceData) -> None:
    fb = validate_order(_load(EXAMPLES / "seed" / "mic-facebook-2017.json"), reference, now=NOW)
    assert fb.authority == "mic"
    assert fb.issued_at == datetime.fromisoformat("2017-04-26T09:00:00+07:00")
    assert fb.sla_policy == "VN-C38-2016"
    assert fb.territorial_scope == ("VN",)
    assert fb.language == "vi"
    assert {"impersonation", "incitement", "defamation", "false_information"} <= set(fb.categories)
    assert any(i.content_type == "account" for i in fb.items)
    assert fb.legal_bases[0].provision == "Điều 5 khoản 1"
    yt = validate_order(_load(EXAMPLES / "seed" / "mic-youtube-2017.json"), reference, now=NOW)
    assert yt.platform == "youtube"
    assert "video" in {i.content_type for i in yt.items}
    slug = re.compile(r"^http://127\.0\.0\.1:8700/(facebook|youtube|tiktok)/content/[a-z0-9.-]+$")
    for path in _valid_files():
        for raw in read_request_file(path):
            for item in raw.data["items"]:
                assert slug.match(item["url"]), item["url"]
                assert item["url"].split("/")[3] == raw.data["platform"]


def test_examples_have_distinct_workflow_ids(reference: ReferenceData) -> None:
    ids = [
        workflow_id_for(raw.data["authority"], raw.data["reference"])
        for path in _valid_files()
        for raw in read_request_file(path)
    ]
    assert len(ids) == len(set(ids)) == 7


# --- reference checks --------------------------------------------------------------------


@pytest.fixture
def seed() -> dict[str, Any]:
    data: dict[str, Any] = _load(EXAMPLES / "seed" / "mic-facebook-2017.json")
    return data


def test_not_a_json_object(reference: ReferenceData) -> None:
    assert _issues([1, 2], reference) == [("(top level)", "expected a JSON object")]


def test_clock_skew_tolerated_but_not_more(seed: dict[str, Any], reference: ReferenceData) -> None:
    seed.update(authority="mst", sla_policy="VN-D147-2024")
    seed["legal_bases"] = [{"basis": "vn-d147-2024", "provision": "Điều 23"}]
    seed["issued_at"] = (NOW + MAX_CLOCK_SKEW).isoformat()
    validate_order(seed, reference, now=NOW)
    seed["issued_at"] = "2026-11-29T08:05:01+00:00"
    assert _issues(seed, reference) == [("issued_at", "2026-11-29T08:05:01+00:00 is in the future")]


def test_legal_basis_not_in_force_names_its_replacement(
    seed: dict[str, Any], reference: ReferenceData
) -> None:
    seed.update(authority="mst", sla_policy="VN-D147-2024", issued_at="2025-06-02T09:00:00+07:00")
    seed["legal_bases"] = [{"basis": "vn-d72-2013", "provision": "Điều 5"}]
    assert _issues(seed, reference) == [
        (
            "legal_bases[0].basis",
            "Nghị định 72/2013/NĐ-CP was no longer in force on issued_at; "
            "cite 'vn-d147-2024' instead",
        )
    ]


def test_legal_basis_not_yet_in_force(seed: dict[str, Any], reference: ReferenceData) -> None:
    seed["legal_bases"] = [{"basis": "vn-csl-2025", "provision": "Điều 26"}]
    assert _issues(seed, reference) == [
        ("legal_bases[0].basis", "Luật An ninh mạng 2025 is in force only from 2026-07-01")
    ]


def test_authority_before_it_existed(seed: dict[str, Any], reference: ReferenceData) -> None:
    seed["authority"] = "mst"
    assert _issues(seed, reference) == [
        ("authority", "'mst' exists only from 2025-03-01, after issued_at")
    ]


def test_emergency_needs_emergency_policy_and_vice_versa(reference: ReferenceData) -> None:
    raw = _load(EXAMPLES / "other" / "a05-emergency.json")
    raw["priority"] = "normal"
    assert _issues(raw, reference) == [
        ("sla_policy", "VN-CSL-2025-EMERGENCY applies only to priority 'emergency'")
    ]
    raw = _load(EXAMPLES / "other" / "a05-emergency.json")
    raw["sla_policy"] = "VN-D147-2024"
    assert _issues(raw, reference) == [
        ("priority", "an emergency request needs an emergency SLA policy, not VN-D147-2024")
    ]


def test_unknown_field_is_named(seed: dict[str, Any], reference: ReferenceData) -> None:
    seed["urgency"] = "high"
    assert _issues(seed, reference) == [
        ("urgency", "unknown field (check the spelling; see docs/requests.md)")
    ]


def test_unknown_sla_policy_reported_even_when_schema_fails(
    seed: dict[str, Any], reference: ReferenceData
) -> None:
    seed["sla_policy"] = "VN-NOPE"
    seed["items"] = []
    issues = _issues(seed, reference)
    assert ("items", "Tuple should have at least 1 item after validation, not 0") in issues
    assert issues[-1][0] == "sla_policy"
    assert issues[-1][1].startswith("unknown sla_policy 'VN-NOPE'; known: DEMO-VN-C38, ")


def test_item_platform_must_match_request(seed: dict[str, Any], reference: ReferenceData) -> None:
    seed["items"][2]["platform"] = "youtube"
    assert _issues(seed, reference) == [
        (
            "items[2].platform",
            "'youtube' differs from the request's platform 'facebook'; "
            "file one request per platform",
        )
    ]


def test_same_url_twice_and_global_combined(seed: dict[str, Any], reference: ReferenceData) -> None:
    seed["items"][1]["url"] = seed["items"][0]["url"]
    seed["territorial_scope"] = ["global", "VN"]
    seed["scope_justification"] = "Tài khoản mạo danh hiển thị với mọi người dùng trên thế giới."
    assert _issues(seed, reference) == [
        ("territorial_scope", "'global' cannot be combined with countries"),
        ("items", "the same URL is listed twice"),
    ]


def test_global_scope_with_justification_is_accepted(
    seed: dict[str, Any], reference: ReferenceData
) -> None:
    seed["territorial_scope"] = ["global"]
    seed["scope_justification"] = "Tài khoản mạo danh hiển thị với mọi người dùng trên thế giới."
    assert validate_order(seed, reference, now=NOW).territorial_scope == ("global",)


# --- files ---------------------------------------------------------------------------------


def test_jsonl_sources_name_the_line() -> None:
    sources = [r.source for r in read_request_file(EXAMPLES / "other" / "batch.jsonl")]
    path = EXAMPLES / "other" / "batch.jsonl"
    assert sources == [f"{path}:1", f"{path}:2"]


def test_json_array_and_blank_jsonl_lines(tmp_path: Path) -> None:
    seed = _load(EXAMPLES / "seed" / "mic-facebook-2017.json")
    array = tmp_path / "two.json"
    array.write_text(json.dumps([seed, seed], ensure_ascii=False), encoding="utf-8")
    assert [r.source for r in read_request_file(array)] == [f"{array}[0]", f"{array}[1]"]
    lines = tmp_path / "gaps.jsonl"
    lines.write_text("\n" + json.dumps(seed, ensure_ascii=False) + "\n\n", encoding="utf-8")
    assert [r.source for r in read_request_file(lines)] == [f"{lines}:2"]


def test_bad_json_and_bad_encoding_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"authority": "mic",\n  oops}', encoding="utf-8")
    with pytest.raises(InvalidRequest) as info:
        list(read_request_file(bad))
    assert info.value.issues == [
        Issue(
            "(file)",
            "not valid JSON at line 2 column 3: Expecting property name enclosed in double quotes",
        )
    ]
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"reason": "Điều"}'.encode("utf-16"))
    with pytest.raises(InvalidRequest) as info:
        list(read_request_file(latin))
    assert info.value.issues[0].message.startswith("not UTF-8: ")


def test_vietnamese_file_text_arrives_unchanged(reference: ReferenceData) -> None:
    path = EXAMPLES / "seed" / "mic-facebook-2017.json"
    (raw,) = list(read_request_file(path))
    order = validate_order(raw.data, reference, now=NOW)
    assert isinstance(raw, RawRequest)
    file_bytes = path.read_bytes()
    for text in (order.statement_of_reasons, order.redress, *(i.reason for i in order.items)):
        assert text.encode("utf-8") in file_bytes


# --- identity ------------------------------------------------------------------------------


def test_workflow_id_examples() -> None:
    assert workflow_id_for("mic", "1475/BTTTT-PTTH&TTĐT") == "req-mic-1475-btttt-ptth-ttdt"
    assert workflow_id_for("ie-cnam", "CNAM-DSA9-2026-0042") == "req-ie-cnam-cnam-dsa9-2026-0042"
    assert workflow_id_for("mic", "  Số 12: QĐ/BTTTT ") == "req-mic-so-12-qd-btttt"


def test_workflow_id_keeps_vietnamese_letters_apart() -> None:
    """Letters are transliterated, not dropped: different references, different runs."""
    assert workflow_id_for("mic", "12/TTĐT") != workflow_id_for("mic", "12/TTÂT")


def test_workflow_id_truncated_without_trailing_hyphen() -> None:
    wid = workflow_id_for("mic", "a" * 191 + "/b")
    assert wid == "req-mic-" + "a" * 191


def test_workflow_id_refuses_empty() -> None:
    with pytest.raises(ValueError, match="empty workflow id"):
        workflow_id_for("", "///")


@settings(max_examples=300, deadline=None)
@given(authority=st.text(min_size=1, max_size=64), reference=st.text(min_size=1, max_size=100))
def test_workflow_id_alphabet(authority: str, reference: str) -> None:
    try:
        wid = workflow_id_for(authority, reference)
    except ValueError:
        return
    assert re.fullmatch(r"req-[a-z0-9]+(-[a-z0-9]+)*", wid), wid
    assert len(wid) <= 200
    assert workflow_id_for(authority, reference) == wid


def test_fingerprint_is_stable_and_sensitive(reference: ReferenceData) -> None:
    raw = _load(EXAMPLES / "seed" / "mic-facebook-2017.json")
    order = validate_order(raw, reference, now=NOW)
    again = validate_order(json.loads(json.dumps(raw)), reference, now=NOW)
    fp = fingerprint(order)
    assert re.fullmatch(r"[0-9a-f]{64}", fp)
    assert fingerprint(again) == fp
    # key order in the file does not matter
    reordered = dict(reversed(list(raw.items())))
    assert fingerprint(validate_order(reordered, reference, now=NOW)) == fp
    # every meaningful change does
    changes = [
        ("statement_of_reasons", raw["statement_of_reasons"] + " Bổ sung."),
        ("territorial_scope", ["VN", "US"]),
        ("issued_at", "2017-04-26T09:00:01+07:00"),
        ("officer", "le.van.cuong"),
    ]
    seen = {fp}
    for key, value in changes:
        changed = dict(raw, **{key: value})
        other = fingerprint(validate_order(changed, reference, now=NOW))
        assert other not in seen, key
        seen.add(other)
    items = json.loads(json.dumps(raw["items"]))
    items[0]["reason"] = items[0]["reason"].replace("Thủ tướng", "Thủ tuớng")
    other = fingerprint(validate_order(dict(raw, items=items), reference, now=NOW))
    assert other not in seen


def test_fingerprint_ignores_how_the_issue_time_is_written() -> None:
    from docket.reference import default_reference
    from docket.validation import fingerprint, read_request_file, validate_order

    path = Path(__file__).resolve().parents[2] / "examples" / "seed" / "mic-facebook-2017.json"
    raw = next(read_request_file(path)).data
    reference = default_reference()
    local = validate_order(raw, reference)
    utc = validate_order({**raw, "issued_at": "2017-04-26T02:00:00Z"}, reference)
    later = validate_order({**raw, "issued_at": "2017-04-26T02:00:01Z"}, reference)
    assert fingerprint(local) == fingerprint(utc)
    assert fingerprint(local) != fingerprint(later)
