"""Plain helpers for the reliability and fuzz tests (fixtures live in the conftest files).

A headless dev server per test package, the platform simulator, the real worker
(`worker.build_worker`) with a `PlatformActivities` the test chooses, on a task queue of its
own so a test's leftover workflows never meet another test's worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from docket_harness import fast_reference, identities, roster, signer
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from activities.platform import PlatformActivities, PlatformEndpoint
from audit.writer import AuditWriter
from docket import client as docket
from docket import worker_setup as docket_worker
from docket.models import Actor, Order
from docket.reference import ReferenceData, default_reference
from docket.validation import validate_order
from platform_sim.server import PlatformSimulator

POLICY = "DEMO-VN-C38"
PLATFORM = "facebook"


def new_secret(label: str = "rel") -> str:
    return f"sk-{label}-{secrets.token_hex(12)}"


def actor(actor_id: str) -> Actor:
    return roster().actor(actor_id)


def endpoint(
    reference: ReferenceData, base_url: str, secret: str | bytes, platform: str = PLATFORM
) -> PlatformEndpoint:
    return PlatformEndpoint(
        base_url=base_url,
        secret=secret.encode() if isinstance(secret, str) else secret,
        markers=reference.platforms[platform].markers,
    )


def make_order(
    sim: PlatformSimulator,
    slugs: Sequence[str],
    *,
    reference: ReferenceData | None = None,
    officer: str = "nguyen.van.an",
    policy: str = POLICY,
    tag: str | None = None,
) -> Order:
    """A valid order to facebook whose items are simulator content URLs (slug tokens)."""
    tag = tag or uuid.uuid4().hex[:10]
    raw: dict[str, Any] = {
        "authority": "mst",
        "reference": f"REL-{tag}",
        "officer": officer,
        "platform": PLATFORM,
        "legal_bases": [{"basis": "vn-c38-2016", "provision": "Điều 5 khoản 1"}],
        "statement_of_reasons": "Nội dung mạo danh lãnh đạo nhà nước, vi phạm pháp luật (test).",
        "territorial_scope": ["VN"],
        "redress": "The platform and the uploader may appeal to the issuing authority.",
        "sla_policy": policy,
        "language": "vi",
        "issued_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "items": [
            {
                "item_id": f"i{n}",
                "url": sim.content_url(PLATFORM, f"{slug}-{tag}"),
                "content_type": "post",
                "category": "impersonation",
                "reason": f"Item {n} breaches the cited provision.",
            }
            for n, slug in enumerate(slugs, start=1)
        ],
    }
    return validate_order(raw, reference or default_reference())


async def submit(client: Client, order: Order, *, maker: str | None = None) -> str:
    sub = await docket.submit(
        client,
        order,
        signer=signer(maker or order.officer),
        reference=default_reference(),
    )
    return sub.request_id


@contextlib.asynccontextmanager
async def running_worker(
    client: Client,
    task_queue: str,
    endpoints: Mapping[str, PlatformEndpoint],
    audit_dir: Path,
    **activity_options: Any,
) -> AsyncIterator[PlatformActivities]:
    """The real worker (worker.build_worker) on `task_queue`, auditing to `audit_dir`."""
    platforms = PlatformActivities(endpoints, **activity_options)
    writer = AuditWriter(audit_dir)
    reference = fast_reference()
    worker = docket_worker.build_worker(
        client,
        platforms=platforms,
        writer=writer,
        reference=lambda: reference,
        trust=lambda: identities().trust,
        task_queue=task_queue,
    )
    try:
        async with worker:
            yield platforms
    finally:
        await platforms.aclose()
        writer.close()


def use_task_queue(monkeypatch: Any) -> str:
    """A fresh task queue for this test; `docket.client.submit` starts workflows on it."""
    queue = f"rel-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("DOCKET_TASK_QUEUE", queue)
    return queue


async def status(client: Client, rid: str) -> dict[str, Any]:
    return await docket.status(client, rid)


async def wait_until(
    client: Client,
    rid: str,
    done: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = 90.0,
) -> dict[str, Any]:
    """Poll the `status` query until `done(status)`; fail with the last status."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: dict[str, Any] = {}
    while loop.time() < deadline:
        with contextlib.suppress(docket.DocketError):
            last = await status(client, rid)
            if done(last):
                return last
        await asyncio.sleep(0.3)
    raise AssertionError(f"{rid} never reached {what}; last status: {last}")


async def wait_state(
    client: Client, rid: str, *states: str, timeout: float = 90.0
) -> dict[str, Any]:
    return await wait_until(
        client, rid, lambda s: s.get("state") in states, " or ".join(states), timeout
    )


async def history(client: Client, rid: str) -> list[HistoryEvent]:
    hist = await client.get_workflow_handle(rid).fetch_history()
    return list(hist.events)


def count_events(events: Sequence[HistoryEvent], *types: EventType.ValueType) -> int:
    return sum(1 for e in events if e.event_type in types)


def workflow_task_failures(events: Sequence[HistoryEvent]) -> list[str]:
    return [
        e.workflow_task_failed_event_attributes.failure.message
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]


UPDATE_EVENTS = (
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
)


def audit_lines(audit_dir: Path, rid: str) -> list[str]:
    """The raw audit lines of one request across every segment (duplicates included)."""
    out = []
    for path in sorted(audit_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if f'"chain_id":"{rid}"' in line:
                out.append(line)
    return out
