"""The transparency report, computed from the audit log alone (see docs/auditing.md).

Requests are selected by the ``@timestamp`` of their first entry (the ``submit``); everything
that happened to them afterwards (effects, verification, appeals) is counted, whenever it
happened. Entries are deduplicated by event.id (run ``verify`` first: the report trusts the log).

Removals are counted apart by what our own probes concluded (``docket.data.verification``):
confirmed, unverified (inconclusive or probe errors) and contradicted (we saw the content where
the platform claims it gone); an unverified removal is never counted as a confirmed one. SLA
figures count from the platform's receipt of the request (``received_at``), as the rules do.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from audit.chain import chain_of_event_id
from audit.chunks import CHUNK_BYTES, Chunk, gc_paused, map_chunks, plan_chunks, read_lines
from audit.progress import Progress
from audit.reader import UnreadableInput, discover
from docket.text import csv_cell, markdown_cell, markdown_text

__all__ = [
    "DIMENSIONS",
    "FORMATS",
    "GOOGLE_BUCKETS",
    "REMOVAL_CLAIMS",
    "VERIFICATION_STATUSES",
    "build_report",
    "parse_period_bound",
    "quantile",
    "render",
]

GOOGLE_BUCKETS = (
    "removed-legal",
    "removed-policy",
    "not found",
    "already removed",
    "not enough information",
    "no action",
)
ACTIONED = frozenset({"removed_globally", "restricted"})
# Platform claims that say the content is gone (everywhere, or where it was restricted): the
# removals whose verification the report counts. Equal to docket.case.GONE_CLAIMS (a test
# keeps them equal; importing docket.case would cost the report a third of a second).
REMOVAL_CLAIMS = ("removed_globally", "restricted", "already_removed", "not_found")
# An observation confirming the platform's claim that the item is gone / restricted (for logs
# whose entries carry no data.verification).
CONFIRMS: Mapping[str, frozenset[str]] = {
    "removed_globally": frozenset({"removed", "not_found", "legally_blocked"}),
    "restricted": frozenset({"geo_restricted", "legally_blocked", "removed", "not_found"}),
}
VERIFICATION_STATUSES = ("confirmed", "unverified", "contradicted")
# data.verification spellings, old (confirmed | disagrees | inconclusive | not_applicable) and
# new (confirmed | unverified | contradicted | not_applicable), to the report's three statuses.
_STATUS = {
    "confirmed": "confirmed",
    "disagrees": "contradicted",
    "contradicted": "contradicted",
    "inconclusive": "unverified",
    "unverified": "unverified",
    "not_applicable": "not_applicable",
}
_FOLDED = frozenset(
    {
        "submit",
        "delivered",
        "acknowledge",
        "report_effect",
        "verified",
        "recheck",
        "file_appeal",
        "decide_appeal",
    }
)
DURATIONS = (
    "receipt_to_ack",
    "receipt_to_effect",
    "send_to_ack",
    "effect_to_verified",
    "appeal_filed_to_decided",
)
DURATION_LABELS = {
    "receipt_to_ack": "platform's receipt to acknowledgement (SLA clock)",
    "receipt_to_effect": "platform's receipt to removal/restriction (SLA clock)",
    "send_to_ack": "our send time to acknowledgement (not the SLA clock)",
    "effect_to_verified": "removal to our confirming probe",
    "appeal_filed_to_decided": "appeal filed to decided",
}
# Hours from receipt to the effect: the histogram's bins (upper bounds; the last is open).
EFFECT_HOURS_BINS = (1, 6, 24, 48, 72, 168)


def parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts


def parse_period_bound(text: str, *, end: bool) -> datetime:
    """YYYY-MM-DD (a whole UTC day; --to includes that day) or an ISO 8601 datetime."""
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            ts = datetime(d.year, d.month, d.day, tzinfo=UTC)
            return ts + timedelta(days=1) if end else ts
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"invalid date {text!r}: use YYYY-MM-DD or an ISO 8601 datetime") from None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def quantile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default, 'inclusive')."""
    if not values:
        return None
    xs = sorted(values)
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def google_bucket(outcome: str | None, basis: str | None, closed: bool) -> str:
    if outcome == "removed_globally":
        return "removed-legal" if basis == "legal" else "removed-policy"
    if outcome == "restricted":
        return "removed-policy" if basis == "policy" else "removed-legal"
    if outcome == "not_found":
        return "not found"
    if outcome == "already_removed":
        return "already removed"
    if outcome == "needs_more_info":
        return "not enough information"
    if outcome is None and not closed:
        return "pending"
    return "no action"  # declined, still_available, no_response, reinstated, unknown


