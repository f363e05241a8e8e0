"""Platform activities against the real simulator over loopback (ActivityEnvironment)."""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.platform import PlatformActivities, PlatformEndpoint
from docket.platform_protocol import Notice
from docket.verification import Observation
from platform_sim.scenarios import PlatformScenario, markers_for
from platform_sim.server import PlatformSimulator
from platform_sim.testing import sample_order

SECRET = b"activity-secret"


@pytest.fixture
def sim() -> Iterator[PlatformSimulator]:
    with PlatformSimulator(secrets={"facebook": SECRET, "youtube": SECRET}) as s:
        yield s


def endpoints(sim: PlatformSimulator, secret: bytes = SECRET) -> dict[str, PlatformEndpoint]:
    return {
        "facebook": PlatformEndpoint(sim.base_url("facebook"), secret, markers_for("facebook")),
        "youtube": PlatformEndpoint(sim.base_url("youtube"), secret, markers_for("youtube")),
        "tiktok": PlatformEndpoint(
            sim.base_url("tiktok"), b"unused", markers_for("tiktok"), api=False
        ),
    }


@pytest.fixture
async def acts(sim: PlatformSimulator) -> AsyncIterator[PlatformActivities]:
    a = PlatformActivities(endpoints(sim))
    yield a
    await a.aclose()


env = ActivityEnvironment()


async def run(fn: Any, *args: Any) -> Any:
    return await env.run(fn, *args)


