"""The conformance kit: drive a platform's implementation through every protocol scenario.

Each scenario sends real, signed requests to the platform and checks the answers against the
contract (status codes, bodies validated with the published JSON Schemas, response
signatures), then reports what was sent, what came back and what the contract says.

Scenarios that need the platform to act (acknowledge, decide each effect, ask for
information, reinstate) use the conformance hooks a platform offers in test mode
(``/v1/conformance*``, docs/platform-protocol.md, "Test mode"); without them those scenarios
are skipped, never passed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
from pydantic import ValidationError

from docket.platform_protocol import (
    CONTRACT_VERSION,
    IDEMPOTENCY_HEADER,
    VANTAGE_HEADER,
    MarkerList,
    PlatformStatus,
    TicketResponse,
)
from docket.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    signed_headers,
    verify_response,
)
from docket.verification import MarkerSet, Observation, classify
from platform_check import contract
from platform_check.report import Check, Exchange, Report, excerpt, shown_headers

DOC = "docs/platform-protocol.md"
SCENARIOS = (
    "discovery",
    "markers",
    "signatures",
    "delivery",
    "invalid-orders",
    "status",
    "acknowledge",
    "effects",
    "info-request",
    "notices",
    "content",
    "response-signing",
)
EFFECT_DECISIONS: tuple[dict[str, Any], ...] = (
    {"effect": "removed_globally"},
    {"effect": "restricted", "restricted_in": ["VN"]},
    {"effect": "declined", "reason": "Not illegal under our terms or the cited law."},
    {"effect": "needs_more_info", "question": "Which provision does item 4 breach?"},
    {"effect": "not_found"},
    {"effect": "already_removed"},
)


class Kit:
    """One run against one platform base URL."""

    def __init__(
        self,
        base_url: str,
        secret: bytes,
        *,
        vantages: Mapping[str, str] | None = None,
        hooks: bool = True,
        require_signed_responses: bool = False,
        timeout: float = 15.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.vantages = dict(vantages or {})
        self.use_hooks = hooks
        self.require_signed_responses = require_signed_responses
        self.clock = clock
        self.http = httpx.Client(timeout=timeout, transport=transport, trust_env=False)
        self._probe_clients: dict[str, httpx.Client] = {}
        self._timeout = timeout
        self._transport = transport
        self.run_id = f"{int(clock())}-{os.urandom(3).hex()}"
        self._serial = 0
        self.hooks_on = False
        self.vantage_header = False
        self.markers: MarkerSet | None = None
        self.signed_answers = 0
        self.unsigned_answers: list[str] = []
        self.bad_signatures: list[str] = []
        self.report = Report(self.base_url, CONTRACT_VERSION)
        self._check: Check | None = None

    def close(self) -> None:
        self.http.close()
        for client in self._probe_clients.values():
            client.close()

    # -- plumbing ------------------------------------------------------------------------

    def _rid(self, what: str) -> str:
        self._serial += 1
        return f"req-kit-{self.run_id}-{self._serial}-{what}"

    @contextmanager
    def check(self, scenario: str, name: str, contract_says: str) -> Iterator[Check]:
        check = Check(scenario=scenario, name=name, contract=contract_says)
        self.report.checks.append(check)
        self._check = check
        try:
            yield check
        except _Stop:
            pass
        except httpx.HTTPError as exc:
            check.fail(f"no answer from the platform: {type(exc).__name__}: {exc}")
        finally:
            self._check = None

    def skip(self, scenario: str, name: str, contract_says: str, why: str) -> None:
        check = Check(scenario=scenario, name=name, contract=contract_says)
        check.skip(why)
        self.report.checks.append(check)

    def call(
        self,
        method: str,
        template: str,
        path: str,
        body: bytes = b"",
        *,
        key: str | None = None,
        expect: int | tuple[int, ...] | None = None,
        sign_with: Callable[[bytes], dict[str, str]] | None = None,
        headers: Mapping[str, str] | None = None,
        validate: bool = True,
    ) -> httpx.Response:
        """Send one request (signed freshly unless ``sign_with`` says otherwise), record it,
        and check the answer against what the contract documents for it."""
        check = self._check
        assert check is not None, "call() outside a check"
        if sign_with is None:
            sent_headers = signed_headers(self.secret, body, int(self.clock()))
            honest = True
        else:
            sent_headers = sign_with(body)
            honest = False
        if body:
            sent_headers["Content-Type"] = "application/json"
        if key is not None:
            sent_headers[IDEMPOTENCY_HEADER] = key
        sent_headers.update(headers or {})
        url = self.base_url + path
        exchange = Exchange(method, path, shown_headers(httpx.Headers(sent_headers)), excerpt(body))
        check.exchanges.append(exchange)
        try:
            response = self.http.request(method, url, content=body, headers=sent_headers)
        except httpx.HTTPError as exc:
            exchange.error = f"{type(exc).__name__}: {exc}"
            raise
        exchange.status = response.status_code
        exchange.response_headers = shown_headers(response.headers)
        exchange.response_body = excerpt(response.content)
        if validate:
            self._conforms(check, method, template, response)
        # 401: the platform could not verify the request; 413: it did not read the body
        if honest and response.status_code not in (401, 413):
            self._signed_answer(check, method, path, sent_headers[SIGNATURE_HEADER], response)
        if expect is not None:
            wanted = (expect,) if isinstance(expect, int) else expect
            if response.status_code not in wanted:
                codes = " or ".join(str(w) for w in wanted)
                check.fail(
                    f"expected HTTP {codes}, got {response.status_code}: "
                    f"{excerpt(response.content, 160)}"
                )
                raise _Stop
        return response

    def _conforms(self, check: Check, method: str, template: str, response: httpx.Response) -> None:
        status = response.status_code
        where = f"{method} {template}"
        try:
            name = contract.response_schema(method, template, status)
        except KeyError:
            documented = ", ".join(str(s) for s in contract.documented_statuses(method, template))
            check.fail(f"HTTP {status} is not a documented answer to {where} ({documented})")
            return
        if name is None:
            return
        ctype = response.headers.get("content-type", "")
        if ctype.split(";", 1)[0].strip().lower() != "application/json":
            check.fail(
                f"HTTP {status} to {where}: Content-Type {ctype or '(none)'!r}, the contract "
                f"says application/json (schema {name})"
            )
            return
        problems = contract.check_body(name, response.content)
        for problem in problems[:5]:
            check.fail(f"HTTP {status} to {where}: the {name} body breaks the contract: {problem}")

    def _signed_answer(
        self, check: Check, method: str, path: str, request_signature: str, response: httpx.Response
    ) -> None:
        label = f"{method} {path} -> {response.status_code}"
        timestamp = response.headers.get(TIMESTAMP_HEADER)
        signature = response.headers.get(SIGNATURE_HEADER)
        if timestamp is None and signature is None:
            self.unsigned_answers.append(label)
            if self.require_signed_responses:
                check.fail(f"{label}: the answer is not signed (response signing is required)")
            return
        try:
            verify_response(
                self.secret,
                timestamp,
                signature,
                request_signature,
                response.content,
                int(self.clock()),
            )
        except SignatureError as exc:
            self.bad_signatures.append(f"{label}: {exc.reason}")
            check.fail(
                f"{label}: the answer's signature is not valid ({exc.reason}); it must be "
                'HMAC-SHA256(secret, "response.<timestamp>.<request signature>." + body)'
            )
            return
        self.signed_answers += 1

    def json_of(self, response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return None

    def order(self, request_id: str, urls: list[str], **changes: Any) -> dict[str, Any]:
        order: dict[str, Any] = {
            "request_id": request_id,
            "authority": "Docket conformance kit (test authority)",
            "reference": f"KIT/{self.run_id}/{self._serial}",
            "legal_bases": [
                {
                    "instrument": "Decree 147/2024/ND-CP",
                    "article": "Art. 23",
                    "url": "https://vanban.chinhphu.vn/?docid=211911",
                }
            ],
            "statement_of_reasons": "Conformance test order: no real content is concerned.",
            "territorial_scope": ["VN"],
            "redress": "The platform and the uploader may appeal to the issuing authority.",
            "priority": "normal",
            "sla_policy": "VN-D147-2024",
            "language": "vi",
            "items": [
                {
                    "item_id": f"item-{n}",
                    "url": url,
                    "content_type": "post",
                    "category": "impersonation",
                    "reason": "Impersonates a state leader (Mạo danh lãnh đạo).",
                }
                for n, url in enumerate(urls, start=1)
            ],
        }
        order.update(changes)
        return order

    def content_url(self, name: str) -> str:
        """A test content page (hooks), else a stand-in URL the platform may refuse."""
        if not self.hooks_on:
            self._serial += 1
            return f"https://content.example/kit/{self.run_id}/{self._serial}-{name}"
        self._serial += 1
        body = orjson.dumps({"name": f"{name}-{self._serial}"[-40:].strip("-")})
        outer = self._check
        check = outer or Check("setup", f"create test content {name!r}", "201 ConformanceContent")
        self._check = check  # setup outside a check is reported only if it fails
        try:
            response = self.call(
                "POST", "/v1/conformance/content", "/v1/conformance/content", body, expect=201
            )
            url = (self.json_of(response) or {}).get("url")
            if not isinstance(url, str):
                check.fail("the answer has no url")
                raise _Stop
            return url
        except (_Stop, httpx.HTTPError) as exc:
            if outer is None:
                if isinstance(exc, httpx.HTTPError):
                    check.fail(f"no answer from the platform: {type(exc).__name__}: {exc}")
                self.report.checks.append(check)
            raise _Stop from None
        finally:
            self._check = outer

    def deliver(self, what: str, urls: list[str]) -> tuple[str, dict[str, Any]]:
        order = self.order(self._rid(what), urls)
        response = self.call(
            "POST",
            "/v1/requests",
            "/v1/requests",
            orjson.dumps(order),
            key=order["request_id"],
            expect=201,
        )
        return str(self.json_of(response)["ticket"]), order

    def status(self, ticket: str) -> PlatformStatus:
        response = self.call("GET", "/v1/requests/{ticket}", f"/v1/requests/{ticket}", expect=200)
        try:
            return PlatformStatus.model_validate_json(response.content)
        except ValidationError as exc:
            assert self._check is not None
            self._check.fail(f"the status answer cannot be read: {exc.errors()[0]['msg']}")
            raise _Stop from None

    def act(self, ticket: str, action: dict[str, Any], expect: int = 200) -> httpx.Response:
        self._serial += 1
        action = {**action, "action_id": f"a-{self.run_id}-{self._serial}"}
        return self.call(
            "POST",
            "/v1/conformance/requests/{ticket}/actions",
            f"/v1/conformance/requests/{ticket}/actions",
            orjson.dumps(action),
            expect=expect,
        )

    def notice(
        self,
        ticket: str,
        notice: dict[str, Any],
        *,
        key: str | None = None,
        expect: Any = None,
        sign_with: Callable[[bytes], dict[str, str]] | None = None,
    ) -> httpx.Response:
        return self.call(
            "POST",
            "/v1/requests/{ticket}/notices",
            f"/v1/requests/{ticket}/notices",
            orjson.dumps(notice),
            key=key,
            expect=expect,
            sign_with=sign_with,
        )

    def probe(self, url: str, vantage: str) -> tuple[Observation, str, httpx.Response | None]:
        """Fetch ``url`` as an anonymous visitor from ``vantage`` and classify it."""
        check = self._check
        assert check is not None and self.markers is not None
        proxy = self.vantages.get(vantage)
        client = self._probe_clients.get(vantage)
        if client is None:
            client = httpx.Client(
                timeout=self._timeout,
                follow_redirects=True,
                headers={"User-Agent": "Docket-Verifier/1"},
                proxy=proxy,
                transport=None if proxy else self._transport,
                trust_env=False,
            )
            self._probe_clients[vantage] = client
        headers = {}
        if proxy is None and vantage != "control":
            headers[VANTAGE_HEADER] = vantage
        exchange = Exchange("GET", url, shown_headers(httpx.Headers(headers)), "(empty)")
        if proxy:
            exchange.request_headers["via"] = f"vantage {vantage} proxy"
        check.exchanges.append(exchange)
        try:
            response = client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            exchange.error = f"{type(exc).__name__}: {exc}"
            return Observation.PROBE_ERROR, "no answer", None
        exchange.status = response.status_code
        exchange.response_headers = shown_headers(response.headers)
        exchange.response_body = excerpt(response.content)
        found = classify(
            response.status_code,
            str(response.url),
            response.content,
            response.headers,
            self.markers,
        )
        return found.observation, found.marker, response

    # -- the run -------------------------------------------------------------------------

    def run(self, only: set[str] | None = None) -> Report:
        steps: dict[str, Callable[[], None]] = {
            "discovery": self.discovery,
            "markers": self.markers_scenario,
            "signatures": self.signatures,
            "delivery": self.delivery,
            "invalid-orders": self.invalid_orders,
            "status": self.status_scenario,
            "acknowledge": self.acknowledge,
            "effects": self.effects,
            "info-request": self.info_request,
            "notices": self.notices,
            "content": self.content,
            "response-signing": self.response_signing,
        }
        for name in SCENARIOS:
            # discovery and markers are what the other scenarios build on: always run
            if name in ("discovery", "markers") or only is None or name in only:
                try:
                    steps[name]()
                except _Stop:  # a setup step failed; it is in the report
                    continue
        return self.report

    def _needs_hooks(self, scenario: str, name: str, says: str) -> bool:
        if self.hooks_on:
            return False
        why = (
            "the conformance hooks are off (--no-hooks)"
            if not self.use_hooks
            else "the platform offers no conformance hooks (GET /v1/conformance answered no); "
            "run it in test mode"
        )
        self.skip(scenario, name, says, why)
        return True

    # -- scenarios -----------------------------------------------------------------------

    def discovery(self) -> None:
        says = f"GET /v1/conformance answers 200 in test mode ({DOC}, 'Test mode')"
        if not self.use_hooks:
            self.skip("discovery", "test mode hooks", says, "--no-hooks")
            return
        with self.check("discovery", "test mode hooks are on", says) as c:
            response = self.call("GET", "/v1/conformance", "/v1/conformance", expect=(200, 404))
            if response.status_code == 404:
                c.warn("no conformance hooks: scenarios that need the platform to act are skipped")
                return
            info = self.json_of(response) or {}
            self.hooks_on = True
            self.vantage_header = bool(info.get("vantage_header"))
            version = str(info.get("contract_version", ""))
            c.expect(
                version.split(".")[0] == CONTRACT_VERSION.split(".")[0],
                f"contract_version {version!r}: this kit checks contract {CONTRACT_VERSION}",
            )

    def markers_scenario(self) -> None:
        says = (
            "GET /v1/markers answers the versioned page markers: version, removed, "
            f"geo_restricted, login_wall ({DOC}, 'Markers')"
        )
        with self.check("markers", "the platform publishes its page markers", says) as c:
            response = self.call("GET", "/v1/markers", "/v1/markers", expect=200)
            if c.status == "fail":
                return
            try:
                published = MarkerList.model_validate_json(response.content)
            except ValidationError as exc:
                c.fail(f"the markers cannot be read: {exc.errors()[0]['msg']}")
                return
            self.markers = MarkerSet(
                version=published.version,
                removed=published.removed,
                geo_restricted=published.geo_restricted,
                login_wall=published.login_wall,
            )
            for kind in ("removed", "geo_restricted", "login_wall"):
                if not getattr(published, kind):
                    c.warn(f"no {kind} markers: Docket then relies on status codes alone")

    def signatures(self) -> None:
        url = "https://content.example/kit/signatures"
        now = int(self.clock())
        cases: list[tuple[str, str, Callable[[bytes], dict[str, str]]]] = [
            ("no signature headers", "missing timestamp", lambda body: {}),
            (
                "a signature made with another secret",
                "signature mismatch",
                lambda body: signed_headers(b"not-the-platform-secret", body, now),
            ),
            (
                "a timestamp 10 minutes old",
                "stale timestamp",
                lambda body: signed_headers(self.secret, body, now - 600),
            ),
            (
                "a timestamp 10 minutes ahead",
                "timestamp in the future",
                lambda body: signed_headers(self.secret, body, now + 600),
            ),
            (
                "a body changed after signing",
                "signature mismatch",
                lambda body: signed_headers(self.secret, body + b" ", now),
            ),
            (
                "a malformed signature",
                "malformed signature",
                lambda body: {TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: "sha256=xyz"},
            ),
        ]
        rid = self._rid("sig")
        body = orjson.dumps(self.order(rid, [url]))
        for name, reason, signer in cases:
            says = (
                f'401 {{"error": "bad signature: {reason}"}} and nothing created '
                f"({DOC}, 'Signing')"
            )
            with self.check("signatures", f"refuses {name}", says) as c:
                response = self.call(
                    "POST",
                    "/v1/requests",
                    "/v1/requests",
                    body,
                    key=rid,
                    sign_with=signer,
                    expect=401,
                )
                error = str((self.json_of(response) or {}).get("error", ""))
                if not error.startswith("bad signature"):
                    c.warn(f"error {error[:80]!r} does not say 'bad signature: <reason>'")
        says = f"GET /v1/requests/{{ticket}} is signed too (the empty body): 401 ({DOC})"
        with self.check("signatures", "refuses an unsigned status read", says):
            self.call(
                "GET",
                "/v1/requests/{ticket}",
                "/v1/requests/KIT-NOPE",
                sign_with=lambda b: {},
                expect=401,
            )
        says = (
            "after the refused attempts, a valid delivery with the same key opens the order "
            "(201); 200 means a refused attempt had opened it"
        )
        with self.check("signatures", "refused attempts created nothing", says):
            self.call("POST", "/v1/requests", "/v1/requests", body, key=rid, expect=201)

    def delivery(self) -> None:
        url = self.content_url("delivery")
        rid = self._rid("deliver")
        order = self.order(rid, [url])
        body = orjson.dumps(order)
        first: dict[str, Any] = {}
        says = f"201 {{ticket, received_at}} for a new order ({DOC}, 'POST /v1/requests')"
        with self.check("delivery", "a new order gets a ticket (201)", says) as c:
            response = self.call("POST", "/v1/requests", "/v1/requests", body, key=rid, expect=201)
            first = self.json_of(response) or {}
            if c.status == "fail":
                first = {}
        if not first:
            self.skip("delivery", "idempotency", "-", "no ticket: the first delivery failed")
            return
        same = "200 with the same ticket and received_at, and nothing new is opened"
        with self.check("delivery", "a repeat (signed afresh) answers 200, same ticket", same) as c:
            response = self.call("POST", "/v1/requests", "/v1/requests", body, key=rid, expect=200)
            self._same_ticket(c, first, response)
        with self.check(
            "delivery",
            "a repeat with other key order and whitespace is the same order (canonical JSON)",
            same + "; orders are compared as canonical JSON",
        ) as c:
            shuffled = orjson.dumps(dict(reversed(list(order.items()))), option=orjson.OPT_INDENT_2)
            response = self.call(
                "POST", "/v1/requests", "/v1/requests", shuffled, key=rid, expect=200
            )
            self._same_ticket(c, first, response)
        with self.check(
            "delivery",
            "an exact replay (same signature, same key) is an idempotent repeat",
            "a replayed POST with the same Idempotency-Key gets the original answer (200), "
            f"never a second order ({DOC}, 'Replays')",
        ) as c:
            fixed = signed_headers(self.secret, body, int(self.clock()))
            self.call(
                "POST",
                "/v1/requests",
                "/v1/requests",
                body,
                key=rid,
                sign_with=lambda b: dict(fixed),
                expect=200,
            )
            response = self.call(
                "POST",
                "/v1/requests",
                "/v1/requests",
                body,
                key=rid,
                sign_with=lambda b: dict(fixed),
                expect=200,
            )
            self._same_ticket(c, first, response)
        with self.check(
            "delivery",
            "the same key with a different order is a conflict (409)",
            '409 {"error": ...}: the key is already used with a different order',
        ):
            changed = orjson.dumps({**order, "reference": order["reference"] + "-changed"})
            self.call("POST", "/v1/requests", "/v1/requests", changed, key=rid, expect=409)
        with self.check(
            "delivery",
            "an Idempotency-Key other than request_id is refused (422)",
            "422: the key must equal the body's request_id",
        ):
            other = self.order(self._rid("keymismatch"), [url])
            self.call(
                "POST",
                "/v1/requests",
                "/v1/requests",
                orjson.dumps(other),
                key=other["request_id"] + "-x",
                expect=422,
            )
        with self.check(
            "delivery", "a delivery without Idempotency-Key is refused (400)", "400: key required"
        ):
            other = self.order(self._rid("nokey"), [url])
            self.call("POST", "/v1/requests", "/v1/requests", orjson.dumps(other), expect=400)

    def _same_ticket(self, c: Check, first: dict[str, Any], response: httpx.Response) -> None:
        again = self.json_of(response) or {}
        c.expect(
            again.get("ticket") == first.get("ticket"),
            f"ticket {again.get('ticket')!r} differs from the first answer's "
            f"{first.get('ticket')!r}: a repeat must not open a second order",
        )
        try:
            same_time = (
                TicketResponse.model_validate(again).received_at
                == TicketResponse.model_validate(first).received_at
            )
        except ValueError:
            same_time = False
        c.expect(
            same_time,
            f"received_at {again.get('received_at')!r} differs from the first "
            f"{first.get('received_at')!r}",
        )

    def invalid_orders(self) -> None:
        url = self.content_url("invalid")

        def case(name: str, says: str, body: bytes, rid: str, status: int = 422) -> None:
            with self.check("invalid-orders", name, says) as c:
                response = self.call(
                    "POST", "/v1/requests", "/v1/requests", body, key=rid, expect=status
                )
                error = (self.json_of(response) or {}).get("error")
                c.expect(isinstance(error, str) and error != "", "the error body must say why")

        def bad(what: str, **changes: Any) -> tuple[bytes, str]:
            rid = self._rid(what)
            return orjson.dumps(self.order(rid, [url], **changes)), rid

        good = self.order(self._rid("x"), [url])
        item = good["items"][0]
        body, rid = bad("unknown", surprise="field")
        case(
            "an unknown field is refused", "422: unknown fields in an order are refused", body, rid
        )
        body, rid = bad("scope", territorial_scope=["vn"])
        case("a malformed country code", "422: ISO 3166-1 alpha-2 codes or ['global']", body, rid)
        body, rid = bad("dupes", items=[item, item])
        case("duplicate item ids", "422: item ids are unique in an order", body, rid)
        body, rid = bad("ctype", items=[{**item, "content_type": "tweet"}])
        case("an unknown content_type", "422: content_type is one of the enum", body, rid)
        body, rid = bad("bidi", items=[{**item, "reason": "Looks fine \u202eeno neddih"}])
        case("a reason with a bidi override", "422: text refuses bidi overrides", body, rid)
        body, rid = bad("short", items=[{**item, "reason": "ab"}])
        case("a reason under 3 characters", "422: reason is 3-4,000 characters", body, rid)
        rid = self._rid("notjson")
        case("a body that is not JSON", "400: the body must be JSON", b"{not json", rid, 400)
        rid = self._rid("huge")
        huge = orjson.dumps(self.order(rid, [url], redress="x" * (1024 * 1024 + 10)))
        case("a body over 1 MiB", "413: bodies are at most 1 MiB", huge, rid, 413)

    def status_scenario(self) -> None:
        url = self.content_url("status")
        says = (
            "200 PlatformStatus: status 'received', one item per order item with effect null "
            f"until decided ({DOC}, 'GET /v1/requests/{{ticket}}')"
        )
        with self.check("status", "a new order reads back as received, items pending", says) as c:
            ticket, order = self.deliver("status", [url])
            status = self.status(ticket)
            c.expect(status.ticket == ticket, f"ticket {status.ticket!r}, asked for {ticket!r}")
            c.expect(status.status == "received", f"status {status.status!r}, not 'received'")
            ids = [i.item_id for i in status.items]
            c.expect(
                ids == [i["item_id"] for i in order["items"]],
                f"items {ids} do not match the order's",
            )
            c.expect(all(i.effect is None for i in status.items), "an item has an effect already")
        with self.check(
            "status",
            "two reads in the same second both answer (GET is exempt from replay refusal)",
            "GETs are safe reads: the same signature twice is not a replay",
        ):
            fixed = signed_headers(self.secret, b"", int(self.clock()))
            for _ in range(2):
                self.call(
                    "GET",
                    "/v1/requests/{ticket}",
                    f"/v1/requests/{ticket}",
                    sign_with=lambda b: dict(fixed),
                    expect=200,
                )
        with self.check("status", "an unknown ticket is 404", '404 {"error": ...}'):
            self.call(
                "GET", "/v1/requests/{ticket}", f"/v1/requests/KIT-{self.run_id}-none", expect=404
            )

    def acknowledge(self) -> None:
        says = "after the platform acknowledges: status 'acknowledged' with acknowledged_at"
        if self._needs_hooks("acknowledge", "acknowledgment reads back", says):
            return
        with self.check("acknowledge", "acknowledgment reads back", says) as c:
            ticket, _ = self.deliver("ack", [self.content_url("ack")])
            self.act(ticket, {"action": "acknowledge"})
            status = self.status(ticket)
            c.expect(status.status == "acknowledged", f"status {status.status!r}")
            c.expect(status.acknowledged_at is not None, "acknowledged_at is null")

    def effects(self) -> None:
        says = (
            "each decision reads back exactly: removed_globally, restricted (restricted_in), "
            "declined (reason), needs_more_info (question), not_found, already_removed; "
            f"status 'decided' once every item is ({DOC}, 'Item effects')"
        )
        if self._needs_hooks("effects", "every effect reads back", says):
            return
        urls = [self.content_url(f"effect-{n}") for n in range(len(EFFECT_DECISIONS))]
        ticket = ""
        with self.check("effects", "an order with one item per effect", says) as c:
            ticket, _ = self.deliver("effects", urls)
        if not ticket:
            return
        for n, decision in enumerate(EFFECT_DECISIONS, start=1):
            effect = decision["effect"]
            with self.check("effects", f"{effect} reads back", says) as c:
                self.act(ticket, {"action": "decide", "item_id": f"item-{n}", **decision})
                status = self.status(ticket)
                item = next((i for i in status.items if i.item_id == f"item-{n}"), None)
                if not c.expect(item is not None, f"item-{n} is missing from the answer"):
                    continue
                assert item is not None
                c.expect(item.effect == effect, f"effect {item.effect!r}, decided {effect!r}")
                c.expect(item.effect_at is not None, "effect_at is null after a decision")
                for key in ("restricted_in", "reason", "question"):
                    if key in decision:
                        c.expect(
                            getattr(item, key) == decision[key],
                            f"{key} {getattr(item, key)!r}, decided {decision[key]!r}",
                        )
        with self.check("effects", "every item decided: status 'decided'", says) as c:
            status = self.status(ticket)
            c.expect(status.status == "decided", f"status {status.status!r}, not 'decided'")

    def info_request(self) -> None:
        says = (
            "status 'info_requested' with the question in info_request until an "
            f"info_provided notice; then info_request is null ({DOC}, 'Information requests')"
        )
        if self._needs_hooks("info-request", "a question and its answer", says):
            return
        with self.check("info-request", "a question and its answer", says) as c:
            ticket, order = self.deliver("info", [self.content_url("info")])
            question = "Please attach the authority's decision."
            self.act(ticket, {"action": "request_info", "question": question})
            status = self.status(ticket)
            c.expect(status.status == "info_requested", f"status {status.status!r}")
            c.expect(status.info_request == question, f"info_request {status.info_request!r}")
            notice = {
                "kind": "info_provided",
                "request_id": order["request_id"],
                "message": "Decision no. 12 is attached.",
                "items": [],
                "notice_id": f"n-{self.run_id}-info",
            }
            self.notice(ticket, notice, key=notice["notice_id"], expect=202)
            status = self.status(ticket)
            c.expect(status.status != "info_requested", "still info_requested after the answer")
            c.expect(status.info_request is None, "info_request not cleared after the answer")
        with self.check(
            "info-request",
            "info_provided when nothing was asked is refused (422)",
            "422: info_provided when nothing was asked",
        ):
            ticket, order = self.deliver("noinfo", [self.content_url("noinfo")])
            notice = {
                "kind": "info_provided",
                "request_id": order["request_id"],
                "message": "Unasked.",
                "items": [],
                "notice_id": f"n-{self.run_id}-unasked",
            }
            self.notice(ticket, notice, key=notice["notice_id"], expect=422)

    def notices(self) -> None:
        urls = [self.content_url("notice-1"), self.content_url("notice-2")]
        ticket = ""
        rid = ""
        says = (
            "202 {ticket, notice_id, kind, received_at}; the same Idempotency-Key again: 200 "
            f"and the same receipt ({DOC}, 'Notices')"
        )
        with self.check("notices", "an order to send notices about", "201"):
            ticket, order = self.deliver("notices", urls)
            rid = order["request_id"]
            if self.hooks_on:  # a reinstatement concerns a removed item
                decision = {"action": "decide", "item_id": "item-1", "effect": "removed_globally"}
                self.act(ticket, decision)
        if not ticket:
            return
        for kind, items in (
            ("second_notice", []),
            ("renotify", ["item-1"]),
            ("reinstatement", ["item-1"]),
        ):
            with self.check("notices", f"{kind} is accepted, and idempotent", says) as c:
                notice = {
                    "kind": kind,
                    "request_id": rid,
                    "message": f"Conformance {kind}.",
                    "items": items,
                    "notice_id": f"n-{self.run_id}-{kind}",
                }
                first = self.notice(ticket, notice, key=notice["notice_id"], expect=202)
                receipt = self.json_of(first) or {}
                c.expect(receipt.get("kind") == kind, f"receipt kind {receipt.get('kind')!r}")
                c.expect(
                    receipt.get("notice_id") == notice["notice_id"],
                    f"receipt notice_id {receipt.get('notice_id')!r}, sent {notice['notice_id']!r}",
                )
                c.expect(
                    receipt.get("ticket") == ticket, f"receipt ticket {receipt.get('ticket')!r}"
                )
                again = self.notice(ticket, notice, key=notice["notice_id"], expect=200)
                c.expect(
                    self.json_of(again) == receipt, "the repeat's receipt differs from the first"
                )
        base = {"kind": "renotify", "request_id": rid, "message": "x", "items": []}
        with self.check(
            "notices",
            "a different notice under a used key is a conflict (409)",
            "409: the key is already used with a different notice",
        ):
            used = f"n-{self.run_id}-second_notice"
            self.notice(ticket, {**base, "notice_id": used}, key=used, expect=409)
        with self.check(
            "notices",
            "an exact replay without Idempotency-Key is refused (401 replayed signature)",
            f"a POST whose signature was seen before is refused unless it repeats the key ({DOC}, "
            "'Replays')",
        ):
            body = orjson.dumps({**base, "message": "replay me"})
            fixed = signed_headers(self.secret, body, int(self.clock()))
            self.call(
                "POST",
                "/v1/requests/{ticket}/notices",
                f"/v1/requests/{ticket}/notices",
                body,
                sign_with=lambda b: dict(fixed),
                expect=202,
            )
            self.call(
                "POST",
                "/v1/requests/{ticket}/notices",
                f"/v1/requests/{ticket}/notices",
                body,
                sign_with=lambda b: dict(fixed),
                expect=401,
            )
        with self.check("notices", "a notice for another request_id is refused (422)", "422"):
            key = f"n-{self.run_id}-wrong-rid"
            self.notice(
                ticket,
                {**base, "request_id": "req-someone-else", "notice_id": key},
                key=key,
                expect=422,
            )
        with self.check("notices", "a notice naming an unknown item is refused (422)", "422"):
            key = f"n-{self.run_id}-unknown-item"
            self.notice(
                ticket, {**base, "items": ["item-99"], "notice_id": key}, key=key, expect=422
            )
        with self.check("notices", "a notice to an unknown ticket is 404", "404"):
            key = f"n-{self.run_id}-no-ticket"
            self.notice(f"KIT-{self.run_id}-none", {**base, "notice_id": key}, key=key, expect=404)
        with self.check(
            "notices",
            "a withdrawal is accepted and the order reads back as withdrawn",
            "202, then status 'withdrawn'",
        ) as c:
            key = f"n-{self.run_id}-withdrawal"
            notice = {
                "kind": "withdrawal",
                "request_id": rid,
                "message": "Withdrawn.",
                "items": [],
                "notice_id": key,
            }
            self.notice(ticket, notice, key=key, expect=202)
            status = self.status(ticket)
            c.expect(status.status == "withdrawn", f"status {status.status!r}, not 'withdrawn'")

    def content(self) -> None:
        says = (
            "content pages say what happened: available before a decision, then removed "
            "(marker or 410), not_found (404: inconclusive), legally_blocked (451 with Link "
            "rel=blocked-by), login_wall, geo-restricted inside restricted_in and available "
            f"outside; reinstated content is available again ({DOC}, 'Content pages')"
        )
        if self._needs_hooks("content", "content pages in each state", says):
            return
        if self.markers is None:
            self.skip("content", "content pages in each state", says, "no markers: see markers")
            return
        views: tuple[tuple[str, dict[str, Any], str, set[Observation]], ...] = (
            (
                "marker",
                {"effect": "removed_globally", "view": "marker"},
                "control",
                {Observation.REMOVED},
            ),
            (
                "410",
                {"effect": "removed_globally", "view": "410"},
                "control",
                {Observation.REMOVED},
            ),
            (
                "404",
                {"effect": "removed_globally", "view": "404"},
                "control",
                {Observation.NOT_FOUND},
            ),
            (
                "451",
                {"effect": "removed_globally", "view": "451"},
                "control",
                {Observation.LEGALLY_BLOCKED},
            ),
            (
                "login",
                {"effect": "removed_globally", "view": "login"},
                "control",
                {Observation.LOGIN_WALL},
            ),
            (
                "declined",
                {"effect": "declined", "reason": "Lawful speech."},
                "control",
                {Observation.AVAILABLE},
            ),
        )
        urls = {name: self.content_url(f"page-{name}") for name, *_ in views}
        restricted_url = self.content_url("page-restricted")
        ticket = ""
        with self.check("content", "every page is available before a decision", says) as c:
            for name, url in {**urls, "restricted": restricted_url}.items():
                seen, marker, _ = self.probe(url, "control")
                c.expect(
                    seen is Observation.AVAILABLE,
                    f"{name} page before any decision: {seen.value} ({marker}), not available",
                )
            ticket, _ = self.deliver("content", [*urls.values(), restricted_url])
        if not ticket:
            return
        for n, (name, decision, vantage, wanted) in enumerate(views, start=1):
            with self.check(
                "content", f"{name}: the page reads as {', '.join(w.value for w in wanted)}", says
            ) as c:
                self.act(ticket, {"action": "decide", "item_id": f"item-{n}", **decision})
                seen, marker, response = self.probe(urls[name], vantage)
                c.expect(seen in wanted, f"{name} page: {seen.value} ({marker})")
                if name == "451" and response is not None:
                    c.expect(
                        'rel="blocked-by"' in response.headers.get("link", "").replace("'", '"'),
                        'a 451 page should name who blocks it: Link: <...>; rel="blocked-by"',
                    )
        restricted_n = len(views) + 1
        with self.check("content", "restricted: geo-blocked inside, available outside", says) as c:
            self.act(
                ticket,
                {
                    "action": "decide",
                    "item_id": f"item-{restricted_n}",
                    "effect": "restricted",
                    "restricted_in": ["VN"],
                },
            )
            if "VN" not in self.vantages and not self.vantage_header:
                c.skip(
                    "no vantage inside VN: give --vantage VN=<proxy URL> (the platform does not "
                    "honour the X-Docket-Vantage stand-in)"
                )
            else:
                inside, marker, _ = self.probe(restricted_url, "VN")
                c.expect(
                    inside in (Observation.GEO_RESTRICTED, Observation.LEGALLY_BLOCKED),
                    f"from VN: {inside.value} ({marker}), not geo_restricted or legally_blocked",
                )
                outside, marker, _ = self.probe(restricted_url, "control")
                c.expect(
                    outside is Observation.AVAILABLE,
                    f"from control (outside VN): {outside.value} ({marker}), not available",
                )
        with self.check("content", "reinstated content is available again", says) as c:
            self.act(ticket, {"action": "reinstate", "item_id": "item-1"})
            seen, marker, _ = self.probe(urls["marker"], "control")
            c.expect(seen is Observation.AVAILABLE, f"after reinstatement: {seen.value} ({marker})")
            status = self.status(ticket)
            c.expect(
                status.items[0].reinstated_at is not None,
                "reinstated_at is null after the reinstatement",
            )

    def response_signing(self) -> None:
        says = (
            "answers to signed requests are signed: X-Docket-Timestamp and X-Docket-Signature = "
            'sha256=HMAC(secret, "response.<timestamp>.<request signature>." + body) '
            f"({DOC}, 'Signed answers')"
        )
        with self.check("response-signing", "answers are signed", says) as c:
            if self.bad_signatures:
                for bad in self.bad_signatures[:5]:
                    c.fail(f"invalid answer signature: {bad}")
            if self.unsigned_answers:
                shown = "; ".join(self.unsigned_answers[:3])
                message = (
                    f"{len(self.unsigned_answers)} answer(s) unsigned (e.g. {shown}): Docket "
                    "records them as not authenticated, and a deployment that requires signed "
                    "answers refuses them"
                )
                if self.require_signed_responses:
                    c.fail(message)
                else:
                    c.warn(message)
            if not self.signed_answers and not self.unsigned_answers and not self.bad_signatures:
                c.skip("no answer to a signed request was received")


class _Stop(Exception):
    """Ends the current check (its failure is already recorded)."""


__all__ = ["SCENARIOS", "Kit"]
