"""The report does not depend on how the log is split: segments, chunks, worker processes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from audit_helpers import chain_entries
from test_audit_report import PERIOD, build_chains

from audit.chunks import plan_chunks
from audit.cli import main
from audit.reader import find_segments
from audit.report import build_report
from audit.writer import AuditWriter, render_line

FEB = datetime(2026, 2, 1, tzinfo=UTC)  # before the period and before the log horizon


def _line(entry: dict[str, Any], host: str, attempt: int) -> bytes:
    return render_line({**entry, "writer": {"host": host, "pid": 7, "attempt": attempt}})


@pytest.fixture
def reference(tmp_path: Path) -> dict[str, Any]:
    """The report on the plain log of test_audit_report (its exact numbers are tested there)."""
    w1, w2 = AuditWriter(tmp_path / "plain", host="w1"), AuditWriter(tmp_path / "plain", host="w2")
    for i, ch in enumerate(build_chains()):
        (w1 if i % 2 else w2).append(ch.entries, attempt=1)
    w1.close()
    w2.close()
    return build_report([tmp_path / "plain"], *PERIOD, jobs=1)


@pytest.fixture
def spread(tmp_path: Path) -> tuple[Path, int, int, int]:
    """The same requests (plus others outside the period), each one's entries spread over three
    segments, with retried copies in the same and in other segments (also in segments read
    before the original), a conflicting copy that must lose to the first one, a line that is
    not JSON, a torn tail and an empty segment.

    Returns (directory, distinct entries, copies to drop, chains).
    """
    entries = [e for ch in build_chains() for e in ch.entries]
    for n in range(12):
        entries += chain_entries(f"req-feb-{n}", 10, start=FEB)
    names = ["seg-a", "seg-b", "seg-c"]
    segs: dict[str, list[bytes]] = {name: [] for name in names}
    copies = 0
    for i, e in enumerate(entries):
        segs[names[i % 3]].append(_line(e, names[i % 3], 1))
        if i % 4 == 0:  # retried in another worker's segment (seg-a/b are read before seg-c)
            segs[names[(i + 2) % 3]].append(_line(e, "retry", 2))
            copies += 1
        if i % 7 == 0:  # retried by the same worker
            segs[names[i % 3]].append(_line(e, names[i % 3], 2))
            copies += 1
    # A rewritten copy of chain a's report_effect, read after the original: the first copy wins.
    forged = next(e for e in entries if e["event"]["action"] == "report_effect")
    forged = {**forged, "docket": {**forged["docket"], "items": [{"item_id": "i3", "effect": "x"}]}}
    segs["seg-c"].append(_line(forged, "forger", 1))
    copies += 1
    segs["seg-c"].reverse()  # a request's entries out of order within a segment
    segs["seg-b"].insert(3, b"{not json\n")
    directory = tmp_path / "spread"
    directory.mkdir()
    for name, lines in segs.items():
        (directory / f"{name}.jsonl").write_bytes(b"".join(lines))
    torn = chain_entries("req-torn", 1, start=FEB)[0]  # never acknowledged: not counted
    with open(directory / "seg-c.jsonl", "ab") as f:
        f.write(_line(torn, "seg-c", 1)[:-1])
    (directory / "seg-d.jsonl").write_bytes(b"")
    chains = len({e["docket"]["chain_id"] for e in entries})
    return directory, len(entries), copies, chains


SPLITS = [(1, None), (2, None), (1, 1), (2, 1), (1, 700), (2, 700), (2, 5000)]


@pytest.mark.parametrize(("jobs", "chunk_bytes"), SPLITS)
def test_report_is_independent_of_segments_chunks_and_jobs(
    reference: dict[str, Any],
    spread: tuple[Path, int, int, int],
    jobs: int,
    chunk_bytes: int | None,
) -> None:
    directory, distinct, copies, chains = spread
    kwargs: dict[str, Any] = {"jobs": jobs}
    if chunk_bytes is not None:
        kwargs["chunk_bytes"] = chunk_bytes
    r = build_report([directory], *PERIOD, **kwargs)
    assert r.pop("source") == {
        "files": 3,
        "entries": distinct,
        "duplicates_dropped": copies,
        "chains_in_log": chains,
        "log_horizon": reference["source"]["log_horizon"],
    }
    assert r == {k: v for k, v in reference.items() if k != "source"}


def test_tiny_chunks_are_many(spread: tuple[Path, int, int, int]) -> None:
    directory, distinct, _copies, _chains = spread
    files = find_segments([directory])
    assert len(plan_chunks(files, 1)) > distinct  # about one line per chunk
    assert len(plan_chunks(files, 700)) > 2 * len(files)


def test_cli_jobs(spread: tuple[Path, int, int, int], capsys: pytest.CaptureFixture[str]) -> None:
    directory = spread[0]
    outputs = []
    for jobs in ("1", "2"):
        args = ["report", "--from", "2026-03-01", "--to", "2026-03-31", "--format", "json"]
        assert main([*args, "--jobs", jobs, str(directory)]) == 0
        outputs.append(orjson.loads(capsys.readouterr().out))
    assert outputs[0] == outputs[1]
    assert outputs[0]["totals"] == {"requests": 3, "items": 6}
