"""What the conformance kit found: checks, the exchanges behind them, and how they print."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson

from docket.text import terminal

Status = Literal["pass", "fail", "warn", "skip"]
_SHOWN_HEADERS = (
    "content-type",
    "idempotency-key",
    "x-docket-timestamp",
    "x-docket-signature",
    "x-docket-vantage",
    "retry-after",
    "location",
    "link",
)


def excerpt(body: bytes, limit: int = 240) -> str:
    """A one-line, terminal-safe excerpt of a body."""
    if not body:
        return "(empty)"
    text = " ".join(body.decode("utf-8", errors="replace").split())
    text = terminal(text)
    more = f"... ({len(body):,} bytes)" if len(text) > limit else ""
    return text[:limit] + more


def shown_headers(headers: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in _SHOWN_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        value = str(value)
        if name == "x-docket-signature" and len(value) > 23:
            value = value[:23] + "..."
        out[name] = terminal(value)[:200]
    return out


@dataclass
class Exchange:
    """One request the kit sent and what came back."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    error: str | None = None

    def lines(self) -> list[str]:
        sent = " ".join(f"{k}: {v}" for k, v in self.request_headers.items())
        out = [f"sent:     {self.method} {self.url}  {sent}".rstrip()]
        if self.request_body != "(empty)":
            out.append(f"          body: {self.request_body}")
        if self.error is not None:
            out.append(f"got:      no answer: {self.error}")
        else:
            got = " ".join(f"{k}: {v}" for k, v in self.response_headers.items())
            out.append(f"got:      HTTP {self.status}  {got}".rstrip())
            out.append(f"          body: {self.response_body}")
        return out


@dataclass
class Check:
    """One promise of the contract, tested."""

    scenario: str
    name: str
    contract: str
    status: Status = "pass"
    findings: list[str] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    note: str | None = None

    def fail(self, finding: str) -> None:
        self.findings.append(finding)
        self.status = "fail"

    def warn(self, finding: str) -> None:
        self.findings.append(finding)
        if self.status == "pass":
            self.status = "warn"

    def skip(self, why: str) -> None:
        self.note = why
        self.status = "skip"

    def expect(self, condition: bool, finding: str) -> bool:
        if not condition:
            self.fail(finding)
        return condition


@dataclass
class Report:
    base_url: str
    contract_version: str
    checks: list[Check] = field(default_factory=list)

    def counts(self) -> dict[Status, int]:
        out: dict[Status, int] = {"pass": 0, "fail": 0, "warn": 0, "skip": 0}
        for check in self.checks:
            out[check.status] += 1
        return out

    @property
    def ok(self) -> bool:
        return self.counts()["fail"] == 0

    def text(self, *, verbose: bool = False) -> str:
        lines = [
            f"Docket platform conformance kit: contract {self.contract_version}, "
            f"platform {terminal(self.base_url)}",
            "",
        ]
        scenario = None
        for check in self.checks:
            if check.scenario != scenario:
                scenario = check.scenario
                lines.append(f"[{scenario}]")
            label = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}[check.status]
            lines.append(f"  {label}  {check.name}")
            if check.status == "skip" and check.note:
                lines.append(f"        why:      {check.note}")
            if check.status in ("fail", "warn") or verbose:
                lines.append(f"        contract: {check.contract}")
                for finding in check.findings:
                    lines.append(f"        problem:  {finding}")
                for exchange in check.exchanges[-3:]:
                    lines += ["        " + line for line in exchange.lines()]
        counts = self.counts()
        lines += [
            "",
            f"{counts['pass']} passed, {counts['fail']} failed, {counts['warn']} warnings, "
            f"{counts['skip']} skipped",
        ]
        return "\n".join(lines) + "\n"

    def json(self) -> bytes:
        data = {
            "base_url": self.base_url,
            "contract_version": self.contract_version,
            "ok": self.ok,
            "counts": self.counts(),
            "checks": [asdict(check) for check in self.checks],
        }
        return orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"


__all__ = ["Check", "Exchange", "Report", "Status", "excerpt", "shown_headers"]
