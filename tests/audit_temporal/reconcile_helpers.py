"""Helpers for tests/audit_temporal: the stack, orders, in-process and subprocess workers, the
killed-worker run, and log inspection."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from docket_harness import identities, issue, signer
from temporalio.client import Client
from temporalio.worker import Worker

from activities.audit import AuditActivities
from activities.platform import PlatformActivities, PlatformEndpoint
from audit.entry import AuditAnchor
from audit.reader import iter_entries
from audit.writer import AuditWriter
from docket import client as docket
from docket import worker_setup as docket_worker
from docket.case import RequestResult
from docket.models import Approve, Command, Order
from docket.reference import ReferenceData, SlaPolicy, default_reference, write_reference
from docket.temporal_names import TASK_QUEUE
from docket.validation import validate_order
from platform_sim.scenarios import PlatformScenario
from platform_sim.server import PlatformSimulator

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
POLICY = "TEST-RECONCILE"
PLATFORM = "facebook"


@dataclass
class Stack:
    address: str
    sim: PlatformSimulator
    secret: str
    reference: ReferenceData

    def endpoints(self) -> dict[str, PlatformEndpoint]:
        return {
            PLATFORM: PlatformEndpoint(
                base_url=self.sim.base_url(PLATFORM),
                secret=self.secret.encode(),
                markers=self.reference.platforms[PLATFORM].markers,
            )
        }

    def worker_env(self, audit_dir: Path) -> dict[str, str]:
        """What `python worker.py` needs (envconfig + Docket settings, the operator's reference
        data written beside the audit directory), nothing else of ours."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "DOCKET_"))}
        reference_dir = write_reference(self.reference, audit_dir.parent / "reference")
        env.update(
            DOCKET_REFERENCE_DIR=str(reference_dir),
            DOCKET_TRUST_FILE=str(identities().trust_file),
            # the simulator stands in for real vantage points (its X-Docket-Vantage header)
            DOCKET_VANTAGE_VN="simulated",
            DOCKET_VANTAGE_CONTROL="simulated",
            TEMPORAL_ADDRESS=self.address,
            TEMPORAL_NAMESPACE="default",
            DOCKET_AUDIT_DIR=str(audit_dir),
            DOCKET_SECRET_FACEBOOK=self.secret,
            DOCKET_PLATFORM_URL_FACEBOOK=self.sim.base_url(PLATFORM),
            DOCKET_LOG_FORMAT="json",
            PYTHONPATH=str(ROOT),
        )
        return env


def reference_with_policy() -> ReferenceData:
    """Shipped reference data plus a policy that closes a complying request in seconds:
    no re-checks, a 2 s appeal window, SLA clocks far beyond the run."""
    base = default_reference()
    policy = SlaPolicy(
        id=POLICY,
        title="Tests only: closes a complying request within seconds",
        legal_basis="vn-c38-2016",
        respond_within=timedelta(minutes=10),
        effect_within=timedelta(minutes=10),
        appeal_window=timedelta(seconds=2),
        rechecks=(),
    )
    platforms = {
        key: p.model_copy(update={"poll_interval": timedelta(seconds=1)})
        for key, p in base.platforms.items()
    }
    return base.model_copy(
        update={"sla_policies": {**base.sla_policies, POLICY: policy}, "platforms": platforms}
    )


@contextlib.contextmanager
def make_stack(address: str) -> Iterator[Stack]:
    secret = f"sk-{PLATFORM}-{secrets.token_hex(12)}"
    scenario = PlatformScenario.preset("comply", ack_delay=0.2, decide_delay=0.5)
    with PlatformSimulator("127.0.0.1", 0, {PLATFORM: secret}, {PLATFORM: scenario}) as sim:
        yield Stack(address, sim, secret, reference_with_policy())


