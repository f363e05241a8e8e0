"""Temporal activities that talk to platforms over protocol v1, and probe content URLs.

One :class:`PlatformActivities` per worker holds the platform directory (base URL, signing
secret, verification markers), the vantage points (activities/vantages.py) and shared
``httpx.AsyncClient`` instances (created lazily, or injected). The signing secret and proxy
credentials live only here, in worker memory: never an activity argument or result, so they
never enter workflow history.

Every request Docket sends is checked against the contract first (docket.platform_protocol,
context WIRE); every answer is checked against it when it arrives. Answers are authenticated
when the platform signs them (docket.signing.verify_response): results say
``authenticated="hmac-sha256"``; an endpoint with ``require_signed_responses`` refuses unsigned
answers.

Error contract (what the workflow's retry policy sees). Every ApplicationError carries a
:class:`~docket.platform_protocol.PlatformFailure` as ``details[0]`` (a dict: kind, method,
path, http_status, platform_error, message, authenticated) so the workflow can record it.

==========================  =========================  ============================================
outcome                     ApplicationError type      retryable
==========================  =========================  ============================================
connect error / timeout     PlatformUnavailable        yes
5xx                         PlatformUnavailable        yes (Retry-After honoured, at most 300 s)
429                         RateLimited                yes (Retry-After honoured)
2xx, bad JSON/shape/type    MalformedResponse          deliver, notice: yes; poll: no
answer's signature invalid  ResponseNotAuthenticated   yes (or missing, where required)
401                         SignatureRejected          no
409                         IdempotencyConflict        no
other 3xx/4xx               PlatformRejected           no
our request breaks the      ContractViolation          no
contract
platform not configured     UnknownPlatform            no
platform without an API     NoApiChannel               no
no signing secret           MissingCredentials         no
==========================  =========================  ============================================

Every failed attempt of an API activity (deliver_order, poll_platform, send_notice) is
counted in ``docket_platform_call_errors`` by platform, HTTP status and kind (docket.metrics).

A poll answer with some malformed items is not an error: ``poll_platform`` returns the valid
items and lists the others in ``PollResult.malformed_items`` (index, item id, field path,
message). Only a malformed envelope (not JSON, unknown status, a ticket that is not the one
asked for, ...) refuses the whole answer.

Probes (:meth:`PlatformActivities.probe_item`, :meth:`PlatformActivities.capture_baseline`)
never raise for HTTP-level outcomes: errors become ``probe_error`` evidence, and a country
without a vantage point becomes ``no_vantage`` evidence (inconclusive, never ``removed``).
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
import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.vantages import Vantage, VantageDirectory
from docket.metrics import counts_platform_errors
from docket.models import ItemEffect, Text
from docket.platform_protocol import (
    IDEMPOTENCY_HEADER,
    ITEM_ID_PATTERN,
    VANTAGE_HEADER,
    WIRE,
    Authenticated,
    DeliveryReceipt,
    MalformedItem,
    Notice,
    NoticeReceipt,
    NoticeResult,
    OrderPayload,
    PlatformFailure,
    PlatformItemEffect,
    PlatformStatus,
    PollResult,
    TicketResponse,
    check_wire,
    utc_now,
)
from docket.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    signed_headers,
    verify_response,
)
from docket.text import escape_unsafe
from docket.verification import Evidence, MarkerSet, Observation, classify

USER_AGENT = "Docket-Verifier/1"
API_USER_AGENT = "Docket/1 (platform protocol v1)"
MAX_PROBE_BODY = 2 * 1024 * 1024
#: An API answer larger than this is refused (the contract's largest answer is far smaller).
MAX_API_ANSWER = 4 * 1024 * 1024
MAX_RETRY_AFTER = 300.0
MAX_ITEMS = 500
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
    #: Refuse answers that are not signed (contract 1.1 response signing); when False, an
    #: unsigned answer is accepted with ``authenticated=None`` and a signed one is checked.
    require_signed_responses: bool = False

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path


@dataclass(frozen=True)
class Answer:
    """An API answer as read (the body capped at MAX_API_ANSWER)."""

    status: int
    headers: httpx.Headers
    body: bytes
    authenticated: Authenticated


def _excerpt(body: bytes, limit: int = 300) -> str:
    text = " ".join(body.decode("utf-8", errors="replace").split())
    text = escape_unsafe(text)
    return text[:limit] + ("..." if len(text) > limit else "")


def _platform_error(answer: Answer) -> str | None:
    """The platform's own message: its ``{"error": ...}``, else an excerpt of the body."""
    if not answer.body:
        return None
    try:
        data = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        return _excerpt(answer.body)
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return escape_unsafe(" ".join(data["error"].split()))[:500]
    return _excerpt(answer.body)


