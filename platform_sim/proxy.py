"""A real per-country forward proxy for the simulator: HTTP (absolute-URI and CONNECT) and
SOCKS5 on one port, whose outgoing connections leave from a chosen loopback address.

The simulator geolocates a visitor by the connection's source address (``geoip``), as a real
platform does by IP; a proxy that exits from ``127.0.0.2`` is therefore "in" the country that
address maps to. Docket reaches it exactly as it reaches a real vantage: through httpx with
``proxy="http://127.0.0.1:<port>"`` or ``"socks5://127.0.0.1:<port>"``.

Only loopback destinations are allowed (anything else: 403 / SOCKS reply 2): this is a test
fixture, never an open proxy. Optional username/password (HTTP ``Proxy-Authorization: Basic``,
SOCKS5 RFC 1929) lets tests check that proxy credentials work and are never recorded.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import ipaddress
import socket
import socketserver
import struct
import threading
from urllib.parse import urlsplit

MAX_HEAD = 64 * 1024
IO_TIMEOUT = 30.0


class _Refused(Exception):
    """The proxy refuses the request: HTTP status and message (or a SOCKS reply code)."""

    def __init__(self, status: int, message: str, socks_reply: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.socks_reply = socks_reply


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], proxy: CountryProxy) -> None:
        self.proxy = proxy
        super().__init__(addr, _Handler)


def _read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    """(head up to and including CRLFCRLF, bytes read past it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise _Refused(400, "connection closed before the request head ended")
        data += chunk
        if len(data) > MAX_HEAD:
            raise _Refused(431, "request head too large")
    head, _, rest = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise _Refused(400, "SOCKS handshake cut short")
        data += chunk
    return data


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while True:
            chunk = source.recv(65536)
            if not chunk:
                break
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server
    request: socket.socket

    def handle(self) -> None:
        conn = self.request
        conn.settimeout(IO_TIMEOUT)
        try:
            first = conn.recv(1, socket.MSG_PEEK)
            if not first:
                return
            if first == b"\x05":
                self._socks5(conn)
            else:
                self._http(conn)
        except _Refused as exc:
            with contextlib.suppress(OSError):
                body = exc.message.encode()
                conn.sendall(
                    f"HTTP/1.1 {exc.status} Refused\r\nContent-Type: text/plain\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
        except OSError:
            pass

    # -- HTTP ----------------------------------------------------------------------------

    def _http(self, conn: socket.socket) -> None:
        proxy = self.server.proxy
        head, rest = _read_head(conn)
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            raise _Refused(400, "malformed request line") from None
        headers = [line for line in lines[1:] if line]
        if proxy.credentials is not None:
            proxy.check_basic(headers)
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = proxy.connect(host.strip("[]"), int(port) if port.isdigit() else 0)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self._relay(conn, upstream, rest)
            return
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            raise _Refused(400, "a forward proxy request needs an absolute http:// URI")
        upstream = proxy.connect(parts.hostname, parts.port or 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        kept = [
            h
            for h in headers
            if h.split(":", 1)[0].strip().lower()
            not in ("proxy-authorization", "proxy-connection", "connection", "keep-alive")
        ]
        kept += ["Connection: close", f"Via: 1.1 docket-sim-proxy-{proxy.name}"]
        out = f"{method} {path} {version}\r\n" + "\r\n".join(kept) + "\r\n\r\n"
        upstream.sendall(out.encode("latin-1") + rest)
        # One request per connection: tell the client so it does not reuse it.
        sender = threading.Thread(target=_pipe, args=(conn, upstream), daemon=True)
        sender.start()
        try:
            answer_head, answer_rest = _read_head(upstream)
            answer_lines = answer_head.decode("latin-1").split("\r\n")
            answer_kept = [
                line
                for line in answer_lines[1:]
                if line
                and line.split(":", 1)[0].strip().lower() not in ("connection", "keep-alive")
            ]
            answer = "\r\n".join([answer_lines[0], *answer_kept, "Connection: close"])
            conn.sendall(answer.encode("latin-1") + b"\r\n\r\n" + answer_rest)
            _pipe(upstream, conn)
        finally:
            with contextlib.suppress(OSError):
                upstream.close()

    # -- SOCKS5 (RFC 1928, RFC 1929) -------------------------------------------------------

    def _socks5(self, conn: socket.socket) -> None:
        proxy = self.server.proxy
        _, count = _recv_exact(conn, 2)
        methods = _recv_exact(conn, count)
        wanted = 0x02 if proxy.credentials is not None else 0x00
        if wanted not in methods:
            conn.sendall(b"\x05\xff")
            return
        conn.sendall(bytes([5, wanted]))
        if wanted == 0x02:
            _, ulen = _recv_exact(conn, 2)
            user = _recv_exact(conn, ulen)
            (plen,) = _recv_exact(conn, 1)
            password = _recv_exact(conn, plen)
            if not proxy.credentials_match(user.decode("utf-8", "replace"), password):
                conn.sendall(b"\x01\x01")
                return
            conn.sendall(b"\x01\x00")
        _, command, _, kind = _recv_exact(conn, 4)
        if kind == 1:
            host = socket.inet_ntop(socket.AF_INET, _recv_exact(conn, 4))
        elif kind == 3:
            (length,) = _recv_exact(conn, 1)
            host = _recv_exact(conn, length).decode("idna")
        elif kind == 4:
            host = socket.inet_ntop(socket.AF_INET6, _recv_exact(conn, 16))
        else:
            conn.sendall(b"\x05\x08\x00\x01" + b"\x00" * 6)
            return
        (port,) = struct.unpack("!H", _recv_exact(conn, 2))
        if command != 1:
            conn.sendall(b"\x05\x07\x00\x01" + b"\x00" * 6)
            return
        try:
            upstream = proxy.connect(host, port)
        except _Refused as exc:
            conn.sendall(bytes([5, exc.socks_reply, 0, 1]) + b"\x00" * 6)
            return
        bound_host, bound_port = upstream.getsockname()[:2]
        conn.sendall(
            b"\x05\x00\x00\x01" + socket.inet_aton(bound_host) + struct.pack("!H", bound_port)
        )
        self._relay(conn, upstream, b"")

    @staticmethod
    def _relay(conn: socket.socket, upstream: socket.socket, first: bytes) -> None:
        try:
            if first:
                upstream.sendall(first)
            sender = threading.Thread(target=_pipe, args=(conn, upstream), daemon=True)
            sender.start()
            _pipe(upstream, conn)
            sender.join(timeout=IO_TIMEOUT)
        finally:
            with contextlib.suppress(OSError):
                upstream.close()


class CountryProxy:
    """One proxy port; outgoing connections leave from ``exit_address`` (loopback)."""

    def __init__(
        self,
        exit_address: str,
        *,
        name: str = "proxy",
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        if not ipaddress.ip_address(exit_address).is_loopback:
            raise ValueError(f"exit address {exit_address} is not a loopback address")
        self.exit_address = exit_address
        self.name = name
        self.host = host
        self.port = port
        self.credentials = credentials
        self.connections = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> CountryProxy:
        if self._server is None:
            self._server = _Server((self.host, self.port), self)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name=f"sim-proxy-{self.name}:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def connect(self, host: str, port: int) -> socket.socket:
        """A connection to ``host:port`` leaving from the exit address (loopback only)."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise _Refused(502, f"cannot resolve {host!r}", socks_reply=4) from None
        addresses = [str(info[4][0]) for info in infos]
        if not addresses or not all(ipaddress.ip_address(a).is_loopback for a in addresses):
            raise _Refused(403, f"destination {host!r} is not on loopback", socks_reply=2)
        v4 = [a for a in addresses if ":" not in a]
        if not v4 or port <= 0:
            raise _Refused(502, f"no IPv4 loopback address for {host!r}", socks_reply=4)
        try:
            upstream = socket.create_connection(
                (v4[0], port), timeout=IO_TIMEOUT, source_address=(self.exit_address, 0)
            )
        except OSError as exc:
            raise _Refused(502, f"cannot connect to {host}:{port}: {exc}", socks_reply=5) from None
        with self._lock:
            self.connections += 1
        return upstream

    def credentials_match(self, user: str, password: bytes) -> bool:
        if self.credentials is None:
            return True
        want_user, want_password = self.credentials
        return hmac.compare_digest(user.encode(), want_user.encode()) and hmac.compare_digest(
            password, want_password.encode()
        )

    def check_basic(self, headers: list[str]) -> None:
        for header in headers:
            name, _, value = header.partition(":")
            if name.strip().lower() == "proxy-authorization":
                scheme, _, token = value.strip().partition(" ")
                if scheme.lower() == "basic":
                    try:
                        raw = base64.b64decode(token, validate=True).decode("utf-8")
                    except (ValueError, UnicodeDecodeError):
                        break
                    user, _, password = raw.partition(":")
                    if self.credentials_match(user, password.encode()):
                        return
                break
        raise _Refused(407, "proxy authentication required")


__all__ = ["CountryProxy"]
