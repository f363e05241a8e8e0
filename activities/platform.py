"""Temporal activities that talk to platforms over protocol v1, and probe content URLs.

One :class:`PlatformActivities` per worker holds the platform directory (base URL, signing
secret, verification markers) and shared ``httpx.AsyncClient`` instances (created lazily, or
injected). The signing secret lives only here, in worker memory: it is never an activity
argument or result, so it never enters workflow history.

Error contract (what the workflow's retry policy sees):

=========================  ====================  ==========================================
outcome                    ApplicationError type retryable
=========================  ====================  ==========================================
connect error / timeout    PlatformUnavailable   yes
5xx                        PlatformUnavailable   yes (Retry-After honoured)
429                        RateLimited           yes (Retry-After honoured)
2xx, bad JSON/shape/type   MalformedResponse     yes
401                        SignatureRejected     no
409                        IdempotencyConflict   no
other 3xx/4xx              PlatformRejected      no
platform not configured    UnknownPlatform       no
platform without an API    NoApiChannel          no
=========================  ====================  ==========================================

Probes (:meth:`PlatformActivities.probe_item`, :meth:`PlatformActivities.capture_baseline`)
never raise for HTTP-level outcomes: errors become ``probe_error`` evidence.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from docket.models import ItemEffect, Text
from docket.platform_protocol import (
    IDEMPOTENCY_HEADER,
    VANTAGE_HEADER,
    Notice,
    NoticeReceipt,
    OrderPayload,
    PlatformStatus,
    TicketResponse,
)
from docket.signing import signed_headers
from docket.verification import Evidence, MarkerSet, Observation, classify

USER_AGENT = "Docket-Verifier/1"
API_USER_AGENT = "Docket/1 (platform protocol v1)"
MAX_PROBE_BODY = 2 * 1024 * 1024
MAX_RETRY_AFTER = 300.0
DEFAULT_API_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
DEFAULT_PROBE_TIMEOUT = httpx.Timeout(20.0, connect=5.0)

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class PlatformEndpoint:
    """One platform as the worker knows it (filled from configuration + environment)."""

    base_url: str
    secret: bytes = field(repr=False)
    markers: MarkerSet
    api: bool = True
    credential_env: str = ""  # where the worker looks for the secret (for error messages)

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


def _excerpt(response: httpx.Response, limit: int = 300) -> str:
    text = response.text if response.content else ""
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


def _retry_after(response: httpx.Response) -> timedelta | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if seconds < 0:
        return None
    return timedelta(seconds=min(seconds, MAX_RETRY_AFTER))


def _cookieless() -> httpx.Cookies:
    return httpx.Cookies(http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy([])))


class PlatformActivities:
    """Protocol v1 client activities. Register :meth:`activities` with the worker."""

    def __init__(
        self,
        endpoints: Mapping[str, PlatformEndpoint],
        *,
        http: httpx.AsyncClient | None = None,
        probe_http: httpx.AsyncClient | None = None,
        api_timeout: httpx.Timeout = DEFAULT_API_TIMEOUT,
        probe_timeout: httpx.Timeout = DEFAULT_PROBE_TIMEOUT,
        max_probe_body: int = MAX_PROBE_BODY,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._endpoints = dict(endpoints)
        self._http = http
        self._probe_http = probe_http
        self._owns_http = http is None
        self._owns_probe_http = probe_http is None
        self._api_timeout = api_timeout
        self._probe_timeout = probe_timeout
        self._max_probe_body = max_probe_body
        self._now = now

    def activities(self) -> list[Callable[..., Any]]:
        """The bound activity methods, for ``Worker(activities=...)``."""
        return [
            self.deliver_order,
            self.poll_platform,
            self.send_notice,
            self.probe_item,
            self.capture_baseline,
        ]

    async def aclose(self) -> None:
        """Close the HTTP clients this object created (call at worker shutdown)."""
        if self._http is not None and self._owns_http:
            await self._http.aclose()
            self._http = None
        if self._probe_http is not None and self._owns_probe_http:
            await self._probe_http.aclose()
            self._probe_http = None

    # -- plumbing ------------------------------------------------------------------------

    def _api(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self._api_timeout,
                follow_redirects=False,
                headers={"User-Agent": API_USER_AGENT},
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )
        return self._http

    def _probe(self) -> httpx.AsyncClient:
        if self._probe_http is None:
            self._probe_http = httpx.AsyncClient(
                timeout=self._probe_timeout,
                follow_redirects=True,
                max_redirects=10,
                cookies=_cookieless(),
                headers={"User-Agent": USER_AGENT},
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            )
        return self._probe_http

    def _endpoint(self, platform: str, *, api: bool) -> PlatformEndpoint:
        endpoint = self._endpoints.get(platform)
        if endpoint is None:
            raise ApplicationError(
                f"platform {platform!r} is not configured on this worker",
                type="UnknownPlatform",
                non_retryable=True,
            )
        if api and not endpoint.api:
            raise ApplicationError(
                f"platform {platform!r} has no API channel (api = false): drive it via the CLI",
                type="NoApiChannel",
                non_retryable=True,
            )
        return endpoint

    async def _call(
        self,
        platform: str,
        method: str,
        path: str,
        body: bytes,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        endpoint = self._endpoint(platform, api=True)
        if not endpoint.secret:
            where = f": set {endpoint.credential_env}" if endpoint.credential_env else ""
            raise ApplicationError(
                f"no signing secret for {platform} on this worker{where} and restart it",
                type="MissingCredentials",
                non_retryable=True,
            )
        # A fresh signature per attempt: a retry is never a replay.
        headers = signed_headers(endpoint.secret, body, int(self._now()))
        headers["Accept"] = "application/json"
        if body:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        url = endpoint.url(path)
        what = f"{method} {platform}{path}"
        # `from None`: the message names the httpx error; chaining it would serialise
        # httpx/httpcore's whole traceback into the failure, and the server replaces a retrying
        # activity's last failure over 4 KB with "Failure exceeds size limit." (the UI then
        # hides why a delivery is being retried).
        try:
            response = await self._api().request(method, url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise ApplicationError(
                f"{what}: timed out ({type(exc).__name__})", type="PlatformUnavailable"
            ) from None
        except httpx.HTTPError as exc:
            raise ApplicationError(
                f"{what}: {type(exc).__name__}: {exc}", type="PlatformUnavailable"
            ) from None
        self._raise_for_status(what, response)
        return response

    @staticmethod
    def _raise_for_status(what: str, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status <= 299:
            return
        detail = f"{what}: HTTP {status}: {_excerpt(response)}"
        details = {"status": status}
        if status >= 500:
            raise ApplicationError(
                detail,
                details,
                type="PlatformUnavailable",
                next_retry_delay=_retry_after(response),
            )
        if status == 429:
            raise ApplicationError(
                detail, details, type="RateLimited", next_retry_delay=_retry_after(response)
            )
        if status == 401:
            raise ApplicationError(detail, details, type="SignatureRejected", non_retryable=True)
        if status == 409:
            raise ApplicationError(detail, details, type="IdempotencyConflict", non_retryable=True)
        raise ApplicationError(detail, details, type="PlatformRejected", non_retryable=True)

    @staticmethod
    def _parse(what: str, response: httpx.Response, model: type[M]) -> M:
        content_type = response.headers.get("Content-Type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise ApplicationError(
                f"{what}: expected application/json, got {content_type or 'no content type'}",
                type="MalformedResponse",
            )
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise ApplicationError(
                f"{what}: response does not match {model.__name__}: "
                f"{exc.error_count()} error(s), first: {exc.errors()[0]['msg']}; "
                f"body: {_excerpt(response)}",
                type="MalformedResponse",
            ) from exc

    # -- activities ----------------------------------------------------------------------

    @activity.defn(name="deliver_order")
    async def deliver_order(self, platform: str, order: OrderPayload) -> TicketResponse:
        """Deliver an order: ``POST /v1/requests`` with ``Idempotency-Key = order.request_id``.

        Safe to retry: every attempt is freshly signed and the platform returns the same
        ticket for a repeat (200) instead of opening a second one.
        """
        body = order.model_dump_json().encode()
        response = await self._call(platform, "POST", "/v1/requests", body, order.request_id)
        ticket = self._parse(f"POST {platform}/v1/requests", response, TicketResponse)
        if not _TICKET.match(ticket.ticket):
            # It goes into URL paths and audit reasons: one short token, nothing else.
            raise ApplicationError(
                f"POST {platform}/v1/requests: ticket {ticket.ticket[:80]!r} is not "
                "1-100 characters of [A-Za-z0-9._~-]",
                type="MalformedResponse",
            )
        activity.logger.info(
            "order delivered to %s: ticket %s (HTTP %s)",
            platform,
            ticket.ticket,
            response.status_code,
        )
        return ticket

    @activity.defn(name="poll_platform")
    async def poll_platform(self, platform: str, ticket: str) -> PlatformStatus:
        """Read the platform's view of a ticket: ``GET /v1/requests/{ticket}``."""
        path = f"/v1/requests/{ticket}"
        response = await self._call(platform, "GET", path, b"")
        status = self._parse(f"GET {platform}{path}", response, PlatformStatus)
        if status.ticket != ticket:
            raise ApplicationError(
                f"GET {platform}{path}: answered for ticket {status.ticket!r}",
                type="MalformedResponse",
            )
        _check_recordable(f"GET {platform}{path}", status)
        return status

    @activity.defn(name="send_notice")
    async def send_notice(self, platform: str, ticket: str, notice: Notice) -> NoticeReceipt:
        """Send a notice (second notice, re-notify, withdrawal, reinstatement, info provided).

        Idempotency-Key is ``notice.notice_id`` or, when absent, a key derived from the
        workflow run and activity id, which is stable across retries of this activity.
        """
        key = notice.notice_id
        if key is None:
            info = activity.info()
            raw = f"{info.workflow_id}:{info.workflow_run_id}:{info.activity_id}"
            key = "n-" + hashlib.sha256(raw.encode()).hexdigest()[:32]
            # The key goes into the signed body too: two different notices never share a
            # signature, even when sent in the same second.
            notice = notice.model_copy(update={"notice_id": key})
        path = f"/v1/requests/{ticket}/notices"
        body = notice.model_dump_json().encode()
        response = await self._call(platform, "POST", path, body, key)
        receipt = self._parse(f"POST {platform}{path}", response, NoticeReceipt)
        activity.logger.info("%s notice sent to %s for %s", notice.kind, platform, ticket)
        return receipt

    @activity.defn(name="probe_item")
    async def probe_item(self, platform: str, item_id: str, url: str, vantage: str) -> Evidence:
        """Fetch a content URL as an anonymous visitor from ``vantage`` and classify it.

        Follows redirects, records the final URL and the SHA-256 of the body (at most
        ``max_probe_body`` bytes). Connection errors and timeouts become ``probe_error``
        evidence; this activity does not raise for HTTP-level outcomes.
        """
        endpoint = self._endpoint(platform, api=False)
        return await self._probe_url(endpoint, item_id, url, vantage)

    @activity.defn(name="capture_baseline")
    async def capture_baseline(
        self, platform: str, item_id: str, url: str, vantage: str = "control"
    ) -> Evidence:
        """Probe an item when the request is filed: the baseline later probes compare to."""
        endpoint = self._endpoint(platform, api=False)
        return await self._probe_url(endpoint, item_id, url, vantage)

    async def _probe_url(
        self, endpoint: PlatformEndpoint, item_id: str, url: str, vantage: str
    ) -> Evidence:
        markers = endpoint.markers
        headers = {VANTAGE_HEADER: vantage, "Accept": "text/html,*/*;q=0.8"}
        status: int | None = None
        final_url = url
        body = b""
        truncated = False
        error: str | None = None
        response_headers: Mapping[str, str] = {}
        try:
            async with self._probe().stream("GET", url, headers=headers) as response:
                status = response.status_code
                final_url = str(response.url)
                response_headers = response.headers
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    room = self._max_probe_body - size
                    if len(chunk) > room:
                        chunks.append(chunk[:room])
                        size += room
                        truncated = True
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                body = b"".join(chunks)
        except httpx.TimeoutException as exc:
            status, error = None, f"timeout: {type(exc).__name__}"
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"[:500]
        result = classify(status, final_url, body, response_headers, markers)
        evidence = Evidence(
            item_id=item_id,
            vantage=vantage,
            url=url,
            observation=result.observation,
            inconclusive=result.inconclusive,
            status_code=status,
            final_url=final_url,
            body_sha256=hashlib.sha256(body).hexdigest() if status is not None else None,
            body_bytes=len(body),
            truncated=truncated,
            marker=result.marker if error is None else "error",
            blocked_by=result.blocked_by,
            error=error,
            probed_at=datetime.now(UTC),
            markers_version=markers.version,
        )
        if evidence.observation is Observation.PROBE_ERROR:
            activity.logger.warning("probe of %s from %s failed: %s", url, vantage, error)
        return evidence


_QUESTION: TypeAdapter[str] = TypeAdapter(Text)
_TICKET = re.compile(r"^[A-Za-z0-9._~-]{1,100}$")


def _check_recordable(what: str, status: PlatformStatus) -> None:
    """Refuse (MalformedResponse) an answer the workflow could not turn into commands.

    The wire model accepts any strings; the workflow builds `ItemEffect` / `RequestInfo`
    commands from them (docket.models: a decline states reasons, a restriction names
    countries, no control characters...). Raising that ValidationError in workflow code would
    fail the workflow task over and over; here it is a visible, retried activity failure and
    the request keeps its state (its SLA timers still run).
    """
    try:
        for effect in status.items:
            if effect.effect in (None, "needs_more_info"):
                continue
            ItemEffect.from_platform(effect)
        if status.info_request:
            _QUESTION.validate_python(status.info_request)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "answer"
        raise ApplicationError(
            f"{what}: the platform's answer cannot be recorded: {where}: {first['msg']}",
            type="MalformedResponse",
        ) from None