def _retry_after(headers: httpx.Headers) -> timedelta | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if seconds < 0 or seconds != seconds:  # negative or NaN
        return None
    return timedelta(seconds=min(seconds, MAX_RETRY_AFTER))


def _cookieless() -> httpx.Cookies:
    return httpx.Cookies(http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy([])))


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


_FIELD_PREFIX = re.compile(r"^([a-z_]+): (.*)$", re.DOTALL)


def _problems(exc: ValidationError, prefix: str, fields: set[str]) -> list[tuple[str, str]]:
    """(path, message) per validation error; a model-level 'field: ...' message names it."""
    out: list[tuple[str, str]] = []
    for err in exc.errors():
        loc = _path(tuple(err["loc"]))
        message = str(err["msg"]).removeprefix("Value error, ")
        if not loc:
            found = _FIELD_PREFIX.match(message)
            if found and found.group(1) in fields:
                loc, message = found.group(1), found.group(2)
        joiner = "." if prefix and loc and not loc.startswith("[") else ""
        path = prefix + joiner + loc
        out.append((path or "answer", escape_unsafe(message)[:300]))
    return out


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
        vantages: VantageDirectory | None = None,
    ) -> None:
        """``vantages``: where probes come from. None keeps the behaviour from before real
        vantage points: every vantage is the simulator's header stand-in (evidence says
        ``vantage_kind: simulated``); a production worker passes ``VantageDirectory.load()``."""
        self._endpoints = dict(endpoints)
        self._http = http
        self._probe_http = probe_http
        self._owns_http = http is None
        self._owns_probe_http = probe_http is None
        self._api_timeout = api_timeout
        self._probe_timeout = probe_timeout
        self._max_probe_body = max_probe_body
        self._now = now
        self._vantages = vantages if vantages is not None else VantageDirectory.simulated()
        self._proxied: dict[str, httpx.AsyncClient] = {}

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
        proxied, self._proxied = self._proxied, {}
        for client in proxied.values():
            await client.aclose()

    # -- plumbing ------------------------------------------------------------------------

    def _api(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self._api_timeout,
                follow_redirects=False,
                headers={"User-Agent": API_USER_AGENT},
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
                trust_env=False,
            )
        return self._http

    def _probe_client(self, vantage: Vantage) -> httpx.AsyncClient:
        if vantage.kind == "proxy" and vantage.proxy:
            client = self._proxied.get(vantage.name)
            if client is None:
                client = self._new_probe_client(vantage.proxy)
                self._proxied[vantage.name] = client
            return client
        if self._probe_http is None:
            self._probe_http = self._new_probe_client(None)
        return self._probe_http

    def _new_probe_client(self, proxy: str | None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self._probe_timeout,
            follow_redirects=True,
            max_redirects=10,
            cookies=_cookieless(),
            headers={"User-Agent": USER_AGENT},
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            proxy=proxy,
            # only the configured vantage decides the route: no HTTP(S)_PROXY from the env
            trust_env=False,
        )

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

    @staticmethod
    def _fail(
        kind: str,
        method: str,
        path: str,
        message: str,
        *,
        answer: Answer | None = None,
        retryable: bool,
        next_retry_delay: timedelta | None = None,
    ) -> ApplicationError:
        failure = PlatformFailure(
            kind=kind,
            method=method,
            path=path,
            http_status=answer.status if answer is not None else None,
            platform_error=_platform_error(answer) if answer is not None else None,
            message=message,
            authenticated=answer.authenticated if answer is not None else None,
        )
        return ApplicationError(
            message,
            failure.model_dump(mode="json"),
            type=kind,
            non_retryable=not retryable,
            next_retry_delay=next_retry_delay,
        )

    def _own_request(self, model: type[M], data: Any, method: str, path: str) -> None:
        """Never send what the contract refuses: a clear, permanent error instead."""
        try:
            check_wire(model, data)
        except ValidationError as exc:
            found = _problems(exc, "", set(model.model_fields))
            listed = "; ".join(f"{p}: {m}" for p, m in found[:5])
            raise self._fail(
                "ContractViolation",
                method,
                path,
                f"{method} {path}: Docket's {model.__name__} breaks the platform contract "
                f"({listed}); nothing was sent",
                retryable=False,
            ) from None

    async def _call(
        self,
        platform: str,
        method: str,
        path: str,
        body: bytes,
        idempotency_key: str | None = None,
    ) -> Answer:
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
        request_signature = headers[SIGNATURE_HEADER]
        headers["Accept"] = "application/json"
        if body:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        what = f"{method} {platform}{path}"
        # `from None`: the message names the httpx error; chaining it would serialise
        # httpx/httpcore's whole traceback into the failure, and the server replaces a retrying
        # activity's last failure over 4 KB with "Failure exceeds size limit." (the UI then
        # hides why a delivery is being retried).
        try:
            request = self._api().build_request(
                method, endpoint.url(path), content=body, headers=headers
            )
            response = await self._api().send(request, stream=True)
            try:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_API_ANSWER:
                        raise self._fail(
                            "MalformedResponse",
                            method,
                            path,
                            f"{what}: the answer is larger than {MAX_API_ANSWER} bytes",
                            retryable=True,
                        )
                    chunks.append(chunk)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise self._fail(
                "PlatformUnavailable",
                method,
                path,
                f"{what}: timed out ({type(exc).__name__})",
                retryable=True,
            ) from None
        except httpx.HTTPError as exc:
            raise self._fail(
                "PlatformUnavailable",
                method,
                path,
                f"{what}: {type(exc).__name__}: {escape_unsafe(str(exc))[:300]}",
                retryable=True,
            ) from None
        answer = Answer(response.status_code, response.headers, b"".join(chunks), None)
        answer = self._authenticate(endpoint, what, method, path, request_signature, answer)
        self._raise_for_status(what, method, path, answer)
        return answer

    def _authenticate(
        self,
        endpoint: PlatformEndpoint,
        what: str,
        method: str,
        path: str,
        request_signature: str,
        answer: Answer,
    ) -> Answer:
        timestamp = answer.headers.get(TIMESTAMP_HEADER)
        signature = answer.headers.get(SIGNATURE_HEADER)
        if timestamp is None and signature is None:
            # A 401 cannot be signed: the platform could not tell who asked.
            if endpoint.require_signed_responses and answer.status != 401:
                raise self._fail(
                    "ResponseNotAuthenticated",
                    method,
                    path,
                    f"{what}: HTTP {answer.status} answer is not signed, and this platform's "
                    "answers must be (require_signed_responses)",
                    answer=answer,
                    retryable=True,
                )
            return answer
        try:
            verify_response(
                endpoint.secret,
                timestamp,
                signature,
                request_signature,
                answer.body,
                int(self._now()),
            )
        except SignatureError as exc:
            raise self._fail(
                "ResponseNotAuthenticated",
                method,
                path,
                f"{what}: HTTP {answer.status} answer's signature is not valid ({exc.reason}): "
                "not from the platform, or not the answer to this request",
                answer=answer,
                retryable=True,
            ) from None
        return Answer(answer.status, answer.headers, answer.body, "hmac-sha256")

    def _raise_for_status(self, what: str, method: str, path: str, answer: Answer) -> None:
        status = answer.status
        if 200 <= status <= 299:
            return
        detail = f"{what}: HTTP {status}: {_platform_error(answer) or '(empty body)'}"

        def fail(kind: str, retryable: bool, delay: timedelta | None = None) -> ApplicationError:
            return self._fail(
                kind,
                method,
                path,
                detail,
                answer=answer,
                retryable=retryable,
                next_retry_delay=delay,
            )

        if status >= 500:
            raise fail("PlatformUnavailable", True, _retry_after(answer.headers))
        if status == 429:
            raise fail("RateLimited", True, _retry_after(answer.headers))
        if status == 401:
            raise fail("SignatureRejected", False)
        if status == 409:
            raise fail("IdempotencyConflict", False)
        raise fail("PlatformRejected", False)

    def _parse(
        self, what: str, method: str, path: str, answer: Answer, model: type[M], retryable: bool
    ) -> M:
        content_type = answer.headers.get("Content-Type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise self._fail(
                "MalformedResponse",
                method,
                path,
                f"{what}: expected application/json, got "
                f"{escape_unsafe(content_type)[:100] or 'no content type'}",
                answer=answer,
                retryable=retryable,
            )
        try:
            return model.model_validate_json(answer.body, context=dict(WIRE))
        except ValidationError as exc:
            found = _problems(exc, "", set(model.model_fields))
            listed = "; ".join(f"{p}: {m}" for p, m in found[:3])
            raise self._fail(
                "MalformedResponse",
                method,
                path,
                f"{what}: the answer breaks the contract's {model.__name__} "
                f"({len(found)} problem(s): {listed}); body: {_excerpt(answer.body)}",
                answer=answer,
                retryable=retryable,
            ) from None

    # -- activities ----------------------------------------------------------------------

    @activity.defn(name="deliver_order")
    @counts_platform_errors
    async def deliver_order(self, platform: str, order: OrderPayload) -> DeliveryReceipt:
        """Deliver an order: ``POST /v1/requests`` with ``Idempotency-Key = order.request_id``.

        Safe to retry: every attempt is freshly signed and the platform returns the same
        ticket for a repeat (200) instead of opening a second one.
        """
        path = "/v1/requests"
        self._endpoint(platform, api=True)
        self._own_request(OrderPayload, order.model_dump(mode="json"), "POST", path)
        body = order.model_dump_json().encode()
        sent_at = utc_now()  # this attempt's: the one the platform answers is the one recorded
        answer = await self._call(platform, "POST", path, body, order.request_id)
        what = f"POST {platform}{path}"
        ticket = self._parse(what, "POST", path, answer, TicketResponse, retryable=True)
        activity.logger.info(
            "order delivered to %s: ticket %s (HTTP %s)", platform, ticket.ticket, answer.status
        )
        return DeliveryReceipt(
            ticket=ticket.ticket,
            received_at=ticket.received_at,
            http_status=answer.status,
            authenticated=answer.authenticated,
            sent_at=sent_at,
        )

    @activity.defn(name="poll_platform")
    @counts_platform_errors
    async def poll_platform(self, platform: str, ticket: str) -> PollResult:
        """Read the platform's view of a ticket: ``GET /v1/requests/{ticket}``.

        Items that break the contract are left out and listed in ``malformed_items``; the
        others are returned. A refused or malformed answer raises a non-retryable error (the
        next poll asks again), 5xx/429/network trouble a retryable one.
        """
        path = f"/v1/requests/{ticket}"
        what = f"GET {platform}{path}"
        answer = await self._call(platform, "GET", path, b"")
        return self._poll_result(what, path, ticket, answer)

    def _poll_result(self, what: str, path: str, ticket: str, answer: Answer) -> PollResult:
        def refuse(message: str) -> ApplicationError:
            return self._fail(
                "MalformedResponse",
                "GET",
                path,
                f"{what}: {message}; body: {_excerpt(answer.body)}",
                answer=answer,
                retryable=False,
            )

        content_type = answer.headers.get("Content-Type", "")
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            got = escape_unsafe(content_type)[:100] or "no content type"
            raise refuse(f"expected application/json, got {got}")
        try:
            raw = orjson.loads(answer.body)
        except orjson.JSONDecodeError as exc:
            raise refuse(f"not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise refuse("the answer is not a JSON object")
        items = raw.get("items")
        if not isinstance(items, list):
            raise refuse("items: required, an array of item effects")
        if len(items) > MAX_ITEMS:
            raise refuse(f"items: at most {MAX_ITEMS} (got {len(items)})")
        try:
            envelope = PlatformStatus.model_validate({**raw, "items": []}, context=dict(WIRE))
        except ValidationError as exc:
            found = _problems(exc, "", set(PlatformStatus.model_fields))
            raise refuse("; ".join(f"{p}: {m}" for p, m in found[:3])) from None
        if envelope.ticket != ticket:
            raise refuse(f"answered for ticket {envelope.ticket[:100]!r}, not {ticket!r}")
        if envelope.info_request is not None:
            try:
                _QUESTION.validate_python(envelope.info_request)
            except ValidationError as exc:
                raise refuse(f"info_request: {exc.errors()[0]['msg']}") from None
        good: list[PlatformItemEffect] = []
        malformed: list[MalformedItem] = []
        seen: set[str] = set()
        for index, item in enumerate(items):
            effect, problems = _item(index, item)
            if effect is not None and effect.item_id in seen:
                problems = [
                    (
                        f"items[{index}].item_id",
                        "the item is reported twice in one answer: the first report is kept",
                    )
                ]
            if problems:
                item_id = _readable_item_id(item)
                malformed.extend(
                    MalformedItem(index=index, item_id=item_id, path=p, message=m)
                    for p, m in problems
                )
                continue
            assert effect is not None
            seen.add(effect.item_id)
            good.append(effect)
        if malformed:
            activity.logger.warning(
                "%s: %d malformed item problem(s), first: %s: %s",
                what,
                len(malformed),
                malformed[0].path,
                malformed[0].message,
            )
        return PollResult(
            ticket=envelope.ticket,
            status=envelope.status,
            acknowledged_at=envelope.acknowledged_at,
            info_request=envelope.info_request,
            items=good,
            malformed_items=malformed,
            authenticated=answer.authenticated,
        )

    @activity.defn(name="send_notice")
    @counts_platform_errors
    async def send_notice(self, platform: str, ticket: str, notice: Notice) -> NoticeResult:
        """Send a notice (second notice, re-notify, withdrawal, reinstatement, info provided).

        Idempotency-Key is ``notice.notice_id`` or, when absent, a key derived from the
        workflow run and activity id, which is stable across retries of this activity. A
        notice the platform refuses raises a non-retryable PlatformRejected (or
        IdempotencyConflict / SignatureRejected) whose details carry the HTTP status and the
        platform's message.
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
        self._endpoint(platform, api=True)
        self._own_request(Notice, notice.model_dump(mode="json"), "POST", path)
        body = notice.model_dump_json().encode()
        answer = await self._call(platform, "POST", path, body, key)
        what = f"POST {platform}{path}"
        receipt = self._parse(what, "POST", path, answer, NoticeReceipt, retryable=True)
        activity.logger.info("%s notice sent to %s for %s", notice.kind, platform, ticket)
        return NoticeResult(
            ticket=receipt.ticket,
            notice_id=receipt.notice_id,
            kind=receipt.kind,
            received_at=receipt.received_at,
            http_status=answer.status,
            authenticated=answer.authenticated,
        )

    @activity.defn(name="probe_item")
    async def probe_item(self, platform: str, item_id: str, url: str, vantage: str) -> Evidence:
        """Fetch a content URL as an anonymous visitor from ``vantage`` and classify it.

        Follows redirects, records the final URL and the SHA-256 of the body (at most
        ``max_probe_body`` bytes), the vantage's kind and exit and the address that served
        the probe. Connection errors and timeouts become ``probe_error`` evidence, a vantage
        that is not configured ``no_vantage``; this activity does not raise for HTTP-level
        outcomes.
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
        self, endpoint: PlatformEndpoint, item_id: str, url: str, vantage_name: str
    ) -> Evidence:
        markers = endpoint.markers
        vantage = self._vantages.get(vantage_name)
        if vantage is None:
            return Evidence(
                item_id=item_id,
                vantage=vantage_name,
                url=url,
                observation=Observation.NO_VANTAGE,
                inconclusive=True,
                status_code=None,
                final_url=url,
                body_sha256=None,
                marker="no_vantage",
                error=f"no vantage point is configured for {vantage_name[:20]!r}: nothing "
                "was fetched (see docs/platforms.md, 'Vantage points')",
                probed_at=datetime.now(UTC),
                markers_version=markers.version,
                vantage_kind="none",
            )
        headers = {"Accept": "text/html,*/*;q=0.8"}
        if vantage.kind == "simulated":
            headers[VANTAGE_HEADER] = vantage_name
        status: int | None = None
        final_url = url
        body = b""
        truncated = False
        error: str | None = None
        served_by: str | None = None
        response_headers: Mapping[str, str] = {}
        try:
            client = self._probe_client(vantage)
            async with client.stream("GET", url, headers=headers) as response:
                status = response.status_code
                final_url = str(response.url)
                response_headers = response.headers
                served_by = _peer(response)
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
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, OSError) as exc:
            status, error = None, escape_unsafe(f"{type(exc).__name__}: {exc}")[:500]
        result = classify(status, final_url, body, response_headers, markers)
        evidence = Evidence(
            item_id=item_id,
            vantage=vantage_name,
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
            vantage_kind=vantage.kind,
            exit=vantage.exit,
            served_by=served_by,
        )
        if evidence.observation is Observation.PROBE_ERROR:
            activity.logger.warning(
                "probe of %s from %s (%s) failed: %s", url, vantage_name, vantage.exit, error
            )
        return evidence


