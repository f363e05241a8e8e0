"""Suite `metrics`: what Docket's metrics add to an audit write, and what a scrape costs.

    python -m bench.metrics_bench [--n 2000]

- record: `docket.metrics.AuditMetrics.written` for one entry (what the audit activity does
  after each durable write: the latency histogram, the count-once check, the transition
  counter), on the meter of a runtime serving Prometheus metrics, against the write it
  follows: `AuditWriter.append` of the same entry with its fsync, in a temporary directory;
- with the meter of a runtime without metrics (the SDK's no-op meter, DOCKET_METRICS_ADDRESS
  unset);
- scrape: GET /metrics over loopback once 2,000 distinct entries of 21 actions are recorded.

Each number is the median of N runs (and p99) on this machine, in microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from temporalio.common import MetricMeter

from audit.entry import ChainHead, build_entry
from audit.writer import AuditWriter
from bench.common import Table, fmt, percentile, say
from docket.devserver import free_port
from docket.lifecycle import TRIGGERS
from docket.metrics import AuditMetrics, metrics_runtime


def _entries(n: int) -> list[dict[str, Any]]:
    head = ChainHead.genesis("req-bench-metrics")
    out = []
    for i in range(n):
        entry, head = build_entry(
            head,
            timestamp=datetime.now(UTC),
            action=TRIGGERS[i % len(TRIGGERS)],
            from_state="awaiting_ack",
            to_state="acknowledged",
            actor_id="system",
            actor_roles=["system"],
            organization="Docket",
            reason="bench",
            data={"disagreements": [{"item_id": "i1"}]} if i % 7 == 0 else None,
        )
        out.append(entry)
    return out


def _timed(fn: Callable[[int], None], n: int) -> list[float]:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def _row(what: str, samples: list[float]) -> list[str]:
    return [what, fmt(statistics.median(samples)), fmt(percentile(samples, 99))]


def run_suite(n: int) -> list[Table]:
    entries = _entries(n)
    address = f"127.0.0.1:{free_port()}"
    runtime = metrics_runtime(address)
    meter = runtime.metric_meter.with_additional_attributes(
        {"namespace": "default", "task_queue": "bench", "activity_type": "write_audit_entries"}
    )
    rows = []
    served = AuditMetrics()
    rows.append(
        _row(
            "record one entry (Prometheus)",
            _timed(lambda i: served.written(meter, [entries[i]], 0.001), n),
        )
    )
    noop = AuditMetrics()
    rows.append(
        _row(
            "record one entry (metrics off)",
            _timed(lambda i: noop.written(MetricMeter.noop, [entries[i]], 0.001), n),
        )
    )
    rows.append(
        _row(
            "record a retried entry (counted before)",
            _timed(lambda i: served.written(meter, [entries[i]], 0.001), n),
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        writer = AuditWriter(tmp)
        try:
            rows.append(
                _row(
                    "the write it follows (append + fsync)",
                    _timed(lambda i: writer.append([entries[i]], 1), n),
                )
            )
        finally:
            writer.close()

    def scrape(_: int) -> None:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as response:
            response.read()

    rows.append(_row("scrape /metrics", _timed(scrape, min(n, 200))))
    del runtime
    return [Table(f"metrics: microseconds per operation, N={n}", ["what", "median", "p99"], rows)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_bench", description=__doc__)
    parser.add_argument("--n", type=int, default=2000, help="runs per row (default 2000)")
    args = parser.parse_args(argv)
    for table in run_suite(args.n):
        say(table.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
