"""The demo: the seed scenario end to end on a local stack (`./run demo`).

It starts the Temporal dev server (SQLite file, Web UI, search attributes registered), the
platform simulator and a worker, then submits the seed scenario from examples/seed/ (the
Ministry's 2017 requests to Facebook and YouTube) and drives it:

- Facebook: four-eyes approval, delivery, acknowledgment, partial removal (one item declined,
  one restricted), verification that catches a platform claim we cannot confirm (disputed),
  a re-notice, monitoring with re-checks, and a content owner's appeal that is reversed and
  reinstated;
- YouTube: the platform never answers: second notice, then unresponsive, then the ministry
  escalates.

The SLA policy is swapped for DEMO-VN-C38 (Circular 38's clocks compressed: 24 h -> 20 s)
so the demo takes about two minutes; the audit log records the policy actually applied.
It prints every transition as it happens, the timelines, the audit verification and the UI
address, then keeps the UI up until Ctrl-C (`--exit` to stop at the end, for scripts).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowUpdateFailedError

from activities.checkpoint import CheckpointActivities
from activities.platform import PlatformActivities, PlatformEndpoint
from audit.checkpoint import CheckpointConfig, Source
from audit.checkpoint_verify import verify_completeness
from audit.entry import AuditAnchor
from audit.note import SignerKey, generate_key, load_signer, load_verifier
from audit.show import render_timeline
from audit.verify import verify_paths
from audit.writer import AuditWriter
from docket import client as docket
from docket import worker_setup as docket_worker
from docket.credentials import load_trust
from docket.devserver import DevServer
from docket.logs import configure_logging
from docket.models import Order
from docket.provision import Identities, provision
from docket.reference import ReferenceData, default_reference
from docket.temporal_names import CHECKPOINT_TASK_QUEUE
from docket.text import terminal
from docket.validation import read_request_file, validate_order
from docket.views import saved_views
from platform_sim.scenarios import ItemScenario, PlatformScenario
from platform_sim.server import PlatformSimulator
from workflows.checkpoint import AuditCheckpoint, CheckpointRequest, ensure_checkpoint_schedule

ROOT = Path(__file__).resolve().parent
SEED = ROOT / "examples" / "seed"
DEMO_POLICY = "DEMO-VN-C38"
POLL = timedelta(seconds=1)
CHECKPOINT_EVERY = timedelta(seconds=30)
LOG_ORIGIN = "docket.demo/audit"


def say(text: str) -> None:
    print(text, flush=True)


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.var = Path(args.var)
        self.reference: ReferenceData = default_reference()
        self.secrets = {p: secrets.token_hex(16) for p in ("facebook", "youtube")}
        self.seen: dict[str, int] = {}
        self.client: Client | None = None
        self.sim: PlatformSimulator | None = None
        self.identities: Identities

    # --- the stack ----------------------------------------------------------------------

    def simulator(self) -> PlatformSimulator:
        facebook = PlatformScenario.preset("comply", ack_delay=1.0, decide_delay=2.0)
        # The incitement post: Facebook will claim removal but keep serving it at first.
        facebook.items["remove.451--keu-goi-bieu-tinh-bao-luc"] = ItemScenario(
            decision="remove", view="451", liar=True
        )
        youtube = PlatformScenario.preset("ignore")
        return PlatformSimulator(
            "127.0.0.1",
            self.args.sim_port,
            self.secrets,
            {"facebook": facebook, "youtube": youtube},
        )

    def checkpoint_config(self, audit_dir: Path) -> CheckpointConfig:
        return CheckpointConfig(self.var / "checkpoints", (Source("demo", audit_dir),))

    def log_key(self) -> SignerKey:
        """The demo log's checkpoint key (made on first run; a deployment keeps its own, like
        the platform secrets: DOCKET_LOG_KEY)."""
        path = self.var / "log.key"
        if not path.exists():
            key = generate_key(LOG_ORIGIN)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(key.encode())
            path.with_name("log.key.pub").write_text(key.verifier().vkey() + "\n")
        return load_signer(path)

    def worker_reference(self) -> ReferenceData:
        """The demo's operator configuration: the shipped data, platforms polled every
        second (the simulated platforms answer within seconds)."""
        platforms = {
            key: platform.model_copy(update={"poll_interval": POLL})
            for key, platform in self.reference.platforms.items()
        }
        return self.reference.model_copy(update={"platforms": platforms})

    def endpoints(self, sim: PlatformSimulator) -> dict[str, PlatformEndpoint]:
        return {
            p: PlatformEndpoint(
                base_url=sim.base_url(p),
                secret=self.secrets[p].encode(),
                markers=self.reference.platforms[p].markers,
            )
            for p in self.secrets
        }

    def orders(self, run_tag: str) -> list[Order]:
        assert self.sim is not None
        orders = []
        for path in sorted(SEED.glob("*.json")):
            for raw in read_request_file(path):
                data = dict(raw.data)
                # A fresh reference per run, so a kept database still gets new requests
                data["reference"] = f"{data['reference']}-demo-{run_tag}"
                data["sla_policy"] = DEMO_POLICY
                # The seed's content URLs name the simulator's default address; the demo may
                # run it on another port (--sim-port).
                data["items"] = [
                    {**item, "url": _on_simulator(item["url"], self.sim.url)}
                    for item in data["items"]
                ]
                orders.append(validate_order(data, self.reference, source=raw.source))
        return orders

    async def run(self) -> int:
        self.var.mkdir(parents=True, exist_ok=True)
        audit_dir = self.var / "audit"
        # Every official of the roster gets a key and a credential from their organization's
        # CA, and the worker trusts those CAs (made on first run, reused after).
        self.identities = provision(self.var / "identities", self.reference, now=datetime.now(UTC))
        say(
            f"docket demo: identities in {self.identities.directory}/ "
            f"(trust file {self.identities.trust_file})"
        )
        server = DevServer(
            port=self.args.port,
            ui_port=self.args.ui_port,
            db_file=self.var / "temporal.db",
            log_file=self.var / "temporal.log",
        )
        say(f"docket demo: starting the Temporal dev server ({server.db_file}) ...")
        try:
            server.start()
        except RuntimeError as exc:
            say(f"docket demo: {exc}")
            return 2
        try:
            with self.simulator() as sim:
                self.sim = sim
                say(f"docket demo: platform simulator on {sim.url}")
                client = await server.connect(identity="docket-demo")
                self.client = client
                await docket_worker.check_search_attributes(client)
                platforms = PlatformActivities(self.endpoints(sim))
                writer = AuditWriter(audit_dir)
                trust_file = self.identities.trust_file
                worker = docket_worker.build_worker(
                    client,
                    platforms=platforms,
                    writer=writer,
                    reference=self.worker_reference,
                    trust=lambda: load_trust(trust_file),
                )
                # the checkpointer: a signed checkpoint of the whole log every 30 s (a Schedule,
                # visible in the UI) and one on demand at the end
                checkpointer = docket_worker.build_checkpoint_worker(
                    client, CheckpointActivities(self.checkpoint_config(audit_dir), self.log_key())
                )
                await ensure_checkpoint_schedule(
                    client, interval=CHECKPOINT_EVERY, task_queue=CHECKPOINT_TASK_QUEUE
                )
                async with worker, checkpointer:
                    say(f"docket demo: worker running; audit log in {audit_dir}/")
                    say(f"docket demo: Temporal UI at {server.ui_url}\n")
                    ids = await self.scenario()
                    await self.report(ids, audit_dir)
                    say(f"\nTemporal UI: {server.ui_url}/namespaces/default/workflows")
                    if server.ui_url:
                        say("Views for officials (open each link once to save it in the UI):")
                        for view in saved_views(server.ui_url, platforms=sorted(self.secrets)):
                            say(f"  {view.name:<32} {view.save_url}")
                    say(f"Audit log:   {audit_dir}/  (./run audit verify {audit_dir})")
                    if not self.args.exit:
                        say("The UI stays up until Ctrl-C.")
                        await _wait_for_interrupt()
                await platforms.aclose()
                writer.close()
        finally:
            server.stop()
        return 0

    # --- the scenario -------------------------------------------------------------------

    async def scenario(self) -> list[str]:
        assert self.client is not None
        ref = self.reference
        run_tag = datetime.now(UTC).strftime("%H%M%S")
        orders = self.orders(run_tag)
        ids = []
        for order in orders:
            maker = self.identities.signer(order.officer)
            sub = await docket.submit(self.client, order, signer=maker, reference=ref)
            ids.append(sub.request_id)
            say(f"submitted {sub.request_id} ({order.platform}, {len(order.items)} items)")
        facebook, youtube = ids
        await asyncio.gather(self.drive_facebook(facebook), self.drive_youtube(youtube))
        return ids

    async def drive_facebook(self, rid: str) -> None:
        await self.wait_state(rid, "pending_approval")
        await self.forged_approval(rid)
        await self.try_command(
            rid,
            "nguyen.van.an",
            "approve",
            {"reason": "I drafted it and it is urgent"},
            "the maker",
        )
        await self.command(
            rid,
            "tran.thi.binh",
            "approve",
            {"reason": "Legal bases and URLs checked against Circular 38, art. 5"},
        )
        await self.wait_state(rid, "disputed")
        await self.command(
            rid,
            "ops.on.call",
            "renotify",
            {"reason": "Our probes still reach fb-3 from Vietnam and abroad: asked again"},
        )
        await self.wait_state(rid, "monitoring")
        await self.wait_action(rid, "recheck")
        await self.command(
            rid,
            "hoang.minh.uploader",
            "file_appeal",
            {
                "reason": "The post reports a local official's conduct; it is not defamatory",
                "appellant_type": "content_owner",
                "target_items": ["fb-4"],
                "grounds": "Bài viết phản ánh sự việc có thật, có bằng chứng kèm theo.",
            },
        )
        await self.command(
            rid,
            "pham.thi.dung",
            "decide_appeal",
            {
                "reason": "The evidence supports the post; restriction not necessary",
                "outcome": "reversed",
            },
        )
        await self.wait_state(rid, "closed")

    async def drive_youtube(self, rid: str) -> None:
        await self.wait_state(rid, "pending_approval")
        await self.command(rid, "tran.thi.binh", "approve", {"reason": "Checked; send to YouTube"})
        await self.wait_state(rid, "unresponsive", timeout=120)
        await self.command(
            rid,
            "tran.thi.binh",
            "escalate",
            {"reason": "No answer after the second notice: technical measures (Circular 38)"},
        )
        await self.wait_state(rid, "closed")

    async def forged_approval(self, rid: str) -> None:
        """What any Temporal client could send: an approval claiming an approver who never
        signed it, and a real signature over an altered reason. Both are refused before
        anything happens (no history event, no audit entry)."""
        assert self.client is not None
        handle = self.client.get_workflow_handle(rid)
        claimed = {
            "actor": {"id": "mallory.unknown", "roles": ["approver"], "organization": "Nobody"},
            "reason": "Because I say so",
        }
        signed = docket.signed_command(
            rid, "approve", {"reason": "Checked"}, self.identities.signer("tran.thi.binh")
        )
        altered = signed.model_copy(
            update={"statement": signed.statement.replace('"Checked"', '"Approved, no check"')}
        )
        for who, payload in (("a claimed actor", claimed), ("an altered signed command", altered)):
            try:
                await handle.execute_update(
                    "approve", payload if isinstance(payload, dict) else payload.model_dump()
                )
            except WorkflowUpdateFailedError as exc:
                say(f"  {_short(rid)}  refused ({who}): {terminal(exc.cause)}")

    async def command(self, rid: str, actor: str, trigger: str, payload: dict[str, Any]) -> None:
        assert self.client is not None
        signer = self.identities.signer(actor)
        receipt = await docket.send_command(self.client, rid, trigger, payload, signer=signer)
        say(
            f"  {_short(rid)}  {actor} -> {receipt.trigger}: receipt "
            f"#{receipt.sequence} {receipt.hash[:12]} ({receipt.state}) [signed]"
        )

    async def try_command(
        self, rid: str, actor: str, trigger: str, payload: dict[str, Any], who: str
    ) -> None:
        assert self.client is not None
        signer = self.identities.signer(actor)
        try:
            await docket.send_command(self.client, rid, trigger, payload, signer=signer)
        except docket.CommandRefused as exc:
            say(f"  {_short(rid)}  refused ({who}): {terminal(exc)}")

    async def wait_state(self, rid: str, state: str, timeout: float = 180) -> None:
        """Print each new audit entry of `rid` until it reaches `state`."""
        await self._follow(rid, lambda e: e["docket"]["to_state"] == state, state, timeout)

    async def wait_action(self, rid: str, action: str, timeout: float = 60) -> None:
        await self._follow(rid, lambda e: e["event"]["action"] == action, action, timeout)

    async def _follow(
        self, rid: str, done: Callable[[dict[str, Any]], bool], what: str, timeout: float
    ) -> None:
        assert self.client is not None
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            entries = await docket.timeline(self.client, rid)
            for entry in entries[self.seen.get(rid, 0) :]:
                self.print_entry(rid, entry)
            self.seen[rid] = len(entries)
            if entries and done(entries[-1]):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{rid} did not reach {what} within {timeout}s")
            await asyncio.sleep(0.5)

    def print_entry(self, rid: str, entry: dict[str, Any]) -> None:
        event, body = entry["event"], entry["docket"]
        extra = ""
        if event["action"] == "report_effect":
            extra = "  " + ", ".join(f"{i['item_id']}={i['effect']}" for i in body["items"])
        if body.get("data", {}).get("disagreements"):
            extra = "  DISAGREEMENT: " + ", ".join(
                f"{d['item_id']} claimed {d['claim']}, observed {d['observations']}"
                for d in body["data"]["disagreements"]
            )
        if body.get("data", {}).get("outcome"):
            extra += f"  outcome={body['data']['outcome']}"
        say(
            f"  {_short(rid)}  #{event['sequence']:<2} {event['action']:<20} "
            f"{body.get('from_state') or 'none'} -> {body['to_state']}  "
            f"by {entry['user']['id']}{extra}"
        )

    async def report(self, ids: list[str], audit_dir: Path) -> None:
        assert self.client is not None
        anchors = []
        for rid in ids:
            result = await docket.result(self.client, rid)
            anchors.append(
                {"chain_id": rid, "count": result.audit_count, "head_hash": result.audit_head}
            )
            say(f"\n=== {rid}: {result.outcome} ===")
            say(render_timeline(rid, await docket.timeline(self.client, rid)))
            say("item outcomes: " + json.dumps(result.item_outcomes, ensure_ascii=False))
        anchor_file = self.var / "anchors.jsonl"
        with anchor_file.open("a", encoding="utf-8") as fh:
            for anchor in anchors:
                fh.write(json.dumps(anchor) + "\n")
        verified = verify_paths([audit_dir], anchors=[AuditAnchor.from_dict(a) for a in anchors])
        summary = verified.summary()
        say(
            f"\naudit verify: {summary['status']}: {summary['entries']} entries in "
            f"{summary['chains']} chains, {summary['findings']} findings "
            f"(anchors from the workflow results: {anchor_file})"
        )
        # a signed checkpoint of the whole log, then the completeness check an outsider runs
        # with nothing but the checkpoint and the log's public key
        outcome = await self.client.execute_workflow(
            AuditCheckpoint.run,
            CheckpointRequest(trigger="demo"),
            id=f"docket-audit-checkpoint-demo-{datetime.now(UTC):%H%M%S}",
            task_queue=CHECKPOINT_TASK_QUEUE,
        )
        key_pub = self.var / "log.key.pub"
        complete = verify_completeness(
            [audit_dir], Path(outcome.checkpoint_file), load_verifier(str(key_pub))
        )
        say(
            f"checkpoint: {outcome.size} entries, root {outcome.root_hash[:16]}, signed "
            f"({outcome.checkpoint_file}); audit verify --checkpoint: "
            f"{'OK' if complete.ok else 'FAILED'} ({len(complete.findings)} findings; "
            f"./run audit verify {audit_dir} --checkpoint {outcome.checkpoint_file} "
            f"--key {key_pub})"
        )
        if self.sim is not None:
            stats = self.sim.stats()["platforms"]
            for platform, counts in stats.items():
                say(
                    f"simulator {platform}: {counts['total_deliveries']} deliveries, "
                    f"{counts['total_duplicate_deliveries']} duplicates, "
                    f"notices {counts['notices']}"
                )


def _on_simulator(url: str, sim_url: str) -> str:
    """`url` moved from the simulator's default address to where it runs now."""
    default = "http://127.0.0.1:8700/"
    return sim_url.rstrip("/") + "/" + url.removeprefix(default) if url.startswith(default) else url


def _short(rid: str) -> str:
    return rid.removeprefix("req-")[:34]


async def _wait_for_interrupt() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./run demo", description=__doc__)
    parser.add_argument("--exit", action="store_true", help="stop at the end (for scripts)")
    parser.add_argument("--port", type=int, default=7233, help="Temporal frontend port")
    parser.add_argument("--ui-port", type=int, default=8233, help="Temporal Web UI port")
    parser.add_argument("--sim-port", type=int, default=8700, help="platform simulator port")
    parser.add_argument("--var", default=str(ROOT / "var" / "demo"), help="state directory")
    args = parser.parse_args(argv)
    configure_logging()
    logging.getLogger("temporalio").setLevel(logging.WARNING)  # the demo prints its own story
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(Demo(args).run())
    return 130


if __name__ == "__main__":
    sys.exit(main())
