"""Crash-and-restart drill: N requests through full lifecycles while the worker is SIGKILLed.

    python bench/drill/drill.py --n 30 --kills 3                 # ~2 minutes
    python bench/drill/drill.py --n 500 --kills 12 --json var/drill/report.json

What it does (DESIGN.md invariant 7, "nothing lost"):

1. starts the Temporal dev server with a SQLite file (``DevServer(db_file=...)``), the platform
   simulator (in this process) and the real worker as a separate OS process
   (``python worker.py``, configured only through its environment: TEMPORAL_ADDRESS,
   DOCKET_AUDIT_DIR, DOCKET_SECRET_FACEBOOK, DOCKET_PLATFORM_URL_FACEBOOK);
2. submits N requests with a mix of platform scenarios whose outcome is known in advance
   (comply, partial, decline, ignore -> escalate, flaky API, rejected by the approver), with the
   DEMO-VN-C38 policy (20 s clocks) and a 1 s poll interval, and drives the human steps
   (approve / reject / escalate) through Temporal Updates with stable update ids;
3. meanwhile SIGKILLs the worker at random instants and restarts it, and once stops the dev
   server and starts it again on the same database;
4. afterwards checks: every request closed with the outcome its scenario implies; the audit
   log verifies with no finding against the anchors from the workflow results; every completed
   audit-write activity in each workflow history has its entry (count == anchor count); no
   workflow task failed; the simulator opened exactly one ticket per delivered request, with
   no idempotency conflict, and received exactly the notices the log records.

The report (``--json``) holds every figure and a ``failures`` list; exit status 0 = all checks
passed, 1 = a check failed, 2 = the drill could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: the project's packages live at the root
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client  # noqa: E402

from audit.entry import AuditAnchor  # noqa: E402
from audit.reconcile import local_audit_writes  # noqa: E402
from audit.verify import verify_paths  # noqa: E402
from docket import client as docket  # noqa: E402
from docket import temporal_names as names  # noqa: E402
from docket.case import RequestResult  # noqa: E402
from docket.devserver import DevServer, free_port, port_in_use  # noqa: E402
from docket.models import Order  # noqa: E402
from docket.provision import Identities, provision  # noqa: E402
from docket.reference import ReferenceData, default_reference, write_reference  # noqa: E402
from docket.validation import (  # noqa: E402
    read_request_file,
    validate_order,
    workflow_id_for,
)
from platform_sim.scenarios import PlatformScenario  # noqa: E402
from platform_sim.server import PlatformSimulator  # noqa: E402

TEMPLATE = ROOT / "examples" / "seed" / "mic-youtube-2017.json"
POLICY = "DEMO-VN-C38"
PLATFORM = "facebook"
MAKER = "nguyen.van.an"
APPROVER = "tran.thi.binh"
AUDIT_ACTIVITY = "write_audit_entries"

T = TypeVar("T")


@dataclass(frozen=True)
class Scenario:
    """Slug templates (simulator tokens decide the platform's behaviour) and the outcome."""

    slugs: tuple[str, ...]
    expect: str
    human: str = "approve"  # approve | reject
    escalate: bool = False


SCENARIOS: dict[str, Scenario] = {
    "comply": Scenario(("remove--{tag}",), "complied"),
    "partial": Scenario(("remove--{tag}-a", "decline--{tag}-b"), "partially_complied"),
    "decline": Scenario(("decline--{tag}",), "declined"),
    "ignore": Scenario(("ignore.remove--{tag}",), "unresponsive", escalate=True),
    "flaky": Scenario(("flaky3.remove--{tag}",), "complied"),
    "reject": Scenario(("remove--{tag}",), "rejected", human="reject"),
}


@dataclass
class DrillConfig:
    n: int = 30
    kills: int = 3
    server_restart: bool = True
    seed: int = 1
    poll_seconds: float = 1.0
    kill_every: tuple[float, float] = (6.0, 18.0)  # seconds between kills
    down_for: tuple[float, float] = (0.2, 3.0)  # seconds the worker stays dead
    timeout: float = 900.0
    var: Path = ROOT / "var" / "drill"
    mix: tuple[str, ...] = tuple(SCENARIOS)


@dataclass
class DrillReport:
    config: dict[str, Any]
    wall_seconds: float = 0.0
    submit_seconds: float = 0.0
    requests: int = 0
    by_scenario: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    mismatched: list[dict[str, Any]] = field(default_factory=list)
    kills: list[float] = field(default_factory=list)  # seconds since start
    worker_starts: int = 0
    unexpected_worker_exits: int = 0
    server_restarts: list[float] = field(default_factory=list)
    commands_sent: dict[str, int] = field(default_factory=dict)
    command_retries: int = 0
    command_resends: int = 0
    commands_refused: list[str] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)
    audit_findings: list[str] = field(default_factory=list)
    audit_segments: int = 0
    history: dict[str, int] = field(default_factory=dict)
    history_mismatches: list[str] = field(default_factory=list)
    simulator: dict[str, Any] = field(default_factory=dict)
    secret_found_in: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def say(text: str) -> None:
    print(f"drill: {text}", file=sys.stderr, flush=True)


