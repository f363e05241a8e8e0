"""What `audit verify --trust` adds: every human entry's signature checked, on a large log.

    python -m bench.audit_signatures_bench [--entries 1000000] [--rounds 1] [--serial]

The log is audit_bench's (the real comply lifecycle of bench/data/lifecycle_template.jsonl,
9 entries, re-chained over N/9 requests and written with the real AuditWriter by 2 processes),
with its two human entries per request signed as the workflow records them: the submission
(the statement carries the whole order) and the approval, each with a fresh statement for its
request and nonce, signed with a real ed25519 key whose OpenSSH certificate a generated CA
issued, and kept in the entry's `docket.signed`. The submission's recorded request and items
come from docket.case planning the same order, so every binding check has something to
compare. So 2 of every 9 entries are checked (22 %; the demo's log has 8 of 19); the others
(system, platform API) are only classified.

Measured with the command line, as an auditor runs it: `python -m audit verify DIR` (the
chain only) against `python -m audit verify DIR --trust trust.toml` (chain, then signatures);
the difference is what signatures add. `--serial` also runs the latter with `--jobs 1`.
In-process, per human entry: `check_entry` with the credential cache (each certificate checked
once per validity window) and without it (every entry checks its certificate's CA signature
again). The log and its identities are cached under var/bench/signed-auditlog-N/ (delete it
to regenerate).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.audit_bench import _template, generate_log, write_chains
from bench.common import ROOT, VAR, Table, fmt, median, say

EXAMPLE = ROOT / "examples" / "seed" / "mic-facebook-2017.json"
VALID_FROM = datetime(2025, 12, 1, tzinfo=UTC)
VALID_UNTIL = datetime(2027, 1, 1, tzinfo=UTC)
MAKER, APPROVER = "nguyen.van.an", "tran.thi.binh"


# --- identities --------------------------------------------------------------------------------


def _identities(directory: Path) -> None:
    """A CA, the maker's and the approver's keys and certificates, and the trust file."""
    from docket.keys import generate_key, issue_certificate, private_key_text, public_key_line_of
    from docket.lifecycle import Role

    directory.mkdir(parents=True, exist_ok=True)
    ca = generate_key()
    ca_line = public_key_line_of(ca, "mic-ca")
    for actor, role, serial in ((MAKER, Role.OFFICER, 1), (APPROVER, Role.APPROVER, 2)):
        key = generate_key()
        (directory / actor).write_bytes(private_key_text(key, None))
        cert = issue_certificate(
            ca, public_key_line_of(key), actor, [role], VALID_FROM, VALID_UNTIL, serial
        )
        (directory / f"{actor}-cert.pub").write_text(cert + "\n")
    (directory / "trust.toml").write_text(
        "signing_required_from = 2025-12-01T00:00:00Z\n\n"
        "[[organization]]\n"
        'id = "mic"\n'
        'name = "Bộ Thông tin và Truyền thông"\n'
        'acts_for = ["authority:mic"]\n'
        'may_grant = ["officer", "approver"]\n'
        f'ca_keys = ["{ca_line}"]\n',
        encoding="utf-8",
    )


def _signers(directory: Path) -> dict[str, Any]:
    from docket.signer import load_signer

    return {
        actor: load_signer(actor=actor, key=str(directory / actor), environ={})
        for actor in (MAKER, APPROVER)
    }


def _submission() -> tuple[dict[str, Any], dict[str, Any]]:
    """The order as docket.client puts it in the statement (the model's JSON), and its
    `submit` entry as docket.case plans it (the recorded request summary, items and reason)."""
    from docket.case import Case
    from docket.intake import parse_order, resolve
    from docket.lifecycle import Role
    from docket.models import Actor
    from docket.reference import default_reference
    from docket.validation import workflow_id_for

    order = parse_order(json.loads(EXAMPLE.read_text(encoding="utf-8")))
    maker = Actor(id=MAKER, roles=(Role.OFFICER,), organization="Bộ Thông tin và Truyền thông")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    request = resolve(
        order,
        maker,
        default_reference(),
        workflow_id=workflow_id_for(order.authority, order.reference),
        now=now,
    )
    entry = Case(request).plan_submission(now, []).entry
    return order.model_dump(mode="json"), entry  # what docket.client signs


# --- the log -----------------------------------------------------------------------------------


def _write_part(identities: str, directory: str, chains: range) -> int:
    from docket.case import Signature
    from docket.signer import sign_command
    from docket.statement import parse_statement

    signers = _signers(Path(identities))
    order, planned_submit = _submission()

    def sign(chain_id: str, body: dict[str, Any], at: datetime) -> dict[str, Any] | None:
        """Sign the submission and the approval as the workflow records them."""
        event, docket = body["event"], body["docket"]
        if event["action"] not in ("submit", "approve"):
            return None
        actor = body["user"]["id"]
        if event["action"] == "submit":
            payload: dict[str, Any] = {"order": order}
            docket["request"] = planned_submit["docket"]["request"]
            docket["items"] = planned_submit["docket"]["items"]
            event["reason"] = planned_submit["event"]["reason"]
        else:
            payload = {"reason": event.get("reason")}
        signer = signers[actor]
        command = sign_command(
            signer, chain_id, event["action"], actor, payload, at - timedelta(seconds=1)
        )
        statement = parse_statement(command.statement)
        return Signature(
            statement=command.statement,
            signature=command.signature,
            nonce=statement.nonce,
            key_fingerprint=signer.key_fingerprint,
            ca_fingerprint=signer.certificate.ca_key.fingerprint,
            credential_serial=signer.certificate.serial,
            organization_id="mic",
        ).entry()

    return write_chains(directory, chains, sign)


def ensure_log(entries: int) -> Path:
    """The cached signed N-entry log; returns its directory (segments/ and identities/)."""
    directory = VAR / f"signed-auditlog-{entries}"
    if not (directory / "COMPLETE").exists():
        shutil.rmtree(directory, ignore_errors=True)
        (directory / "segments").mkdir(parents=True)
        identities = directory / "identities"
        _identities(identities)
        write_part = functools.partial(_write_part, str(identities))
        generate_log(directory / "segments", entries, write_part, "signatures")
    return directory


# --- measuring ---------------------------------------------------------------------------------


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(cmd: list[str]) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds of the command and its worker processes, exit code, output."""
    cpu = _children_cpu()
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    tail = done.stdout[-600:] + done.stderr[-600:]
    return wall, _children_cpu() - cpu, done.returncode, tail


def bench_cli(directory: Path, rounds: int, serial: bool) -> Table:
    segments = directory / "segments"
    trust = directory / "identities" / "trust.toml"
    count = json.loads((directory / "COMPLETE").read_text())["entries"]
    human = count * 2 // len(_template())
    size = sum(f.stat().st_size for f in segments.glob("*.jsonl"))
    py = sys.executable
    commands = {
        "verify (chain only)": [py, "-m", "audit", "verify", str(segments)],
        "verify --trust": [py, "-m", "audit", "verify", str(segments), "--trust", str(trust)],
    }
    if serial:
        commands["verify --trust --jobs 1"] = [*commands["verify --trust"], "--jobs", "1"]
    times: dict[str, list[float]] = {k: [] for k in commands}
    cpus: dict[str, list[float]] = {k: [] for k in commands}
    for _ in range(rounds):
        for name, cmd in commands.items():
            elapsed, cpu, code, tail = _timed(cmd)
            if code != 0:
                say(f"    {name} exited {code}: {tail}")
            elif "--trust" in name:
                say(f"    {tail.strip().splitlines()[-1] if tail.strip() else ''}")
            times[name].append(elapsed)
            cpus[name].append(cpu)
            say(f"    {name}: {elapsed:.1f} s, {cpu:.1f} CPU s (exit {code})")
    chain, chain_cpu = median(times["verify (chain only)"]), median(cpus["verify (chain only)"])
    rows = []
    for name in commands:
        t, cpu = median(times[name]), median(cpus[name])
        first = name == "verify (chain only)"
        added = float("nan") if first else t - chain
        added_cpu = float("nan") if first else cpu - chain_cpu
        rows.append(
            [
                name,
                fmt(t, 1),
                fmt(cpu, 1),
                fmt(added, 1),
                fmt(added_cpu, 1),
                fmt(count / t, 0),
                "-" if first else fmt(added_cpu / human * 1e6, 0),
            ]
        )
    return Table(
        f"audit verify on {count:,} entries ({size / 1e6:,.0f} MB), {human:,} of them signed "
        f"human entries; median of {rounds}; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the end",
        [
            "command",
            "wall s",
            "CPU s",
            "added wall s",
            "added CPU s",
            "entries/s",
            "CPU µs per human entry",
        ],
        rows,
    )


def bench_per_entry(directory: Path, n: int) -> Table:
    """check_entry per human entry, in this process, with and without the credential cache."""
    from audit.signatures import CredentialCache, check_entry
    from docket.credentials import load_trust

    trust = load_trust(directory / "identities" / "trust.toml")
    lines: list[bytes] = []
    for path in sorted((directory / "segments").glob("*.jsonl")):
        with path.open("rb") as f:
            for raw in f:
                if b'"signed":{' in raw:
                    lines.append(raw)
                    if len(lines) >= n:
                        break
        if len(lines) >= n:
            break
    entries = [orjson.loads(raw) for raw in lines]
    rows = []
    for label, cache in (("with the cache", CredentialCache(trust)), ("without", None)):
        for entry in entries[:50]:
            check_entry(entry, trust, cache)  # warm up
        t = time.perf_counter()
        bad = sum(bool(check_entry(e, trust, cache).problems) for e in entries)
        per = (time.perf_counter() - t) / len(entries)
        assert bad == 0, f"{bad} entries with findings"
        rows.append([label, f"{len(entries):,}", fmt(per * 1e6, 0), fmt(1 / per, 0)])
    t = time.perf_counter()
    for raw in lines:
        orjson.loads(raw)
    parse = (time.perf_counter() - t) / len(lines)
    rows.append(["(parsing the line alone)", f"{len(lines):,}", fmt(parse * 1e6, 0), "-"])
    return Table(
        "check_entry per signed human entry, one process (submissions and approvals alike)",
        ["", "entries", "µs per entry", "entries/s"],
        rows,
    )


def run_suite(entries: int, rounds: int, per_entry: int, serial: bool = False) -> list[Table]:
    """What signatures add per entry (in process) and to `audit verify` on a log of
    `entries` entries (the command line)."""
    VAR.mkdir(parents=True, exist_ok=True)
    directory = ensure_log(entries)
    return [bench_per_entry(directory, per_entry), bench_cli(directory, rounds, serial)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.audit_signatures_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--per-entry", type=int, default=20_000, help="entries for check_entry")
    parser.add_argument("--serial", action="store_true", help="also run with --jobs 1")
    args = parser.parse_args(argv)
    for table in run_suite(args.entries, args.rounds, args.per_entry, args.serial):
        say("")
        say(table.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
