"""Suite `signing`: what signing and verifying add to one command (milliseconds).

    python -m bench.signing_bench [--n 2000]

- sign: build the canonical statement and sign it (a key in the process, or through a real
  ssh-agent started for the run: one UNIX-socket round trip per command);
- verify: what the workflow does per command (`docket.statement.verify_command`: parse and
  re-canonicalize the statement, check the SSH signature, the certificate's CA signature,
  revocation, roles and validity);
- sizes: an approval (one reason) and a submission of an order with 100 and 500 items;
- trust: re-validating the trust roots as they arrive from history (8 organizations, 200
  revocations), which happens once per workflow task that loads them, not per command.

Keys are ed25519 unless the row says otherwise; each number is the median of N runs (and p99)
on this machine, single-threaded, measured with time.perf_counter.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Table, fmt, percentile, say
from docket.credentials import TrustRoots
from docket.keys import generate_key, issue_certificate, private_key_text, public_key_line_of
from docket.lifecycle import Role
from docket.signer import KeySigner, Signer, load_certificate, sign_command, signer_from_agent
from docket.statement import verify_command

NOW = datetime.now(UTC).replace(microsecond=0)
REQUEST = "req-mic-2026-0042"


def _order(items: int) -> dict[str, Any]:
    return {
        "order": {
            "reference": "2026-0042",
            "legal_basis": "VN-D147-2024",
            "statement_of_reasons": "Nội dung xuyên tạc, vi phạm Điều 8 Luật An ninh mạng. " * 4,
            "items": [
                {
                    "item_id": f"i-{i}",
                    "url": f"https://www.facebook.com/groups/1234567890/posts/{10**12 + i}/",
                    "category": "disinformation",
                    "reason": "Bài đăng sai sự thật về chính sách.",
                }
                for i in range(items)
            ],
        }
    }


def _timed(fn: Callable[[], object], n: int) -> list[float]:
    for _ in range(min(50, n)):  # warm up
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _row(what: str, samples: list[float]) -> list[str]:
    return [what, fmt(statistics.median(samples), 3), fmt(percentile(samples, 99), 3)]


def _organization(key_type: str) -> tuple[Any, str]:
    ca = generate_key(key_type)
    return ca, public_key_line_of(ca, "mic-ca")


def _trust(ca_line: str, organizations: int = 1, revocations: int = 0) -> TrustRoots:
    orgs = [
        {
            "id": "mic",
            "name": "Bộ Thông tin và Truyền thông",
            "acts_for": ["authority:mic"],
            "may_grant": ["officer", "approver"],
            "ca_keys": [ca_line],
        }
    ]
    for i in range(1, organizations):
        orgs.append(
            {
                "id": f"platform-{i}",
                "name": f"Platform {i}",
                "acts_for": [f"platform:p{i}"],
                "may_grant": ["platform_liaison"],
                "ca_keys": [public_key_line_of(generate_key(), f"p{i}")],
            }
        )
    revoked = [public_key_line_of(generate_key()) for _ in range(revocations)]
    return TrustRoots.model_validate(
        {
            "signing_required_from": "2026-01-01T00:00:00Z",
            "organizations": orgs,
            "revoked": revoked,
        }
    )


def _official(ca: Any, key_type: str) -> tuple[Any, str]:
    key = generate_key(key_type)
    line = issue_certificate(
        ca,
        public_key_line_of(key),
        "tran.thi.binh",
        (Role.OFFICER, Role.APPROVER),
        NOW - timedelta(days=1),
        NOW + timedelta(days=90),
        1,
    )
    return key, line


def run_suite(n: int) -> list[Table]:
    sign_rows: list[list[str]] = []
    verify_rows: list[list[str]] = []
    approve = {"reason": "Đủ căn cứ pháp lý; đồng ý gửi yêu cầu."}
    payloads = [("approve", approve), ("submit, 100 items", _order(100))]
    payloads.append(("submit, 500 items", _order(500)))
    for key_type in ("ed25519", "ecdsa", "rsa"):
        ca, ca_line = _organization(key_type)
        trust = _trust(ca_line)
        key, cert_line = _official(ca, key_type)
        signer = KeySigner(key, load_certificate(cert_line))
        for label, payload in payloads:
            if key_type != "ed25519" and label != "approve":
                continue
            trigger = "submit" if label.startswith("submit") else "approve"
            label = f"{label} ({key_type}{', RSA-3072' if key_type == 'rsa' else ''})"
            commands: list[Any] = []

            def sign(
                payload: dict[str, Any] = payload,
                trigger: str = trigger,
                signer: KeySigner = signer,
                commands: list[Any] = commands,
            ) -> object:
                command = sign_command(signer, REQUEST, trigger, "tran.thi.binh", payload, NOW)
                commands.append(command)
                return command

            rounds = n if not label.startswith("submit, 500") else max(20, n // 20)
            sign_rows.append(_row(f"{label}, key in process", _timed(sign, rounds)))
            command = commands[-1]

            def verify(
                command: Any = command, trigger: str = trigger, trust: TrustRoots = trust
            ) -> object:
                return verify_command(command, trust, NOW, request_id=REQUEST, trigger=trigger)

            verify_rows.append(_row(label, _timed(verify, rounds)))
        if key_type == "ed25519":
            agent_row = _agent_row(key, cert_line, approve, n)
            if agent_row:
                sign_rows.append(agent_row)

    big = _trust(ca_line, organizations=8, revocations=200)
    dumped = big.model_dump_json()
    trust_rows = [
        _row(
            "validate trust roots from JSON (8 orgs, 200 revoked)",
            _timed(lambda: TrustRoots.model_validate_json(dumped), max(20, n // 10)),
        ),
        _row(
            "validate and compute the digest",
            _timed(lambda: TrustRoots.model_validate_json(dumped).digest, max(20, n // 10)),
        ),
    ]
    columns = ["what", "median ms", "p99 ms"]
    return [
        Table(f"sign one command (n={n})", columns, sign_rows),
        Table(f"verify one command, as the workflow does (n={n})", columns, verify_rows),
        Table("trust roots as they arrive from history", columns, trust_rows),
    ]


def _agent_row(key: Any, cert_line: str, payload: dict[str, Any], n: int) -> list[str] | None:
    agent = shutil.which("ssh-agent")
    add = shutil.which("ssh-add")
    if agent is None or add is None:
        say("ssh-agent not installed: the agent row is skipped")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        sock = str(Path(tmp) / "agent.sock")
        proc = subprocess.Popen([agent, "-D", "-a", sock], stdout=subprocess.DEVNULL)
        try:
            while not Path(sock).exists():
                time.sleep(0.02)
            path = Path(tmp) / "binh"
            path.write_bytes(private_key_text(key, None))
            path.chmod(0o600)
            Path(f"{path}-cert.pub").write_text(cert_line + "\n")
            subprocess.run(
                [add, str(path)], env={"SSH_AUTH_SOCK": sock}, check=True, capture_output=True
            )
            signer: Signer = signer_from_agent(sock, actor="tran.thi.binh")
            samples = _timed(
                lambda: sign_command(signer, REQUEST, "approve", "tran.thi.binh", payload, NOW), n
            )
            return _row("approve (ed25519), through ssh-agent", samples)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.signing_bench", description=__doc__)
    parser.add_argument("--n", type=int, default=2000, help="runs per row (default 2000)")
    args = parser.parse_args(argv)
    for table in run_suite(args.n):
        say(table.render())
        say("")
    return 0


if __name__ == "__main__":
    sys.exit(main())
