"""CLI exit codes and messages (run as a real subprocess: python -m audit)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
from audit_helpers import anchor_of, write_log

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audit", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_verify_ok_findings_and_json(tmp_path: Path) -> None:
    path, built = write_log(tmp_path / "log", {"req-mic-a-2026": 6, "req-mic-b-2026": 4})
    ok = run("verify", str(tmp_path / "log"))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: 1 files, 10 lines, 10 entries in 2 chains")
    anchors = tmp_path / "anchors.jsonl"
    lines = [orjson.dumps(anchor_of(e).to_dict()) for e in built.values()]
    lines.append(
        b'{"workflow_id": "req-mic-gone-2026", "count": 3, "head_hash": "' + b"a" * 64 + b'"}'
    )
    anchors.write_bytes(b"\n".join(lines) + b"\n")
    bad = run("verify", "--anchors", str(anchors), "--json", env={"DOCKET_AUDIT_DIR": str(path)})
    assert bad.returncode == 1
    out = orjson.loads(bad.stdout)
    assert out["summary"]["status"] == "FAILED"
    assert out["summary"]["findings_by_code"] == {"missing_chain": 1}
    assert out["findings"][0]["chain_id"] == "req-mic-gone-2026"
    text = run("verify", "--anchors", str(anchors), str(path))
    assert text.returncode == 1 and "missing_chain" in text.stdout and "FAILED" in text.stdout


def test_show_marks_a_tampered_entry(tmp_path: Path) -> None:
    path, _built = write_log(tmp_path / "log", {"req-mic-a-2026": 5})
    good = run("show", "req-mic-a-2026", str(path))
    assert good.returncode == 0 and "all entries verify" in good.stdout
    assert "nguyen.van.a (maker)" in good.stdout and "pending_approval -> delivering" in good.stdout
    path.write_bytes(path.read_bytes().replace("Lý do 2".encode(), "Lý do 9".encode()))
    bad = run("show", "req-mic-a-2026", str(path))
    assert bad.returncode == 1 and "HASH MISMATCH" in bad.stdout
    missing = run("show", "req-nope", str(path))
    assert missing.returncode == 1 and "no entries for 'req-nope'" in missing.stderr


def test_report_and_argument_errors(tmp_path: Path) -> None:
    path, _built = write_log(tmp_path / "log", {"req-mic-a-2026": 3})
    rep = run("report", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "csv", str(path))
    assert rep.returncode == 0 and "totals,requests,,1" in rep.stdout
    assert run("report", "--from", "2026-13-01", "--to", "2026-11-30").returncode == 2
    swapped = run("report", "--from", "2026-12-01", "--to", "2026-11-30", str(path))
    assert swapped.returncode == 2 and "must not be before" in swapped.stderr
    assert run("report", "--from", "2026-11-01").returncode == 2  # --to is required
    assert (
        run(
            "report", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "xml", str(path)
        ).returncode
        == 2
    )
    nothing = run("verify", str(tmp_path / "absent"))
    assert nothing.returncode == 2 and "no such audit file or directory" in nothing.stderr
    (tmp_path / "empty").mkdir()
    empty = run("verify", str(tmp_path / "empty"))
    assert empty.returncode == 2 and "no *.jsonl audit segments" in empty.stderr
    anchors = tmp_path / "bad.json"
    anchors.write_text('[{"chain_id": "x", "count": 1, "head_hash": "nothex"}]')
    bad = run("verify", "--anchors", str(anchors), str(path))
    assert bad.returncode == 2 and "head_hash" in bad.stderr
    assert run().returncode == 2
