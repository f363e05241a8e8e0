"""The platform protocol as an OpenAPI 3.1 document, built from the wire models (pure).

The document is published as docs/platform-protocol.openapi.json and served by the simulator
at ``<base>/v1/openapi.json``. It is generated, never edited by hand:

    .venv/bin/python -m docket.platform_openapi > docs/platform-protocol.openapi.json

tests/platform_contract/test_openapi.py fails when a wire model changes without the document
(and checks the document against the simulator, the client and the models' own verdicts).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from docket.platform_protocol import (
    CONTRACT_VERSION,
    IDEMPOTENCY_HEADER,
    NOTICE_ID_PATTERN,
    REQUEST_ID_PATTERN,
    TICKET_PATTERN,
    VANTAGE_HEADER,
    ConformanceAction,
    ConformanceContent,
    ConformanceContentRequest,
    ConformanceInfo,
    ErrorBody,
    MarkerList,
    Notice,
    NoticeReceipt,
    OrderPayload,
    PlatformStatus,
    TicketResponse,
)
from docket.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER

MODELS: tuple[type[BaseModel], ...] = (
    OrderPayload,
    TicketResponse,
    PlatformStatus,
    Notice,
    NoticeReceipt,
    ErrorBody,
    MarkerList,
    ConformanceInfo,
    ConformanceContentRequest,
    ConformanceContent,
    ConformanceAction,
)
REF = "#/components/schemas/{model}"

_DESCRIPTION = f"""\
How Docket delivers authority orders to an online platform and follows them up (protocol v1,
contract {CONTRACT_VERSION}). The prose companion is docs/platform-protocol.md; this document is
generated from Docket's wire models and checked against the reference simulator and Docket's
client in Docket's test suite.

Paths are relative to the platform's base URL (e.g. https://gov-requests.example.com/docket).
Every request to /v1/requests*, /v1/markers and /v1/conformance* is signed (HMAC-SHA256 over
"<timestamp>." + body, headers {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}); the platform answers
401 when a signature is missing, wrong, outside the 300 s window or replayed. Answers should be
signed too (over "response.<timestamp>.<request signature>." + body); a Docket deployment can
require it per platform.

