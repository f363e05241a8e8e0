"""A command that moves a request while the main loop waits for what causes a system
transition (slow probes, a timer) never wedges it: the system transition no longer applies,
is dropped, and the main loop goes on from the state it finds. (Before, the workflow task
failed on the refused transition, and kept failing.) The session's sweep checks that no
workflow task failed."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from docket_harness import Stack, actor, issue, make_order, submit, wait_for

from docket import client as docket
from docket.models import Approve, DecideAppeal, FileAppeal

pytestmark = [pytest.mark.integration, pytest.mark.slow(18)]


async def test_an_appeal_filed_while_a_recheck_probes_does_not_wedge_the_request(
    dev_stack: Stack,
) -> None:
    client = dev_stack.client
    # slow content pages: every probe takes 2 s, so the first re-check (1 s after the
    # verification) is still probing when the appeal arrives
    order = make_order(
        dev_stack.sim,
        f"RACE-{secrets.token_hex(3)}",
        ["remove.410.slow--race"],
        reference=dev_stack.reference,
    )
    rid = await submit(client, order, dev_stack.reference)
    await wait_for(client, rid, state="pending_approval")
    await issue(client, rid, Approve(actor=actor("tran.thi.binh"), reason="Checked"))
    await wait_for(client, rid, state="monitoring", timeout=60)
    await asyncio.sleep(1.5)  # the re-check's probes are under way
    appeal = await issue(
        client,
        rid,
        FileAppeal(
            actor=actor("hoang.minh.uploader"),
            reason="My post is lawful",
            appellant_type="content_owner",
            target_items=("i1",),
            grounds="Lawful reporting.",
        ),
    )
    assert appeal.state == "appealed"
    await asyncio.sleep(2.5)  # the probes come back: their re-check no longer applies
    status = await docket.status(client, rid)
    assert status["state"] == "appealed"
    decided = await issue(
        client,
        rid,
        DecideAppeal(actor=actor("pham.thi.dung"), reason="Removal upheld", outcome="upheld"),
    )
    assert decided.state == "monitoring"
    result = await asyncio.wait_for(docket.result(client, rid), 90)
    assert (result.state, result.outcome) == ("closed", "complied")
    timeline = await docket.timeline(client, rid)
    actions = [e["event"]["action"] for e in timeline]
    # no re-check recorded between the appeal and its decision: it was dropped, not applied
    between = actions[actions.index("file_appeal") + 1 : actions.index("decide_appeal")]
    assert "recheck" not in between, actions
