"""Suite `lifecycle`: Docket's real lifecycle against a bare workflow of the same shape.

Both run on the same dev server, alternating (docket, bare, docket, bare, ...), each trial
with a fresh worker process (its own CPU and peak RSS) on its own task queue. A trial starts
N requests at once and drives each one the way a script does: submit, approve (an Update,
retried while the request is still capturing its baseline), then wait for the result. The
platform simulator (its own process) complies: ack after 1 s, decision after 1 s more; the
BENCH policy re-checks after 1 s and 2 s and closes the appeal window after 3 s.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from audit.reconcile import LOCAL_ACTIVITY_MARKER
from bench.bare import WORKFLOW_NAME as BARE_WORKFLOW
from bench.bare import BareInput, BareResult
from bench.common import Table, fmt, median, percentile, ratio, say
from bench.stack import PLATFORM, Server, Simulator, WorkerProcess
from docket import client as docket
from docket.devserver import connect_when_ready
from docket.intake import resolve
from docket.models import Order
from docket.provision import Identities, provision
from docket.reference import ReferenceData, SlaPolicy, default_reference, parse_duration
from docket.temporal_names import TASK_QUEUE
from docket.validation import validate_order, workflow_id_for

POLL = timedelta(seconds=1)
BENCH_POLICY = SlaPolicy(
    id="BENCH-C38",
    title="Benchmark only: Circular 38 with re-checks after 1 s and 2 s, appeal window 3 s",
    legal_basis="vn-c38-2016",
    respond_within=parse_duration("1h"),
    second_notice_within=parse_duration("1h"),
    effect_within=parse_duration("1h"),
    appeal_window=parse_duration("3s"),
    rechecks=(parse_duration("1s"), parse_duration("2s")),
    demo=True,
)
# three items: removed (page marker), removed (410), restricted in VN
ITEMS = (
    ("account", "impersonation", "remove.marker--gia-mao-lanh-dao"),
    ("post", "incitement", "remove.410--keu-goi-tu-tap"),
    ("post", "defamation", "restrict--vu-khong-quan-chuc"),
)
RETRY_NOT_READY = 0.25  # seconds between approve attempts while the request is not ready


def bench_identities() -> Identities:
    """The benchmarks' roster of keys and credentials (made once, reused by every run)."""
    return provision(
        Path(tempfile.gettempdir()) / "docket-bench-identities",
        default_reference(),
        now=datetime.now(UTC),
    )


def bench_reference(poll_interval: timedelta = POLL) -> ReferenceData:
    """The operator's configuration for the benchmarks: BENCH_POLICY, platforms polled every
    `poll_interval`."""
    ref = default_reference()
    policies = {**ref.sla_policies, BENCH_POLICY.id: BENCH_POLICY}
    platforms = {
        key: p.model_copy(update={"poll_interval": poll_interval})
        for key, p in ref.platforms.items()
    }
    return ref.model_copy(update={"sla_policies": policies, "platforms": platforms})


def make_order(sim: Simulator, ref: ReferenceData, tag: str, i: int) -> Order:
    data: dict[str, Any] = {
        "authority": "mst",
        "reference": f"bench-{tag}-{i}",
        "officer": "nguyen.van.an",
        "channel": "platform_api",
        "platform": PLATFORM,
        "legal_bases": [{"basis": "vn-c38-2016", "provision": "Điều 5 khoản 1"}],
        "statement_of_reasons": "Các tài khoản và bài viết dưới đây mạo danh lãnh đạo, kích "
        "động bạo lực và vu khống, vi phạm Điều 5 Nghị định 72/2013/NĐ-CP.",
        "territorial_scope": ["VN"],
        "redress": "Khiếu nại theo Luật Khiếu nại năm 2011 trong thời hạn 30 ngày.",
        "priority": "normal",
        "sla_policy": BENCH_POLICY.id,
        "language": "vi",
        "issued_at": datetime.now(UTC).isoformat(),
        "items": [
            {
                "item_id": f"it-{k + 1}",
                "url": sim.content_url(f"{slug}-{tag}-{i}"),
                "content_type": ctype,
                "category": category,
                "reason": f"Nội dung vi phạm ({category}).",
            }
            for k, (ctype, category, slug) in enumerate(ITEMS)
        ],
    }
    return validate_order(data, ref)


