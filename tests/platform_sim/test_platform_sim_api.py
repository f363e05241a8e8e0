"""Protocol v1 against the real simulator over loopback: scenarios, signatures, idempotency."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from docket.platform_protocol import Notice, PlatformStatus, TicketResponse
from docket.signing import signed_headers
from platform_sim.scenarios import PlatformScenario, parse_slug
from platform_sim.server import PlatformSimulator
from platform_sim.testing import SignedClient, sample_order

SECRET = b"sim-test-secret"


@pytest.fixture
def sim() -> Iterator[PlatformSimulator]:
    with PlatformSimulator(secrets={"facebook": SECRET, "youtube": SECRET}) as s:
        yield s


@pytest.fixture
def fb(sim: PlatformSimulator) -> Iterator[SignedClient]:
    client = SignedClient(sim.base_url("facebook"), SECRET)
    yield client
    client.close()


def status_of(client: SignedClient, ticket: str) -> PlatformStatus:
    r = client.status(ticket)
    assert r.status_code == 200, r.text
    return PlatformStatus.model_validate_json(r.content)


def submit(client: SignedClient, sim: PlatformSimulator, rid: str, *slugs: str) -> str:
    urls = [sim.content_url("facebook", s) for s in slugs]
    r = client.submit(sample_order(rid, urls))
    assert r.status_code == 201, r.text
    return TicketResponse.model_validate_json(r.content).ticket


def stats(sim: PlatformSimulator, platform: str = "facebook") -> dict[str, Any]:
    r = httpx.get(sim.url + "/_sim/stats")
    assert r.status_code == 200
    data: dict[str, Any] = r.json()["platforms"][platform]
    return data


def test_comply_lifecycle(sim: PlatformSimulator, fb: SignedClient) -> None:
    ticket = submit(fb, sim, "req-mic-comply", "post-a", "post-b")
    st = status_of(fb, ticket)
    assert st.status == "received"
    assert st.acknowledged_at is None
    assert [i.effect for i in st.items] == [None, None]
    sim.advance(1)
    st = status_of(fb, ticket)
    assert st.status == "acknowledged"
    assert st.acknowledged_at is not None
    sim.advance(1)
    st = status_of(fb, ticket)
    assert st.status == "decided"
    for item in st.items:
        assert item.effect == "removed_globally"
        assert item.effect_at is not None and item.effect_at.tzinfo is not None
        assert item.platform_ref == f"{ticket}/{item.item_id}"
        assert item.uploader_notified


def test_idempotent_repeat_returns_same_ticket(sim: PlatformSimulator, fb: SignedClient) -> None:
    order = sample_order("req-mic-idem", [sim.content_url("facebook", "idem")])
    first = fb.submit(order)
    again = fb.submit(order)
    assert first.status_code == 201
    assert again.status_code == 200
    assert first.json() == again.json()
    s = stats(sim)
    assert s["deliveries"] == {"req-mic-idem": 1}
    assert s["duplicate_deliveries"] == {"req-mic-idem": 1}
    assert s["tickets"] == 1


def test_same_key_different_body_conflicts(sim: PlatformSimulator, fb: SignedClient) -> None:
    fb.submit(sample_order("req-mic-conf", [sim.content_url("facebook", "c1")]))
    other = sample_order("req-mic-conf", [sim.content_url("facebook", "c2")])
    r = fb.submit(other)
    assert r.status_code == 409
    assert "different" in r.json()["error"]
    assert stats(sim)["conflicts"] == 1


def test_key_must_match_request_id_and_is_required(
    sim: PlatformSimulator, fb: SignedClient
) -> None:
    order = sample_order("req-mic-k", [sim.content_url("facebook", "k")])
    signed_at = int(time.time())
    r = fb.submit(order, key="something-else", timestamp=signed_at)
    assert r.status_code == 422
    body = order.model_dump_json().encode()
    r = fb.request("POST", "/v1/requests", body, timestamp=signed_at - 2)
    assert r.status_code == 400
    assert "Idempotency-Key" in r.json()["error"]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing", "missing timestamp"),
        ("wrong_secret", "signature mismatch"),
        ("stale", "stale timestamp"),
        ("future", "timestamp in the future"),
        ("tampered", "signature mismatch"),
    ],
)
def test_bad_signatures_are_rejected(sim: PlatformSimulator, case: str, reason: str) -> None:
    order = sample_order(f"req-sig-{case.replace('_', '-')}", [sim.content_url("facebook", "s")])
    body = order.model_dump_json().encode()
    now = int(time.time())
    headers = {"Idempotency-Key": order.request_id, "Content-Type": "application/json"}
    if case == "wrong_secret":
        headers |= signed_headers(b"not-the-secret", body, now)
    elif case == "stale":
        headers |= signed_headers(SECRET, body, now - 400)
    elif case == "future":
        headers |= signed_headers(SECRET, body, now + 400)
    elif case == "tampered":
        headers |= signed_headers(SECRET, body, now)
        body = body.replace(b"req-sig", b"req-sag")
    r = httpx.post(sim.base_url("facebook") + "/v1/requests", content=body, headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"error": f"bad signature: {reason}"}
    s = stats(sim)
    assert s["signature_rejections"] == 1
    assert s["deliveries"] == {}


def test_get_and_notice_need_signatures_too(sim: PlatformSimulator, fb: SignedClient) -> None:
    ticket = submit(fb, sim, "req-sig-get", "g")
    assert httpx.get(f"{sim.base_url('facebook')}/v1/requests/{ticket}").status_code == 401
    r = fb.status(ticket, secret=b"wrong")
    assert r.status_code == 401


def test_replayed_notice_is_refused_unless_idempotent(
    sim: PlatformSimulator, fb: SignedClient
) -> None:
    ticket = submit(fb, sim, "req-replay", "r")
    notice = Notice(kind="second_notice", request_id="req-replay", message="please act")
    body = notice.model_dump_json().encode()
    signed_at = int(time.time())
    headers = {**signed_headers(SECRET, body, signed_at), "Content-Type": "application/json"}
    url = f"{sim.base_url('facebook')}/v1/requests/{ticket}/notices"
    assert httpx.post(url, content=body, headers=headers).status_code == 202
    again = httpx.post(url, content=body, headers=headers)
    assert again.status_code == 401
    assert again.json() == {"error": "replayed signature"}
    # With an Idempotency-Key, an exact replay is the same notice: same receipt, no new effect.
    keyed = {**headers, "Idempotency-Key": "n-1"}
    # A timestamp other than the first request's: a fresh signature, never a replay of it
    # (`int(time.time()) - 1` collided with it whenever a second boundary passed in between).
    keyed |= signed_headers(SECRET, body, signed_at - 1)
    first = httpx.post(url, content=body, headers=keyed)
    second = httpx.post(url, content=body, headers=keyed)
    assert first.status_code == 202
    assert second.status_code == 200
    assert first.json() == second.json()
    # The same signature with another key is a replay.
    other = httpx.post(url, content=body, headers={**keyed, "Idempotency-Key": "n-2"})
    assert other.status_code == 401
    s = stats(sim)
    assert s["notices"] == {"second_notice": 2}
    assert s["duplicate_notices"] == 1
    assert s["replays_rejected"] == 2


def test_replayed_delivery_returns_same_ticket(sim: PlatformSimulator) -> None:
    order = sample_order("req-replay-post", [sim.content_url("facebook", "rp")])
    body = order.model_dump_json().encode()
    headers = {
        **signed_headers(SECRET, body, int(time.time())),
        "Idempotency-Key": order.request_id,
        "Content-Type": "application/json",
    }
    url = sim.base_url("facebook") + "/v1/requests"
    a = httpx.post(url, content=body, headers=headers)
    b = httpx.post(url, content=body, headers=headers)
    assert (a.status_code, b.status_code) == (201, 200)
    assert a.json()["ticket"] == b.json()["ticket"]
    assert stats(sim)["deliveries"] == {order.request_id: 1}


def test_partial_preset(sim: PlatformSimulator, fb: SignedClient) -> None:
    sim.configure("facebook", PlatformScenario.preset("partial"))
    ticket = submit(fb, sim, "req-partial", "p1", "p2", "p3")
    sim.advance(5)
    st = status_of(fb, ticket)
    assert [i.effect for i in st.items] == ["removed_globally", "declined", "removed_globally"]
    declined = st.items[1]
    assert declined.reason
    assert not declined.uploader_notified


def test_decline_preset(sim: PlatformSimulator, fb: SignedClient) -> None:
    sim.configure("facebook", PlatformScenario.preset("decline"))
    ticket = submit(fb, sim, "req-decline", "d1", "d2")
    sim.advance(5)
    st = status_of(fb, ticket)
    assert st.status == "decided"
    assert all(i.effect == "declined" and i.reason for i in st.items)


def test_ignore_never_acknowledges(sim: PlatformSimulator, fb: SignedClient) -> None:
    sim.configure("facebook", PlatformScenario.preset("ignore"))
    ticket = submit(fb, sim, "req-ignore", "i1")
    sim.advance(10 * 86400)
    st = status_of(fb, ticket)
    assert st.status == "received"
    assert st.acknowledged_at is None
    second = Notice(kind="second_notice", request_id="req-ignore")
    assert fb.notice(ticket, second, key="sn-1").status_code == 202
    sim.advance(10 * 86400)
    assert status_of(fb, ticket).status == "received"


def test_slow_ack(sim: PlatformSimulator, fb: SignedClient) -> None:
    sim.configure("facebook", PlatformScenario.preset("slow_ack", slow_ack_delay=60))
    ticket = submit(fb, sim, "req-slow", "s1")
    sim.advance(30)
    assert status_of(fb, ticket).status == "received"
    sim.advance(31)
    assert status_of(fb, ticket).acknowledged_at is not None


def test_late_acknowledges_only_after_second_notice(
    sim: PlatformSimulator, fb: SignedClient
) -> None:
    sim.configure("facebook", PlatformScenario.preset("late"))
    ticket = submit(fb, sim, "req-late", "l1")
    sim.advance(86400)
    assert status_of(fb, ticket).status == "received"
    notice = Notice(kind="second_notice", request_id="req-late")
    assert fb.notice(ticket, notice, key="sn").status_code == 202
    sim.advance(2)
    assert status_of(fb, ticket).status == "decided"


def test_flaky_first_calls_fail_with_503(sim: PlatformSimulator, fb: SignedClient) -> None:
    sim.configure("facebook", PlatformScenario.preset("flaky", fail_first=2))
    order = sample_order("req-flaky", [sim.content_url("facebook", "f1")])
    codes = [fb.submit(order).status_code for _ in range(3)]
    assert codes == [503, 503, 201]
    r = fb.submit(order)
    assert r.status_code == 200
    s = stats(sim)
    assert s["injected_503"] == 2
    assert s["deliveries"] == {"req-flaky": 1}
    assert s["delivery_attempts"] == {"req-flaky": 4}


def test_flaky_503_carries_retry_after(sim: PlatformSimulator, fb: SignedClient) -> None:
    r = fb.submit(sample_order("req-flaky-tok", [sim.content_url("facebook", "flaky1--x")]))
    assert r.status_code == 503
    assert r.headers["Retry-After"] == "1"
    assert "injected" in r.json()["error"]
    assert fb.submit(sample_order("req-flaky-tok", [sim.content_url("facebook", "flaky1--x")]))


def test_info_requested_then_provided(sim: PlatformSimulator, fb: SignedClient) -> None:
    sim.configure("facebook", PlatformScenario.preset("info"))
    ticket = submit(fb, sim, "req-info", "n1")
    early = Notice(kind="info_provided", request_id="req-info", message="too early")
    sim.advance(1)
    st = status_of(fb, ticket)
    assert st.status == "info_requested"
    assert st.info_request
    sim.advance(86400)
    assert status_of(fb, ticket).status == "info_requested"
    answer = Notice(kind="info_provided", request_id="req-info", message="Decision no. 12 attached")
    r = fb.notice(ticket, answer, key="info-1")
    assert r.status_code == 202
    assert r.json()["kind"] == "info_provided"
    st = status_of(fb, ticket)
    assert st.status == "acknowledged"
    assert st.info_request is None
    sim.advance(1)
    assert status_of(fb, ticket).status == "decided"
    r = fb.notice(ticket, early, key="info-2")
    assert r.status_code == 422
    assert "no information was requested" in r.json()["error"]


def test_withdrawal(sim: PlatformSimulator, fb: SignedClient) -> None:
    ticket = submit(fb, sim, "req-withdraw", "w1")
    r = fb.notice(ticket, Notice(kind="withdrawal", request_id="req-withdraw"), key="wd")
    assert r.status_code == 202
    sim.advance(100)
    st = status_of(fb, ticket)
    assert st.status == "withdrawn"
    assert st.items[0].effect is None
    assert httpx.get(sim.content_url("facebook", "w1")).status_code == 200


def test_notice_validation(sim: PlatformSimulator, fb: SignedClient) -> None:
    ticket = submit(fb, sim, "req-nv", "nv")
    wrong = Notice(kind="renotify", request_id="req-other")
    assert fb.notice(ticket, wrong, key="a").status_code == 422
    unknown = Notice(kind="reinstatement", request_id="req-nv", items=["item-99"])
    r = fb.notice(ticket, unknown, key="b")
    assert r.status_code == 422
    assert "item-99" in r.json()["error"]
    ok = Notice(kind="renotify", request_id="req-nv", notice_id="c")
    signed_at = int(time.time())
    assert fb.notice(ticket, ok, key="c", timestamp=signed_at).status_code == 202
    # key != notice_id (signed a second earlier: same body, so otherwise a replay)
    assert fb.notice(ticket, ok, key="d", timestamp=signed_at - 1).status_code == 422
    changed = Notice(kind="renotify", request_id="req-nv", message="changed", notice_id="c")
    assert fb.notice(ticket, changed, key="c").status_code == 409
    assert fb.notice(ticket, ok, key="c").status_code == 200


def test_errors_are_json(sim: PlatformSimulator, fb: SignedClient) -> None:
    r = fb.status("NOPE-1")
    assert r.status_code == 404
    assert r.json() == {"error": "unknown ticket 'NOPE-1'"}
    r = fb.request("POST", "/v1/requests", b"{not json", key="req-x")
    assert r.status_code == 400
    r = fb.request("POST", "/v1/requests", b'{"request_id": "req-x"}', key="req-x")
    assert r.status_code == 422
    assert r.json()["error"].startswith("invalid order")
    tk = SignedClient(sim.base_url("tiktok"), SECRET)
    assert tk.status("x").status_code == 404
    tk.close()
    # A ticket of one platform does not exist on another.
    ticket = submit(fb, sim, "req-cross", "x")
    yt = SignedClient(sim.base_url("youtube"), SECRET)
    assert yt.status(ticket).status_code == 404
    yt.close()


def test_request_tokens_in_slugs(sim: PlatformSimulator, fb: SignedClient) -> None:
    ticket = submit(fb, sim, "req-tok-ignore", "plain", "ignore--x")
    sim.advance(1000)
    assert status_of(fb, ticket).status == "received"
    ticket = submit(fb, sim, "req-tok-info", "info--y")
    sim.advance(2)
    assert status_of(fb, ticket).status == "info_requested"


def test_parse_slug() -> None:
    knobs = parse_slug("restrict.err3.flaky--video-1")
    assert knobs.item == {"decision": "restrict", "probe_failures": 3}
    assert knobs.request == {"fail_first": 2}
    assert parse_slug("451.liar.resurface--x").item == {
        "view": "451",
        "liar": True,
        "resurface_after_probes": 2,
    }
    assert parse_slug("my--post").item == {}  # unknown token: a plain name
    assert parse_slug("no-knobs").request == {}


def test_stats_and_reset(sim: PlatformSimulator, fb: SignedClient) -> None:
    submit(fb, sim, "req-stats", "st")
    httpx.get(sim.content_url("facebook", "st"))
    s = stats(sim)
    assert s["probes"] == {"st": 1}
    assert s["total_deliveries"] == 1
    assert httpx.post(sim.url + "/_sim/reset").json() == {"reset": True}
    assert httpx.get(sim.url + "/_sim/stats").json()["platforms"] == {}
    r = httpx.post(sim.url + "/_sim/advance", json={"seconds": 5})
    assert r.status_code == 200
    r = httpx.post(sim.url + "/_sim/config", json={"facebook": {"name": "x", "acknowledge": False}})
    assert r.json() == {"configured": ["facebook"]}
    assert sim.engine.scenario("facebook").acknowledge is False


async def test_hundreds_of_concurrent_clients(sim: PlatformSimulator) -> None:
    # 300 requests in flight at once, spread over 30 clients (httpcore's pool bookkeeping is
    # quadratic in its size, so one client with 300 connections measures the client, not us).
    n, n_clients = 300, 30
    limits = httpx.Limits(max_connections=n // n_clients)
    clients = [httpx.AsyncClient(timeout=60, limits=limits) for _ in range(n_clients)]

    async def one(i: int) -> tuple[int, str, int]:
        client = clients[i % n_clients]
        order = sample_order(f"req-conc-{i}", [sim.content_url("facebook", f"c{i}")])
        body = order.model_dump_json().encode()
        headers = {
            **signed_headers(SECRET, body, int(time.time())),
            "Idempotency-Key": order.request_id,
            "Content-Type": "application/json",
        }
        r = await client.post(
            sim.base_url("facebook") + "/v1/requests", content=body, headers=headers
        )
        probe = await client.get(sim.content_url("facebook", f"c{i}"))
        return r.status_code, r.json()["ticket"], probe.status_code

    try:
        results = await asyncio.gather(*(one(i) for i in range(n)))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    assert {code for code, _, _ in results} == {201}
    assert len({ticket for _, ticket, _ in results}) == n
    assert {probe for _, _, probe in results} == {200}
    assert stats(sim)["total_deliveries"] == n


def test_state_file_survives_restart(tmp_path: Path) -> None:
    state = tmp_path / "sim.json"
    order = sample_order("req-persist", ["http://127.0.0.1/facebook/content/persist"])
    with PlatformSimulator(secrets={"facebook": SECRET}, state_file=state) as sim:
        client = SignedClient(sim.base_url("facebook"), SECRET)
        first = client.submit(order)
        client.close()
        sim.advance(5)
    assert state.exists()
    with PlatformSimulator(secrets={"facebook": SECRET}, state_file=state) as sim:
        client = SignedClient(sim.base_url("facebook"), SECRET)
        again = client.submit(order)
        assert again.status_code == 200
        assert again.json()["ticket"] == first.json()["ticket"]
        st = status_of(client, first.json()["ticket"])
        assert st.status == "decided"
        client.close()
        assert stats(sim)["deliveries"] == {"req-persist": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_cli_serves_protocol(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "DOCKET_SECRET_FACEBOOK": "cli-secret"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "platform_sim",
            "--port",
            str(port),
            "--platform",
            "facebook",
            "--state-file",
            str(tmp_path / "s.json"),
            "--scenario",
            "facebook=decline",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert f"http://127.0.0.1:{port}" in line
        client = SignedClient(f"http://127.0.0.1:{port}/facebook", b"cli-secret")
        r = client.submit(sample_order("req-cli", [f"http://127.0.0.1:{port}/facebook/content/a"]))
        assert r.status_code == 201, r.text
        httpx.post(f"http://127.0.0.1:{port}/_sim/advance", json={"seconds": 5})
        st = status_of(client, r.json()["ticket"])
        assert st.items[0].effect == "declined"
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    assert orjson.loads((tmp_path / "s.json").read_bytes())["tickets"]
