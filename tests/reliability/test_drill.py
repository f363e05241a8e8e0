"""The crash-and-restart drill (bench/drill/drill.py) at N=30: a separate worker process is
SIGKILLed three times and restarted, the dev server is restarted once on its SQLite file.

The drill checks, and this test asserts from its report: every request has the outcome its
scenario implies; audit verify is clean against the anchors from the workflow results; each
history's completed audit writes equal its anchor count; no workflow task failed; the
simulator opened exactly one order per delivered request and got exactly the notices the log
records; the signing secret is nowhere in the server's database or the audit log.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow(80)]

ROOT = Path(__file__).resolve().parents[2]
N = 30
KILLS = 3


def test_drill_kills_and_restarts_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "drill" / "drill.py"),
            "--n",
            str(N),
            "--kills",
            str(KILLS),
            "--kill-every",
            "5:12",
            "--seed",
            "7",
            "--timeout",
            "300",
            "--var",
            str(tmp_path / "var"),
            "--json",
            str(report_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
    )
    assert report_file.exists(), run.stderr[-4000:]
    report = json.loads(report_file.read_text(encoding="utf-8"))
    assert report["failures"] == [], json.dumps(report, indent=2)[:6000]
    assert run.returncode == 0
    # The chaos really happened: three SIGKILLs, each followed by a new worker process, and one
    # server restart on the same database.
    assert len(report["kills"]) == KILLS
    assert report["worker_starts"] >= KILLS + 1
    assert len(report["server_restarts"]) == 1
    # Every request closed with its scenario's outcome.
    assert report["requests"] == N
    assert report["mismatched"] == []
    assert sum(report["outcomes"].values()) == N
    assert set(report["outcomes"]) == {
        "complied",
        "partially_complied",
        "declined",
        "unresponsive",
        "rejected",
    }
    # Audit: clean against every anchor, one distinct entry per transition.
    audit = report["audit"]
    assert audit["status"] == "OK" and audit["findings"] == 0
    assert audit["anchors_checked"] == N and audit["chains"] == N
    assert audit["entries"] == report["history"]["completed:write_audit_entries"]
    assert report["history_mismatches"] == []
    assert report["history"].get("workflow_task_failed", 0) == 0
    # Platform side: one order per delivered request, the notices the log records.
    sim = report["simulator"]
    assert sim["tickets"] == sim["new_orders"] == sim["logged_delivered"]
    assert sim["logged_delivered"] == N - report["outcomes"]["rejected"]
    assert sim["conflicts"] == 0
    assert sim["notices"].get("second_notice", 0) == sim["logged_second_notices"]
    assert sim["logged_second_notices"] >= report["outcomes"]["unresponsive"]
    assert report["secret_found_in"] == []
