"""The stack a benchmark runs on: dev server, platform simulator and worker, each a process."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import orjson

from bench.common import ROOT, VAR, cpu_ms, rss_mib
from docket.devserver import DEMO_DYNAMIC_CONFIG, DevServer, free_port

PLATFORM = "facebook"
# dynamic config added to every bench server (`./run bench --server-config KEY=VALUE,...`)
EXTRA_DYNAMIC_CONFIG: list[str] = []
# ack 1 s and decision 1 s after delivery (simulator seconds = wall seconds)
SCENARIO = {PLATFORM: {"name": "comply", "ack_delay": 1.0, "decide_delay": 1.0}}


def _wait_line(process: subprocess.Popen[bytes], marker: bytes, what: str, timeout: float) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{what} exited ({process.poll()}) before it was ready")
        if marker in line:
            return
    raise RuntimeError(f"{what} not ready within {timeout}s")


def _stop(process: subprocess.Popen[bytes] | None, timeout: float = 20.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Server:
    """A headless dev server on a free port; in memory or on a fresh SQLite file."""

    def __init__(self, name: str, sqlite: bool, dynamic_config: tuple[str, ...] = ()) -> None:
        self.dir = VAR / name
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.dev = DevServer(
            port=free_port(),
            ui_port=None,
            db_file=self.dir / "temporal.db" if sqlite else None,
            log_file=self.dir / "temporal.log",
            dynamic_config=(*DEMO_DYNAMIC_CONFIG, *EXTRA_DYNAMIC_CONFIG, *dynamic_config),
        )

    @property
    def address(self) -> str:
        return self.dev.address

    @property
    def pid(self) -> int:
        assert self.dev.process is not None
        return self.dev.process.pid

    def cpu_ms(self) -> float:
        return cpu_ms(self.pid)

    def __enter__(self) -> Server:
        self.dev.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.dev.stop()


class Simulator:
    """`python -m platform_sim` in its own process (its CPU stays out of the measurements)."""

    def __init__(self, directory: Path) -> None:
        self.secret = secrets.token_hex(16)
        self.port = free_port()
        self.dir = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def content_url(self, slug: str) -> str:
        return f"{self.url}/{PLATFORM}/content/{slug}"

    def __enter__(self) -> Simulator:
        scenario = self.dir / "scenario.json"
        scenario.write_bytes(orjson.dumps(SCENARIO))
        env = {**os.environ, f"DOCKET_SECRET_{PLATFORM.upper()}": self.secret}
        log = open(self.dir / "simulator.log", "ab")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "platform_sim", "--port", str(self.port)),
                *("--platform", PLATFORM, "--scenario-file", str(scenario)),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
        )
        _wait_line(self.process, b"serving", "the platform simulator", 30)
        return self

    def __exit__(self, *exc: object) -> None:
        _stop(self.process)


class WorkerProcess:
    """bench.worker_proc in its own process: its CPU (utime+stime) and RSS from /proc."""

    def __init__(
        self,
        variant: str,
        server: Server,
        sim: Simulator,
        task_queue: str,
        max_cached: int | None = None,
        poll_seconds: float = 1.0,
    ) -> None:
        self.variant = variant
        self.args = [
            sys.executable,
            "-m",
            "bench.worker_proc",
            "--variant",
            variant,
            "--address",
            server.address,
            "--task-queue",
            task_queue,
            "--sim-url",
            sim.url,
            "--secret",
            sim.secret,
            "--audit-dir",
            str(server.dir / "audit" / task_queue),
            "--poll-seconds",
            str(poll_seconds),
        ]
        if max_cached is not None:
            self.args += ["--max-cached", str(max_cached)]
        self.log = server.dir / f"worker-{task_queue}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_ms(self) -> float:
        return cpu_ms(self.pid)

    def rss(self) -> tuple[float, float]:
        return rss_mib(self.pid)

    def __enter__(self) -> WorkerProcess:
        log = open(self.log, "ab")
        self.process = subprocess.Popen(self.args, cwd=ROOT, stdout=subprocess.PIPE, stderr=log)
        _wait_line(self.process, b"READY", f"the {self.variant} worker", 60)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _stop(self.process)