_QUESTION: TypeAdapter[str] = TypeAdapter(Text)
_ITEM_ID = re.compile(ITEM_ID_PATTERN)
_ITEM_FIELDS = set(PlatformItemEffect.model_fields)


def _peer(response: httpx.Response) -> str | None:
    """``host:port`` the response came from (the proxy, for a proxied vantage)."""
    stream = response.extensions.get("network_stream")
    if stream is None:
        return None
    try:
        addr = stream.get_extra_info("server_addr")
    except Exception:
        return None
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return None


def _readable_item_id(item: Any) -> str | None:
    if isinstance(item, dict):
        value = item.get("item_id")
        if isinstance(value, str) and _ITEM_ID.match(value):
            return value
    return None


def _item(index: int, item: Any) -> tuple[PlatformItemEffect | None, list[tuple[str, str]]]:
    """One item of a poll answer: the effect, or the problems that leave it out.

    The contract's checks first; then the ones the workflow's commands apply (docket.models),
    so an item returned here can always be recorded."""
    where = f"items[{index}]"
    if not isinstance(item, dict):
        return None, [(where, "must be an object")]
    try:
        effect = PlatformItemEffect.model_validate(item, context=dict(WIRE))
    except ValidationError as exc:
        return None, _problems(exc, where, _ITEM_FIELDS)
    try:
        if effect.effect == "needs_more_info":
            _QUESTION.validate_python(effect.question)
        elif effect.effect is not None:
            ItemEffect.from_platform(effect)
    except ValidationError as exc:
        return None, _problems(exc, where, _ITEM_FIELDS)
    return effect, []