@dataclass(slots=True)
class _Item:
    platform: str | None = None
    category: str | None = None
    effect: str | None = None  # latest platform claim
    basis: str | None = None
    decided_at: datetime | None = None  # first decision (any effect but needs_more_info)
    actioned_at: datetime | None = None  # first removal/restriction
    verified_at: datetime | None = None  # first observation confirming the claim
    disagreed: bool = False
    verification: str | None = None  # latest data.verification status, normalised


def _label_basis(b: Any) -> str:
    if isinstance(b, Mapping):
        inst = str(b.get("instrument") or "unknown")
        art = b.get("article")
        return f"{inst} art. {art}" if art not in (None, "") else inst
    return str(b)


# -- scanning (in worker processes when the log is large) -------------------------------------

# What the fold reads, per container (everything else is dropped in the worker: memory, pickling).
_REQUEST_KEYS = (
    "authority",
    "authority_name",
    "legal_bases",
    "platform",
    "categories",
    "territorial_scope",
)
_ITEM_KEYS = ("item_id", "platform", "category", "effect", "effect_at", "basis")
_EVIDENCE_KEYS = ("item_id", "observation")
_APPEAL_KEYS = ("appeal_id", "appellant_type", "filed_at", "outcome", "decided_at")
_DATA_KEYS = (
    "verification",
    "sent_at",
    "received_at",
    "due_at",
    "acknowledged_at",
    "disagreements",
    "outcome",
    "item_outcomes",
)
_DISAGREEMENT_KEYS = ("item_id", "claim", "observation", "observations")

# One kept entry: (@timestamp, event.action, docket.to_state, organization.name, slim docket or
# None when the fold does not read it).
_Rec = tuple[Any, Any, Any, Any, dict[str, Any] | None]
# Per chain: {sequence: record} (first copy wins) and the greatest string @timestamp among them.
_ChainPart = tuple[dict[int, _Rec], str]


@dataclass(slots=True)
class _ChunkFold:
    """One chunk's entries, grouped by chain, deduplicated within the chunk, slimmed."""

    file_idx: int
    parsed: bool  # at least one line was a JSON object (the file counts in source.files)
    duplicates: int
    chains: dict[str, _ChainPart]


def _pick(obj: dict[str, Any], keys: tuple[str, ...], memo: dict[str, str]) -> dict[str, Any]:
    """obj reduced to keys; equal strings become one object (pickled once per chunk)."""
    return {k: memo.setdefault(v, v) if type(v := obj[k]) is str else v for k in keys if k in obj}


def _pick_list(value: Any, keys: tuple[str, ...], memo: dict[str, str]) -> Any:
    """A list's dict elements reduced to keys (the fold skips non-dicts); anything else as is."""
    if type(value) is not list:
        return value
    return [_pick(v, keys, memo) for v in value if type(v) is dict]


def _slim_docket(d: dict[str, Any], action: Any, memo: dict[str, str]) -> dict[str, Any]:
    """Exactly what the fold reads of an entry's docket (same values, same presence)."""
    out: dict[str, Any] = {}
    req = d.get("request")
    if type(req) is dict:
        small = _pick(req, _REQUEST_KEYS, memo)
        out["request"] = small if small or not req else req  # keep its truthiness
    if "items" in d:
        out["items"] = _pick_list(d["items"], _ITEM_KEYS, memo)
    if action in ("verified", "recheck") and "evidence" in d:
        out["evidence"] = _pick_list(d["evidence"], _EVIDENCE_KEYS, memo)
    if action in ("file_appeal", "decide_appeal") and type(d.get("appeal")) is dict:
        out["appeal"] = _pick(d["appeal"], _APPEAL_KEYS, memo)
    data = d.get("data")
    if type(data) is dict:
        small = _pick(data, _DATA_KEYS, memo)
        if "disagreements" in small:
            small["disagreements"] = _pick_list(small["disagreements"], _DISAGREEMENT_KEYS, memo)
        out["data"] = small
    return out


