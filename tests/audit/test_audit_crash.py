"""A writer killed with SIGKILL mid-append loses no acknowledged entry; the log stays clean.

The child appends batches in a loop and prints "ack <seq>" after each append returns (that is
the activity completing). The parent kills it after a few acks, restarts it from the last
acknowledged entry (what a Temporal retry does), and finally verifies everything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from audit.verify import verify_paths

CHILD = r"""
import sys
from datetime import UTC, datetime, timedelta
from audit.entry import ChainHead, build_entry
from audit.writer import AuditWriter

directory, chain_id, next_seq = sys.argv[1], sys.argv[2], int(sys.argv[3])

def entry(head):
    seq = head.sequence + 1
    return build_entry(
        head,
        timestamp=datetime(2026, 11, 29, tzinfo=UTC) + timedelta(seconds=seq),
        action="recheck", from_state=None if seq == 1 else "monitoring", to_state="monitoring",
        actor_id="system", actor_roles=["system"], organization="Bộ Thông tin và Truyền thông",
        reason=f"kiểm tra lại {seq}",
        # Large entries now and then, so a kill can land inside one write(2).
        data={"pad": "Truyền thông " * (6000 if seq % 3 == 0 else 3)},
    )

head = ChainHead.genesis(chain_id)
while head.sequence < next_seq - 1:  # deterministic replay up to the restart point
    _, head = entry(head)
writer = AuditWriter(directory)
while True:
    batch = []
    for _ in range(1 + head.sequence % 3):
        e, head = entry(head)
        batch.append(e)
    writer.append(batch, attempt=1)
    print(f"ack {head.sequence}", flush=True)
"""


def test_sigkill_loses_no_acknowledged_entry(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    chain = "req-mic-crash-2026"
    acked = 0
    for run in range(20):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path), chain, str(acked + 1)],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert child.stdout is not None
        for _ in range(1 + run % 4):
            line = child.stdout.readline()
            assert line.startswith(b"ack "), line
            acked = int(line.split()[1])
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        result = verify_paths([tmp_path])
        assert set(result.by_code()) <= {"torn_tail"}, [f.render() for f in result.findings]
        head = result.heads[chain]
        assert head.count >= acked  # every acknowledged entry is there, with no gap
    segments = list(tmp_path.glob("segment-*.jsonl"))
    assert len(segments) == 20  # one per process, never shared
