"""Helpers to drive the simulator by hand or from tests: a signed sync client, sample orders."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson

from docket.platform_protocol import IDEMPOTENCY_HEADER, Notice, OrderPayload
from docket.signing import signed_headers


def sample_order(
    request_id: str,
    urls: Sequence[str],
    *,
    scope: Sequence[str] = ("VN",),
    reference: str | None = None,
) -> OrderPayload:
    """A valid order with one item per URL (item ids ``item-1``, ``item-2``, ...)."""
    return OrderPayload.model_validate(
        {
            "request_id": request_id,
            "authority": "Ministry of Information and Communications (VN)",
            "reference": reference or request_id,
            "legal_bases": [
                {
                    "instrument": "Decree 147/2024/ND-CP",
                    "article": "Art. 23",
                    "url": "https://vanban.chinhphu.vn/?docid=211911",
                }
            ],
            "statement_of_reasons": "Tài khoản mạo danh lãnh đạo nhà nước.",
            "territorial_scope": list(scope),
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
                    "reason": "Impersonates a state leader.",
                }
                for n, url in enumerate(urls, start=1)
            ],
        }
    )


class SignedClient:
    """A minimal protocol v1 client (sync) for one platform: signs every call freshly."""

    def __init__(self, base_url: str, secret: bytes, client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.http = client or httpx.Client(timeout=10.0)

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        key: str | None = None,
        timestamp: int | None = None,
        secret: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        hdrs = signed_headers(secret or self.secret, body, timestamp or int(time.time()))
        if body:
            hdrs["Content-Type"] = "application/json"
        if key is not None:
            hdrs[IDEMPOTENCY_HEADER] = key
        hdrs.update(headers or {})
        return self.http.request(method, self.base_url + path, content=body, headers=hdrs)

    def submit(
        self, order: OrderPayload | Mapping[str, Any], key: str | None = None, **kw: Any
    ) -> httpx.Response:
        data = order.model_dump(mode="json") if isinstance(order, OrderPayload) else order
        if key is None:
            key = str(data["request_id"])
        return self.request("POST", "/v1/requests", orjson.dumps(data), key=key, **kw)

    def status(self, ticket: str, **kw: Any) -> httpx.Response:
        return self.request("GET", f"/v1/requests/{ticket}", **kw)

    def notice(
        self, ticket: str, notice: Notice, key: str | None = None, **kw: Any
    ) -> httpx.Response:
        body = notice.model_dump_json().encode()
        return self.request("POST", f"/v1/requests/{ticket}/notices", body, key=key, **kw)