async def expect_error(fn: Any, *args: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await run(fn, *args)
    return info.value


def deliveries(sim: PlatformSimulator) -> dict[str, Any]:
    data: dict[str, Any] = sim.stats()["platforms"]["facebook"]
    return data


async def test_deliver_poll_and_retry_is_idempotent(
    sim: PlatformSimulator, acts: PlatformActivities
) -> None:
    order = sample_order("req-act-1", [sim.content_url("facebook", "a1")])
    first = await run(acts.deliver_order, "facebook", order)
    retry = await run(acts.deliver_order, "facebook", order)
    assert (first.ticket, first.received_at) == (retry.ticket, retry.received_at)
    assert (first.http_status, retry.http_status) == (201, 200)
    assert first.authenticated == retry.authenticated == "hmac-sha256"
    assert first.received_at.tzinfo is not None
    s = deliveries(sim)
    assert s["deliveries"] == {"req-act-1": 1}
    assert s["duplicate_deliveries"] == {"req-act-1": 1}
    status = await run(acts.poll_platform, "facebook", first.ticket)
    assert status.status == "received"
    sim.advance(5)
    status = await run(acts.poll_platform, "facebook", first.ticket)
    assert status.status == "decided"
    assert status.items[0].effect == "removed_globally"


async def test_notices_are_idempotent(sim: PlatformSimulator, acts: PlatformActivities) -> None:
    sim.configure("facebook", PlatformScenario.preset("info"))
    order = sample_order("req-act-info", [sim.content_url("facebook", "b1")])
    ticket = (await run(acts.deliver_order, "facebook", order)).ticket
    sim.advance(2)
    assert (await run(acts.poll_platform, "facebook", ticket)).status == "info_requested"
    notice = Notice(kind="info_provided", request_id="req-act-info", message="see annex")
    # No notice_id: the key is derived from the activity's identity, stable across retries.
    receipt = await run(acts.send_notice, "facebook", ticket, notice)
    again = await run(acts.send_notice, "facebook", ticket, notice)
    assert receipt.model_dump(exclude={"http_status"}) == again.model_dump(exclude={"http_status"})
    assert (receipt.http_status, again.http_status) == (202, 200)
    assert receipt.kind == "info_provided"
    s = deliveries(sim)
    assert s["notices"] == {"info_provided": 1}
    assert s["duplicate_notices"] == 1
    assert (await run(acts.poll_platform, "facebook", ticket)).status == "acknowledged"


async def test_wrong_secret_is_non_retryable(sim: PlatformSimulator) -> None:
    acts = PlatformActivities(endpoints(sim, b"wrong"))
    order = sample_order("req-act-sig", [sim.content_url("facebook", "c1")])
    err = await expect_error(acts.deliver_order, "facebook", order)
    await acts.aclose()
    assert err.type == "SignatureRejected"
    assert err.non_retryable
    assert "401" in str(err) and "signature mismatch" in str(err)


async def test_conflict_and_rejection_are_non_retryable(
    sim: PlatformSimulator, acts: PlatformActivities
) -> None:
    await run(
        acts.deliver_order, "facebook", sample_order("req-act-c", ["http://h/facebook/content/x"])
    )
    changed = sample_order("req-act-c", ["http://h/facebook/content/y"])
    err = await expect_error(acts.deliver_order, "facebook", changed)
    assert err.type == "IdempotencyConflict"
    assert err.non_retryable
    ticket = sim.stats()["tickets"].popitem()[0]
    bad = Notice(kind="renotify", request_id="req-act-c", items=["item-9"], notice_id="n-1")
    err = await expect_error(acts.send_notice, "facebook", ticket, bad)
    assert err.type == "PlatformRejected"
    assert err.non_retryable
    assert "HTTP 422" in str(err) and "item-9" in str(err)
    err = await expect_error(acts.poll_platform, "facebook", "NO-SUCH")
    assert err.type == "PlatformRejected"


async def test_flaky_platform_is_retryable(
    sim: PlatformSimulator, acts: PlatformActivities
) -> None:
    sim.configure("facebook", PlatformScenario.preset("flaky", fail_first=1))
    order = sample_order("req-act-flaky", [sim.content_url("facebook", "d1")])
    err = await expect_error(acts.deliver_order, "facebook", order)
    assert err.type == "PlatformUnavailable"
    assert not err.non_retryable
    assert err.next_retry_delay == timedelta(seconds=1)
    ticket = await run(acts.deliver_order, "facebook", order)
    assert ticket.ticket
    assert deliveries(sim)["deliveries"] == {"req-act-flaky": 1}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_connection_refused_is_retryable_for_api_and_evidence_for_probes() -> None:
    port = _closed_port()
    base = f"http://127.0.0.1:{port}/facebook"
    acts = PlatformActivities({"facebook": PlatformEndpoint(base, SECRET, markers_for("facebook"))})
    order = sample_order("req-act-down", [f"{base}/content/x"])
    err = await expect_error(acts.deliver_order, "facebook", order)
    assert err.type == "PlatformUnavailable"
    assert not err.non_retryable
    ev = await run(acts.probe_item, "facebook", "item-1", f"{base}/content/x", "VN")
    assert ev.observation is Observation.PROBE_ERROR
    assert ev.status_code is None
    assert ev.error and "ConnectError" in ev.error
    assert ev.body_sha256 is None
    await acts.aclose()


async def test_unknown_platform_and_no_api(acts: PlatformActivities) -> None:
    err = await expect_error(acts.poll_platform, "myspace", "t")
    assert err.type == "UnknownPlatform" and err.non_retryable
    err = await expect_error(acts.poll_platform, "tiktok", "t")
    assert err.type == "NoApiChannel" and err.non_retryable


class _Odd(BaseHTTPRequestHandler):
    """A real server that answers 200 with the wrong content type or shape."""

    def do_GET(self) -> None:
        if self.path.endswith("/html"):
            body, ctype = b"<html>hi</html>", "text/html"
        elif self.path.endswith("/ua"):
            body, ctype = self.headers.get("User-Agent", "").encode(), "text/plain"
        elif self.path.endswith("/big"):
            body, ctype = b"x" * 5000, "text/plain"
        else:
            body, ctype = b'{"ticket": 5}', "application/json"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def odd_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Odd)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_malformed_answers_to_polls_are_final_and_to_posts_retried(odd_server: str) -> None:
    """A malformed poll answer goes straight to the workflow (the next poll asks again); a
    malformed answer to a delivery is retried (the repeat is idempotent)."""
    for suffix in ("shape", "html"):
        base = f"{odd_server}/{suffix}"
        acts = PlatformActivities(
            {"facebook": PlatformEndpoint(base, SECRET, markers_for("facebook"))}
        )
        err = await expect_error(acts.poll_platform, "facebook", suffix)
        assert err.type == "MalformedResponse"
        assert err.non_retryable
        assert err.details[0]["http_status"] == 200
        err = await expect_error(
            acts.deliver_order, "facebook", sample_order("req-odd", ["http://h/facebook/content/x"])
        )
        await acts.aclose()
        assert err.type == "MalformedResponse"
        assert not err.non_retryable


