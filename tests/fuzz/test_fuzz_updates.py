"""Every Update (human trigger) fed random and malformed payloads on a running workflow on the
dev server: each is rejected, or applied cleanly; never a workflow task failure, never a
half-done transition (the audit count moves by exactly one with the state, or not at all).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from docket_harness import (
    DEMO_POLICY,
    PLATFORM,
    UPDATE_EVENTS,
    count_events,
    endpoint,
    failed_tasks,
    fresh_order,
    history,
    running_worker,
    submit,
    wait_for,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from temporalio.client import Client, WorkflowUpdateFailedError

from docket import client as docket
from docket.lifecycle import HUMAN_TRIGGERS, roles_for
from docket.reference import default_reference
from platform_sim.server import PlatformSimulator

pytestmark = pytest.mark.integration

REF = default_reference()
ACTORS = [REF.actor(a).model_dump(mode="json") for a in sorted(REF.actors)]
NASTY = st.sampled_from(
    ["", "  ", "ok", "a\r\nb", "nul\x00", "\u2028", "Gỡ bỏ 删除 🙂", "x" * 30_000, "i1", "i9"]
)
TEXT = st.one_of(NASTY, st.text(max_size=30))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=10,
)
ACTOR = st.one_of(
    st.sampled_from(ACTORS),
    st.fixed_dictionaries({"id": TEXT, "roles": st.lists(TEXT, max_size=3), "organization": TEXT}),
    JSON,
)
EFFECT = st.fixed_dictionaries(
    {
        "item_id": st.sampled_from(["i1", "i2", "I1", ""]),
        "effect": st.sampled_from(["removed_globally", "restricted", "declined", "gone"]),
    },
    optional={"restricted_in": st.lists(TEXT, max_size=2), "reason": TEXT},
)
EXTRA: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "acknowledge": {"acknowledged_at": st.one_of(st.none(), TEXT)},
    "report_effect": {"effects": st.lists(EFFECT, max_size=3)},
    "request_info": {"question": TEXT},
    "provide_info": {"answer": TEXT},
    "file_appeal": {
        "appellant_type": st.sampled_from(["content_owner", "platform", "authority", "x"]),
        "target_items": st.lists(st.sampled_from(["i1", "i2", "zz"]), max_size=2),
        "grounds": TEXT,
    },
    "decide_appeal": {
        "outcome": st.sampled_from(["upheld", "reversed", "partially_reversed", "maybe"]),
        "reversed_items": st.lists(st.sampled_from(["i1", "zz"]), max_size=2),
    },
}


VALID_EXTRA: dict[str, dict[str, Any]] = {
    "report_effect": {"effects": [{"item_id": "i1", "effect": "removed_globally"}]},
    "request_info": {"question": "Which provision?"},
    "provide_info": {"answer": "Article 5"},
    "file_appeal": {"appellant_type": "content_owner", "target_items": ["i1"], "grounds": "Lawful"},
    "decide_appeal": {"outcome": "upheld"},
}


def entitled(trigger: str) -> list[dict[str, Any]]:
    roles = {r.value for r in roles_for(trigger)}
    return [a for a in ACTORS if roles & set(a["roles"]) and a["id"] != "nguyen.van.an"]


@st.composite
def payloads(draw: st.DrawFn) -> tuple[str, Any]:
    trigger = draw(st.sampled_from(HUMAN_TRIGGERS))
    if draw(st.integers(0, 3)) == 0:  # well-formed, by someone entitled: may well apply
        who = entitled(trigger)
        if who:
            valid = {"actor": draw(st.sampled_from(who)), "reason": "Checked by the fuzzer"}
            return trigger, valid | VALID_EXTRA.get(trigger, {})
    if draw(st.integers(0, 5)) == 0:
        return trigger, draw(JSON)
    body: dict[str, Any] = {
        "actor": draw(ACTOR),
        "reason": draw(st.one_of(st.just("Checked by the fuzzer"), TEXT)),
    }
    for key, strategy in EXTRA.get(trigger, {}).items():
        if draw(st.integers(0, 4)):
            body[key] = draw(strategy)
    if draw(st.integers(0, 6)) == 0:
        body[draw(TEXT)] = draw(JSON)  # unknown field
    return trigger, body


class Target:
    """The workflow under fuzz; replaced by a fresh one when it closes."""

    def __init__(self, client: Client, simulator: PlatformSimulator) -> None:
        self.client = client
        self.sim = simulator
        self.rid = ""
        self.applied = 0
        self.rejected = 0

    async def current(self) -> str:
        if self.rid:
            status = await docket.status(self.client, self.rid)
            if status["state"] != "closed":
                return self.rid
        self.rid = await submit(
            self.client,
            fresh_order(self.sim, ["remove--fuzz", "decline--fz"], label="REL", policy=DEMO_POLICY),
        )
        await wait_for(self.client, self.rid, until=lambda s: s["state"] != "submitting")
        return self.rid


@pytest.fixture
async def target(
    dev_client: Client,
    simulator: PlatformSimulator,
    facebook_secret: str,
    audit_dir: Path,
    task_queue: str,
) -> Any:
    eps = {PLATFORM: endpoint(REF, simulator.base_url(PLATFORM), facebook_secret)}
    async with running_worker(dev_client, eps, audit_dir, task_queue=task_queue):
        yield Target(dev_client, simulator)


@settings(
    max_examples=40,  # each a real Update on the dev server (80 before)
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=payloads())
async def test_every_update_is_rejected_or_applied_cleanly(
    target: Target, case: tuple[str, Any]
) -> None:
    trigger, payload = case
    client = target.client
    rid = await target.current()
    before = await docket.status(client, rid)
    events = await history(client, rid)
    updates_before = count_events(events, *UPDATE_EVENTS)
    handle = client.get_workflow_handle(rid)
    try:
        receipt = await handle.execute_update(trigger, payload, id=f"fuzz-{uuid.uuid4()}")
    except WorkflowUpdateFailedError as exc:
        target.rejected += 1
        event(f"rejected: {type(exc.cause).__name__}")
        assert exc.cause is not None and str(exc.cause), trigger
        # No half-done transition: nothing was recorded for it. (The run may still move on by
        # itself meanwhile, through a timer or a poll, so other entries may appear.)
        actor = payload.get("actor") if isinstance(payload, dict) else None
        actor_id = actor.get("id") if isinstance(actor, dict) else None
        since = (await docket.timeline(client, rid))[before["audit"]["count"] :]
        assert not [
            e for e in since if e["event"]["action"] == trigger and e["user"]["id"] == actor_id
        ], since
        assert count_events(await history(client, rid), *UPDATE_EVENTS) >= updates_before
    else:
        target.applied += 1
        event(f"applied: {trigger}")
        after = await docket.status(client, rid)
        assert receipt["trigger"] == trigger
        # Exactly one new entry for this transition, durable before the receipt came back.
        assert receipt["sequence"] > before["audit"]["count"]
        assert after["audit"]["count"] >= receipt["sequence"]
        timeline = await docket.timeline(client, rid)
        entry = timeline[receipt["sequence"] - 1]
        assert entry["event"]["action"] == trigger and entry["hash"] == receipt["hash"]
        assert entry["docket"]["to_state"] == receipt["state"]
        assert entry["user"]["id"] == payload["actor"]["id"]
    final = await history(client, rid)
    assert failed_tasks(final) == [], final[-1]
    status = await docket.status(client, rid)
    timeline = await docket.timeline(client, rid)  # queried after: the run may have moved on
    assert [e["event"]["sequence"] for e in timeline] == list(range(1, len(timeline) + 1))
    assert len(timeline) >= status["audit"]["count"]