@dataclass
class Outcome:
    ok: bool = False
    update_rtt: float | None = None  # seconds, the accepted approve Update
    not_ready: int = 0  # approve attempts refused because the baseline was still running
    error: str | None = None


@dataclass
class Trial:
    variant: str
    n: int
    wall: float
    server_cpu_ms: float
    worker_cpu_ms: float
    client_cpu_ms: float
    worker_rss_peak: float
    outcomes: list[Outcome] = field(default_factory=list)
    history: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def rate(self) -> float:
        return self.ok / self.wall

    @property
    def rtts_ms(self) -> list[float]:
        return [o.update_rtt * 1000 for o in self.outcomes if o.update_rtt is not None]


def is_bare(variant: str) -> bool:
    """The bare baseline (`bare`, `bare-unsandboxed`), not one of Docket's variants."""
    return variant.startswith("bare")


class Driver:
    """Drives requests of one variant; shared by the lifecycle, memory and updates suites."""

    def __init__(
        self,
        client: Client,
        sim: Simulator,
        variant: str,
        task_queue: str,
        poll_interval: timedelta = POLL,
    ) -> None:
        self.poll = poll_interval
        self.client = client
        self.sim = sim
        self.variant = variant
        self.task_queue = task_queue
        self.ref = bench_reference()
        self.maker = self.ref.actor("nguyen.van.an")
        self.maker_signer = bench_identities().signer("nguyen.van.an")
        self.approver_signer = bench_identities().signer("tran.thi.binh")

    def workflow_id(self, tag: str, i: int) -> str:
        if is_bare(self.variant):
            return f"bare-{tag}-{i}"
        order = make_order(self.sim, self.ref, tag, i)
        return workflow_id_for(order.authority, order.reference)

    async def start(self, tag: str, i: int) -> str:
        order = make_order(self.sim, self.ref, tag, i)
        if is_bare(self.variant):
            wid = f"bare-{tag}-{i}"
            request = resolve(
                order,
                self.maker,
                self.ref,
                workflow_id=workflow_id_for(order.authority, order.reference),
                now=datetime.now(UTC),
            )
            policy = request.policy
            inp = BareInput(
                request_id=wid,
                platform=PLATFORM,
                order=request.wire_order(),
                items=[(it.item_id, it.url) for it in order.items],
                vantages=list(request.vantages),
                poll_interval=self.poll,
                rechecks=list(policy.rechecks),
                appeal_window=policy.appeal_window,
            )
            await self.client.start_workflow(BARE_WORKFLOW, inp, id=wid, task_queue=self.task_queue)
            return wid
        # Docket's worker polls as its reference data says (bench_reference, same interval)
        sub = await docket.submit(self.client, order, signer=self.maker_signer, reference=self.ref)
        return sub.request_id

    async def is_ready(self, wid: str) -> bool:
        """True once the request accepts its approval (baseline captured, entry durable)."""
        if is_bare(self.variant):
            ready: bool = await self.client.get_workflow_handle(wid).query("is_ready")
            return ready
        state = (await docket.status(self.client, wid))["state"]
        return bool(state != "submitting")

    async def approve_once(self, wid: str) -> None:
        """One approve; raises NotReadyError while the request captures its baseline."""
        if is_bare(self.variant):
            try:
                await self.client.get_workflow_handle(wid).execute_update(
                    "approve", {"reason": "bench"}, id=f"approve-{wid}"
                )
            except WorkflowUpdateFailedError as exc:
                cause = exc.cause
                if isinstance(cause, ApplicationError) and cause.type == "NotReady":
                    raise NotReadyError from None
                raise
            return
        fields = {"reason": "Checked against Circular 38, art. 5"}
        try:
            await docket.send_command(
                self.client, wid, "approve", fields, signer=self.approver_signer
            )
        except docket.CommandRefused as exc:
            if exc.state is None:
                raise NotReadyError from None
            raise

    async def approve(self, wid: str, outcome: Outcome) -> None:
        while True:
            t = time.perf_counter()
            try:
                await self.approve_once(wid)
            except NotReadyError:
                outcome.not_ready += 1
                await asyncio.sleep(RETRY_NOT_READY)
                continue
            outcome.update_rtt = time.perf_counter() - t
            return

    async def result(self, wid: str) -> None:
        if is_bare(self.variant):
            await self.client.get_workflow_handle(wid, result_type=BareResult).result()
        else:
            await docket.result(self.client, wid)

    async def lifecycle(self, tag: str, i: int) -> Outcome:
        outcome = Outcome()
        try:
            wid = await self.start(tag, i)
            await self.approve(wid, outcome)
            await self.result(wid)
            outcome.ok = True
        except Exception as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"[:300]
        return outcome