async def test_probe_user_agent_and_bounded_body(odd_server: str) -> None:
    acts = PlatformActivities(
        {"facebook": PlatformEndpoint(odd_server, SECRET, markers_for("facebook"))},
        max_probe_body=1000,
    )
    ev = await run(acts.probe_item, "facebook", "i", f"{odd_server}/ua", "control")
    assert ev.body_bytes == len(b"Docket-Verifier/1")
    big = await run(acts.probe_item, "facebook", "i", f"{odd_server}/big", "control")
    assert big.truncated and big.body_bytes == 1000
    await acts.aclose()


@pytest.mark.parametrize(
    ("slug", "vantage", "observation"),
    [
        ("marker--p", "control", Observation.REMOVED),
        ("410--p", "control", Observation.REMOVED),
        ("404--p", "control", Observation.NOT_FOUND),
        ("451--p", "VN", Observation.LEGALLY_BLOCKED),
        ("login--p", "control", Observation.LOGIN_WALL),
        ("restrict--p", "VN", Observation.GEO_RESTRICTED),
        ("restrict--q", "control", Observation.AVAILABLE),
        ("liar--p", "VN", Observation.AVAILABLE),
        ("decline--p", "VN", Observation.AVAILABLE),
    ],
)
async def test_probe_after_decision(
    sim: PlatformSimulator,
    acts: PlatformActivities,
    slug: str,
    vantage: str,
    observation: Observation,
) -> None:
    url = sim.content_url("facebook", slug)
    baseline = await run(acts.capture_baseline, "facebook", "item-1", url)
    assert baseline.observation is Observation.AVAILABLE
    assert baseline.vantage == "control"
    rid = "req-probe-" + slug.replace("--", "-")
    await run(acts.deliver_order, "facebook", sample_order(rid, [url]))
    sim.advance(5)
    ev = await run(acts.probe_item, "facebook", "item-1", url, vantage)
    assert ev.observation is observation
    assert ev.vantage == vantage
    assert ev.markers_version == "sim-1"
    assert ev.probed_at.tzinfo is not None
    assert ev.body_sha256 is not None and len(ev.body_sha256) == 64
    if observation is not Observation.AVAILABLE:
        assert ev.body_sha256 != baseline.body_sha256
    if slug.startswith("451"):
        assert ev.blocked_by and ev.blocked_by.startswith(sim.url)
    if slug.startswith("login"):
        assert "/facebook/login" in ev.final_url


async def test_probe_of_failing_content_is_evidence(
    sim: PlatformSimulator, acts: PlatformActivities
) -> None:
    url = sim.content_url("facebook", "err1--r")
    ev = await run(acts.probe_item, "facebook", "item-1", url, "VN")
    assert ev.observation is Observation.PROBE_ERROR
    assert ev.status_code == 503
    assert ev.inconclusive
    ev = await run(acts.probe_item, "facebook", "item-1", url, "VN")
    assert ev.observation is Observation.AVAILABLE


async def test_missing_secret_is_a_clear_permanent_error() -> None:
    from temporalio.exceptions import ApplicationError
    from temporalio.testing import ActivityEnvironment

    from activities.platform import PlatformActivities, PlatformEndpoint
    from docket.verification import MarkerSet
    from platform_sim.testing import sample_order

    endpoint = PlatformEndpoint(
        base_url="http://127.0.0.1:9/facebook",
        secret=b"",
        markers=MarkerSet(version="t"),
        credential_env="DOCKET_SECRET_FACEBOOK",
    )
    activities = PlatformActivities({"facebook": endpoint})
    order = sample_order("req-t-1", ["http://127.0.0.1:9/facebook/content/x"])
    with pytest.raises(ApplicationError) as exc:
        await ActivityEnvironment().run(activities.deliver_order, "facebook", order)
    assert exc.value.type == "MissingCredentials"
    assert exc.value.non_retryable
    assert "set DOCKET_SECRET_FACEBOOK" in exc.value.message
    await activities.aclose()