def make_order(stack: Stack, tag: str, tokens: str = "remove.marker") -> Order:
    """A one-item order that the simulator removes (and our probe confirms); `tokens` are the
    simulator's slug tokens (docs/platform-protocol.md)."""
    raw: dict[str, Any] = {
        "authority": "mst",
        "reference": f"rc-{tag}-{secrets.token_hex(3)}",
        "officer": "nguyen.van.an",
        "platform": PLATFORM,
        "legal_bases": [{"basis": "vn-c38-2016", "provision": "Điều 5 khoản 1"}],
        "statement_of_reasons": "Tài khoản mạo danh lãnh đạo nhà nước để đăng tin sai sự thật.",
        "territorial_scope": ["VN"],
        "redress": "The platform and the uploader may appeal to the issuing authority.",
        "sla_policy": POLICY,
        "language": "vi",
        "issued_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "items": [
            {
                "item_id": "i1",
                "url": stack.sim.content_url(PLATFORM, f"{tokens}--{tag}"),
                "content_type": "post",
                "category": "impersonation",
                "reason": "Mạo danh lãnh đạo nhà nước.",
            }
        ],
    }
    return validate_order(raw, stack.reference)


async def submit(client: Client, stack: Stack, tag: str, tokens: str = "remove.marker") -> str:
    ref = stack.reference
    sub = await docket.submit(
        client,
        make_order(stack, tag, tokens),
        signer=signer("nguyen.van.an"),
        reference=ref,
    )
    return sub.request_id