The /v1/conformance* operations are test hooks: a platform offers them only in a test
environment, so that the conformance kit (`./run platform-check`) can make it act.
"""


def _header(name: str, description: str, schema: dict[str, Any], required: bool) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": schema,
    }


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": REF.format(model=ref)}}}


def _error(description: str, *, retry_after: bool = False, signed: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": _json("ErrorBody")}
    headers: dict[str, Any] = {}
    if signed:
        headers |= _response_signature_headers()
    if retry_after:
        headers["Retry-After"] = {"$ref": "#/components/headers/RetryAfter"}
    if headers:
        out["headers"] = headers
    return out


def _response_signature_headers() -> dict[str, Any]:
    return {
        TIMESTAMP_HEADER: {"$ref": "#/components/headers/ResponseTimestamp"},
        SIGNATURE_HEADER: {"$ref": "#/components/headers/ResponseSignature"},
    }


def _ok(description: str, model: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": _response_signature_headers(),
        "content": _json(model),
    }


def _signed_errors(*extra: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "401": _error(
            "bad signature (missing, malformed, wrong, stale, future) or a replayed signature; "
            'the error says which: "bad signature: stale timestamp", "replayed signature". '
            "Not signed: the platform could not verify who asked.",
            signed=False,
        ),
        "429": _error("rate limited; Docket retries after Retry-After", retry_after=True),
        "503": _error(
            "temporarily unavailable; Docket retries (Retry-After honoured, at most 300 s)",
            retry_after=True,
        ),
    }
    for status, body in extra:
        responses[status] = body
    return dict(sorted(responses.items()))


_SIGNATURE_PARAMETERS = [
    {"$ref": "#/components/parameters/Timestamp"},
    {"$ref": "#/components/parameters/Signature"},
]
_TICKET_PARAMETER = {
    "name": "ticket",
    "in": "path",
    "required": True,
    "description": "the ticket the platform issued for the order",
    "schema": {"type": "string", "pattern": TICKET_PATTERN},
}


def _paths() -> dict[str, Any]:
    return {
        "/v1/requests": {
            "post": {
                "operationId": "deliverOrder",
                "summary": "Deliver an authority order",
                "description": "Idempotent: a repeat with the same Idempotency-Key and the same "
                "order (compared as canonical JSON: sorted keys, no insignificant whitespace) "
                "answers 200 with the same ticket and received_at and opens nothing new; the "
                "same key with a different order answers 409. The key must equal the body's "
                "request_id (422 otherwise).",
                "parameters": [
                    *_SIGNATURE_PARAMETERS,
                    _header(
                        IDEMPOTENCY_HEADER,
                        "equal to the body's request_id",
                        {"type": "string", "pattern": REQUEST_ID_PATTERN},
                        True,
                    ),
                ],
                "requestBody": {"required": True, "content": _json("OrderPayload")},
                "responses": _signed_errors(
                    ("200", _ok("an idempotent repeat: the original ticket", "TicketResponse")),
                    ("201", _ok("a new ticket", "TicketResponse")),
                    ("400", _error("the body is not JSON, or Idempotency-Key is missing")),
                    ("409", _error("Idempotency-Key already used with a different order")),
                    ("413", _error("body over 1 MiB")),
                    ("422", _error("invalid order, or Idempotency-Key differs from request_id")),
                ),
            }
        },
        "/v1/requests/{ticket}": {
            "get": {
                "operationId": "getStatus",
                "summary": "The platform's view of an order, per item",
                "description": "Docket polls this at the platform's poll_interval (reference "
                "data; 30 s by default), backing off while nothing changes. Signed with the "
                "empty body.",
                "parameters": [*_SIGNATURE_PARAMETERS, _TICKET_PARAMETER],
                "responses": _signed_errors(
                    ("200", _ok("the order's status and every item", "PlatformStatus")),
                    ("404", _error("unknown ticket")),
                ),
            }
        },
        "/v1/requests/{ticket}/notices": {
            "post": {
                "operationId": "sendNotice",
                "summary": "A notice about an order",
                "description": "second_notice, renotify, withdrawal, reinstatement, "
                "info_provided. Idempotency-Key is per notice (Docket sets it equal to the "
                "body's notice_id; keys are scoped to the ticket): a repeat answers 200 with the "
                "same receipt, a different notice under the same key 409.",
                "parameters": [
                    *_SIGNATURE_PARAMETERS,
                    _TICKET_PARAMETER,
                    _header(
                        IDEMPOTENCY_HEADER,
                        "equal to the body's notice_id when both are present",
                        {"type": "string", "pattern": NOTICE_ID_PATTERN},
                        False,
                    ),
                ],
                "requestBody": {"required": True, "content": _json("Notice")},
                "responses": _signed_errors(
                    ("200", _ok("an idempotent repeat: the original receipt", "NoticeReceipt")),
                    ("202", _ok("the notice is accepted", "NoticeReceipt")),
                    ("400", _error("the body is not JSON")),
                    ("404", _error("unknown ticket")),
                    ("409", _error("Idempotency-Key already used with a different notice")),
                    ("413", _error("body over 1 MiB")),
                    (
                        "422",
                        _error(
                            "invalid notice: request_id does not match the ticket, an unknown "
                            "item id, Idempotency-Key differs from notice_id, or info_provided "
                            "when nothing was asked"
                        ),
                    ),
                ),
            }
        },
        "/v1/markers": {
            "get": {
                "operationId": "getMarkers",
                "summary": "How the platform's pages say that content is gone",
                "description": "Versioned page markers. The operator reviews them and pins "
                "them in Docket's reference data (docs/platforms.md); Docket never reads them "
                "at run time.",
                "parameters": _SIGNATURE_PARAMETERS,
                "responses": _signed_errors(("200", _ok("the current markers", "MarkerList"))),
            }
        },
        "/v1/conformance": {
            "get": {
                "operationId": "getConformanceInfo",
                "tags": ["conformance (test mode only)"],
                "summary": "Whether the conformance hooks are on",
                "parameters": _SIGNATURE_PARAMETERS,
                "responses": _signed_errors(
                    ("200", _ok("the hooks are on", "ConformanceInfo")),
                    ("404", _error("no hooks: not a test environment")),
                ),
            }
        },
        "/v1/conformance/content": {
            "post": {
                "operationId": "createTestContent",
                "tags": ["conformance (test mode only)"],
                "summary": "Create a test content page (available until a decision)",
                "parameters": _SIGNATURE_PARAMETERS,
                "requestBody": {"required": True, "content": _json("ConformanceContentRequest")},
                "responses": _signed_errors(
                    ("201", _ok("the page exists", "ConformanceContent")),
                    ("400", _error("the body is not JSON")),
                    ("404", _error("no hooks: not a test environment")),
                    ("413", _error("body over 1 MiB")),
                    ("422", _error("invalid body")),
                ),
            }
        },
        "/v1/conformance/requests/{ticket}/actions": {
            "post": {
                "operationId": "actOnOrder",
                "tags": ["conformance (test mode only)"],
                "summary": "Make the platform act on an order now",
                "description": "In test mode a platform does nothing on its own: acknowledge, "
                "request_info, decide (one item; the content page changes as the effect says) "
                "and reinstate happen when the kit asks. Answers the status after the action.",
                "parameters": [*_SIGNATURE_PARAMETERS, _TICKET_PARAMETER],
                "requestBody": {"required": True, "content": _json("ConformanceAction")},
                "responses": _signed_errors(
                    ("200", _ok("done; the order's status now", "PlatformStatus")),
                    ("400", _error("the body is not JSON")),
                    ("404", _error("unknown ticket, or no hooks")),
                    ("413", _error("body over 1 MiB")),
                    ("422", _error("invalid action (unknown item, impossible in this state)")),
                ),
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    """The contract as a JSON-ready dict (deterministic: same models, same document)."""
    _, top = models_json_schema([(model, "validation") for model in MODELS], ref_template=REF)
    schemas = dict(sorted(top.get("$defs", {}).items()))
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "Docket platform protocol",
            "version": CONTRACT_VERSION,
            "summary": "Authority orders to online platforms: delivery, status, notices",
            "description": _DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [
            {
                "url": "{base}",
                "description": "the platform's base URL for Docket",
                "variables": {"base": {"default": "https://gov-requests.example.com/docket"}},
            }
        ],
        "paths": _paths(),
        "components": {
            "schemas": schemas,
            "parameters": {
                "Timestamp": _header(
                    TIMESTAMP_HEADER,
                    "the sender's Unix time in whole seconds; the receiver refuses one more "
                    "than 300 s away from its own clock",
                    {"type": "string", "pattern": "^[0-9]{1,12}$"},
                    True,
                ),
                "Signature": _header(
                    SIGNATURE_HEADER,
                    'sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body bytes)>; '
                    "GET signs the empty body",
                    {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
                    True,
                ),
            },
            "headers": {
                "ResponseTimestamp": {
                    "description": "the platform's Unix time when it signed the answer",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
                },
                "ResponseSignature": {
                    "description": 'sha256=<hex HMAC-SHA256(secret, "response." + '
                    '"<timestamp>." + <the request\'s X-Docket-Signature value> + "." + '
                    "raw body bytes)>",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
                },
                "RetryAfter": {
                    "description": "seconds to wait before retrying (Docket waits at most 300)",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^[0-9]{1,6}$"},
                },
            },
        },
        "x-docket": {
            "protocol": "v1",
            "vantage_header": VANTAGE_HEADER,
            "vantage_header_note": "sent only to the simulator, as a stand-in for a real "
            "per-country vantage point; a real platform never sees it and must not honour it",
        },
    }


def render() -> str:
    """The document as published: sorted keys, two-space indent, ASCII, trailing newline."""
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
