"""Secrets and signatures: every platform call is signed (HMAC over timestamp + body, 300 s
window), the simulator refuses wrong, stale, future, tampered and replayed signatures; the
signing secret lives only in the worker's environment, never in workflow input, history,
memo, search attributes or the audit log.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import orjson
import pytest
from docket_harness import (
    DEMO_POLICY,
    PLATFORM,
    approve,
    endpoint,
    fresh_order,
    history,
    running_worker,
    submit,
    wait_for,
)
from temporalio.client import Client

from docket import client as docket
from docket import worker_setup as docket_worker
from docket.case import RequestInput
from docket.reference import default_reference
from docket.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_headers
from platform_sim.server import PlatformSimulator
from platform_sim.testing import SignedClient, sample_order


@pytest.fixture
def signed(simulator: PlatformSimulator, facebook_secret: str) -> SignedClient:
    return SignedClient(simulator.base_url(PLATFORM), facebook_secret.encode())


def rejections(simulator: PlatformSimulator) -> tuple[int, int]:
    stats = simulator.stats()["platforms"].get(PLATFORM, {})
    return stats.get("signature_rejections", 0), stats.get("replays_rejected", 0)


def test_signatures_are_checked_and_replays_refused(
    simulator: PlatformSimulator, signed: SignedClient
) -> None:
    rid = f"req-sig-{time.time_ns()}"
    order = sample_order(rid, [simulator.content_url(PLATFORM, "remove--signed")])
    body = orjson.dumps(order.model_dump(mode="json"))
    now = int(time.time())
    sig0, replay0 = rejections(simulator)

    for secret, ts, why in (
        (b"not-the-secret", now, "bad signature: signature mismatch"),
        (None, now - 301, "stale"),
        (None, now + 301, "future"),
    ):
        answer = signed.request("POST", "/v1/requests", body, key=rid, timestamp=ts, secret=secret)
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"].startswith("bad signature"), answer.text
        assert why.split(": ")[-1] in answer.json()["error"], answer.text
    unsigned = signed.http.post(signed.base_url + "/v1/requests", content=body)
    assert unsigned.status_code == 401
    assert rejections(simulator)[0] == sig0 + 4

    # A captured, validly signed delivery ...
    headers = signed_headers(signed.secret, body, now)
    first = signed.http.post(
        signed.base_url + "/v1/requests",
        content=body,
        headers={**headers, "Content-Type": "application/json", "Idempotency-Key": rid},
    )
    assert first.status_code == 201
    # ... replayed verbatim is an idempotent repeat: the same ticket, no second order;
    again = signed.http.post(
        signed.base_url + "/v1/requests",
        content=body,
        headers={**headers, "Content-Type": "application/json", "Idempotency-Key": rid},
    )
    assert again.status_code == 200 and again.json() == first.json()
    # replayed under another key it is refused;
    other = signed.http.post(
        signed.base_url + "/v1/requests",
        content=body,
        headers={**headers, "Content-Type": "application/json", "Idempotency-Key": "req-x"},
    )
    assert other.status_code == 401 and "replayed" in other.json()["error"]
    # its signature on a tampered body fails.
    tampered = body.replace(b"Art. 23", b"Art. 24")
    forged = signed.http.post(
        signed.base_url + "/v1/requests",
        content=tampered,
        headers={
            TIMESTAMP_HEADER: headers[TIMESTAMP_HEADER],
            SIGNATURE_HEADER: headers[SIGNATURE_HEADER],
            "Content-Type": "application/json",
            "Idempotency-Key": "req-y",
        },
    )
    assert forged.status_code == 401
    stats = simulator.stats()["platforms"][PLATFORM]
    assert stats["deliveries"][rid] == 1
    assert rejections(simulator) == (sig0 + 5, replay0 + 1)


def test_secrets_come_from_the_worker_environment_only() -> None:
    ref = default_reference()
    env = {"DOCKET_SECRET_FACEBOOK": "sk-from-env", "DOCKET_PLATFORM_URL_FACEBOOK": "http://x/fb"}
    eps = docket_worker.platform_endpoints(ref, env)
    assert eps["facebook"].secret == b"sk-from-env"
    assert eps["facebook"].base_url == "http://x/fb"
    assert "sk-from-env" not in repr(eps["facebook"])
    assert eps["youtube"].secret == b""  # no variable: probes work, API calls fail loudly
    assert eps["youtube"].credential_env == "DOCKET_SECRET_YOUTUBE"
    # Nothing a workflow receives can carry a secret: only the variable's name.
    fields: set[str] = set()
    schema = RequestInput.model_json_schema()
    for model in [schema, *schema.get("$defs", {}).values()]:
        fields |= set(model.get("properties", {}))
    assert "credential_env" in fields
    assert not [f for f in fields if any(w in f for w in ("secret", "password", "token"))]
    assert ref.platforms["facebook"].credential_env == "DOCKET_SECRET_FACEBOOK"


@pytest.mark.integration
async def test_the_secret_is_nowhere_in_history_memo_search_attributes_or_audit(
    dev_client: Client,
    simulator: PlatformSimulator,
    facebook_secret: str,
    audit_dir: Path,
    task_queue: str,
) -> None:
    eps = {PLATFORM: endpoint(default_reference(), simulator.base_url(PLATFORM), facebook_secret)}
    async with running_worker(dev_client, eps, audit_dir, task_queue=task_queue):
        rid = await submit(
            dev_client,
            fresh_order(simulator, ["remove--secret-scan"], label="REL", policy=DEMO_POLICY),
        )
        await approve(dev_client, rid, reason="Send it")
        await wait_for(dev_client, rid, state=("monitoring", "closed"), timeout=60)
        described = await dev_client.get_workflow_handle(rid).describe()
        status = await docket.status(dev_client, rid)
        timeline = await docket.timeline(dev_client, rid)
    assert simulator.stats()["platforms"][PLATFORM]["deliveries"][rid] == 1  # it was signed
    hist = await dev_client.get_workflow_handle(rid).fetch_history()
    places = {
        "history": hist.to_json(),
        "memo": json.dumps(await described.memo(), default=str),
        "search attributes": str(described.typed_search_attributes),
        "status": json.dumps(status),
        "timeline": json.dumps(timeline, ensure_ascii=False),
        "audit log": "".join(p.read_text("utf-8") for p in audit_dir.glob("*.jsonl")),
    }
    assert len(await history(dev_client, rid)) > 10
    for where, text in places.items():
        assert facebook_secret not in text, where
        assert facebook_secret.encode().hex() not in text, where
