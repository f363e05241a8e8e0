"""The simulated platforms' state and rules, independent of HTTP (thread-safe via one lock).

Every public method takes the lock, brings pending tickets up to the simulator clock, and
returns plain data. The HTTP layer (server.py) only parses, verifies signatures and renders.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field, ValidationError

from docket.platform_protocol import (
    AcknowledgeAction,
    ConformanceAction,
    DecideAction,
    Effect,
    Notice,
    NoticeReceipt,
    OrderPayload,
    PlatformItemEffect,
    PlatformStatus,
    ReinstateAction,
    RequestInfoAction,
    TicketResponse,
    TicketState,
    check_wire,
)
from platform_sim.scenarios import (
    DEFAULT_DECLINE_REASON,
    DEFAULT_ITEM_QUESTION,
    ItemScenario,
    PageTexts,
    PlatformScenario,
    SimClock,
    item_scenario,
    pages_for,
    parse_slug,
    request_scenario,
)

ContentState = Literal["available", "removed", "restricted"]


class SimError(Exception):
    """An API error: HTTP status plus the message for ``{"error": ...}``."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class ItemRecord(BaseModel):
    item_id: str
    slug: str
    scenario: ItemScenario
    effect: Effect | None = None
    restricted_in: list[str] = Field(default_factory=list)
    reason: str | None = None
    question: str | None = None
    effect_at: float | None = None
    reinstated_at: float | None = None


class TicketRecord(BaseModel):
    ticket: str
    platform: str
    key: str
    body_sha256: str
    request_id: str
    territorial_scope: list[str]
    scenario: PlatformScenario
    received_at: float
    status: TicketState = "received"
    ack_at: float | None = None
    acknowledged_at: float | None = None
    info_request: str | None = None
    decide_at: float | None = None
    decided_at: float | None = None
    withdrawn_at: float | None = None
    items: list[ItemRecord]
    notices: dict[str, tuple[str, NoticeReceipt]] = Field(default_factory=dict)


class ContentRecord(BaseModel):
    state: ContentState = "available"
    view: str = "marker"
    restricted_in: list[str] = Field(default_factory=list)
    changed_at: float | None = None
    probes: int = 0
    probes_while_removed: int = 0
    resurface_after_probes: int | None = None
    resurface_after_seconds: float | None = None
    resurfaced_at: float | None = None
    ticket: str | None = None


class PlatformCounters(BaseModel):
    deliveries: dict[str, int] = Field(default_factory=dict)
    duplicate_deliveries: dict[str, int] = Field(default_factory=dict)
    delivery_attempts: dict[str, int] = Field(default_factory=dict)
    conflicts: int = 0
    notices: dict[str, int] = Field(default_factory=dict)
    duplicate_notices: int = 0
    polls: int = 0
    probes: dict[str, int] = Field(default_factory=dict)
    signature_rejections: int = 0
    replays_rejected: int = 0
    replays_tolerated: int = 0
    injected_503: int = 0


class SimSnapshot(BaseModel):
    sim_now: float
    tickets: dict[str, TicketRecord]
    keys: dict[str, str]
    content: dict[str, ContentRecord]
    counters: dict[str, PlatformCounters]
    api_calls: dict[str, int]


@dataclass
class ContentAnswer:
    """What a content URL answers (rendered by the HTTP layer)."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def iso(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def canonical_sha256(data: Any) -> str:
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def slug_of(url: str, platform: str) -> str:
    """The slug of a content URL ``.../<platform>/content/<slug>``, else the URL's last part."""
    path = url.split("?", 1)[0].split("#", 1)[0].rstrip("/")
    marker = f"/{platform}/content/"
    if marker in path:
        return path.split(marker, 1)[1]
    return path.rsplit("/", 1)[-1]