def _scan(chunk: Chunk) -> _ChunkFold:
    with gc_paused():
        return _scan_chunk(chunk)


def _scan_chunk(chunk: Chunk) -> _ChunkFold:
    lines = read_lines(chunk)
    lines.pop()  # b"" after the last newline, or a torn tail: never acknowledged
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    folded = _FOLDED
    slim = _slim_docket
    chains: dict[str, _ChainPart] = {}
    memo: dict[str, str] = {}
    intern = memo.setdefault
    parsed = False
    dup = 0
    for raw in lines:
        try:
            e = loads(raw)
        except decode_error:
            continue
        if type(e) is not dict:
            continue
        parsed = True
        ev = e.get("event")
        d = e.get("docket")
        if type(ev) is not dict:
            continue
        seq = ev.get("sequence")
        cid = d.get("chain_id") if type(d) is dict else None
        if cid is None and isinstance(ev.get("id"), str):
            cid = chain_of_event_id(ev["id"])
        if type(seq) is not int or not isinstance(cid, str):
            continue
        part = chains.get(cid)
        if part is None:
            part = chains[cid] = ({}, "")
        recs = part[0]
        if seq in recs:
            dup += 1
            continue
        ts = e.get("@timestamp")
        if isinstance(ts, str) and ts > part[1]:
            chains[cid] = part = (recs, ts)
        action = ev.get("action")
        if type(action) is str:
            action = intern(action, action)
        dd = d if type(d) is dict else {}
        to = dd.get("to_state")
        if type(to) is str:
            to = intern(to, to)
        org = e.get("organization")
        org = org.get("name") if type(org) is dict else None
        if type(org) is str:
            org = intern(org, org)
        recs[seq] = (
            ts,
            action,
            to,
            org,
            slim(dd, action, memo) if action in folded or to == "closed" or seq == 1 else None,
        )
    return _ChunkFold(chunk.file_idx, parsed, dup, chains)