# --- the worker as a separate OS process -----------------------------------------------------


class WorkerProcess:
    """`python worker.py`, configured only through its environment, killable with SIGKILL."""

    def __init__(self, env: dict[str, str], log_file: Path) -> None:
        self.env = env
        self.log_file = log_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        log = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "worker.py")],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self.starts += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def worker_env(
    address: str, audit_dir: Path, sim: PlatformSimulator, secret: str, reference_dir: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "DOCKET_"))}
    env.update(
        # the simulator stands in for real vantage points (its X-Docket-Vantage header)
        DOCKET_VANTAGE_VN="simulated",
        DOCKET_VANTAGE_CONTROL="simulated",
        DOCKET_REFERENCE_DIR=str(reference_dir),
        TEMPORAL_ADDRESS=address,
        TEMPORAL_NAMESPACE="default",
        DOCKET_AUDIT_DIR=str(audit_dir),
        DOCKET_LOG_FORMAT="json",
        DOCKET_SECRET_FACEBOOK=secret,
        DOCKET_PLATFORM_URL_FACEBOOK=sim.base_url(PLATFORM),
        PYTHONUNBUFFERED="1",
    )
    return env


# --- the drill -------------------------------------------------------------------------------


class Drill:
    def __init__(self, config: DrillConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.reference: ReferenceData = default_reference()
        self.identities: Identities
        self.report = DrillReport(config={k: _jsonable(v) for k, v in asdict(config).items()})
        self.plan: dict[str, str] = {}  # request id -> scenario name
        self.acted: set[tuple[str, str]] = set()
        self.inflight: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.t0 = time.monotonic()
        self.done = asyncio.Event()
        self.server: DevServer | None = None
        self.worker: WorkerProcess | None = None
        self.client: Client | None = None

    def since(self) -> float:
        return round(time.monotonic() - self.t0, 2)

    async def run(self) -> DrillReport:
        cfg = self.config
        var = cfg.var
        if var.exists() and any(var.iterdir()):
            raise SystemExit(f"drill: {var} is not empty; remove it or pass another --var")
        var.mkdir(parents=True, exist_ok=True)
        audit_dir = var / "audit"
        audit_dir.mkdir()
        secret = secrets.token_hex(16)
        self.secret = secret
        self.server = DevServer(
            port=free_port(),
            ui_port=None,
            db_file=var / "temporal.db",
            log_file=var / "temporal.log",
        )
        self.server.start()
        try:
            with PlatformSimulator(
                secrets={PLATFORM: secret},
                scenarios={PLATFORM: PlatformScenario.preset("comply")},
            ) as sim:
                # the operator's configuration for the drill: platforms polled every
                # poll_seconds
                platforms = {
                    key: p.model_copy(
                        update={"poll_interval": timedelta(seconds=self.config.poll_seconds)}
                    )
                    for key, p in self.reference.platforms.items()
                }
                reference_dir = write_reference(
                    self.reference.model_copy(update={"platforms": platforms}), var / "reference"
                )
                self.identities = provision(
                    var / "identities", self.reference, now=datetime.now(UTC)
                )
                env = worker_env(self.server.address, audit_dir, sim, secret, reference_dir)
                env["DOCKET_TRUST_FILE"] = str(self.identities.trust_file)
                self.worker = WorkerProcess(env, var / "worker.log")
                self.worker.start()
                try:
                    await self._drive(sim, audit_dir)
                finally:
                    self.worker.stop()
                    self.report.worker_starts = self.worker.starts
        finally:
            self.server.stop()
        self._check_secret(var, audit_dir)
        self.report.wall_seconds = self.since()
        return self.report

    def _check_secret(self, var: Path, audit_dir: Path) -> None:
        """Invariant 8: the signing secret lives in the worker's environment only."""
        needle = self.secret.encode()
        files = [var / "temporal.db", *sorted(audit_dir.glob("*.jsonl"))]
        files += sorted(var.glob("temporal.db-*"))  # SQLite WAL/journal, if any
        for path in files:
            if path.is_file() and needle in path.read_bytes():
                self.report.secret_found_in.append(str(path))
        if self.report.secret_found_in:
            self.report.failures.append(f"secret found in {self.report.secret_found_in}")

    async def _drive(self, sim: PlatformSimulator, audit_dir: Path) -> None:
        assert self.server is not None
        self.client = await self.server.connect(identity="docket-drill")
        orders = self._orders(sim)
        t_submit = time.monotonic()
        gate = asyncio.Semaphore(16)

        async def submit_one(order: Order) -> None:
            async with gate:
                await self._retry(
                    lambda: docket.submit(
                        self._c(),
                        order,
                        signer=self.identities.signer(MAKER),
                        reference=self.reference,
                    )
                )

        await asyncio.gather(*(submit_one(o) for o in orders))
        self.report.submit_seconds = round(time.monotonic() - t_submit, 2)
        self.report.requests = len(orders)
        self.report.by_scenario = dict(Counter(self.plan.values()))
        say(f"submitted {len(orders)} requests in {self.report.submit_seconds}s")
        chaos = asyncio.create_task(self._chaos())
        try:
            await asyncio.wait_for(self._control(), self.config.timeout)
        except TimeoutError:
            self.report.failures.append(
                f"timeout: not every request closed within {self.config.timeout}s: "
                + json.dumps(await self._open_states())
            )
            return
        finally:
            self.done.set()
            chaos.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await chaos
            for task in self.inflight.values():
                task.cancel()
        say(f"all {len(orders)} requests closed at t={self.since()}s; checking")
        results = await self._results()
        self._check_outcomes(results)
        counts = await self._check_histories(results)
        self._check_audit(audit_dir, results)
        self._check_simulator(sim, audit_dir, counts)

    def _c(self) -> Client:
        assert self.client is not None
        return self.client

    def _orders(self, sim: PlatformSimulator) -> list[Order]:
        raw = next(iter(read_request_file(TEMPLATE))).data
        run = f"{int(time.time()) % 100000:05d}{self.rng.randrange(1000):03d}"
        mix = self.config.mix
        orders = []
        for i in range(self.config.n):
            name = mix[i % len(mix)]
            scenario = SCENARIOS[name]
            tag = f"d{run}-{i:05d}"
            data = dict(raw)
            data.update(
                reference=f"DRILL-{run}-{i:05d}",
                platform=PLATFORM,
                sla_policy=POLICY,
                items=[
                    {
                        "item_id": f"i{k + 1}",
                        "url": sim.content_url(PLATFORM, slug.format(tag=tag)),
                        "content_type": "post",
                        "category": "impersonation",
                        "reason": f"Drill item {k + 1} of request {i} ({name}).",
                    }
                    for k, slug in enumerate(scenario.slugs)
                ],
            )
            order = validate_order(data, self.reference, source=f"drill[{i}]")
            self.plan[workflow_id_for(order.authority, order.reference)] = name
            orders.append(order)
        self.rng.shuffle(orders)
        return orders

    # --- chaos -------------------------------------------------------------------------

    async def _chaos(self) -> None:
        cfg = self.config
        assert self.worker is not None and self.server is not None
        restart_at = cfg.kills // 2 if cfg.server_restart else -1
        for k in range(cfg.kills):
            await asyncio.sleep(self.rng.uniform(*cfg.kill_every))
            self.worker.kill()
            self.report.kills.append(self.since())
            say(f"SIGKILL worker #{k + 1} at t={self.since()}s")
            await asyncio.sleep(self.rng.uniform(*cfg.down_for))
            if k == restart_at:
                await self._restart_server()
            self.worker.start()
        if cfg.server_restart and cfg.kills == 0:
            await asyncio.sleep(self.rng.uniform(*cfg.kill_every))
            await self._restart_server()
        while not self.done.is_set():  # keep a worker up: restart it if it died on its own
            await asyncio.sleep(1.0)
            if not self.worker.alive() and not self.done.is_set():
                self.report.unexpected_worker_exits += 1
                say("the worker exited on its own; restarting it")
                self.worker.start()

    async def _restart_server(self) -> None:
        assert self.server is not None
        say(f"stopping the dev server at t={self.since()}s (database kept)")
        await asyncio.to_thread(self.server.stop)
        self.report.server_restarts.append(self.since())
        await asyncio.sleep(1.0)
        for _ in range(60):
            if not port_in_use(self.server.port):
                break
            await asyncio.sleep(0.5)
        await asyncio.to_thread(self.server.start)
        say(f"dev server back at t={self.since()}s")

    # --- the human side ------------------------------------------------------------------

    async def _control(self) -> None:
        while True:
            finished = await self._retry(lambda: self._ids("ExecutionStatus != 'Running'"))
            failed = [rid for rid, status in finished.items() if status != "COMPLETED"]
            if failed:
                raise RuntimeError(f"workflows did not complete: {failed[:5]}")
            if len(finished) >= len(self.plan):
                return
            for state, trigger in (("pending_approval", None), ("unresponsive", "escalate")):
                listed = await self._retry(lambda s=state: self._ids(f"RequestState = '{s}'"))  # type: ignore[misc]
                for rid in listed:
                    scenario = SCENARIOS[self.plan[rid]]
                    action = trigger or scenario.human
                    if action == "escalate" and not scenario.escalate:
                        continue
                    key = (rid, action)
                    if key in self.acted or key in self.inflight:
                        continue
                    self.inflight[key] = asyncio.create_task(self._command(rid, action))
            await asyncio.sleep(1.0)

    async def _ids(self, where: str) -> dict[str, str]:
        query = f"WorkflowType = '{names.WORKFLOW_NAME}' AND {where}"
        out = {}
        async for execution in self._c().list_workflows(query):
            if execution.id in self.plan:
                status = execution.status
                out[execution.id] = status.name if status is not None else "UNKNOWN"
        return out

    async def _command(self, rid: str, action: str) -> None:
        reason = {
            "approve": "Drill: checked, send it",
            "reject": "Drill: legal basis insufficient",
            "escalate": "Drill: no answer, escalate",
        }[action]
        approver = self.identities.signer(APPROVER)
        update_id = f"drill-{action}-{rid}"  # stable: a resend is deduplicated by Temporal
        try:
            # Bounded: an Update admitted just before a kill or the server restart is resent
            # (same id) on the next round instead of being awaited forever.
            await asyncio.wait_for(
                self._retry(
                    lambda: docket.send_command(
                        self._c(),
                        rid,
                        action,
                        {"reason": reason},
                        signer=approver,
                        update_id=update_id,
                    )
                ),
                60,
            )
            self.report.commands_sent[action] = self.report.commands_sent.get(action, 0) + 1
            self.acted.add((rid, action))
        except docket.CommandRefused as exc:
            self.report.commands_refused.append(f"{rid} {action}: {exc}")
            self.acted.add((rid, action))
        except Exception as exc:  # resent next round, same update id
            self.report.command_resends += 1
            say(f"{action} {rid}: {type(exc).__name__}: {exc}; resending")
        finally:
            self.inflight.pop((rid, action), None)

    async def _retry(self, call: Callable[[], Awaitable[T]], attempts: int = 120) -> T:
        """Through worker kills and the server restart: the client's one retry helper, with
        the patience of a drill (minutes, not seconds)."""

        async def counted() -> T:
            self.report.command_retries += 1
            return await call()

        try:
            result = await docket.retrying(counted, attempts=attempts, max_delay=3.0)
        except docket.Unavailable as exc:
            raise RuntimeError(f"gave up after {attempts} attempts: {exc}") from None
        self.report.command_retries -= 1  # the call that succeeded was not a retry
        return result

    async def _open_states(self) -> dict[str, str]:
        out = {}
        for rid in self.plan:
            with contextlib.suppress(Exception):
                desc = await self._c().get_workflow_handle(rid).describe()
                state = desc.typed_search_attributes.get(names.REQUEST_STATE)
                if desc.status is None or desc.status.name == "RUNNING":
                    out[rid] = f"{self.plan[rid]}: {state}"
        return out

    # --- checks --------------------------------------------------------------------------

    async def _results(self) -> dict[str, RequestResult]:
        results: dict[str, RequestResult] = {}
        for rid in self.plan:
            results[rid] = await self._retry(lambda r=rid: docket.result(self._c(), r))  # type: ignore[misc]
        return results

    def _check_outcomes(self, results: dict[str, RequestResult]) -> None:
        outcomes: Counter[str] = Counter()
        for rid, result in results.items():
            expected = SCENARIOS[self.plan[rid]].expect
            outcomes[str(result.outcome)] += 1
            if result.outcome != expected or result.state != "closed":
                self.report.mismatched.append(
                    {
                        "request_id": rid,
                        "scenario": self.plan[rid],
                        "expected": expected,
                        "outcome": result.outcome,
                        "state": result.state,
                    }
                )
        self.report.outcomes = dict(outcomes)
        if self.report.mismatched:
            self.report.failures.append(
                f"{len(self.report.mismatched)} request(s) ended with an unexpected outcome"
            )
        if self.report.commands_refused:
            self.report.failures.append(
                f"{len(self.report.commands_refused)} drill command(s) refused"
            )

    async def _check_histories(self, results: dict[str, RequestResult]) -> Counter[str]:
        """Completed audit writes in each history == its anchor count; no failed task."""
        totals: Counter[str] = Counter()
        for rid, result in results.items():
            history = await self._c().get_workflow_handle(rid).fetch_history()
            scheduled: dict[int, str] = {}
            completed: Counter[str] = Counter()
            for event in history.events:
                if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                    attrs = event.activity_task_scheduled_event_attributes
                    scheduled[event.event_id] = attrs.activity_type.name
                elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                    attrs_c = event.activity_task_completed_event_attributes
                    completed[scheduled[attrs_c.scheduled_event_id]] += 1
                elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
                    # a local audit write: its marker's result lists what it wrote
                    local = await local_audit_writes(self._c().data_converter, event)
                    completed[AUDIT_ACTIVITY] += len(local)
                elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    totals["workflow_task_failed"] += 1
                    self.report.history_mismatches.append(f"{rid}: workflow task failed")
                elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
                    totals["activity_timeouts"] += 1
            totals["events"] += len(history.events)
            for name, count in completed.items():
                totals[f"completed:{name}"] += count
            if completed[AUDIT_ACTIVITY] != result.audit_count:
                self.report.history_mismatches.append(
                    f"{rid}: {completed[AUDIT_ACTIVITY]} completed audit writes in history, "
                    f"anchor count {result.audit_count}"
                )
        self.report.history = dict(totals)
        if self.report.history_mismatches:
            self.report.failures.append(
                f"{len(self.report.history_mismatches)} history/audit mismatch(es)"
            )
        return totals

    def _check_audit(self, audit_dir: Path, results: dict[str, RequestResult]) -> None:
        anchors = [
            AuditAnchor(rid, result.audit_count, result.audit_head)
            for rid, result in results.items()
        ]
        verified = verify_paths([audit_dir], anchors=anchors)
        self.report.audit = verified.summary()
        self.report.audit_segments = len(list(audit_dir.glob("*.jsonl")))
        self.report.audit_findings = [f.render() for f in verified.findings]
        if verified.anchors_checked != len(anchors):
            self.report.failures.append(
                f"audit: {verified.anchors_checked} anchors checked, {len(anchors)} expected"
            )
        if not verified.ok:
            self.report.failures.append(f"audit verify: {verified.by_code()}")
        if verified.entries != sum(r.audit_count for r in results.values()):
            self.report.failures.append(
                f"audit: {verified.entries} distinct entries, anchors sum to "
                f"{sum(r.audit_count for r in results.values())}"
            )

    def _check_simulator(
        self, sim: PlatformSimulator, audit_dir: Path, history: Counter[str]
    ) -> None:
        stats = sim.stats()["platforms"].get(PLATFORM, {})
        actions = _logged_actions(audit_dir)
        delivered = actions.get("delivered", 0)
        second_notices = actions.get("sla_expired->second_notice", 0)
        self.report.simulator = {
            "tickets": stats.get("tickets", 0),
            "new_orders": stats.get("total_deliveries", 0),
            "idempotent_repeats": stats.get("total_duplicate_deliveries", 0),
            "delivery_attempts": sum(stats.get("delivery_attempts", {}).values()),
            "conflicts": stats.get("conflicts", 0),
            "notices": stats.get("notices", {}),
            "duplicate_notices": stats.get("duplicate_notices", 0),
            "injected_503": stats.get("injected_503", 0),
            "signature_rejections": stats.get("signature_rejections", 0),
            "replays_rejected": stats.get("replays_rejected", 0),
            "polls": stats.get("polls", 0),
            "logged_delivered": delivered,
            "logged_second_notices": second_notices,
        }
        twice = {k: v for k, v in stats.get("deliveries", {}).items() if v != 1}
        failures = self.report.failures
        if twice:
            failures.append(f"simulator: keys delivered more than once: {twice}")
        if stats.get("total_deliveries", 0) != delivered:
            failures.append(
                f"simulator opened {stats.get('total_deliveries', 0)} orders, "
                f"the audit log records {delivered} deliveries"
            )
        if history.get("completed:deliver_order", 0) != delivered:
            failures.append(
                f"{history.get('completed:deliver_order', 0)} completed deliveries in histories,"
                f" {delivered} in the audit log"
            )
        if stats.get("conflicts", 0):
            failures.append(f"simulator: {stats['conflicts']} idempotency conflicts")
        if stats.get("notices", {}).get("second_notice", 0) != second_notices:
            failures.append(
                f"simulator received {stats.get('notices', {}).get('second_notice', 0)} second "
                f"notices, the audit log records {second_notices}"
            )
        if stats.get("signature_rejections", 0) or stats.get("replays_rejected", 0):
            failures.append("simulator rejected signed calls (signature or replay)")


def _logged_actions(audit_dir: Path) -> Counter[str]:
    """Distinct entries by action (and sla_expired by destination) across all segments."""
    seen: set[str] = set()
    actions: Counter[str] = Counter()
    for path in sorted(audit_dir.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            with contextlib.suppress(orjson.JSONDecodeError):
                entry = orjson.loads(line)
                eid = entry["event"]["id"]
                if eid in seen:
                    continue
                seen.add(eid)
                action = entry["event"]["action"]
                if action == "sla_expired":
                    action = f"sla_expired->{entry['docket']['to_state']}"
                actions[action] += 1
    return actions


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


async def run_drill(config: DrillConfig) -> DrillReport:
    """Run the drill; the report says what was measured and lists any failed check."""
    return await Drill(config).run()


def _range(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition(":")
    low, high = float(lo), float(hi or lo)
    if low < 0 or high < low:
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH seconds, got {text!r}")
    return low, high


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/drill/drill.py", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--n", type=int, default=30, help="requests (default 30)")
    parser.add_argument("--kills", type=int, default=3, help="worker SIGKILLs (default 3)")
    parser.add_argument(
        "--no-server-restart", action="store_true", help="do not restart the dev server"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--poll", type=float, default=1.0, help="platform poll interval, s")
    parser.add_argument(
        "--kill-every", type=_range, default=(6.0, 18.0), help="LOW:HIGH s between kills"
    )
    parser.add_argument(
        "--down-for", type=_range, default=(0.2, 3.0), help="LOW:HIGH s the worker stays dead"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after, s")
    parser.add_argument(
        "--mix",
        default=",".join(SCENARIOS),
        help=f"scenarios, cycled over the requests (default {','.join(SCENARIOS)})",
    )
    parser.add_argument("--var", type=Path, default=None, help="state dir (must be empty)")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    args = parser.parse_args(argv)
    mix = tuple(m.strip() for m in args.mix.split(",") if m.strip())
    unknown = [m for m in mix if m not in SCENARIOS]
    if unknown or args.n < 1 or args.kills < 0:
        parser.error(f"--mix: unknown scenarios {unknown}" if unknown else "--n/--kills")
    config = DrillConfig(
        n=args.n,
        kills=args.kills,
        server_restart=not args.no_server_restart,
        seed=args.seed,
        poll_seconds=args.poll,
        kill_every=args.kill_every,
        down_for=args.down_for,
        timeout=args.timeout,
        var=args.var or ROOT / "var" / "drill" / time.strftime("%Y%m%d-%H%M%S"),
        mix=mix,
    )
    try:
        report = asyncio.run(run_drill(config))
    except KeyboardInterrupt:
        return 130
    data = report.to_dict()
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    summary = {
        k: data[k]
        for k in (
            "ok",
            "requests",
            "wall_seconds",
            "outcomes",
            "kills",
            "server_restarts",
            "audit",
            "simulator",
            "history",
            "failures",
        )
    }
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
