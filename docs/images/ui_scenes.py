"""Take the Temporal UI screenshots in docs/images/ from a running demo (how they were made).

    ./run demo --port 7402 --ui-port 8402 --sim-port 8802 --var /tmp/ui-demo &
    .venv/bin/python docs/images/ui_scenes.py --port 7402 --ui-port 8402 --sim-port 8802

Next to the demo's two requests it submits three more that stay where the pictures need them,
on the real Circular 38 policy (24 h clocks): one to YouTube (which never answers: awaiting
acknowledgment, hours left), one to Facebook whose items are removed, restricted, declined,
removed behind a login wall (unverified) and claimed removed while still online
(contradicted: disputed), and one like the latter on the demo policy, which closes
complied_unverified. It waits for the demo's YouTube request to close after its breaches,
then drives headless Chromium (DevTools protocol over a pipe, no extra package) through the
UI as an official would: adds Docket's search attributes as list columns, opens each saved
view's link (the UI keeps it under "Saved Views"), and shoots the list and three requests'
details.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from temporalio.client import Client  # noqa: E402

from docket import client as docket  # noqa: E402
from docket import temporal_names as names  # noqa: E402
from docket.models import Order  # noqa: E402
from docket.provision import provision  # noqa: E402
from docket.reference import default_reference  # noqa: E402
from docket.validation import read_request_file, validate_order, workflow_id_for  # noqa: E402
from docket.views import request_url, saved_views  # noqa: E402

OUT = Path(__file__).resolve().parent
SEED = ROOT / "examples" / "seed"
COLUMNS = ("RequestState", "Platform", "DueAt", "SlaBreached", "Outcome", "Authority")
DROPPED = ("Run ID", "Type", "End")


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (fd 3 in, fd 4 out)."""

    def __init__(self, width: int, height: int) -> None:
        self.profile = tempfile.mkdtemp(prefix="docket-ui-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        chromium = shutil.which("chromium") or "/usr/bin/chromium"
        args = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        shell = f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w}'
        self.process = subprocess.Popen(
            ["bash", "-c", shell, "chromium", *args],
            pass_fds=(to_browser_r, from_browser_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.page("Page.enable")
        self.resize(width, height)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        return self.call(method, self.session, **params)

    def resize(self, width: int, height: int) -> None:
        self.page(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def js(self, expression: str) -> Any:
        reply = self.page(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        return reply.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.js(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(f"page never satisfied: {expression}")
            time.sleep(0.25)

    def open(self, url: str, ready: str, settle: float = 2.0) -> None:
        self.page("Page.navigate", url=url)
        time.sleep(0.5)
        self.wait_for(f"document.readyState === 'complete' && !!({ready})")
        time.sleep(settle)  # data fetched after load (current details come from a query)

    def click(self, selector: str) -> None:
        self.wait_for(f"!!document.querySelector({json.dumps(selector)})")
        self.js(f"document.querySelector({json.dumps(selector)}).click()")
        time.sleep(0.7)

    def shoot(self, path: Path) -> None:
        data = self.page("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        print(f"wrote {path.relative_to(ROOT)}")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


# --- the scenes ------------------------------------------------------------------------------


def seed_order(name: str, tag: str, sim_url: str, **changes: Any) -> Order:
    reference = default_reference()
    raw = next(read_request_file(SEED / name))
    data = dict(raw.data) | {"reference": f"{raw.data['reference']}-ui-{tag}"} | changes
    default = "http://127.0.0.1:8700/"
    data["items"] = [
        {**item, "url": sim_url + "/" + item["url"].removeprefix(default)} for item in data["items"]
    ]
    return validate_order(data, reference, source=raw.source)


def facebook_items(order: Order, slugs: dict[str, str]) -> Order:
    """The order with each item's content slug replaced (simulator tokens pick the outcome)."""
    items = []
    for item in order.items:
        base = item.url.rsplit("/", 1)[0]
        items.append(item.model_copy(update={"url": f"{base}/{slugs[item.item_id]}"}))
    return order.model_copy(update={"items": tuple(items)})


async def stage(client: Client, sim_url: str) -> dict[str, str]:
    """Submit and approve the requests the pictures need; their request ids by scene."""
    reference = default_reference()
    # the demo's provisioned identities (the demo must have run once: ./run demo)
    identities = provision(ROOT / "var" / "demo" / "identities", reference, now=datetime.now(UTC))
    maker = identities.signer("nguyen.van.an")
    approver = identities.signer("tran.thi.binh")
    tag = time.strftime("%H%M%S")
    mixed = {
        "fb-1": "remove.marker--gia-mao-thu-tuong",
        "fb-2": "remove.login--gia-mao-chu-tich-nuoc",
        "fb-3": "liar--keu-goi-bieu-tinh-bao-luc",
        "fb-4": "restrict--vu-khong-can-bo",
        "fb-5": "decline--tin-gia-dich-benh",
    }
    unverified = dict(mixed, **{"fb-3": "remove.410--keu-goi", "fb-5": "remove.404--tin-gia"})
    scenes = {
        "awaiting-ack": seed_order("mic-youtube-2017.json", tag, sim_url, sla_policy="VN-C38-2016"),
        "disputed": facebook_items(
            seed_order("mic-facebook-2017.json", tag, sim_url, sla_policy="VN-C38-2016"), mixed
        ),
        "complied-unverified": facebook_items(
            seed_order(
                "mic-facebook-2017.json",
                tag + "-u",
                sim_url,
                sla_policy="DEMO-VN-C38",
            ),
            unverified,
        ),
    }
    ids = {}
    for scene, order in scenes.items():
        submitted = await docket.submit(client, order, signer=maker, reference=reference)
        ids[scene] = submitted.request_id
    # Started by another client: no static summary or details, only what the workflow sets.
    other = seed_order("mic-youtube-2017.json", tag + "-o", sim_url, sla_policy="VN-C38-2016")
    ids["other-client"] = workflow_id_for(other.authority, other.reference)
    await client.start_workflow(
        names.WORKFLOW_NAME,
        docket.signed_submission(other, maker).model_dump(),
        id=ids["other-client"],
        task_queue=names.TASK_QUEUE,
    )
    for scene, request_id in ids.items():
        await wait_state(client, request_id, {"pending_approval"})
        await docket.send_command(
            client,
            request_id,
            "approve",
            {"reason": "Checked against Circular 38"},
            signer=approver,
        )
        print(f"{scene}: {request_id}")
    return ids


async def wait_state(
    client: Client, request_id: str, states: set[str], timeout: float = 240
) -> None:
    deadline = time.monotonic() + timeout
    while (await docket.status(client, request_id))["state"] not in states:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{request_id} never reached {states}")
        await asyncio.sleep(0.5)


async def find_one(client: Client, query: str, timeout: float = 240) -> tuple[str, str]:
    """(workflow id, run id) of the first workflow `query` finds, waiting for one."""
    deadline = time.monotonic() + timeout
    while True:
        async for found in client.list_workflows(query):
            return found.id, found.run_id
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing matches {query}")
        await asyncio.sleep(1)


async def run_id(client: Client, request_id: str) -> str:
    description = await client.get_workflow_handle(request_id).describe()
    return description.run_id


# --- the pictures ----------------------------------------------------------------------------


def shoot_list_and_views(browser: Browser, ui: str) -> None:
    workflows = f"{ui}/namespaces/default/workflows"
    table = "document.querySelector('[data-testid=workflows-summary-configurable-table-row]')"
    browser.open(workflows, table)
    browser.click("[aria-label='Configure Columns']")
    for label in DROPPED:
        browser.js(
            "[...document.querySelectorAll('[data-testid$=-remove-button]')]"
            f".find(b => b.dataset.testid === 'orderable-list-item-{label}-remove-button')"
            "?.click()"
        )
        time.sleep(0.3)
    for column in COLUMNS:
        browser.click(f"[data-testid='orderable-list-item-{column}-add-button']")
    browser.shoot(OUT / "ui-configure-columns.png")
    browser.open(workflows, table)
    browser.shoot(OUT / "ui-list-columns.png")
    views = saved_views(ui, platforms=("facebook", "youtube"))
    for view in views:  # each link opens the filtered list and keeps it as a saved view
        browser.open(view.save_url, "document.querySelector('main')", settle=1.0)
    breached = next(v for v in views if v.name == "SLA breached")
    browser.open(breached.url, table)
    browser.shoot(OUT / "ui-saved-view-sla-breached.png")
    browser.click("[data-testid=saved-views-button]")
    browser.shoot(OUT / "ui-saved-views.png")


def shoot_details(browser: Browser, url: str, name: str) -> None:
    frame = "document.querySelector('#user-metadata-current-details')"
    browser.open(url, frame, settle=3.0)
    browser.shoot(OUT / name)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=7402)
    parser.add_argument("--ui-port", type=int, default=8402)
    parser.add_argument("--sim-port", type=int, default=8802)
    args = parser.parse_args()
    os.environ.setdefault("TEMPORAL_ADDRESS", f"127.0.0.1:{args.port}")
    ui = f"http://localhost:{args.ui_port}"
    client = await docket.connect(identity="docket-screenshots")
    ids = await stage(client, f"http://127.0.0.1:{args.sim_port}")
    await wait_state(client, ids["awaiting-ack"], {"awaiting_ack"})
    await wait_state(client, ids["disputed"], {"disputed"})
    breached = await find_one(
        client, "Platform = 'youtube' AND Outcome = 'unresponsive' AND SlaBreached = true"
    )
    await wait_state(client, ids["complied-unverified"], {"closed"})
    await wait_state(client, ids["other-client"], {"awaiting_ack"})
    browser = Browser(1920, 720)
    try:
        shoot_list_and_views(browser, ui)
        browser.resize(1400, 1350)
        for scene, name in (
            ("awaiting-ack", "ui-details-awaiting-ack.png"),
            ("disputed", "ui-details-disputed.png"),
            ("other-client", "ui-details-other-client.png"),
        ):
            rid = ids[scene]
            shoot_details(browser, request_url(ui, rid, await run_id(client, rid)), name)
        shoot_details(browser, request_url(ui, *breached), "ui-details-closed-breached.png")
    finally:
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