def build_report(
    paths: Iterable[str | os.PathLike[str]],
    start: datetime,
    end: datetime,
    *,
    jobs: int | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The report for requests whose first entry's @timestamp is in [start, end).

    ``jobs``: worker processes that parse the log (default: all CPUs when the log is large,
    else 1); ``chunk_bytes``: how much of a segment one worker task reads. Neither changes the
    result. ``progress``: told the log's size, then each chunk's as it is read.
    Raises MissingInput for a path that does not exist and UnreadableInput when part of the log
    cannot be read (a report without it would be silently incomplete).
    """
    inputs = discover(paths)
    blocking = inputs.blocking()
    if blocking:
        raise UnreadableInput(blocking)
    chunks = plan_chunks(inputs.files, chunk_bytes)
    if progress is not None:
        progress.start(sum(c.size for c in chunks), "report")
    advance = progress.advance if progress is not None else None
    # Millions of small containers stay alive until the fold; nothing is cyclic, and the
    # cyclic collector would rescan them all again and again.
    try:
        with gc_paused():
            return _build_report(map_chunks(_scan, chunks, jobs=jobs, progress=advance), start, end)
    finally:
        if progress is not None:
            progress.finish()


def _build_report(scans: Iterable[_ChunkFold], start: datetime, end: datetime) -> dict[str, Any]:
    # Merge the chunks in file and line order: the first copy of an entry wins, as if the
    # segments were read one line after the other.
    chains: dict[str, dict[int, _Rec]] = {}
    files: set[int] = set()
    dup = 0
    horizon: str = ""
    for s in scans:
        if s.parsed:
            files.add(s.file_idx)
        dup += s.duplicates
        for cid, (part, part_horizon) in s.chains.items():
            recs = chains.get(cid)
            if recs is None:
                chains[cid] = part
                if part_horizon > horizon:
                    horizon = part_horizon
                continue
            for seq, rec in part.items():
                if seq in recs:
                    dup += 1
                    continue
                recs[seq] = rec
                ts = rec[0]
                if isinstance(ts, str) and ts > horizon:
                    horizon = ts
    n_entries = sum(map(len, chains.values()))
    horizon_ts = parse_ts(horizon)

    req_by: dict[str, Counter[str]] = defaultdict(Counter)
    item_by: dict[str, Counter[str]] = defaultdict(Counter)
    req_outcomes: Counter[str] = Counter()
    item_outcomes: Counter[str] = Counter()
    buckets: Counter[str] = Counter({b: 0 for b in (*GOOGLE_BUCKETS, "pending")})
    durations: dict[str, list[float]] = {k: [] for k in DURATIONS}
    sla = Counter[str]()
    removals: dict[str, Counter[str]] = {claim: Counter() for claim in REMOVAL_CLAIMS}
    disagreements: Counter[str] = Counter()
    disagreeing_items = 0
    appeals_by_type: Counter[str] = Counter()
    appeals_by_outcome: Counter[str] = Counter()
    appeals_by_both: Counter[str] = Counter()
    n_requests = n_items = 0
    unit = _time_unit(start, end)
    requests_over_time: dict[str, Counter[str]] = defaultdict(Counter)  # platform -> period
    items_over_time: dict[str, Counter[str]] = defaultdict(Counter)  # bucket -> period
    requests_platform_outcome: dict[str, Counter[str]] = defaultdict(Counter)
    items_platform_bucket: dict[str, Counter[str]] = defaultdict(Counter)
    effect_hours: Counter[str] = Counter({label: 0 for label in _hour_bins()})

    no_docket: dict[str, Any] = {}
    for recs in chains.values():
        seqs = sorted(recs)
        first = recs[seqs[0]]
        first_ts = parse_ts(first[0])
        if first_ts is None or not (start <= first_ts < end):
            continue
        n_requests += 1
        request: Mapping[str, Any] = {}
        items: dict[str, _Item] = {}
        sent_at = received_at = ack_at = due_at = None
        closed = False
        outcome: str | None = None
        final_items: Mapping[str, Any] = {}
        seen_dis: set[tuple[str, str, str]] = set()
        appeals: dict[str, dict[str, Any]] = {}
        for seq in seqs:
            raw_ts, action, to, org, slim = recs[seq]
            d: Any = no_docket if slim is None else slim
            ts = parse_ts(raw_ts)
            data = d.get("data") if isinstance(d.get("data"), dict) else {}
            if action == "submit" or (not request and isinstance(d.get("request"), dict)):
                if isinstance(d.get("request"), dict):
                    request = d["request"]
                    if not request.get("authority_name") and org:
                        request = {**request, "_org": org}
                for it in d.get("items") or []:
                    if isinstance(it, dict) and isinstance(it.get("item_id"), str):
                        items.setdefault(
                            it["item_id"],
                            _Item(platform=it.get("platform"), category=it.get("category")),
                        )
            elif action == "delivered":
                sent_at = parse_ts(data.get("sent_at")) or sent_at
                received_at = parse_ts(data.get("received_at")) or received_at
                due_at = parse_ts(data.get("due_at")) or due_at
            elif action == "acknowledge":
                if ack_at is None:
                    ack_at = parse_ts(data.get("acknowledged_at")) or ts
                due_at = parse_ts(data.get("due_at")) or due_at
            elif action == "report_effect":
                for it in d.get("items") or []:
                    if not isinstance(it, dict) or not isinstance(it.get("item_id"), str):
                        continue
                    item = items.setdefault(it["item_id"], _Item())
                    eff = it.get("effect")
                    at = parse_ts(it.get("effect_at")) or ts
                    item.effect = eff if isinstance(eff, str) else item.effect
                    if isinstance(it.get("basis"), str):
                        item.basis = it["basis"]
                    if eff != "needs_more_info" and item.decided_at is None:
                        item.decided_at = at
                    if eff in ACTIONED and item.actioned_at is None:
                        item.actioned_at = at
            elif action in ("verified", "recheck"):
                for ev_ in d.get("evidence") or []:
                    if not isinstance(ev_, dict):
                        continue
                    probed = items.get(str(ev_.get("item_id")))
                    if probed is None or probed.verified_at or probed.effect is None:
                        continue
                    if ev_.get("observation") in CONFIRMS.get(probed.effect, ()):
                        probed.verified_at = ts
                for dis in data.get("disagreements") or []:
                    if isinstance(dis, dict):
                        key = (
                            str(dis.get("item_id")),
                            str(dis.get("claim")),
                            _observed(dis),
                        )
                        if key not in seen_dis:
                            seen_dis.add(key)
                            disagreements[f"{key[1]}->{key[2]}"] += 1
                            if key[0] in items:
                                items[key[0]].disagreed = True
            elif action == "file_appeal" and isinstance(d.get("appeal"), dict):
                a = d["appeal"]
                appeals.setdefault(str(a.get("appeal_id")), {}).update(
                    type=a.get("appellant_type") or "unknown",
                    filed_at=parse_ts(a.get("filed_at")) or ts,
                )
            elif action == "decide_appeal" and isinstance(d.get("appeal"), dict):
                a = d["appeal"]
                appeals.setdefault(str(a.get("appeal_id")), {}).update(
                    outcome=a.get("outcome") or "unknown",
                    decided_at=parse_ts(a.get("decided_at")) or ts,
                )
            marks = data.get("verification")
            if isinstance(marks, dict):  # our probes' verdict per item, at this entry
                for item_id, status in marks.items():
                    if item_id in items:
                        items[item_id].verification = _STATUS.get(str(status), "unverified")
            if to == "closed":
                closed = True
                if isinstance(data.get("outcome"), str):
                    outcome = data["outcome"]
                if isinstance(data.get("item_outcomes"), dict):
                    final_items = data["item_outcomes"]

        # -- dimensions
        authority = str(request.get("authority") or request.get("_org") or first[3] or "unknown")
        bases = [_label_basis(b) for b in request.get("legal_bases") or []] or ["unknown"]
        platform = str(request.get("platform") or "unknown")
        cats = [str(c) for c in request.get("categories") or []] or ["unknown"]
        scope = [str(c) for c in request.get("territorial_scope") or []] or ["unknown"]
        req_by["authority"][authority] += 1
        req_by["platform"][platform] += 1
        for v in bases:
            req_by["legal_basis"][v] += 1
        for v in cats:
            req_by["category"][v] += 1
        for v in scope:
            req_by["country"][v] += 1
        req_outcome = outcome or ("closed_without_outcome" if closed else "open")
        req_outcomes[req_outcome] += 1
        period = _period_label(first_ts, unit)
        requests_over_time[platform][period] += 1
        requests_platform_outcome[platform][req_outcome] += 1
        n_items += len(items)
        for item_id, item in items.items():
            item_by["authority"][authority] += 1
            item_by["platform"][str(item.platform or platform)] += 1
            for v in bases:
                item_by["legal_basis"][v] += 1
            for v in [item.category] if item.category else cats:
                item_by["category"][str(v)] += 1
            for v in scope:
                item_by["country"][v] += 1
            final = final_items.get(item_id)
            final = final if isinstance(final, str) else item.effect
            item_outcomes[final or ("unknown" if closed else "pending")] += 1
            bucket = google_bucket(final, item.basis, closed)
            buckets[bucket] += 1
            items_over_time[bucket][period] += 1
            items_platform_bucket[str(item.platform or platform)][bucket] += 1
            if received_at and item.actioned_at:
                seconds = (item.actioned_at - received_at).total_seconds()
                durations["receipt_to_effect"].append(seconds)
                effect_hours[_hour_bin(seconds)] += 1
            if item.actioned_at and item.verified_at:
                durations["effect_to_verified"].append(
                    (item.verified_at - item.actioned_at).total_seconds()
                )
            if final in removals:
                removals[final][_removal_status(item)] += 1
            if item.disagreed:
                disagreeing_items += 1
        if sent_at and ack_at:
            durations["send_to_ack"].append((ack_at - sent_at).total_seconds())
        if received_at and ack_at:
            durations["receipt_to_ack"].append((ack_at - received_at).total_seconds())
        # -- SLA: only requests with a clock (a due_at was recorded)
        if due_at is None:
            sla["items_excluded_no_clock"] += len(items)
            sla["requests_excluded_no_clock"] += 1
        else:
            counted = within = 0
            for item in items.values():
                if item.decided_at is None and horizon_ts is not None and due_at > horizon_ts:
                    sla["items_pending"] += 1
                    continue
                counted += 1
                if item.decided_at is not None and item.decided_at <= due_at:
                    within += 1
            sla["items_counted"] += counted
            sla["items_within"] += within
            if counted:
                sla["requests_counted"] += 1
                sla["requests_within"] += within == counted
        for a in appeals.values():
            t = str(a.get("type", "unknown"))
            o = str(a.get("outcome", "pending"))
            appeals_by_type[t] += 1
            appeals_by_outcome[o] += 1
            appeals_by_both[f"{t}/{o}"] += 1
            if a.get("filed_at") and a.get("decided_at"):
                durations["appeal_filed_to_decided"].append(
                    (a["decided_at"] - a["filed_at"]).total_seconds()
                )

    def share(num: int, den: int) -> float | None:
        return round(num / den, 4) if den else None

    def stats(xs: list[float]) -> dict[str, Any]:
        med, p90 = quantile(xs, 0.5), quantile(xs, 0.9)
        return {
            "n": len(xs),
            "median_seconds": None if med is None else round(med, 3),
            "p90_seconds": None if p90 is None else round(p90, 3),
        }

    def sorted_counts(c: Mapping[str, int]) -> dict[str, int]:
        return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))

    return {
        "period": {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "selection": "requests whose first audit entry (submit) has @timestamp in [from, to)",
        },
        "source": {
            "files": len(files),
            "entries": n_entries,
            "duplicates_dropped": dup,
            "chains_in_log": len(chains),
            "log_horizon": horizon or None,
        },
        "totals": {"requests": n_requests, "items": n_items},
        "requests_by": {k: sorted_counts(req_by[k]) for k in DIMENSIONS},
        "items_by": {k: sorted_counts(item_by[k]) for k in DIMENSIONS},
        "request_outcomes": sorted_counts(req_outcomes),
        "item_outcomes": sorted_counts(item_outcomes),
        "item_outcome_buckets": dict(buckets),
        "durations": {k: {**stats(durations[k]), "label": DURATION_LABELS[k]} for k in DURATIONS},
        "histograms": {"receipt_to_effect_hours": dict(effect_hours)},
        "sla": {
            "clock": SLA_CLOCK,
            "items_counted": sla["items_counted"],
            "items_within": sla["items_within"],
            "items_share_within": share(sla["items_within"], sla["items_counted"]),
            "items_pending": sla["items_pending"],
            "items_excluded_no_clock": sla["items_excluded_no_clock"],
            "requests_counted": sla["requests_counted"],
            "requests_within": sla["requests_within"],
            "requests_share_within": share(sla["requests_within"], sla["requests_counted"]),
            "requests_excluded_no_clock": sla["requests_excluded_no_clock"],
        },
        "verification": _verification_section(removals, share),
        "disagreements": {
            "total": sum(disagreements.values()),
            "items": disagreeing_items,
            "by_claim_observation": sorted_counts(disagreements),
        },
        "appeals": {
            "total": sum(appeals_by_type.values()),
            "by_appellant_type": sorted_counts(appeals_by_type),
            "by_outcome": sorted_counts(appeals_by_outcome),
            "by_appellant_type_and_outcome": sorted_counts(appeals_by_both),
            "items_reinstated": item_outcomes.get("reinstated", 0),
        },
        "over_time": {
            "unit": unit,
            "periods": _periods(start, end, unit),
            "requests_by_platform": {
                k: dict(sorted(v.items())) for k, v in sorted(requests_over_time.items())
            },
            "items_by_bucket": {
                k: dict(sorted(v.items())) for k, v in sorted(items_over_time.items())
            },
        },
        "crosstabs": {
            "requests_by_platform_and_outcome": {
                k: sorted_counts(v) for k, v in sorted(requests_platform_outcome.items())
            },
            "items_by_platform_and_bucket": {
                k: sorted_counts(v) for k, v in sorted(items_platform_bucket.items())
            },
        },
    }


SLA_CLOCK = (
    "from the platform's receipt (received_at of the delivered entry): the deadline is receipt "
    "+ the policy's time, as the rules count it; an item is within if the platform decided on "
    "it by then"
)


def _observed(disagreement: Mapping[str, Any]) -> str:
    """What our probes saw, from a disagreement record (one observation, or one per vantage)."""
    single = disagreement.get("observation")
    if single is not None:
        return str(single)
    many = disagreement.get("observations")
    if isinstance(many, Mapping) and many:
        return ",".join(sorted({str(v) for v in many.values()}))
    return "unknown"


def _removal_status(item: _Item) -> str:
    """confirmed | unverified | contradicted for an item the platform says is gone: our probes'
    last verdict (data.verification), else, for logs without one, the evidence itself. Never
    confirmed without a confirming observation."""
    if item.verification in VERIFICATION_STATUSES:
        return item.verification
    if item.verification is None:
        if item.verified_at is not None:
            return "confirmed"
        if item.disagreed:
            return "contradicted"
    return "unverified"  # not_applicable, or nothing recorded: we never saw it gone


def _verification_section(removals: Mapping[str, Counter[str]], share: Any) -> dict[str, Any]:
    totals = Counter[str]()
    for counts in removals.values():
        totals.update(counts)
    n = sum(totals.values())
    return {
        "removals": n,
        **{status: totals[status] for status in VERIFICATION_STATUSES},
        **{f"share_{status}": share(totals[status], n) for status in VERIFICATION_STATUSES},
        "by_claim": {
            claim: {status: counts[status] for status in VERIFICATION_STATUSES}
            for claim, counts in removals.items()
        },
    }


def _time_unit(start: datetime, end: datetime) -> str:
    days = (end - start).total_seconds() / 86400
    return "day" if days <= 31 else "week" if days <= 7 * 26 else "month"


def _period_label(ts: datetime, unit: str) -> str:
    ts = ts.astimezone(UTC)
    if unit == "day":
        return ts.strftime("%Y-%m-%d")
    if unit == "week":
        year, week, _ = ts.isocalendar()
        return f"{year}-W{week:02d}"
    return ts.strftime("%Y-%m")


def _periods(start: datetime, end: datetime, unit: str) -> list[str]:
    """Every period label from start to end (so empty periods show as zero)."""
    labels: list[str] = []
    step = timedelta(days=1)
    at = start
    while at < end and len(labels) < 400:
        label = _period_label(at, unit)
        if not labels or labels[-1] != label:
            labels.append(label)
        at += step
    return labels


def _hour_bins() -> list[str]:
    labels = []
    low = 0
    for high in EFFECT_HOURS_BINS:
        labels.append(f"{low}-{high} h")
        low = high
    labels.append(f">{low} h")
    return labels


def _hour_bin(seconds: float) -> str:
    hours = seconds / 3600
    low = 0
    for high in EFFECT_HOURS_BINS:
        if hours < high:
            return f"{low}-{high} h"
        low = high
    return f">{low} h"


DIMENSIONS = ("authority", "legal_basis", "platform", "category", "country")


# -- rendering --------------------------------------------------------------------------------


def _rows(report: Mapping[str, Any]) -> list[tuple[str, str, str, Any]]:
    """(section, metric, key, value): one row per metric/dimension/value; deeper levels are
    joined into the key with "/" (e.g. ``facebook/complied``)."""
    rows: list[tuple[str, str, str, Any]] = []

    def flat(prefix: str, value: Any) -> Iterator[tuple[str, Any]]:
        if isinstance(value, Mapping):
            for k, v in value.items():
                yield from flat(f"{prefix}/{k}" if prefix else str(k), v)
        elif isinstance(value, list):
            yield prefix, ", ".join(str(v) for v in value)
        else:
            yield prefix, value

    for section, body in report.items():
        if not isinstance(body, Mapping):
            rows.append((section, "", "", body))
            continue
        for metric, value in body.items():
            for key, v in flat("", value):
                rows.append((section, metric, key, v))
    return rows


def render_csv(report: Mapping[str, Any]) -> str:
    """One row per value; every cell through docket.text.csv_cell (no formulas, no control
    characters), numbers as numbers."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["section", "metric", "key", "value"])
    for section, metric, key, value in _rows(report):
        w.writerow([csv_cell(section), csv_cell(metric), csv_cell(key), csv_cell(value)])
    return out.getvalue()


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.2f} h"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _table(head: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> list[str]:
    """A markdown table; every cell escaped (``|``, line breaks, markup, control characters)."""
    align = "|---|" + "---:|" * (len(head) - 1)
    out = ["| " + " | ".join(head) + " |", align]
    out += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in rows]
    return out


