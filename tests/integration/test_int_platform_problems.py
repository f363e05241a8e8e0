"""What a platform gets wrong is recorded, not lost in the worker log (issue 17), against a
real HTTP platform on loopback that answers badly on purpose:

- a malformed item (a decline without reasons) does not poison the answer: the valid items'
  effects are recorded, the malformed one is a `platform_problem` entry naming its field, once
  (not at every poll), shown in `status`;
- an item that needs more information carries its question to the authority
  (`info_requested`), like the request-level question;
- a withdrawal the platform refuses (404) keeps the request open in `withdrawing` with the
  refusal on record, until the authority closes it;
- the platform's answers are recorded with how they came (`provenance`).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from docket_harness import (
    Stack,
    actor,
    endpoint,
    fast_reference,
    issue,
    make_order,
    running_worker,
    submit,
    wait_for,
)

from docket import client as docket
from docket.models import Approve, Close, ProvideInfo, Withdraw

pytestmark = pytest.mark.integration


class OddPlatform(BaseHTTPRequestHandler):
    """Accepts orders; answers polls with one valid, one malformed and one questioned item;
    refuses every notice with 404; serves every content page as gone (410)."""

    notices: list[dict[str, Any]] = []  # noqa: RUF012 - shared by the handler's instances

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        if self.path.endswith("/v1/requests"):
            now = datetime.now(UTC).isoformat()
            self._json(201, {"ticket": "ODD-1", "received_at": now})
        else:  # a notice
            OddPlatform.notices.append(body)
            self._json(404, {"error": "no such ticket here"})

    def do_GET(self) -> None:
        if "/content/" in self.path:
            self.send_response(410)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        now = datetime.now(UTC).isoformat()
        self._json(
            200,
            {
                "ticket": "ODD-1",
                "status": "acknowledged",
                "acknowledged_at": now,
                "info_request": None,
                "items": [
                    {"item_id": "i1", "effect": "removed_globally", "effect_at": now},
                    {"item_id": "i2", "effect": "declined", "reason": None},  # malformed
                    {
                        "item_id": "i3",
                        "effect": "needs_more_info",
                        "question": "Which of the two accounts is meant?",
                    },
                ],
            },
        )

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def odd_platform() -> Iterator[str]:
    OddPlatform.notices = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), OddPlatform)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_a_platforms_mistakes_are_on_record(
    dev_stack: Stack, odd_platform: str, task_queue: str, tmp_path: Path
) -> None:
    client = dev_stack.client
    reference = fast_reference()
    platforms = {"facebook": endpoint(reference, f"{odd_platform}/facebook", b"sk-odd")}
    order = make_order(
        dev_stack.sim, f"ODD-{secrets.token_hex(3)}", ["a", "b", "c"], reference=reference
    )
    # the items live on the odd platform too (every page answers 410: gone)
    items = tuple(
        item.model_copy(update={"url": f"{odd_platform}/facebook/content/{item.item_id}"})
        for item in order.items
    )
    order = order.model_copy(update={"items": items})
    async with running_worker(
        client, platforms, tmp_path, task_queue=task_queue, reference=reference
    ):
        rid = await submit(client, order, reference, task_queue=task_queue)
        await wait_for(client, rid, state="pending_approval")
        await issue(client, rid, Approve(actor=actor("tran.thi.binh"), reason="Checked"))
        status = await wait_for(client, rid, state="info_requested", timeout=60)

        timeline = await docket.timeline(client, rid)
        actions = [e["event"]["action"] for e in timeline]
        # the valid item's effect is recorded although another item was malformed ...
        effect = next(e for e in timeline if e["event"]["action"] == "report_effect")
        assert [i["item_id"] for i in effect["docket"]["items"]] == ["i1"]
        assert effect["docket"]["data"]["provenance"] == {
            "channel": "platform_api",
            "platform": "facebook",
            "ticket": "ODD-1",
            "authenticated": None,  # this platform does not sign its answers
        }
        # ... the malformed one is on record, once, naming the field
        problems = [e for e in timeline if e["event"]["action"] == "platform_problem"]
        assert len(problems) == 1, actions
        problem = problems[0]["docket"]["data"]["problem"]
        assert problem["kind"] == "malformed_items"
        [bad] = problem["items"]
        assert (bad["item_id"], bad["path"]) == ("i2", "items[1].reason")
        assert status["platform_problem"]["kind"] == "malformed_items"
        # ... and the item's question reached the authority
        assert "i3: Which of the two accounts is meant?" in status["info_question"]

        # the authority answers: the same question, still in the platform's answer, is not
        # asked again
        await issue(
            client,
            rid,
            ProvideInfo(actor=actor("nguyen.van.an"), reason="Answered", answer="The first one."),
        )
        await wait_for(client, rid, state="acknowledged")
        # this platform refuses every notice: the answer's notice too, on record
        await wait_for(client, rid, until=problem_in("info_provided notice"), timeout=30)

        # a withdrawal the platform refuses keeps the request open, the refusal on record
        receipt = await issue(client, rid, Withdraw(actor=actor("nguyen.van.an"), reason="Done"))
        assert receipt.state == "withdrawing"
        status = await wait_for(client, rid, until=problem_in("withdrawal notice"), timeout=30)
        assert status["state"] == "withdrawing"
        refusal = status["platform_problem"]
        assert refusal["call"] == "withdrawal notice" and refusal["http_status"] == 404
        assert "no such ticket here" in refusal["platform_error"]
        assert [n["kind"] for n in OddPlatform.notices][-1] == "withdrawal"

        closed = await issue(
            client,
            rid,
            Close(actor=actor("nguyen.van.an"), reason="The platform does not know the ticket"),
        )
        assert (closed.state, closed.outcome) == ("closed", "withdrawn")
        timeline = await docket.timeline(client, rid)
        actions = [e["event"]["action"] for e in timeline]
        assert actions.count("request_info") == 1  # asked once, answered once
        # after the withdrawal: its refused notice on record, then the close (a poll that was
        # in flight when the withdrawal came in may record its malformed item again between)
        after = timeline[actions.index("withdraw") :]
        assert after[-1]["event"]["action"] == "close"
        calls = [e["docket"]["data"]["problem"]["call"] for e in after[1:-1]]
        assert calls[-1] == "withdrawal notice" and set(calls) <= {"withdrawal notice", "poll"}


def problem_in(call: str) -> Callable[[dict[str, Any]], bool]:
    """The status records a platform problem of `call`."""
    return lambda status: (
        bool(status.get("platform_problem")) and (status["platform_problem"]["call"] == call)
    )