class Engine:
    """All simulated platforms behind one lock."""

    def __init__(
        self,
        scenarios: dict[str, PlatformScenario] | None = None,
        clock: SimClock | None = None,
        state_file: Path | None = None,
        replay_window: int = 300,
    ) -> None:
        self.clock = clock or SimClock()
        self.scenarios: dict[str, PlatformScenario] = dict(scenarios or {})
        self.state_file = state_file
        self.replay_window = replay_window
        self._lock = threading.RLock()
        self._tickets: dict[str, TicketRecord] = {}
        self._keys: dict[str, str] = {}  # "<platform>\0<key>" -> ticket
        self._content: dict[str, ContentRecord] = {}  # "<platform>/<slug>"
        self._counters: dict[str, PlatformCounters] = {}
        self._api_calls: dict[str, int] = {}  # "<platform>\0<key>" -> calls (for fail_first)
        self._pending: set[str] = set()
        self._replay: dict[str, tuple[float, str | None]] = {}
        self._test_content = 0
        if state_file is not None and state_file.exists():
            self._load(state_file)

    # -- configuration -------------------------------------------------------------------

    def scenario(self, platform: str) -> PlatformScenario:
        with self._lock:
            return self.scenarios.get(platform) or PlatformScenario()

    def configure(self, platform: str, scenario: PlatformScenario) -> None:
        with self._lock:
            self.scenarios[platform] = scenario

    def pages(self, platform: str) -> PageTexts:
        return self.scenario(platform).pages or pages_for(platform)

    def counters(self, platform: str) -> PlatformCounters:
        return self._counters.setdefault(platform, PlatformCounters())

    # -- signatures: replay cache --------------------------------------------------------

    def note_signature_rejected(self, platform: str) -> None:
        with self._lock:
            self.counters(platform).signature_rejections += 1

    def check_replay(self, platform: str, method: str, signature: str, key: str | None) -> None:
        """Refuse a signature seen before within the window, except an idempotent POST repeat.

        GET is exempt (a safe read; two polls in the same second legitimately share a
        signature because v1 signs only timestamp and body).
        """
        if method == "GET":
            return
        now = time.time()
        with self._lock:
            if len(self._replay) > 10_000:
                self._replay = {s: v for s, v in self._replay.items() if v[0] > now}
            cache_key = f"{platform}\0{signature}"
            seen = self._replay.get(cache_key)
            if seen is not None and seen[0] > now:
                if key is not None and seen[1] == key:
                    self.counters(platform).replays_tolerated += 1
                    return
                self.counters(platform).replays_rejected += 1
                raise SimError(401, "replayed signature")
            self._replay[cache_key] = (now + 2 * self.replay_window, key)

    # -- time ----------------------------------------------------------------------------

    def _advance(self, now: float) -> None:
        for ticket_id in list(self._pending):
            self._advance_ticket(self._tickets[ticket_id], now)

    def _advance_ticket(self, t: TicketRecord, now: float) -> None:
        if not t.scenario.automatic:  # test mode: only the conformance hooks act
            self._pending.discard(t.ticket)
            return
        if t.status == "withdrawn":
            self._pending.discard(t.ticket)
            return
        if t.status == "received" and t.ack_at is not None and now >= t.ack_at:
            t.acknowledged_at = t.ack_at
            if t.scenario.info_request:
                t.status = "info_requested"
                t.info_request = t.scenario.info_request
            else:
                t.status = "acknowledged"
                t.decide_at = t.ack_at + t.scenario.decide_delay
        if t.status == "acknowledged" and t.decide_at is not None and now >= t.decide_at:
            self._decide(t, t.decide_at)
        if t.status in ("decided", "withdrawn"):
            self._pending.discard(t.ticket)

    def _decide(self, t: TicketRecord, at: float) -> None:
        t.status = "decided"
        t.decided_at = at
        for item in t.items:
            sc = item.scenario
            item.effect_at = at
            item.reason = sc.reason
            if sc.decision == "remove":
                item.effect = "removed_globally"
                if not sc.liar:
                    self._remove_content(t, item, at)
            elif sc.decision == "restrict":
                scope = t.territorial_scope if t.territorial_scope != ["global"] else ["VN"]
                item.effect = "restricted"
                item.restricted_in = list(sc.restricted_in or scope)
                if not sc.liar:
                    self._remove_content(t, item, at)
            elif sc.decision == "decline":
                item.effect = "declined"
                item.reason = sc.reason or DEFAULT_DECLINE_REASON
            elif sc.decision == "notfound":
                item.effect = "not_found"
            elif sc.decision == "already":
                item.effect = "already_removed"
            else:
                item.effect = "needs_more_info"
                item.reason = None
                item.question = sc.reason or DEFAULT_ITEM_QUESTION

    def _content_record(self, platform: str, slug: str) -> ContentRecord:
        return self._content.setdefault(f"{platform}/{slug}", ContentRecord())

    def _remove_content(self, t: TicketRecord, item: ItemRecord, at: float) -> None:
        sc = item.scenario
        rec = self._content_record(t.platform, item.slug)
        rec.state = "restricted" if item.effect == "restricted" else "removed"
        rec.view = "geo" if item.effect == "restricted" else sc.view
        rec.restricted_in = list(item.restricted_in)
        rec.changed_at = at
        rec.probes_while_removed = 0
        rec.resurface_after_probes = sc.resurface_after_probes
        rec.resurface_after_seconds = sc.resurface_after_seconds
        rec.resurfaced_at = None
        rec.ticket = t.ticket

    # -- API: orders ---------------------------------------------------------------------

    def _flaky(self, platform: str, key: str, scenario: PlatformScenario) -> None:
        calls_key = f"{platform}\0{key}"
        calls = self._api_calls.get(calls_key, 0) + 1
        self._api_calls[calls_key] = calls
        if calls <= scenario.fail_first:
            self.counters(platform).injected_503 += 1
            raise SimError(503, f"temporarily unavailable (injected, call {calls})", 1)

    def submit(self, platform: str, key: str, raw: Any) -> tuple[int, TicketResponse]:
        """POST /v1/requests: 201 new ticket, 200 idempotent repeat, or SimError."""
        try:
            order = check_wire(OrderPayload, raw)
        except ValidationError as exc:
            raise SimError(422, f"invalid order: {_errors(exc)}") from exc
        if key != order.request_id:
            raise SimError(422, "Idempotency-Key must equal the order's request_id")
        body_hash = canonical_sha256(order.model_dump(mode="json"))
        with self._lock:
            now = self.clock.now()
            self._advance(now)
            counters = self.counters(platform)
            counters.delivery_attempts[key] = counters.delivery_attempts.get(key, 0) + 1
            slugs = [slug_of(item.url, platform) for item in order.items]
            scenario = request_scenario(self.scenario(platform), slugs)
            self._flaky(platform, key, scenario)
            existing = self._keys.get(f"{platform}\0{key}")
            if existing is not None:
                t = self._tickets[existing]
                if t.body_sha256 != body_hash:
                    counters.conflicts += 1
                    raise SimError(409, "Idempotency-Key already used with a different order body")
                counters.duplicate_deliveries[key] = counters.duplicate_deliveries.get(key, 0) + 1
                return 200, TicketResponse(ticket=t.ticket, received_at=dt(t.received_at))
            ticket_id = f"{platform[:2].upper()}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
            base = self.scenario(platform)
            items = [
                ItemRecord(item_id=it.item_id, slug=s, scenario=item_scenario(base, s, i))
                for i, (it, s) in enumerate(zip(order.items, slugs, strict=True))
            ]
            ack_at = None
            if scenario.acknowledge and not scenario.ack_after_second_notice:
                ack_at = now + scenario.ack_delay
            t = TicketRecord(
                ticket=ticket_id,
                platform=platform,
                key=key,
                body_sha256=body_hash,
                request_id=order.request_id,
                territorial_scope=list(order.territorial_scope),
                scenario=scenario,
                received_at=now,
                ack_at=ack_at,
                items=items,
            )
            self._tickets[ticket_id] = t
            self._keys[f"{platform}\0{key}"] = ticket_id
            self._pending.add(ticket_id)
            counters.deliveries[key] = counters.deliveries.get(key, 0) + 1
            self._advance_ticket(t, now)
            self._save()
            return 201, TicketResponse(ticket=ticket_id, received_at=dt(now))

    def _ticket(self, platform: str, ticket: str) -> TicketRecord:
        t = self._tickets.get(ticket)
        if t is None or t.platform != platform:
            raise SimError(404, f"unknown ticket {ticket!r}")
        return t

    def status(self, platform: str, ticket: str) -> PlatformStatus:
        """GET /v1/requests/{ticket}."""
        with self._lock:
            now = self.clock.now()
            self._advance(now)
            t = self._ticket(platform, ticket)
            self._flaky(platform, t.key, t.scenario)
            self.counters(platform).polls += 1
            return self._status(t)

    def _status(self, t: TicketRecord) -> PlatformStatus:
        return PlatformStatus(
            ticket=t.ticket,
            status=t.status,
            acknowledged_at=iso(t.acknowledged_at),
            info_request=t.info_request,
            items=[
                PlatformItemEffect(
                    item_id=i.item_id,
                    effect=i.effect,
                    restricted_in=i.restricted_in,
                    reason=i.reason,
                    question=i.question,
                    effect_at=iso(i.effect_at),
                    platform_ref=f"{t.ticket}/{i.item_id}" if i.effect else None,
                    uploader_notified=i.effect in ("removed_globally", "restricted"),
                    reinstated_at=iso(i.reinstated_at),
                )
                for i in t.items
            ],
        )

    def notice(
        self, platform: str, ticket: str, key: str | None, raw: Any
    ) -> tuple[int, NoticeReceipt]:
        """POST /v1/requests/{ticket}/notices: 202 accepted, 200 idempotent repeat."""
        try:
            notice = check_wire(Notice, raw)
        except ValidationError as exc:
            raise SimError(422, f"invalid notice: {_errors(exc)}") from exc
        if key is not None and notice.notice_id is not None and key != notice.notice_id:
            raise SimError(422, "Idempotency-Key must equal the notice's notice_id")
        notice_id = key or notice.notice_id
        body_hash = canonical_sha256(notice.model_dump(mode="json"))
        with self._lock:
            now = self.clock.now()
            self._advance(now)
            t = self._ticket(platform, ticket)
            self._flaky(platform, t.key, t.scenario)
            counters = self.counters(platform)
            if notice.request_id != t.request_id:
                raise SimError(422, "notice request_id does not match the ticket")
            known = {i.item_id for i in t.items}
            unknown = sorted(set(notice.items) - known)
            if unknown:
                raise SimError(422, f"unknown item ids: {', '.join(unknown)}")
            if notice_id is not None and notice_id in t.notices:
                seen_hash, receipt = t.notices[notice_id]
                if seen_hash != body_hash:
                    counters.conflicts += 1
                    raise SimError(409, "Idempotency-Key already used with a different notice")
                counters.duplicate_notices += 1
                return 200, receipt
            self._apply_notice(t, notice, now)
            if notice_id is None:
                notice_id = f"{t.ticket}-n{len(t.notices) + 1}"
            receipt = NoticeReceipt(
                ticket=t.ticket,
                notice_id=notice_id,
                kind=notice.kind,
                received_at=dt(now),
            )
            t.notices[notice_id] = (body_hash, receipt)
            counters.notices[notice.kind] = counters.notices.get(notice.kind, 0) + 1
            self._save()
            return 202, receipt

    def _apply_notice(self, t: TicketRecord, notice: Notice, now: float) -> None:
        targets = [i for i in t.items if not notice.items or i.item_id in notice.items]
        if notice.kind == "info_provided":
            if t.status != "info_requested":
                raise SimError(422, f"no information was requested (status: {t.status})")
            t.status = "acknowledged"
            t.info_request = None
            t.decide_at = now + t.scenario.decide_delay
            self._pending.add(t.ticket)
        elif notice.kind == "second_notice":
            if t.status == "received" and t.ack_at is None and t.scenario.ack_after_second_notice:
                t.ack_at = now + t.scenario.ack_delay
                self._pending.add(t.ticket)
        elif notice.kind == "withdrawal":
            if t.status != "withdrawn":
                t.status = "withdrawn"
                t.withdrawn_at = now
                self._pending.discard(t.ticket)
        elif notice.kind == "renotify":
            if t.scenario.comply_on_renotify:
                for item in targets:
                    if item.effect in ("removed_globally", "restricted"):
                        rec = self._content_record(t.platform, item.slug)
                        if rec.state == "available":
                            item.scenario = item.scenario.model_copy(
                                update={
                                    "liar": False,
                                    "resurface_after_probes": None,
                                    "resurface_after_seconds": None,
                                }
                            )
                            self._remove_content(t, item, now)
        elif notice.kind == "reinstatement":
            for item in targets:
                if item.effect in ("removed_globally", "restricted"):
                    item.reinstated_at = now
                    rec = self._content_record(t.platform, item.slug)
                    rec.state = "available"
                    rec.changed_at = now
                    rec.ticket = t.ticket

    # -- conformance hooks (test mode) --------------------------------------------------

    def act(self, platform: str, ticket: str, action: ConformanceAction) -> PlatformStatus:
        """POST /v1/conformance/requests/{ticket}/actions: act now, as the platform's staff.

        The ticket stops following its scenario's timers: from here on only actions and
        notices change it."""
        with self._lock:
            now = self.clock.now()
            self._advance(now)
            t = self._ticket(platform, ticket)
            if t.status == "withdrawn":
                raise SimError(422, "the order was withdrawn: nothing more happens to it")
            t.scenario = t.scenario.model_copy(update={"automatic": False})
            self._pending.discard(t.ticket)
            step = action.root
            if isinstance(step, AcknowledgeAction):
                self._acknowledge(t, now)
            elif isinstance(step, RequestInfoAction):
                self._acknowledge(t, now)
                t.status = "info_requested"
                t.info_request = step.question
            elif isinstance(step, DecideAction):
                self._decide_one(t, step, now)
            elif isinstance(step, ReinstateAction):
                item = self._item(t, step.item_id)
                if item.effect not in ("removed_globally", "restricted", "already_removed"):
                    raise SimError(422, f"{item.item_id} was not removed or restricted")
                item.reinstated_at = now
                rec = self._content_record(t.platform, item.slug)
                rec.state = "available"
                rec.changed_at = now
            self._save()
            return self._status(t)

    def new_test_content(self, platform: str, name: str) -> str:
        """POST /v1/conformance/content: a fresh content slug (available, no scenario tokens)."""
        with self._lock:
            self._test_content += 1
            slug = f"kit-{name.replace('--', '-')}-{self._test_content}-{os.urandom(4).hex()}"
            self._content_record(platform, slug)
            self._save()
            return slug

    @staticmethod
    def _acknowledge(t: TicketRecord, now: float) -> None:
        if t.acknowledged_at is None:
            t.acknowledged_at = now
            t.ack_at = now
        if t.status == "received":
            t.status = "acknowledged"

    @staticmethod
    def _item(t: TicketRecord, item_id: str) -> ItemRecord:
        for item in t.items:
            if item.item_id == item_id:
                return item
        raise SimError(422, f"unknown item id {item_id!r}")

    def _decide_one(self, t: TicketRecord, step: DecideAction, now: float) -> None:
        item = self._item(t, step.item_id)
        effect = step.effect
        try:
            check_wire(
                PlatformItemEffect,
                {
                    "item_id": item.item_id,
                    "effect": effect,
                    "restricted_in": step.restricted_in,
                    "reason": step.reason,
                    "question": step.question,
                },
            )
        except ValidationError as exc:
            raise SimError(422, f"invalid decision: {_errors(exc)}") from exc
        self._acknowledge(t, now)
        item.effect = effect
        item.restricted_in = list(step.restricted_in)
        item.reason = step.reason
        item.question = step.question
        item.effect_at = now
        item.reinstated_at = None
        if effect in ("removed_globally", "restricted", "already_removed"):
            item.scenario = item.scenario.model_copy(
                update={
                    "view": "geo" if effect == "restricted" else step.view,
                    "liar": False,
                    "resurface_after_probes": None,
                    "resurface_after_seconds": None,
                    "probe_failures": 0,
                    "restricted_in": list(step.restricted_in) or None,
                }
            )
            self._remove_content(t, item, now)
        if all(i.effect is not None for i in t.items) and t.status != "info_requested":
            t.status = "decided"
            t.decided_at = now

    # -- content URLs --------------------------------------------------------------------

    def content(self, platform: str, slug: str, vantage: str, base_url: str) -> ContentAnswer:
        """GET /<platform>/content/<slug> as seen from ``vantage``."""
        pages = self.pages(platform)
        with self._lock:
            now = self.clock.now()
            self._advance(now)
            sc = item_scenario(self.scenario(platform), slug)
            counters = self.counters(platform)
            counters.probes[slug] = counters.probes.get(slug, 0) + 1
            rec = self._content_record(platform, slug)
            rec.probes += 1
            delay = self.clock.real_seconds(sc.probe_delay)
            if rec.probes <= sc.probe_failures:
                self._save()
                return ContentAnswer(503, "<h1>Service unavailable</h1>", delay=delay)
            if rec.state != "available" and rec.ticket is not None:
                rec.probes_while_removed += 1
                by_probes = (
                    rec.resurface_after_probes is not None
                    and rec.probes_while_removed > rec.resurface_after_probes
                )
                by_time = (
                    rec.resurface_after_seconds is not None
                    and rec.changed_at is not None
                    and now >= rec.changed_at + rec.resurface_after_seconds
                )
                if by_probes or by_time:
                    rec.state = "available"
                    rec.resurfaced_at = now
            self._save()
            if sc.decision == "notfound" and rec.ticket is None:
                return ContentAnswer(404, _page("Page not found", "Page not found."), delay=delay)
            state, view = rec.state, rec.view
            restricted_in = rec.restricted_in
            blocked_by = f"{base_url}/{platform}/legal/{rec.ticket or 'order'}"
            if sc.decision == "already" and rec.ticket is None:
                state, view = "removed", sc.view
        if state == "restricted" and vantage not in restricted_in:
            state = "available"
        if state == "available":
            text = f"Post {slug} on {platform}. Original content, still online."
            return ContentAnswer(200, _page(slug, text), delay=delay)
        if state == "restricted" or view == "geo":
            if state == "removed" and view == "geo" and vantage not in (restricted_in or ["VN"]):
                text = f"Post {slug} on {platform}. Original content, still online."
                return ContentAnswer(200, _page(slug, text), delay=delay)
            return ContentAnswer(200, _page(slug, pages.geo_restricted), delay=delay)
        return _removed_answer(view, platform, slug, pages, blocked_by, delay)

    # -- stats, reset, persistence -------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        with self._lock:
            self._advance(self.clock.now())
            platforms = {p: c.model_dump() for p, c in self._counters.items()}
            for p, c in platforms.items():
                c["tickets"] = sum(1 for t in self._tickets.values() if t.platform == p)
                c["total_deliveries"] = sum(c["deliveries"].values())
                c["total_duplicate_deliveries"] = sum(c["duplicate_deliveries"].values())
            return {
                "sim_now": iso(self.clock.now()),
                "speed": self.clock.speed,
                "platforms": platforms,
                "tickets": {
                    t.ticket: {"platform": t.platform, "key": t.key, "status": t.status}
                    for t in self._tickets.values()
                },
            }

    def reset(self) -> None:
        with self._lock:
            self._tickets.clear()
            self._keys.clear()
            self._content.clear()
            self._counters.clear()
            self._api_calls.clear()
            self._pending.clear()
            self._replay.clear()
            self._save()

    def advance(self, seconds: float) -> float:
        with self._lock:
            now = self.clock.advance(seconds)
            self._advance(now)
            self._save()
            return now

    def _save(self) -> None:
        if self.state_file is None:
            return
        snap = SimSnapshot(
            sim_now=self.clock.now(),
            tickets=self._tickets,
            keys=self._keys,
            content=self._content,
            counters=self._counters,
            api_calls=self._api_calls,
        )
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(snap.model_dump_json().encode())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.state_file)

    def _load(self, path: Path) -> None:
        snap = SimSnapshot.model_validate_json(path.read_bytes())
        self._tickets = dict(snap.tickets)
        self._keys = dict(snap.keys)
        self._content = dict(snap.content)
        self._counters = dict(snap.counters)
        self._api_calls = dict(snap.api_calls)
        self._pending = {
            t.ticket for t in self._tickets.values() if t.status not in ("decided", "withdrawn")
        }
        behind = snap.sim_now - self.clock.now()
        if behind > 0:
            self.clock.advance(behind)


def _errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _page(title: str, text: str) -> str:
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>{title}</title></head><body><main><p>{text}</p></main></body></html>"
    )


def _removed_answer(
    view: str, platform: str, slug: str, pages: PageTexts, blocked_by: str, delay: float
) -> ContentAnswer:
    if view == "404":
        return ContentAnswer(404, _page("Page not found", "Page not found."), delay=delay)
    if view == "410":
        return ContentAnswer(410, _page("Gone", "Gone."), delay=delay)
    if view == "451":
        return ContentAnswer(
            451,
            _page("Unavailable For Legal Reasons", "Blocked following a legal order."),
            {"Link": f'<{blocked_by}>; rel="blocked-by"'},
            delay=delay,
        )
    if view == "login":
        return ContentAnswer(
            302, "", {"Location": f"/{platform}/login?next=/{platform}/content/{slug}"}, delay
        )
    return ContentAnswer(200, _page(slug, pages.removed), delay=delay)


def login_page(pages: PageTexts) -> str:
    return _page("Log in", pages.login_wall)


__all__ = ["ContentAnswer", "Engine", "SimError", "login_page", "parse_slug", "slug_of"]