def render_md(report: Mapping[str, Any]) -> str:
    p, t, src = report["period"], report["totals"], report["source"]
    esc = markdown_text
    out = [
        "# Transparency report",
        "",
        f"Period: {esc(p['from'])} to {esc(p['to'])} ({esc(p['selection'])}).",
        f"Source: {src['files']} audit files, {src['entries']} entries "
        f"({src['duplicates_dropped']} identical duplicates dropped), log up to "
        f"{esc(src['log_horizon'])}. Run `python -m audit verify` to check the log's integrity.",
        "",
        f"**{t['requests']} requests, {t['items']} items.**",
        "",
    ]
    for dim in DIMENSIONS:
        keys = dict.fromkeys([*report["requests_by"][dim], *report["items_by"][dim]])
        out += [f"## By {dim.replace('_', ' ')}", ""]
        out += _table(
            ("value", "requests", "items"),
            (
                (k, report["requests_by"][dim].get(k, 0), report["items_by"][dim].get(k, 0))
                for k in keys
            ),
        )
        out.append("")
    out += ["## Item outcomes (transparency-report buckets)", ""]
    out += _table(("bucket", "items"), report["item_outcome_buckets"].items())
    out.append("")
    out += _table(("item outcome", "items"), report["item_outcomes"].items())
    out.append("")
    out += _table(("request outcome", "requests"), report["request_outcomes"].items())
    v = report["verification"]
    out += [
        "",
        "## Removals and our own verification",
        "",
        f"{v['removals']} items the platforms say are gone (removed globally, restricted, "
        "already removed, not found), by what our own probes concluded last. *Unverified* "
        "(inconclusive, or the probes failed) is never counted as confirmed; *contradicted* "
        "means we still saw the content.",
        "",
    ]
    out += _table(
        ("platform claim", "confirmed", "unverified", "contradicted"),
        (
            (claim, c["confirmed"], c["unverified"], c["contradicted"])
            for claim, c in v["by_claim"].items()
        ),
    )
    out.append(
        f"| **all** | **{v['confirmed']}** ({_pct(v['share_confirmed'])}) | "
        f"**{v['unverified']}** ({_pct(v['share_unverified'])}) | "
        f"**{v['contradicted']}** ({_pct(v['share_contradicted'])}) |"
    )
    out += ["", "## Times", "", f"The SLA clock runs {esc(SLA_CLOCK)}.", ""]
    out += _table(
        ("interval", "n", "median", "p90"),
        (
            (s["label"], s["n"], _hours(s["median_seconds"]), _hours(s["p90_seconds"]))
            for s in report["durations"].values()
        ),
    )
    out += ["", "Time from the platform's receipt to removal/restriction, items:", ""]
    out += _table(("hours", "items"), report["histograms"]["receipt_to_effect_hours"].items())
    s, dis, ap = report["sla"], report["disagreements"], report["appeals"]
    out += [
        "",
        "## SLA and disagreements",
        "",
        f"- Items decided within SLA (counted from the platform's receipt): {s['items_within']} "
        f"of {s['items_counted']} ({_pct(s['items_share_within'])}); {s['items_pending']} "
        f"pending, {s['items_excluded_no_clock']} excluded (no SLA clock).",
        f"- Requests within SLA: {s['requests_within']} of {s['requests_counted']} "
        f"({_pct(s['requests_share_within'])}).",
        f"- Platform claim vs our observation disagreements: {dis['total']} "
        f"on {dis['items']} items.",
    ]
    out += [f"  - {esc(k)}: {n}" for k, n in dis["by_claim_observation"].items()]
    out += [
        "",
        "## Appeals",
        "",
        f"{ap['total']} appeals; {ap['items_reinstated']} items reinstated after an appeal.",
        "",
    ]
    out += _table(
        ("appellant type / outcome", "appeals"), ap["by_appellant_type_and_outcome"].items()
    )
    return "\n".join(out) + "\n"


FORMATS = ("md", "csv", "json", "html")


def render(report: Mapping[str, Any], fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "csv":
        return render_csv(report)
    if fmt == "md":
        return render_md(report)
    if fmt == "html":
        from audit.html_report import render_html  # matplotlib: only for this format

        return render_html(report)
    raise ValueError(f"unknown format {fmt!r} ({', '.join(FORMATS)})")
