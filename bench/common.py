"""Shared helpers: process CPU and memory from /proc, statistics and table printing."""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_ms(pid: int) -> float:
    """utime + stime of `pid` (its threads included) in milliseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # after the ")": state is field 3, utime field 14, stime field 15 (1-based in proc(5))
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) * 1000.0 / _TICK


def rss_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of `pid` in MiB, from /proc/<pid>/status."""
    now = peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            now = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return now, peak


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]]

    def render(self) -> str:
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
        line = "  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True))
        out = [self.title, line, "  ".join("-" * w for w in widths)]
        for row in self.rows:
            out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        return "\n".join(out)

    def markdown(self) -> str:
        out = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        out += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(out)


def fmt(value: float, digits: int = 1) -> str:
    if value != value:  # nan
        return "-"
    return f"{value:,.{digits}f}"


def say(text: str) -> None:
    print(text, flush=True)