class NotReadyError(Exception):
    pass


async def history_counts(client: Client, wid: str) -> dict[str, int]:
    """Per-lifecycle shape from one run's history: Updates, activities by type, timers."""
    counts: Counter[str] = Counter()
    async for event in client.get_workflow_handle(wid).fetch_history_events():
        kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        if kind == "ACTIVITY_TASK_SCHEDULED":
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            counts[f"activity:{name}"] += 1
            counts["activities"] += 1
        elif kind == "MARKER_RECORDED":
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == LOCAL_ACTIVITY_MARKER:
                data = json.loads(marker.details["data"].payloads[0].data)
                counts[f"activity:local {data['activity_type']}"] += 1
                counts["local activities"] += 1
        elif kind in ("TIMER_STARTED", "WORKFLOW_EXECUTION_UPDATE_ACCEPTED") or kind in (
            "WORKFLOW_TASK_COMPLETED",
            "UPSERT_WORKFLOW_SEARCH_ATTRIBUTES",
        ):
            counts[kind.lower()] += 1
        counts["events"] += 1
    return dict(counts)


async def connect(server: Server) -> Client:
    return await connect_when_ready(server.address, identity="bench-load")


def _client_cpu_ms() -> float:
    return time.process_time() * 1000


async def run_trial(server: Server, sim: Simulator, variant: str, n: int, tag: str) -> Trial:
    # docket.submit starts on Docket's own task queue; each trial has a fresh worker process
    task_queue = f"bench-{variant}-{tag}" if is_bare(variant) else TASK_QUEUE
    with WorkerProcess(variant, server, sim, task_queue) as worker:
        client = await connect(server)
        driver = Driver(client, sim, variant, task_queue)
        s0, w0, c0 = server.cpu_ms(), worker.cpu_ms(), _client_cpu_ms()
        t0 = time.perf_counter()
        outcomes = await asyncio.gather(*(driver.lifecycle(tag, i) for i in range(n)))
        wall = time.perf_counter() - t0
        s1, w1, c1 = server.cpu_ms(), worker.cpu_ms(), _client_cpu_ms()
        _, peak = worker.rss()
        ok = [i for i, o in enumerate(outcomes) if o.ok]
        history = (
            await history_counts(client, driver.workflow_id(tag, ok[0]) if ok else "") if ok else {}
        )
    trial = Trial(
        variant=variant,
        n=n,
        wall=wall,
        server_cpu_ms=s1 - s0,
        worker_cpu_ms=w1 - w0,
        client_cpu_ms=c1 - c0,
        worker_rss_peak=peak,
        outcomes=list(outcomes),
        history=history,
    )
    errors = Counter(o.error for o in outcomes if o.error)
    say(
        f"    {variant:<7} N={n:<4} {trial.ok}/{n} ok in {wall:6.1f} s: "
        f"{trial.rate:5.1f}/s, update p50 {fmt(percentile(trial.rtts_ms, 50), 0)} ms, "
        f"worker {fmt(trial.worker_cpu_ms / max(trial.ok, 1), 1)} ms/lc, "
        f"server {fmt(trial.server_cpu_ms / max(trial.ok, 1), 1)} ms/lc, "
        f"RSS peak {trial.worker_rss_peak:.0f} MiB"
        + (f", errors {dict(errors.most_common(2))}" if errors else "")
    )
    return trial


@dataclass
class Summary:
    persistence: str
    n: int
    trials: dict[str, list[Trial]]

    def med(self, variant: str, metric: str) -> float:
        values = []
        for t in self.trials[variant]:
            ok = max(t.ok, 1)
            values.append(
                {
                    "rate": t.rate,
                    "p50": percentile(t.rtts_ms, 50),
                    "p95": percentile(t.rtts_ms, 95),
                    "worker_ms": t.worker_cpu_ms / ok,
                    "server_ms": t.server_cpu_ms / ok,
                    "client_ms": t.client_cpu_ms / ok,
                    "rss": t.worker_rss_peak,
                    "failed": t.n - t.ok,
                    "not_ready": sum(o.not_ready for o in t.outcomes) / max(t.n, 1),
                }[metric]
            )
        return median(values)