async def wait_state(client: Client, rid: str, state: str, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        with contextlib.suppress(docket.DocketError):
            last = (await docket.status(client, rid))["state"]
            if last == state:
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{rid} did not reach {state} within {timeout}s (last: {last})")


async def approve(client: Client, stack: Stack, rid: str) -> None:
    await wait_state(client, rid, "pending_approval")
    await issue(
        client,
        rid,
        Approve(actor=stack.reference.actor("tran.thi.binh"), reason="Checked (test)"),
    )


async def result_of(client: Client, rid: str, timeout: float = 120.0) -> RequestResult:
    return await asyncio.wait_for(docket.result(client, rid), timeout)


async def anchors_of(client: Client, rid: str) -> list[AuditAnchor]:
    """The anchors the workflow publishes: its result and its memo `audit_anchor`."""
    result = await docket.result(client, rid)
    memo = await (await client.get_workflow_handle(rid).describe()).memo()
    return [
        AuditAnchor(rid, result.audit_count, result.audit_head),
        AuditAnchor.from_dict({"chain_id": rid, **memo["audit_anchor"]}),
    ]


@contextlib.asynccontextmanager
async def in_process_worker(
    client: Client, stack: Stack, audit_dir: Path, audit: type[AuditActivities] = AuditActivities
) -> AsyncIterator[Worker]:
    """The real worker (build_worker), with `audit` (a test subclass) as write_audit_entries."""
    platforms = PlatformActivities(stack.endpoints())
    writer = AuditWriter(audit_dir)
    worker = docket_worker.build_worker(
        client,
        platforms=platforms,
        writer=writer,
        reference=lambda: stack.reference,
        trust=lambda: identities().trust,
        task_queue=TASK_QUEUE,
        audit=audit(writer),
    )
    try:
        async with worker:
            yield worker
    finally:
        await platforms.aclose()
        writer.close()


def entries_by_id(audit_dir: Path | list[Path], rid: str) -> dict[str, set[str]]:
    """event.id -> the distinct hashes the log holds for it (every copy of every segment)."""
    dirs = audit_dir if isinstance(audit_dir, list) else [audit_dir]
    out: dict[str, set[str]] = defaultdict(set)
    for _path, _line, e in iter_entries(dirs, contains=rid.encode()):
        if e["docket"]["chain_id"] == rid:
            out[e["event"]["id"]].add(e["hash"])
    return dict(out)


def timeline_of(audit_dir: Path, rid: str) -> list[dict[str, Any]]:
    """The chain's entries in sequence order, one per sequence."""
    by_seq: dict[int, dict[str, Any]] = {}
    for _, _, e in iter_entries([audit_dir]):
        if e["event"]["id"].rpartition(":")[0] == rid:
            by_seq.setdefault(e["event"]["sequence"], e)
    return [by_seq[s] for s in sorted(by_seq)]


def copies_by_id(audit_dir: Path, rid: str) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for _path, _line, e in iter_entries([audit_dir], contains=rid.encode()):
        if e["docket"]["chain_id"] == rid:
            out[e["event"]["id"]] += 1
    return dict(out)


# --------------------------------------------------------------------------------------------
# The killed-worker run


@dataclass
class KilledRun:
    audit_dir: Path
    request_id: str
    result: RequestResult
    anchors: list[AuditAnchor]
    killed_event_id: str
    kill_to_close_seconds: float  # informative (printed, never asserted)
    before_kill: Any = None  # reconcile result while the workflow waits for approval
    after_kill: Any = None  # reconcile result after the kill, before the new worker
    logs: dict[str, str] = field(default_factory=dict)
    command_outcome: str | None = None  # of the command sent while no worker ran


def _spawn(args: list[str], env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    try:
        return subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT
        )
    finally:
        out.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while proc.poll() is None and loop.time() < deadline:
        await asyncio.sleep(0.1)
    return proc.poll()


async def run_killed_worker(
    stack: Stack,
    client: Client,
    tmp: Path,
    *,
    kill_after: str,
    command_while_down: Command | None = None,
    tokens: str = "remove.marker",
) -> KilledRun:
    """Submit and approve a request under a worker that SIGKILLs itself right after the entry
    of `kill_after` is durable; then (optionally) send `command_while_down`, so that it reaches
    the server before the task the killed worker left is run again; then start a normal
    `python worker.py` and wait for the result."""
    from audit.reconcile import reconcile

    audit_dir = tmp / "audit"
    audit_dir.mkdir()
    marker = tmp / "killed.json"
    env = stack.worker_env(audit_dir)
    killer_env = {
        **env,
        "DOCKET_TEST_KILL_AFTER": kill_after,
        "DOCKET_TEST_KILL_MARKER": str(marker),
    }
    killer = _spawn([str(HERE / "kill_worker.py")], killer_env, tmp / "kill_worker.log")
    normal: subprocess.Popen[bytes] | None = None
    try:
        rid = await submit(client, stack, f"kill-{kill_after}", tokens)
        await wait_state(client, rid, "pending_approval", timeout=60)
        before = await reconcile(client, [str(audit_dir)], workflow_ids=[rid])
        # In the background: when the kill is in approve's own write, its receipt needs the
        # normal worker started below.
        approval = asyncio.create_task(approve(client, stack, rid))
        code = await _wait_exit(killer, 60)
        assert code == -signal.SIGKILL, f"the killing worker exited with {code}, not SIGKILL"
        killed_at = time.monotonic()
        after = await reconcile(client, [str(audit_dir)], workflow_ids=[rid])
        command: asyncio.Task[Any] | None = None
        if command_while_down is not None:
            command = asyncio.create_task(issue(client, rid, command_while_down))
            await asyncio.sleep(1.0)  # admitted by the server before any worker polls
        normal = _spawn(["worker.py"], env, tmp / "worker.log")
        result = await result_of(client, rid, timeout=150)
        await asyncio.wait_for(approval, 30)
        outcome = None
        if command is not None:
            try:
                outcome = f"applied: {await asyncio.wait_for(command, 30)}"
            except docket.DocketError as exc:
                outcome = f"refused: {exc}"
        closed = time.monotonic() - killed_at
        anchors = await anchors_of(client, rid)
    finally:
        _stop(killer)
        if normal is not None:
            _stop(normal)
    import json

    killed = json.loads(marker.read_text())
    logs = {p.name: p.read_text(errors="replace")[-4000:] for p in tmp.glob("*.log")}
    return KilledRun(
        audit_dir, rid, result, anchors, killed["event_id"], closed, before, after, logs, outcome
    )
