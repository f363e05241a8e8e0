"""Platform faults on the real dev server with the real worker and the simulator.

Retryable faults (5xx bursts, answers slower than the activity's HTTP timeout, refused
connections, malformed JSON) are retried with backoff and the order is delivered once; a
permanent fault (wrong signature, a platform down beyond the retry budget) lands in
`delivery_failed` with the reason in the status query, the audit entry and the `RequestState`
search attribute. The simulator's counters prove the idempotency key kept every retry from
opening a second order.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from docket_harness import (
    DEMO_POLICY,
    PLATFORM,
    actor,
    approve,
    audit_copies,
    endpoint,
    failed_tasks,
    fresh_order,
    history,
    issue,
    new_secret,
    running_worker,
    submit,
    wait_for,
)
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.platform import PlatformActivities
from docket import client as docket
from docket import temporal_names as names
from docket.devserver import free_port
from docket.models import Order, RetryDelivery, Withdraw
from docket.reference import default_reference
from platform_sim.server import PlatformSimulator

pytestmark = [pytest.mark.integration, pytest.mark.slow(30)]

DELIVERED = ("awaiting_ack", "acknowledged", "verifying", "monitoring")
FORWARDED = ("x-docket-timestamp", "x-docket-signature", "idempotency-key", "content-type")


class FaultProxy:
    """A platform front that forwards to the simulator; the first deliveries (POST
    /v1/requests) get the faults in `plan`, after the simulator has seen them:

    slow     answer after `delay` seconds (beyond the worker's HTTP timeout)
    garbage  200 application/json with a truncated JSON body
    html     200 text/html (a proxy error page)
    nested   200 application/json nested 5,000 levels deep
    """

    def __init__(self, target: str, plan: list[str], *, port: int = 0, delay: float = 1.5) -> None:
        self.target = target.rstrip("/")
        self.plan = list(plan)
        self.delay = delay
        self.seen: list[str] = []
        self.http = httpx.Client(timeout=10.0)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy.handle(self)

            def do_POST(self) -> None:
                proxy.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{PLATFORM}"

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        body = req.rfile.read(length) if length else b""
        path = req.path.split("/", 2)[2]  # drop /<platform>
        headers = {k: v for k, v in req.headers.items() if k.lower() in FORWARDED}
        answer = self.http.request(
            req.command, f"{self.target}/{path}", content=body, headers=headers
        )
        fault = "pass"
        if req.command == "POST" and path == "v1/requests" and self.plan:
            fault = self.plan.pop(0)
        self.seen.append(fault)
        status, ctype, out = answer.status_code, answer.headers["Content-Type"], answer.content
        if fault == "slow":
            time.sleep(self.delay)
        elif fault == "garbage":
            status, ctype, out = 200, "application/json", b'{"ticket": "FA-12'
        elif fault == "html":
            status, ctype, out = 200, "text/html", b"<html>502 Bad Gateway</html>"
        elif fault == "nested":
            status, ctype, out = 200, "application/json", b"[" * 5000 + b"]" * 5000
        try:
            req.send_response(status)
            req.send_header("Content-Type", ctype)
            req.send_header("Content-Length", str(len(out)))
            req.end_headers()
            req.wfile.write(out)
        except OSError:  # the worker gave up waiting (timeout): nobody reads this answer
            req.close_connection = True

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.http.close()


def counters(simulator: PlatformSimulator) -> dict[str, Any]:
    data: dict[str, Any] = simulator.stats()["platforms"].get(PLATFORM, {})
    return data


def order_to(simulator: PlatformSimulator, slug: str) -> Order:
    """A one-item order to facebook (DEMO-VN-C38's clocks: no deadline passes during a test)."""
    return fresh_order(simulator, [slug], label="REL", policy=DEMO_POLICY)


async def delivery_attempt(client: Client, rid: str) -> tuple[int, str]:
    """The attempt number and last failure of the completed delivery, from the history."""
    events = await history(client, rid)
    started = [
        e.activity_task_started_event_attributes
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    for attrs in started:
        if scheduled.get(attrs.scheduled_event_id) == "deliver_order":
            return attrs.attempt, attrs.last_failure.message
    raise AssertionError("no deliver_order attempt in the history")


async def assert_delivery_failed(
    client: Client, rid: str, audit_dir: Path, reason: str
) -> dict[str, Any]:
    status = await wait_for(client, rid, state="delivery_failed")
    assert reason in (status["delivery_error"] or "")
    entry = (await docket.timeline(client, rid))[-1]
    assert entry["event"]["action"] == "delivery_failed"
    assert reason in entry["event"]["reason"]
    assert reason in entry["docket"]["data"]["error"]
    on_disk = audit_copies(audit_dir, rid)
    assert on_disk[-1]["event"]["id"] == entry["event"]["id"]
    assert reason in on_disk[-1]["event"]["reason"]
    described = await client.get_workflow_handle(rid).describe()
    assert described.typed_search_attributes.get(names.REQUEST_STATE) == "delivery_failed"
    return status


async def test_5xx_burst_is_retried_and_delivered_once(
    dev_client: Client,
    simulator: PlatformSimulator,
    facebook_secret: str,
    task_queue: str,
    audit_dir: Path,
) -> None:
    ref = default_reference()
    order = order_to(simulator, "flaky5.remove--burst")
    eps = {PLATFORM: endpoint(ref, simulator.base_url(PLATFORM), facebook_secret)}
    async with running_worker(dev_client, eps, audit_dir, task_queue=task_queue):
        rid = await submit(dev_client, order)
        await approve(dev_client, rid)
        await wait_for(dev_client, rid, state=DELIVERED)
    attempt, failure = await delivery_attempt(dev_client, rid)
    assert attempt == 6 and "HTTP 503" in failure
    stats = counters(simulator)
    assert stats["deliveries"][rid] == 1  # one order at the platform ...
    assert stats["delivery_attempts"][rid] == 6  # ... after five refused attempts
    assert failed_tasks(await history(dev_client, rid)) == []


async def test_platform_down_beyond_the_retry_budget_lands_in_delivery_failed(
    dev_client: Client,
    simulator: PlatformSimulator,
    facebook_secret: str,
    task_queue: str,
    audit_dir: Path,
) -> None:
    ref = default_reference()
    order = order_to(simulator, "flaky50.remove--down")
    eps = {PLATFORM: endpoint(ref, simulator.base_url(PLATFORM), facebook_secret)}
    async with running_worker(dev_client, eps, audit_dir, task_queue=task_queue):
        rid = await submit(dev_client, order)
        await approve(dev_client, rid)
        status = await assert_delivery_failed(dev_client, rid, audit_dir, "HTTP 503")
        assert status["allowed"] == ["retry_delivery", "withdraw"]
        receipt = await issue(
            dev_client, rid, Withdraw(actor=actor("nguyen.van.an"), reason="Platform is down")
        )
        assert receipt.outcome == "withdrawn"
    stats = counters(simulator)
    assert rid not in stats["deliveries"]  # never opened: no ticket, no withdrawal notice
    assert stats["delivery_attempts"][rid] == 8  # DELIVERY_RETRY.maximum_attempts


async def test_answers_slower_than_the_http_timeout_are_retried_without_a_second_order(
    dev_client: Client,
    simulator: PlatformSimulator,
    facebook_secret: str,
    task_queue: str,
    audit_dir: Path,
) -> None:
    ref = default_reference()
    order = order_to(simulator, "remove--slow-answer")
    with FaultProxy(simulator.base_url(PLATFORM), ["slow", "slow"]) as proxy:
        eps = {PLATFORM: endpoint(ref, proxy.base_url, facebook_secret)}
        slow = PlatformActivities(eps, api_timeout=httpx.Timeout(0.5))
        async with running_worker(dev_client, slow, audit_dir, task_queue=task_queue):
            rid = await submit(dev_client, order)
            await approve(dev_client, rid)
            await wait_for(dev_client, rid, state=DELIVERED)
    attempt, failure = await delivery_attempt(dev_client, rid)
    assert attempt == 3 and "timed out" in failure
    stats = counters(simulator)
    # The platform saw all three attempts: the first opened the order, the two retries got
    # the same ticket back (idempotent repeats), none opened a second one.
    assert stats["deliveries"][rid] == 1
    assert stats["duplicate_deliveries"][rid] == 2


async def test_malformed_answers_are_retried_without_a_second_order(
    dev_client: Client,
    simulator: PlatformSimulator,
    facebook_secret: str,
    task_queue: str,
    audit_dir: Path,
) -> None:
    ref = default_reference()
    order = order_to(simulator, "remove--malformed")
    with FaultProxy(simulator.base_url(PLATFORM), ["garbage", "html", "nested"]) as proxy:
        eps = {PLATFORM: endpoint(ref, proxy.base_url, facebook_secret)}
        async with running_worker(dev_client, eps, audit_dir, task_queue=task_queue):
            rid = await submit(dev_client, order)
            await approve(dev_client, rid)
            status = await wait_for(dev_client, rid, state=DELIVERED)
    attempt, failure = await delivery_attempt(dev_client, rid)
    assert attempt == 4 and "breaks the contract's TicketResponse" in failure
    assert status["ticket"] is not None
    stats = counters(simulator)
    assert stats["deliveries"][rid] == 1
    assert stats["duplicate_deliveries"][rid] == 3


async def test_refused_connections_are_retried_until_the_platform_is_back(
    dev_client: Client,
    simulator: PlatformSimulator,
    facebook_secret: str,
    task_queue: str,
    audit_dir: Path,
) -> None:
    ref = default_reference()
    order = order_to(simulator, "remove--refused")
    port = free_port()  # nothing listens here yet: connection refused
    eps = {PLATFORM: endpoint(ref, f"http://127.0.0.1:{port}/{PLATFORM}", facebook_secret)}
    async with running_worker(dev_client, eps, audit_dir, task_queue=task_queue):
        rid = await submit(dev_client, order)
        await approve(dev_client, rid)
        handle = dev_client.get_workflow_handle(rid)
        failure = ""
        for _ in range(100):
            pending = (await handle.describe()).raw_description.pending_activities
            delivering = [p for p in pending if p.activity_type.name == "deliver_order"]
            if delivering and delivering[0].attempt >= 2:
                failure = delivering[0].last_failure.message
                break
            await asyncio.sleep(0.1)
        assert "ConnectError" in failure
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
        with FaultProxy(simulator.base_url(PLATFORM), [], port=port):
            await wait_for(dev_client, rid, state=DELIVERED, timeout=60)
    assert counters(simulator)["deliveries"][rid] == 1


async def test_wrong_signature_is_permanent_and_a_fixed_worker_retries_it(
    dev_client: Client,
    simulator: PlatformSimulator,
    facebook_secret: str,
    task_queue: str,
    audit_dir: Path,
) -> None:
    ref = default_reference()
    order = order_to(simulator, "remove--wrong-secret")
    before = counters(simulator).get("signature_rejections", 0)
    wrong = {PLATFORM: endpoint(ref, simulator.base_url(PLATFORM), new_secret("wrong"))}
    async with running_worker(dev_client, wrong, audit_dir, task_queue=task_queue):
        rid = await submit(dev_client, order)
        await approve(dev_client, rid)
        status = await assert_delivery_failed(dev_client, rid, audit_dir, "HTTP 401")
        assert "bad signature" in status["delivery_error"]
    attempt, _ = await delivery_attempt(dev_client, rid)
    assert attempt == 1  # SignatureRejected is not retried
    stats = counters(simulator)
    assert stats["signature_rejections"] == before + 1
    assert rid not in stats["deliveries"]
    # The operator fixes the worker's secret (its environment) and retries the delivery.
    right = {PLATFORM: endpoint(ref, simulator.base_url(PLATFORM), facebook_secret)}
    async with running_worker(dev_client, right, audit_dir, task_queue=task_queue):
        receipt = await issue(
            dev_client,
            rid,
            RetryDelivery(actor=actor("ops.on.call"), reason="Worker secret rotated"),
        )
        assert receipt.state == "delivering"
        status = await wait_for(dev_client, rid, state=DELIVERED)
    assert status["delivery_error"] is None
    assert counters(simulator)["deliveries"][rid] == 1
    assert failed_tasks(await history(dev_client, rid)) == []