async def run_suite(
    sizes: list[int], persistences: list[str], rounds: int, variants: tuple[str, ...]
) -> tuple[list[Summary], list[Table]]:
    summaries: list[Summary] = []
    for persistence in persistences:
        for n in sizes:
            say(f"  lifecycle: {persistence}, N={n}, {rounds} round(s), alternating {variants}")
            trials: dict[str, list[Trial]] = {v: [] for v in variants}
            with (
                Server(f"lifecycle-{persistence}-{n}", sqlite=persistence == "sqlite") as server,
                Simulator(server.dir) as sim,
            ):
                for r in range(rounds):
                    order = variants if r % 2 == 0 else tuple(reversed(variants))
                    for variant in order:
                        tag = f"{int(time.time())}{r}{variant[:1]}"
                        trials[variant].append(await run_trial(server, sim, variant, n, tag))
            summaries.append(Summary(persistence, n, trials))
    return summaries, tables(summaries, variants)


def tables(summaries: list[Summary], variants: tuple[str, ...]) -> list[Table]:
    rows = []
    for s in summaries:
        for v in variants:
            rows.append(
                [
                    s.persistence,
                    str(s.n),
                    v,
                    fmt(s.med(v, "rate"), 1),
                    fmt(s.med(v, "p50"), 0),
                    fmt(s.med(v, "p95"), 0),
                    fmt(s.med(v, "worker_ms"), 1),
                    fmt(s.med(v, "server_ms"), 1),
                    fmt(s.med(v, "rss"), 0),
                    fmt(s.med(v, "not_ready"), 1),
                    fmt(s.med(v, "failed"), 0),
                ]
            )
    main = Table(
        "Lifecycle: medians over rounds (lc = one complete request lifecycle)",
        [
            "store",
            "N",
            "variant",
            "lc/s",
            "update p50 ms",
            "update p95 ms",
            "worker CPU ms/lc",
            "server CPU ms/lc",
            "worker peak RSS MiB",
            "approves refused not ready (per lc)",
            "failed",
        ],
        rows,
    )
    ratio_rows = []
    pairs = [
        (d, b)
        for d, b in (
            ("docket", "bare"),
            ("docket-unsandboxed", "bare-unsandboxed"),
            ("docket-regular-audit", "bare"),
            ("docket-no-audit-write", "bare"),
            ("docket-no-disk-write", "bare"),
            ("docket-no-publish", "bare"),
        )
        if d in variants and b in variants
    ]
    for s in summaries:
        for d, b in pairs:
            ratio_rows.append(
                [
                    s.persistence,
                    str(s.n),
                    f"{d} / {b}",
                    fmt(ratio(s.med(b, "rate"), s.med(d, "rate")), 2),
                    fmt(ratio(s.med(d, "p50"), s.med(b, "p50")), 2),
                    fmt(ratio(s.med(d, "worker_ms"), s.med(b, "worker_ms")), 2),
                    fmt(ratio(s.med(d, "server_ms"), s.med(b, "server_ms")), 2),
                    fmt(ratio(s.med(d, "rss"), s.med(b, "rss")), 2),
                ]
            )
    ratios = Table(
        "Docket / bare (targets: worker CPU <= 1.3, server CPU <= 1.2, update p50 <= 2; "
        "throughput as bare/docket)",
        [
            "store",
            "N",
            "pair",
            "lc/s (bare÷docket)",
            "update p50",
            "worker CPU/lc",
            "server CPU/lc",
            "peak RSS",
        ],
        ratio_rows,
    )
    shape_rows = []
    for s in summaries[:1]:
        for v in variants:
            h = s.trials[v][0].history
            acts = ", ".join(
                f"{k.removeprefix('activity:')} {c}"
                for k, c in sorted(h.items())
                if k.startswith("activity:")
            )
            shape_rows.append(
                [
                    v,
                    str(h.get("workflow_execution_update_accepted", 0)),
                    str(h.get("activities", 0)),
                    str(h.get("local activities", 0)),
                    acts,
                    str(h.get("timer_started", 0)),
                    str(h.get("workflow_task_completed", 0)),
                    str(h.get("events", 0)),
                ]
            )
    shape = Table(
        "Shape of one lifecycle (from its history)",
        [
            "variant",
            "updates",
            "activities",
            "local activities",
            "by type",
            "timers",
            "workflow tasks",
            "events",
        ],
        shape_rows,
    )
    return [main, ratios, shape]
