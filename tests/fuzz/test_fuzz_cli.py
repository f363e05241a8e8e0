"""`starter.main` with random argv: never a traceback, only exit codes 0-5 with a message.

Commands that need Temporal point at a closed port (TEMPORAL_ADDRESS), so they either fail
before connecting (bad input: 2) or report Temporal unreachable (5).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import starter
from docket.devserver import free_port

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [
    "validate", "submit", "approve", "reject", "ack", "effect", "info", "appeal", "decide",
    "withdraw", "retry", "renotify", "escalate", "close", "status", "timeline", "list",
    "triggers",
]  # fmt: skip
FLAGS = [
    "--as", "--reason", "--json", "--update-id", "--at", "--item", "--item-reason",
    "--effects-file", "--question", "--answer", "--type", "--items", "--grounds", "--outcome",
    "--state", "--platform", "--authority", "--breached", "--overdue", "--open", "--limit",
    "--help", "-h",
]  # fmt: skip
NASTY = [
    "", " ", "-", "--", "\r\n", "a\x00b", "x" * 3000, "Gỡ bỏ nội dung", "ещё", "删除", "🙂",
    "req-mic-1", "req-x/../../etc", "i1=removed_globally", "i1=restricted:VN,TH", "i1=",
    "=declined", "i1=restricted:", "nguyen.van.an", "tran.thi.binh", "liaison.facebook",
    "auditor.state", "nobody", "content_owner", "upheld", "partially_reversed", "reversed",
    "pending_approval", "closed", "2026-13-45T99:99:99Z", "2026-11-29T08:00:00Z", "-1", "0",
    "1e9", "NaN", "'; DROP TABLE", "RequestState = 'x' OR 1=1",
]  # fmt: skip
FILES = [
    *sorted(str(p) for p in (ROOT / "examples").rglob("*.json*")),
    str(ROOT / "examples"),
    "/nonexistent/file.json",
    "/dev/null",
]
TOKEN = st.one_of(
    st.sampled_from(FLAGS),
    st.sampled_from(NASTY),
    st.sampled_from(FILES),
    st.text(max_size=20),
)


@pytest.fixture
def closed_temporal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{free_port()}")
    monkeypatch.delenv("DOCKET_ACTOR", raising=False)
    bad = tmp_path / "effects.json"
    bad.write_bytes(b"\xff\xfe[{")
    return bad


@settings(
    max_examples=100,  # each a CLI run (200 before)
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    command=st.one_of(st.sampled_from(COMMANDS), st.text(max_size=8)),
    rest=st.lists(TOKEN, max_size=8),
    with_file=st.booleans(),
)
@example(
    command="effect", rest=["req-x", "--as", "liaison.facebook", "--reason", "why"], with_file=True
)
@example(command="status", rest=["req-x"], with_file=False)
@example(
    command="approve", rest=["req-x", "--as", "tran.thi.binh", "--reason", "ok"], with_file=False
)
@example(command="validate", rest=FILES[:3], with_file=False)
def test_random_argv_exits_0_to_5_with_a_message(
    closed_temporal: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    rest: list[str],
    with_file: bool,
) -> None:
    argv = [command, *rest]
    if with_file:
        argv += ["--effects-file", str(closed_temporal)]
    try:
        code = starter.main(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    assert 0 <= code <= 5, (argv, code, err[-500:])
    if code != 0:
        assert (out + err).strip(), argv  # a message, never silence
    assert "Traceback" not in out + err, (argv, err[-2000:])
