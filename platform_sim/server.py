"""HTTP layer of the platform simulator (stdlib ThreadingHTTPServer, HTTP/1.1 keep-alive).

Routes (``<p>`` is a platform id, e.g. ``facebook``):

* ``POST /<p>/v1/requests``, ``GET /<p>/v1/requests/{ticket}``,
  ``POST /<p>/v1/requests/{ticket}/notices``: protocol v1, signed (401 otherwise).
* ``GET /<p>/v1/markers``: the platform's page markers (signed, like the API).
* ``GET /<p>/v1/openapi.json``: the contract (docs/platform-protocol.openapi.json), unsigned.
* ``GET /<p>/v1/conformance``, ``POST /<p>/v1/conformance/content``,
  ``POST /<p>/v1/conformance/requests/{ticket}/actions``: the conformance kit's test hooks
  (signed; only with ``conformance=True`` / ``--conformance``).
* ``GET /<p>/content/{slug}``: the content URLs, per scenario. The vantage is the country of
  the connection's source address (``geoip``: the per-country proxies' exits), else the
  ``X-Docket-Vantage`` header or ``?vantage=VN`` (the stand-in, unless disabled), else
  ``control``.
* ``GET /<p>/login``, ``GET /<p>/legal/{id}``: the login wall and the 451 blocked-by target.
* ``GET /_sim/stats``, ``POST /_sim/reset``, ``POST /_sim/advance {"seconds": n}``,
  ``POST /_sim/config {"<p>": PlatformScenario}``, ``GET /_sim/health``: unsigned test hooks.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import structlog
from pydantic import BaseModel, ValidationError

from docket.logs import configure_logging
from docket.platform_openapi import render as render_openapi
from docket.platform_protocol import (
    CONTRACT_VERSION,
    IDEMPOTENCY_HEADER,
    VANTAGE_HEADER,
    WIRE,
    ConformanceAction,
    ConformanceContent,
    ConformanceContentRequest,
    ConformanceInfo,
    MarkerList,
    check_wire,
)
from docket.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    signed_response_headers,
    verify,
)
from platform_sim.engine import ContentAnswer, Engine, SimError, _errors, login_page
from platform_sim.proxy import CountryProxy
from platform_sim.scenarios import PRESETS, SLUG_RE, PlatformScenario, SimClock, markers_for

log = structlog.get_logger("platform_sim")

MAX_BODY = 1024 * 1024
_PLATFORM_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_TICKET_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, addr: tuple[str, int], sim: PlatformSimulator) -> None:
        self.sim = sim
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.conn_lock:
            self.connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.conn_lock:
                self.connections.discard(request)

    def close_connections(self) -> None:
        with self.conn_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DocketPlatformSim/1"
    timeout = 60
    disable_nagle_algorithm = True  # headers and body go out without a delayed-ACK stall
    wbufsize = 64 * 1024  # one write per response; flushed by handle_one_request
    server: _Server
    _sign_with: tuple[bytes, str] | None = None  # (secret, request signature) once verified

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing ------------------------------------------------------------------------

    def _send(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str]
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**headers, **self._signed(body)}.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: Mapping[str, str] | None = None) -> None:
        if isinstance(data, BaseModel):
            body = data.model_dump_json().encode()
        else:
            body = orjson.dumps(data)
        self._send(status, body, "application/json", headers or {})

    def _signed(self, body: bytes) -> dict[str, str]:
        """Response signature headers for an answer to a verified request (else none)."""
        if self._sign_with is None or not self.server.sim.sign_responses:
            return {}
        secret, request_signature = self._sign_with
        return signed_response_headers(secret, request_signature, body, int(time.time()))

    def _error(self, status: int, message: str, retry_after: int | None = None) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._json(status, {"error": message}, headers)

    def _body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding"):
                raise SimError(411, "Content-Length required")
            return b""
        try:
            size = int(length)
        except ValueError as exc:
            raise SimError(400, "bad Content-Length") from exc
        if size < 0 or size > MAX_BODY:
            self.close_connection = True
            raise SimError(413, "body too large")
        return self.rfile.read(size)

    def _dispatch(self) -> None:
        self._sign_with = None
        try:
            self._route()
        except SimError as exc:
            self._error(exc.status, exc.message, exc.retry_after)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug in the simulator: answer 500, keep serving
            log.exception("platform_sim.internal_error", path=self.path)
            self._error(500, f"internal simulator error: {type(exc).__name__}")

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def __getattr__(self, name: str) -> Any:
        # Any other method (PATCH, TRACE, QUERY, ...) is routed too: 405 on an API path,
        # never the stdlib's 501 (a server error for a client's mistake).
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    # -- routing -------------------------------------------------------------------------

    def _route(self) -> None:
        sim = self.server.sim
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        method = "GET" if self.command == "HEAD" else self.command
        body = self._body()
        if parts[:1] == ["_sim"]:
            self._sim_route(method, parts[1:], body)
            return
        if len(parts) < 2 or not _PLATFORM_RE.match(parts[0]):
            raise SimError(404, "not found")
        platform, rest = parts[0], parts[1:]
        if rest[0] == "content" and len(rest) == 2 and method == "GET":
            self._content(platform, rest[1], url.query)
            return
        if rest == ["login"] and method == "GET":
            page = login_page(sim.engine.pages(platform)).encode()
            self._send(200, page, "text/html; charset=utf-8", {})
            return
        if rest[0] == "legal" and method == "GET":
            text = b"Blocked following a legal order received through Docket protocol v1."
            self._send(200, text, "text/plain; charset=utf-8", {})
            return
        if rest == ["v1", "openapi.json"] and method == "GET":
            self._send(200, sim.openapi(), "application/json", {})
            return
        if rest[:1] != ["v1"] or rest[1:2] not in (["requests"], ["markers"], ["conformance"]):
            raise SimError(404, "not found")
        secret = sim.secrets.get(platform)
        if secret is None:
            raise SimError(404, f"unknown platform {platform!r}")
        key = self.headers.get(IDEMPOTENCY_HEADER)
        self._authenticate(platform, secret, method, body, key)
        if rest == ["v1", "markers"] and method == "GET":
            self._json(200, sim.markers(platform))
            return
        if rest[1] == "conformance":
            self._conformance(platform, method, rest[2:], body)
            return
        api = rest[2:]
        allowed = "POST" if len(api) != 1 else "GET"
        if len(api) > 2 or (len(api) == 2 and api[1] != "notices"):
            raise SimError(404, f"no route for {method} {url.path}")
        if method != allowed:
            raise SimError(405, f"{method} is not allowed here (allowed: {allowed})")
        if api and not _TICKET_RE.match(api[0]):
            raise SimError(404, f"unknown ticket {api[0][:100]!r}")
        if api == []:
            if not key:
                raise SimError(400, "Idempotency-Key header is required")
            status, ticket = sim.engine.submit(platform, key, _json_body(body))
            self._json(status, ticket)
        elif len(api) == 1:
            self._json(200, sim.engine.status(platform, api[0]))
        else:
            status, receipt = sim.engine.notice(platform, api[0], key, _json_body(body))
            self._json(status, receipt)

    def _authenticate(
        self, platform: str, secret: bytes, method: str, body: bytes, key: str | None
    ) -> None:
        sim = self.server.sim
        signature = self.headers.get(SIGNATURE_HEADER)
        try:
            verify(
                secret,
                self.headers.get(TIMESTAMP_HEADER),
                signature,
                body,
                int(time.time()),
                sim.window_seconds,
            )
        except SignatureError as exc:
            sim.engine.note_signature_rejected(platform)
            raise SimError(401, f"bad signature: {exc.reason}") from exc
        assert signature is not None
        sim.engine.check_replay(platform, method, signature, key)
        self._sign_with = (secret, signature)

    def _conformance(self, platform: str, method: str, rest: list[str], body: bytes) -> None:
        sim = self.server.sim
        if not sim.conformance:
            raise SimError(404, "no conformance hooks: start the simulator with --conformance")
        if rest == [] and method == "GET":
            info = ConformanceInfo(
                contract_version=CONTRACT_VERSION, vantage_header=sim.vantage_header
            )
            self._json(200, info)
        elif rest == ["content"] and method == "POST":
            try:
                wanted = check_wire(ConformanceContentRequest, _json_body(body))
            except ValidationError as exc:
                raise SimError(422, f"invalid body: {_errors(exc)}") from exc
            slug = sim.engine.new_test_content(platform, wanted.name)
            host = self.headers.get("Host") or f"{sim.host}:{sim.port}"
            self._json(201, ConformanceContent(url=f"http://{host}/{platform}/content/{slug}"))
        elif len(rest) == 3 and rest[0] == "requests" and rest[2] == "actions" and method == "POST":
            try:
                action = ConformanceAction.model_validate(_json_body(body), context=dict(WIRE))
            except ValidationError as exc:
                raise SimError(422, f"invalid action: {_errors(exc)}") from exc
            self._json(200, sim.engine.act(platform, rest[1], action))
        else:
            raise SimError(404, f"no conformance route for {method} /{'/'.join(rest)}")

    def _content(self, platform: str, slug: str, query: str) -> None:
        if not SLUG_RE.match(slug):
            raise SimError(404, "not found")
        sim = self.server.sim
        located = sim.geoip.get(self.client_address[0])
        if located is not None:
            vantage = located  # where the connection comes from: the header cannot override
        elif sim.vantage_header:
            vantage = (
                parse_qs(query).get("vantage", [None])[0]
                or self.headers.get(VANTAGE_HEADER)
                or "control"
            )
        else:
            vantage = "control"
        vantage = "control" if vantage.lower() == "control" else vantage.upper()
        host = self.headers.get("Host") or f"{self.server.sim.host}:{self.server.sim.port}"
        answer: ContentAnswer = self.server.sim.engine.content(
            platform, slug, vantage, f"http://{host}"
        )
        if answer.delay > 0:
            time.sleep(answer.delay)
        self._send(
            answer.status,
            answer.body.encode(),
            "text/html; charset=utf-8",
            answer.headers,
        )

    def _sim_route(self, method: str, parts: list[str], body: bytes) -> None:
        engine = self.server.sim.engine
        if parts == ["stats"] and method == "GET":
            self._json(200, engine.stats())
        elif parts == ["health"] and method == "GET":
            self._json(200, {"ok": True})
        elif parts == ["reset"] and method == "POST":
            engine.reset()
            self._json(200, {"reset": True})
        elif parts == ["advance"] and method == "POST":
            data = _json_body(body)
            seconds = data.get("seconds") if isinstance(data, dict) else None
            if not isinstance(seconds, int | float) or seconds < 0:
                raise SimError(422, 'expected {"seconds": <non-negative number>}')
            now = engine.advance(float(seconds))
            self._json(200, {"sim_now": now})
        elif parts == ["config"] and method == "POST":
            data = _json_body(body)
            if not isinstance(data, dict):
                raise SimError(422, "expected an object keyed by platform")
            try:
                parsed = {p: PlatformScenario.model_validate(s) for p, s in data.items()}
            except ValidationError as exc:
                raise SimError(422, f"invalid scenario: {exc.errors()[:3]}") from exc
            for platform, scenario in parsed.items():
                engine.configure(platform, scenario)
            self._json(200, {"configured": sorted(parsed)})
        else:
            raise SimError(404, "not found")


def _json_body(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise SimError(400, "body is not valid JSON") from exc


class PlatformSimulator:
    """The simulator as an object: start()/stop() or ``with``; serves in a daemon thread.

    ``secrets`` maps platform id -> signing secret; only those platforms answer the API (any
    platform id serves content URLs). ``scenarios`` maps platform id -> PlatformScenario
    (default: comply). ``port=0`` picks a free ephemeral port (see ``.port`` after start).

    ``vantage_proxies`` maps a country to the loopback address its proxy exits from (e.g.
    ``{"VN": "127.0.0.2"}``): each gets a real HTTP + SOCKS5 proxy on its own port
    (:meth:`proxy_url`), and content answers by the connection's source address, as a real
    platform geolocates a visitor. ``geoip`` adds more address -> country entries.
    ``vantage_header=False`` ignores the X-Docket-Vantage stand-in. ``conformance=True`` turns
    the conformance kit's hooks on; ``sign_responses=False`` answers unsigned (contract 1.0).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        secrets: Mapping[str, str | bytes] | None = None,
        scenarios: Mapping[str, PlatformScenario] | None = None,
        *,
        speed: float = 1.0,
        state_file: str | Path | None = None,
        window_seconds: int = 300,
        vantage_proxies: Mapping[str, str] | None = None,
        geoip: Mapping[str, str] | None = None,
        vantage_header: bool = True,
        conformance: bool = False,
        sign_responses: bool = True,
        proxy_credentials: tuple[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.vantage_header = vantage_header
        self.conformance = conformance
        self.sign_responses = sign_responses
        self.geoip: dict[str, str] = dict(geoip or {})
        self.proxies: dict[str, CountryProxy] = {}
        for country, exit_address in (vantage_proxies or {}).items():
            self.geoip[exit_address] = country
            self.proxies[country] = CountryProxy(
                exit_address, name=country, host=host, credentials=proxy_credentials
            )
        self._openapi: bytes | None = None
        self.secrets: dict[str, bytes] = {
            p: s.encode() if isinstance(s, str) else s for p, s in (secrets or {}).items()
        }
        self.window_seconds = window_seconds
        self.engine = Engine(
            dict(scenarios or {}),
            SimClock(speed),
            Path(state_file) if state_file is not None else None,
            window_seconds,
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> PlatformSimulator:
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"platform-sim:{self.port}",
            daemon=True,
        )
        self._thread.start()
        for proxy in self.proxies.values():
            proxy.start()
        log.info("platform_sim.started", url=self.url, platforms=sorted(self.secrets))
        return self

    def stop(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        log.info("platform_sim.stopped", port=self.port)

    def serve_forever(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Run in the calling thread until interrupted (the CLI); ``on_ready(url)`` once bound."""
        server = _Server((self.host, self.port), self)
        self._server = server
        self.port = server.server_address[1]
        for proxy in self.proxies.values():
            proxy.start()
        if on_ready is not None:
            on_ready(self.url)
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            server.server_close()
            for proxy in self.proxies.values():
                proxy.stop()

    def __enter__(self) -> PlatformSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def base_url(self, platform: str) -> str:
        """The protocol base URL of ``platform``: requests go to ``<base>/v1/requests``."""
        return f"{self.url}/{platform}"

    def content_url(self, platform: str, slug: str) -> str:
        return f"{self.url}/{platform}/content/{slug}"

    def proxy_url(self, country: str, scheme: str = "http") -> str:
        """The proxy exiting in ``country`` (``http`` or ``socks5``; same port, after start)."""
        return self.proxies[country].url(scheme)

    def openapi(self) -> bytes:
        """The contract document, as published in docs/ (generated once)."""
        if self._openapi is None:
            self._openapi = render_openapi().encode()
        return self._openapi

    def markers(self, platform: str) -> MarkerList:
        """What ``GET /v1/markers`` publishes: the texts of this platform's pages."""
        markers = markers_for(platform, version=f"sim-{platform}-1")
        pages = self.engine.pages(platform)
        return MarkerList(
            version=markers.version,
            removed=[pages.removed],
            geo_restricted=[pages.geo_restricted],
            login_wall=[pages.login_wall],
        )

    def configure(self, platform: str, scenario: PlatformScenario) -> None:
        self.engine.configure(platform, scenario)

    def advance(self, seconds: float) -> None:
        """Move the simulator clock forward (tests: deterministic acks and decisions)."""
        self.engine.advance(seconds)

    def stats(self) -> dict[str, Any]:
        return self.engine.stats()

    def reset(self) -> None:
        self.engine.reset()


def _secrets_from_env(platforms: list[str]) -> dict[str, str]:
    secrets: dict[str, str] = {}
    for platform in platforms:
        env = f"DOCKET_SECRET_{platform.upper().replace('-', '_')}"
        value = os.environ.get(env)
        if not value:
            value = f"dev-secret-{platform}"
            print(
                f"platform_sim: {env} not set; using the dev secret for {platform}", file=sys.stderr
            )
        secrets[platform] = value
    return secrets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m platform_sim", description="Docket platform protocol v1 simulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--state-file", type=Path, default=None, help="persist state as JSON")
    parser.add_argument(
        "--platform",
        action="append",
        default=None,
        help="platform id served (repeatable; default facebook, youtube, tiktok); the secret "
        "comes from DOCKET_SECRET_<PLATFORM>",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="PLATFORM=PRESET",
        help="preset per platform: comply, partial, decline, ignore, slow_ack, flaky, info, late",
    )
    parser.add_argument(
        "--scenario-file", type=Path, default=None, help='JSON {"<platform>": PlatformScenario}'
    )
    parser.add_argument("--speed", type=float, default=1.0, help="simulator clock speed-up")
    parser.add_argument(
        "--vantage",
        action="append",
        default=[],
        metavar="CC=EXIT",
        help="run a per-country HTTP+SOCKS5 proxy whose exit is the loopback address EXIT "
        "(e.g. VN=127.0.0.2); content answers by the visitor's address (repeatable)",
    )
    parser.add_argument(
        "--no-vantage-header",
        action="store_true",
        help="ignore the X-Docket-Vantage stand-in: only real (proxy) vantages count",
    )
    parser.add_argument(
        "--conformance",
        action="store_true",
        help="test mode for ./run platform-check: hooks on, and platforms do nothing on their "
        "own (scenario 'manual') unless a --scenario says otherwise",
    )
    parser.add_argument(
        "--no-response-signing", action="store_true", help="answer unsigned (contract 1.0)"
    )
    args = parser.parse_args(argv)
    configure_logging()  # the same format as the worker's (docket.logs)

    platforms = args.platform or ["facebook", "youtube", "tiktok"]
    scenarios: dict[str, PlatformScenario] = {}
    if args.scenario_file is not None:
        raw = orjson.loads(args.scenario_file.read_bytes())
        scenarios.update({p: PlatformScenario.model_validate(s) for p, s in raw.items()})
    if args.conformance:
        for platform in platforms:
            scenarios.setdefault(platform, PlatformScenario.preset("manual"))
    for spec in args.scenario:
        platform, _, preset = spec.partition("=")
        try:
            scenarios[platform] = PlatformScenario.preset(preset)
        except ValueError as exc:
            parser.error(f"--scenario {spec}: {exc}; presets: {', '.join(PRESETS)}")
    exits: dict[str, str] = {}
    for spec in args.vantage:
        country, _, exit_address = spec.partition("=")
        if not re.match(r"^[A-Z]{2}$", country) or not exit_address.startswith("127."):
            parser.error(f"--vantage {spec}: expected CC=127.x.y.z (a loopback exit address)")
        exits[country] = exit_address
    sim = PlatformSimulator(
        args.host,
        args.port,
        _secrets_from_env(platforms),
        scenarios,
        speed=args.speed,
        state_file=args.state_file,
        vantage_proxies=exits,
        vantage_header=not args.no_vantage_header,
        conformance=args.conformance,
        sign_responses=not args.no_response_signing,
    )

    def ready(url: str) -> None:
        print(f"platform_sim: serving {', '.join(platforms)} on {url}/", flush=True)
        for country in sorted(sim.proxies):
            print(
                f"platform_sim: vantage {country}: proxy {sim.proxy_url(country)} "
                f"(also {sim.proxy_url(country, 'socks5')}), exit {exits[country]}",
                flush=True,
            )

    with contextlib.suppress(KeyboardInterrupt):
        sim.serve_forever(ready)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
