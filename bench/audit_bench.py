"""Suite `audit`: the audit writer, `verify` and `report` on a large log.

- append: entries/s through AuditWriter.append as shipped (render, hash check, one write and
  one fsync per batch) against a plain O_APPEND write of pre-rendered lines with the same
  fsync policy, for batches of 1 (what the workflow does: one entry per activity) and 100;
- verify: `python -m audit verify DIR` on an N-entry log (entries/s, MB/s) against
  `sha256sum` of the same files (the hashing limit). verify parses every line's body once,
  re-serialises it to prove the stored bytes are canonical, and hashes the stored bytes;
- report: `python -m audit report --from ... --to ... DIR` on the same log (target < 30 s).

The log is generated from a real Docket comply lifecycle (bench/data/lifecycle_template.jsonl,
9 entries with evidence) re-chained with audit.entry.build_entry over N/9 requests and
written with the real AuditWriter in batches of 1,000, by 2 processes (2 segments, as with
2 workers). It is cached under var/bench/auditlog-N/ (delete it to regenerate).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from audit.entry import ChainHead, build_entry
from audit.writer import AuditWriter, render_line
from bench.common import ROOT, VAR, Table, fmt, median, ratio, say

TEMPLATE = Path(__file__).parent / "data" / "lifecycle_template.jsonl"
BATCH = 1000
PERIOD_START = datetime(2026, 1, 1, tzinfo=UTC)


def _template() -> list[str]:
    return TEMPLATE.read_text(encoding="utf-8").splitlines()


def _parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# What a signed log adds to an entry: called with the request's chain id, the template line
# (which it may change: a signed submission records what the statement carries) and the
# entry's time; returns the entry's `docket.signed`, or None for an unsigned entry.
Signing = Callable[[str, dict[str, Any], datetime], dict[str, Any] | None]


def chain_entries(
    template: list[str], chain: int, sign: Signing | None = None
) -> list[dict[str, Any]]:
    """The template lifecycle as request `chain`: its own id, timestamps and hash chain
    (signed by `sign` where it says)."""
    tag = f"g{chain}"
    raw = [json.loads(line.replace("CHAIN", tag)) for line in template]
    t0 = _parse_ts(raw[0]["@timestamp"])
    # spread the requests over the first half of 2026, one every ~15 s
    base = PERIOD_START + timedelta(seconds=15 * chain)
    chain_id = raw[0]["docket"]["chain_id"]
    head = ChainHead.genesis(chain_id)
    out = []
    for body in raw:
        at = base + (_parse_ts(body["@timestamp"]) - t0)
        signed = sign(chain_id, body, at) if sign is not None else None
        event, docket = body["event"], body["docket"]
        entry, head = build_entry(
            head,
            timestamp=at,
            action=event["action"],
            from_state=docket["from_state"],
            to_state=docket["to_state"],
            actor_id=body["user"]["id"],
            actor_roles=body["user"]["roles"],
            organization=body["organization"]["name"],
            reason=event.get("reason"),
            outcome=event["outcome"],
            items=docket.get("items"),
            evidence=docket.get("evidence"),
            request=docket.get("request"),
            appeal=docket.get("appeal"),
            data=docket.get("data"),
            signed=signed,
            message=body["message"],
        )
        out.append(entry)
    return out


def write_chains(directory: str, chains: range, sign: Signing | None = None) -> int:
    """Write requests `chains` of the template lifecycle with the real AuditWriter, in
    batches of BATCH entries; the number of entries written."""
    template = _template()
    writer = AuditWriter(directory, host=f"bench{chains.start}")
    batch: list[dict[str, Any]] = []
    written = 0
    for chain in chains:
        batch.extend(chain_entries(template, chain, sign))
        if len(batch) >= BATCH:
            writer.append(batch, 1)
            written += len(batch)
            batch = []
    if batch:
        writer.append(batch, 1)
        written += len(batch)
    writer.close()
    return written


def _write_part(directory: str, chains: range) -> int:
    return write_chains(directory, chains)


def generate_log(
    segments: Path, entries: int, write_part: Callable[[str, range], int], what: str
) -> None:
    """Write about `entries` entries into `segments` with `write_part` in 2 processes (2
    segments, as with 2 workers), then mark the log COMPLETE beside it."""
    chains = max(1, entries // len(_template()))
    half = chains // 2
    say(f"  {what}: generating a {chains * len(_template()):,}-entry log ({chains:,} requests) ...")
    t = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        parts = [range(0, half), range(half, chains)]
        total = sum(pool.map(write_part, [str(segments)] * 2, parts))
    elapsed = time.perf_counter() - t
    say(f"  {what}: generated {total:,} entries in {elapsed:.0f} s ({total / elapsed:,.0f}/s)")
    (segments.parent / "COMPLETE").write_text(json.dumps({"entries": total, "seconds": elapsed}))


def ensure_log(entries: int) -> Path:
    """The cached N-entry log (generated once with the real writer, 2 processes)."""
    directory = VAR / f"auditlog-{entries}"
    if not (directory / "COMPLETE").exists():
        shutil.rmtree(directory, ignore_errors=True)
        (directory / "segments").mkdir(parents=True)
        generate_log(directory / "segments", entries, _write_part, "audit")
    return directory / "segments"


def log_size(segments: Path) -> tuple[int, int]:
    files = sorted(segments.glob("*.jsonl"))
    size = sum(f.stat().st_size for f in files)
    count = json.loads((segments.parent / "COMPLETE").read_text())["entries"]
    return count, size


# --- append ------------------------------------------------------------------------------------


def _append_writer(directory: Path, batches: list[list[dict[str, Any]]]) -> float:
    writer = AuditWriter(directory)
    t = time.perf_counter()
    for batch in batches:
        writer.append(batch, 1)
    elapsed = time.perf_counter() - t
    writer.close()
    return elapsed


def _append_plain(directory: Path, batches: list[list[dict[str, Any]]]) -> float:
    """Plain O_APPEND: render each line (orjson, as the writer's sink does), one write and one
    fsync per batch; no structlog pipeline, no hash re-check, no writer metadata."""
    fd = os.open(directory / "plain.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    t = time.perf_counter()
    for batch in batches:
        data = b"".join(render_line(e) for e in batch)
        os.write(fd, data)
        os.fsync(fd)
    elapsed = time.perf_counter() - t
    os.close(fd)
    return elapsed


def bench_append(total: int, rounds: int) -> Table:
    template = _template()
    entries: list[dict[str, Any]] = []
    chain = 0
    while len(entries) < total:
        entries.extend(chain_entries(template, chain))
        chain += 1
    entries = entries[:total]
    rows = []
    for size in (1, 100):
        batches = [entries[i : i + size] for i in range(0, len(entries), size)]
        results: dict[str, list[float]] = {"writer": [], "plain": []}
        for r in range(rounds):
            order = ("writer", "plain") if r % 2 == 0 else ("plain", "writer")
            for kind in order:
                with tempfile.TemporaryDirectory(dir=VAR) as tmp:
                    run = _append_writer if kind == "writer" else _append_plain
                    results[kind].append(len(entries) / run(Path(tmp), batches))
        w, p = median(results["writer"]), median(results["plain"])
        rows.append([str(size), f"{len(entries):,}", fmt(w, 0), fmt(p, 0), fmt(ratio(p, w), 2)])
        say(f"    append batch {size}: writer {w:,.0f}/s, plain {p:,.0f}/s")
    return Table(
        f"Audit append (entries/s, fsync per batch, median of {rounds})",
        ["batch", "entries", "AuditWriter", "plain write+fsync", "plain ÷ writer"],
        rows,
    )


# --- verify and report -------------------------------------------------------------------------


def _timed(cmd: list[str]) -> tuple[float, int, str]:
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    return time.perf_counter() - t, done.returncode, done.stdout[-400:] + done.stderr[-400:]


def bench_verify_report(entries: int, rounds: int) -> Table:
    segments = ensure_log(entries)
    count, size = log_size(segments)
    files = [str(f) for f in sorted(segments.glob("*.jsonl"))]
    py = sys.executable
    commands = {
        "sha256sum": ["sha256sum", *files],
        "verify": [py, "-m", "audit", "verify", str(segments)],
        "report": [
            *(py, "-m", "audit", "report", "--from", "2026-01-01", "--to", "2026-12-31"),
            *("--format", "json", str(segments)),
        ],
    }
    times: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(rounds):
        for name, cmd in commands.items():
            elapsed, code, tail = _timed(cmd)
            if code != 0:
                say(f"    {name} exited {code}: {tail}")
            times[name].append(elapsed)
            say(f"    {name}: {elapsed:.1f} s (exit {code})")
    mb = size / 1e6
    rows = []
    for name in commands:
        t = median(times[name])
        rows.append(
            [name, f"{count:,}", f"{mb:,.0f}", fmt(t, 1), fmt(count / t, 0), fmt(mb / t, 0)]
        )
    sha = median(times["sha256sum"])
    rows.append(["verify ÷ sha256sum", "", "", fmt(ratio(median(times["verify"]), sha), 2), "", ""])
    return Table(
        f"Audit verify/report on {count:,} entries ({mb:,.0f} MB, {len(files)} segments), "
        f"median of {rounds}",
        ["tool", "entries", "MB", "seconds", "entries/s", "MB/s"],
        rows,
    )


def run_suite(entries: int, append_entries: int, rounds: int) -> list[Table]:
    VAR.mkdir(parents=True, exist_ok=True)  # the suite may run alone, first
    say(f"  audit: append {append_entries:,} entries x {rounds} rounds")
    append = bench_append(append_entries, rounds)
    say(f"  audit: verify/report on {entries:,} entries")
    return [append, bench_verify_report(entries, rounds)]
