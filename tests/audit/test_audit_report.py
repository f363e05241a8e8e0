"""The transparency report on a small hand-built log: exact numbers."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from audit.entry import ChainHead, build_entry
from audit.report import build_report, parse_period_bound, quantile, render
from audit.verify import verify_paths
from audit.writer import AuditWriter, render_line

ORG = "Bộ Thông tin và Truyền thông"


def ts(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


class Chain:
    def __init__(self, chain_id: str) -> None:
        self.head = ChainHead.genesis(chain_id)
        self.entries: list[dict[str, Any]] = []
        self.state: str | None = None

    def add(self, when: str, action: str, to: str, **docket: Any) -> Chain:
        entry, self.head = build_entry(
            self.head,
            timestamp=ts(when),
            action=action,
            from_state=self.state,
            to_state=to,
            actor_id="someone",
            actor_roles=["officer"],
            organization=ORG,
            reason=None,
            **docket,
        )
        self.state = to
        self.entries.append(entry)
        return self


def request(platform: str, cats: list[str], scope: list[str], policy: str) -> dict[str, Any]:
    return {
        "authority": "mic",
        "authority_name": ORG,
        "reference": "cv",
        "platform": platform,
        "legal_bases": [{"instrument": "Decree 147/2024/ND-CP", "article": "23"}],
        "categories": cats,
        "territorial_scope": scope,
        "sla_policy": policy,
    }


def build_chains() -> list[Chain]:
    a = Chain("req-mic-a-2026")
    a.add(
        "2026-03-01T08:00:00",
        "submit",
        "pending_approval",
        request=request("facebook", ["impersonation"], ["VN"], "VN-D147-2024"),
        items=[
            {"item_id": "i1", "category": "impersonation"},
            {"item_id": "i2", "category": "defamation"},
            {"item_id": "i3"},
        ],
    )
    a.add("2026-03-01T08:30:00", "approve", "delivering")
    a.add(
        "2026-03-01T09:00:00",
        "delivered",
        "awaiting_ack",
        data={
            "ticket": "T1",
            "sent_at": "2026-03-01T09:00:00Z",
            "received_at": "2026-03-01T09:00:00Z",
            "due_at": "2026-03-02T09:00:00Z",
            "sla_policy": "VN-D147-2024",
        },
    )
    a.add(
        "2026-03-01T11:00:00",
        "acknowledge",
        "acknowledged",
        data={"acknowledged_at": "2026-03-01T11:00:00Z"},
    )
    a.add(
        "2026-03-02T15:00:00",
        "report_effect",
        "verifying",
        items=[
            {"item_id": "i1", "effect": "removed_globally", "effect_at": "2026-03-01T13:00:00Z"},
            {
                "item_id": "i2",
                "effect": "restricted",
                "restricted_in": ["VN"],
                "effect_at": "2026-03-02T15:00:00Z",
            },
            {"item_id": "i3", "effect": "declined", "effect_at": "2026-03-01T14:00:00Z"},
        ],
    )
    a.add(
        "2026-03-02T16:00:00",
        "verified",
        "monitoring",
        evidence=[
            {"item_id": "i1", "vantage": "vn", "observation": "removed"},
            {"item_id": "i2", "vantage": "vn", "observation": "available"},
        ],
        data={
            "disagreements": [{"item_id": "i2", "claim": "restricted", "observation": "available"}]
        },
    )
    a.add(
        "2026-03-03T15:00:00",
        "recheck",
        "monitoring",
        evidence=[{"item_id": "i2", "vantage": "vn", "observation": "geo_restricted"}],
        data={"disagreements": []},
    )
    a.add(
        "2026-03-04T00:00:00",
        "file_appeal",
        "appealed",
        appeal={
            "appeal_id": "ap1",
            "appellant_type": "content_owner",
            "target_items": ["i1"],
            "filed_at": "2026-03-04T00:00:00Z",
        },
    )
    a.add(
        "2026-03-06T00:00:00",
        "decide_appeal",
        "monitoring",
        appeal={"appeal_id": "ap1", "outcome": "upheld", "decided_at": "2026-03-06T00:00:00Z"},
    )
    a.add(
        "2026-03-07T00:00:00",
        "monitoring_complete",
        "closed",
        data={
            "outcome": "partially_complied",
            "item_outcomes": {"i1": "removed_globally", "i2": "restricted", "i3": "declined"},
        },
    )

    b = Chain("req-mic-b-2026")
    b.add(
        "2026-03-10T09:00:00",
        "submit",
        "pending_approval",
        request=request("youtube", ["false_information"], ["global"], "EU-DSA-ART9"),
        items=[{"item_id": "j1", "category": "false_information", "platform": "youtube"}],
    )
    b.add(
        "2026-03-10T10:00:00",
        "delivered",
        "awaiting_ack",
        data={
            "sent_at": "2026-03-10T10:00:00Z",
            "received_at": "2026-03-10T10:00:00Z",
            "due_at": None,
        },
    )
    b.add("2026-03-10T16:00:00", "acknowledge", "acknowledged", data={})  # @timestamp used
    b.add(
        "2026-03-11T00:00:00",
        "report_effect",
        "verifying",
        items=[{"item_id": "j1", "effect": "not_found", "effect_at": "2026-03-11T00:00:00Z"}],
    )
    b.add(
        "2026-03-12T00:00:00",
        "file_appeal",
        "appealed",
        appeal={"appeal_id": "ap2", "appellant_type": "authority", "target_items": ["j1"]},
    )

    c = Chain("req-mic-c-2026")  # outside the period; its late entry sets the log horizon
    c.add(
        "2026-04-05T00:00:00",
        "submit",
        "pending_approval",
        request=request("facebook", ["privacy"], ["VN"], "VN-D147-2024"),
        items=[{"item_id": "x1"}],
    )

    d = Chain("req-mic-d-2026")
    d.add(
        "2026-03-20T00:00:00",
        "submit",
        "pending_approval",
        request=request("facebook", ["incitement"], ["VN", "US"], "VN-D147-2024"),
        items=[{"item_id": "k1"}, {"item_id": "k2"}],
    )
    d.add(
        "2026-03-20T00:00:01",
        "delivered",
        "awaiting_ack",
        data={
            "sent_at": "2026-03-20T00:00:00Z",
            "received_at": "2026-03-20T01:00:00Z",
            "due_at": "2026-03-21T01:00:00Z",
        },
    )
    d.add(
        "2026-03-20T05:00:00",
        "acknowledge",
        "acknowledged",
        data={"acknowledged_at": "2026-03-20T05:00:00Z"},
    )
    d.add(
        "2026-03-20T06:00:00",
        "report_effect",
        "acknowledged",
        items=[
            {"item_id": "k1", "effect": "removed_globally", "effect_at": "2026-03-20T03:00:00Z"},
            {"item_id": "k2", "effect": "needs_more_info", "effect_at": "2026-03-20T04:00:00Z"},
        ],
    )
    return [a, b, c, d]


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    chains = build_chains()
    w1, w2 = AuditWriter(tmp_path / "log", host="w1"), AuditWriter(tmp_path / "log", host="w2")
    for i, ch in enumerate(chains):
        (w1 if i % 2 else w2).append(ch.entries, attempt=1)
    w1.close()
    w2.close()
    return tmp_path / "log"


PERIOD = (parse_period_bound("2026-03-01", end=False), parse_period_bound("2026-03-31", end=True))


def test_report_numbers(logdir: Path) -> None:
    r = build_report([logdir], *PERIOD)
    assert r["totals"] == {"requests": 3, "items": 6}
    assert r["requests_by"]["platform"] == {"facebook": 2, "youtube": 1}
    assert r["items_by"]["platform"] == {"facebook": 5, "youtube": 1}
    assert r["requests_by"]["country"] == {"VN": 2, "US": 1, "global": 1}
    assert r["items_by"]["category"] == {
        "defamation": 1,
        "false_information": 1,
        "impersonation": 2,
        "incitement": 2,
    }
    assert r["requests_by"]["legal_basis"] == {"Decree 147/2024/ND-CP art. 23": 3}
    assert r["requests_by"]["authority"] == {"mic": 3}
    assert r["item_outcome_buckets"] == {
        "removed-legal": 1,
        "removed-policy": 2,
        "not found": 1,
        "already removed": 0,
        "not enough information": 1,
        "no action": 1,
        "pending": 0,
    }
    assert r["request_outcomes"] == {"open": 2, "partially_complied": 1}
    assert {
        k: (v["n"], v["median_seconds"], v["p90_seconds"]) for k, v in r["durations"].items()
    } == {
        "receipt_to_ack": (3, 14400.0, 20160.0),  # the SLA clock: from the platform's receipt
        "receipt_to_effect": (3, 14400.0, 89280.0),
        "send_to_ack": (3, 18000.0, 20880.0),  # from our send time, kept and labelled apart
        "effect_to_verified": (2, 91800.0, 96120.0),
        "appeal_filed_to_decided": (1, 172800.0, 172800.0),
    }
    assert "not the SLA clock" in r["durations"]["send_to_ack"]["label"]
    assert "receipt" in r["durations"]["receipt_to_ack"]["label"]
    assert r["histograms"]["receipt_to_effect_hours"] == {
        "0-1 h": 0,
        "1-6 h": 2,
        "6-24 h": 0,
        "24-48 h": 1,
        "48-72 h": 0,
        "72-168 h": 0,
        ">168 h": 0,
    }
    assert r["sla"].pop("clock").startswith("from the platform's receipt")
    assert r["sla"] == {
        "items_counted": 5,
        "items_within": 3,
        "items_share_within": 0.6,
        "items_pending": 0,
        "items_excluded_no_clock": 1,
        "requests_counted": 2,
        "requests_within": 0,
        "requests_share_within": 0.0,
        "requests_excluded_no_clock": 1,
    }
    # Removals: i1 (removed, confirmed by a probe), i2 (restricted, confirmed by the recheck),
    # j1 (not found: never probed) and k1 (removed: never probed). These entries carry no
    # data.verification, so the evidence decides; never probed is unverified, not confirmed.
    assert r["verification"] == {
        "removals": 4,
        "confirmed": 2,
        "unverified": 2,
        "contradicted": 0,
        "share_confirmed": 0.5,
        "share_unverified": 0.5,
        "share_contradicted": 0.0,
        "by_claim": {
            "removed_globally": {"confirmed": 1, "unverified": 1, "contradicted": 0},
            "restricted": {"confirmed": 1, "unverified": 0, "contradicted": 0},
            "already_removed": {"confirmed": 0, "unverified": 0, "contradicted": 0},
            "not_found": {"confirmed": 0, "unverified": 1, "contradicted": 0},
        },
    }
    assert r["disagreements"] == {
        "total": 1,
        "items": 1,
        "by_claim_observation": {"restricted->available": 1},
    }
    assert r["appeals"] == {
        "total": 2,
        "by_appellant_type": {"authority": 1, "content_owner": 1},
        "by_outcome": {"pending": 1, "upheld": 1},
        "by_appellant_type_and_outcome": {"authority/pending": 1, "content_owner/upheld": 1},
        "items_reinstated": 0,
    }
    assert r["over_time"]["unit"] == "day" and len(r["over_time"]["periods"]) == 31
    assert r["over_time"]["requests_by_platform"] == {
        "facebook": {"2026-03-01": 1, "2026-03-20": 1},
        "youtube": {"2026-03-10": 1},
    }
    assert r["crosstabs"]["requests_by_platform_and_outcome"] == {
        "facebook": {"open": 1, "partially_complied": 1},
        "youtube": {"open": 1},
    }


def test_quantile_is_linear_interpolation() -> None:
    assert quantile([], 0.5) is None
    assert quantile([5.0], 0.9) == 5.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([10.0, 0.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0], 0.9) == 90.0


def test_formats(logdir: Path) -> None:
    r = build_report([logdir], *PERIOD)
    assert orjson.loads(render(r, "json")) == orjson.loads(orjson.dumps(r))
    csv_text = render(r, "csv")
    assert csv_text.splitlines()[0] == "section,metric,key,value"
    assert "durations,send_to_ack,median_seconds,18000.0" in csv_text
    assert "item_outcome_buckets,removed-legal,,1" in csv_text
    assert "requests_by,platform,facebook,2" in csv_text
    assert "verification,by_claim,removed_globally/unverified,1" in csv_text
    md = render(r, "md")
    assert "| removed-policy | 2 |" in md and ORG not in md  # authority code, not the name
    assert "| our send time to acknowledgement (not the SLA clock) | 3 | 5.00 h | 5.80 h |" in md
    assert "| platform's receipt to acknowledgement (SLA clock) | 3 | 4.00 h | 5.60 h |" in md
    assert "| removed\\_globally | 1 | 1 | 0 |" in md


def test_merging_segments_twice_gives_the_same_verify_and_report(
    logdir: Path, tmp_path: Path
) -> None:
    once_verify = verify_paths([logdir])
    once_report = build_report([logdir], *PERIOD)
    twice = tmp_path / "twice"
    shutil.copytree(logdir, twice)
    for seg in list(twice.glob("*.jsonl")):  # the same entries re-written by another process
        lines = []
        for line in seg.read_bytes().splitlines():
            e = orjson.loads(line)
            e["writer"] = {**e["writer"], "pid": 99999, "attempt": 2}
            lines.append(render_line(e))
        seg.with_name("segment-retry-" + seg.name).write_bytes(b"".join(lines))
    twice_verify = verify_paths([twice])
    twice_report = build_report([twice], *PERIOD)
    assert once_verify.ok and twice_verify.ok
    assert twice_verify.duplicates_dropped == once_verify.entries
    assert (twice_verify.entries, twice_verify.chains) == (once_verify.entries, once_verify.chains)
    assert twice_verify.heads == once_verify.heads
    for r in (once_report, twice_report):
        r.pop("source")
    assert twice_report == once_report
