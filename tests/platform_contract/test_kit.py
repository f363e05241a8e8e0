"""The conformance kit: passes against the simulator (in process and through the command
line), fails with clear messages against a deliberately broken platform, and refuses bad
usage with exit code 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from docket.signing import signed_headers
from platform_check.kit import Kit
from platform_check.report import Check, Report
from platform_sim.scenarios import PlatformScenario
from platform_sim.server import PlatformSimulator

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"kit-secret"


def conformance_sim(**options: Any) -> PlatformSimulator:
    return PlatformSimulator(
        secrets={"facebook": SECRET},
        scenarios={"facebook": PlatformScenario.preset("manual")},
        conformance=True,
        **options,
    )


def by_name(report: Report) -> dict[str, Check]:
    return {f"{c.scenario}: {c.name}": c for c in report.checks}


def test_the_simulator_passes_every_check() -> None:
    with conformance_sim() as sim:
        kit = Kit(sim.base_url("facebook"), SECRET)
        try:
            report = kit.run()
        finally:
            kit.close()
    counts = report.counts()
    assert report.ok, report.text()
    assert counts["fail"] == 0 and counts["warn"] == 0 and counts["skip"] == 0, report.text()
    assert counts["pass"] >= 55
    scenarios = {c.scenario for c in report.checks}
    assert scenarios == {
        "discovery",
        "markers",
        "signatures",
        "delivery",
        "invalid-orders",
        "status",
        "acknowledge",
        "effects",
        "info-request",
        "notices",
        "content",
        "response-signing",
    }
    assert kit.signed_answers > 50 and kit.unsigned_answers == []


def test_real_vantages_check_geo_blocks_without_the_stand_in() -> None:
    with conformance_sim(vantage_proxies={"VN": "127.0.0.2"}, vantage_header=False) as sim:
        kit = Kit(
            sim.base_url("facebook"),
            SECRET,
            vantages={"VN": sim.proxy_url("VN", "socks5")},
        )
        try:
            report = kit.run({"content"})
        finally:
            kit.close()
    check = by_name(report)["content: restricted: geo-blocked inside, available outside"]
    assert check.status == "pass", report.text()
    assert sim.proxies["VN"].connections >= 1


def test_without_a_vantage_the_geo_check_is_skipped_not_passed() -> None:
    with conformance_sim(vantage_header=False) as sim:
        kit = Kit(sim.base_url("facebook"), SECRET)
        try:
            report = kit.run({"content"})
        finally:
            kit.close()
    check = by_name(report)["content: restricted: geo-blocked inside, available outside"]
    assert check.status == "skip"
    assert check.note and "--vantage VN=" in check.note


def test_without_hooks_the_acting_scenarios_are_skipped() -> None:
    with PlatformSimulator(secrets={"facebook": SECRET}) as sim:  # hooks off
        kit = Kit(sim.base_url("facebook"), SECRET)
        try:
            report = kit.run({"effects", "acknowledge", "signatures"})
        finally:
            kit.close()
    checks = by_name(report)
    assert checks["discovery: test mode hooks are on"].status == "warn"
    assert checks["effects: every effect reads back"].status == "skip"
    assert checks["signatures: refuses a timestamp 10 minutes old"].status == "pass"


# -- a deliberately broken platform ---------------------------------------------------------


class _Broken(BaseHTTPRequestHandler):
    """A platform in front of the simulator with five classic bugs:

    * it accepts any signature (it re-signs what it forwards);
    * its timestamps have no zone ("2026-11-29T08:38:11");
    * a declined item loses its reason;
    * its errors are text/plain;
    * it never signs its answers.
    """

    server: _BrokenServer

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length else b""
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower()
            not in ("host", "content-length", "x-docket-timestamp", "x-docket-signature")
        }
        import time

        headers |= signed_headers(SECRET, body, int(time.time()))
        upstream = httpx.request(
            self.command, self.server.upstream + self.path, content=body, headers=headers
        )
        status, content = upstream.status_code, upstream.content
        ctype = upstream.headers.get("content-type", "application/json")
        if status >= 400:
            content, ctype = b"error", "text/plain"
        elif ctype == "application/json":
            content = re.sub(rb'(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z"', rb'\1"', content)
            data = orjson.loads(content)
            if isinstance(data, dict) and isinstance(data.get("items"), list):
                for item in data["items"]:
                    if item.get("effect") == "declined":
                        item["reason"] = None
                content = orjson.dumps(data)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(content)))
        for name in ("Location", "Link"):
            if name in upstream.headers:
                self.send_header(name, upstream.headers[name])
        self.end_headers()
        self.wfile.write(content)

    do_GET = _forward
    do_POST = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _BrokenServer(ThreadingHTTPServer):
    upstream: str


@pytest.fixture
def broken() -> Iterator[str]:
    with conformance_sim() as sim:
        server = _BrokenServer(("127.0.0.1", 0), _Broken)
        server.upstream = sim.url
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/facebook"
        finally:
            server.shutdown()
            server.server_close()


def test_a_broken_platform_fails_with_clear_messages(broken: str) -> None:
    kit = Kit(broken, SECRET)
    try:
        report = kit.run()
    finally:
        kit.close()
    assert not report.ok
    checks = by_name(report)
    text = report.text()

    forged = checks["signatures: refuses a signature made with another secret"]
    assert forged.status == "fail"
    assert any("expected HTTP 401, got 200" in f for f in forged.findings), forged.findings
    nothing = checks["signatures: refuses no signature headers"]
    assert any("expected HTTP 401, got 201" in f for f in nothing.findings), nothing.findings
    created = checks["signatures: refused attempts created nothing"]
    assert any("expected HTTP 201, got 200" in f for f in created.findings), created.findings

    first = checks["delivery: a new order gets a ticket (201)"]
    assert first.status == "fail"
    assert any(
        "received_at" in f and "not an RFC 3339 date-time with Z or an offset" in f
        for f in first.findings
    ), first.findings

    declined = checks["effects: declined reads back"]
    assert declined.status == "fail"
    assert any("reason" in f for f in declined.findings), declined.findings

    unknown = checks["invalid-orders: an unknown field is refused"]
    assert unknown.status == "fail"
    assert any(
        "Content-Type 'text/plain'" in f and "application/json (schema ErrorBody)" in f
        for f in unknown.findings
    ), unknown.findings

    signing = checks["response-signing: answers are signed"]
    assert signing.status == "warn"
    # the report shows what the contract says, what was sent and what came back
    assert "contract: 422: unknown fields in an order are refused" in text
    assert "sent:     POST /v1/requests" in text
    assert "got:      HTTP 422" in text


def test_the_command_line_passes_and_fails(broken: str) -> None:
    with conformance_sim() as sim:
        env = {**os.environ, "KIT_SECRET": SECRET.decode()}
        ok = subprocess.run(
            [
                sys.executable,
                "-m",
                "platform_check",
                sim.base_url("facebook"),
                "--secret-env",
                "KIT_SECRET",
                "--only",
                "delivery",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 failed" in ok.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "platform_check",
            broken,
            "--secret-env",
            "KIT_SECRET",
            "--only",
            "delivery",
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    data = orjson.loads(bad.stdout)
    assert data["ok"] is False and data["counts"]["fail"] >= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["http://127.0.0.1:9/p", "--secret-env", "KIT_UNSET_SECRET"], "not set or empty"),
        (["ftp://x/p", "--secret-env", "KIT_SECRET"], "expected http(s)://"),
        (
            ["http://127.0.0.1:9/p", "--secret-env", "KIT_SECRET", "--vantage", "VN=ftp://x:1"],
            "the proxy scheme 'ftp'",
        ),
        (
            [
                "http://127.0.0.1:9/p",
                "--secret-env",
                "KIT_SECRET",
                "--vantage",
                "vietnam=http://x:1",
            ],
            "ISO country code",
        ),
    ],
)
def test_bad_usage_exits_2(args: list[str], message: str) -> None:
    env = {**os.environ, "KIT_SECRET": "s"}
    env.pop("KIT_UNSET_SECRET", None)
    result = subprocess.run(
        [sys.executable, "-m", "platform_check", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
