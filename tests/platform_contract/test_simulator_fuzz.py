"""The simulator fuzzed against the published contract with schemathesis.

Every operation of docs/platform-protocol.openapi.json gets generated requests, valid and
invalid, signed the way Docket signs them (a requests auth hook signs the exact bytes sent);
every answer must be documented for its operation, have the documented content type and
headers, and match the documented schema; no request makes the simulator fail (5xx); and
invalid requests are refused.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from docket.platform_protocol import IDEMPOTENCY_HEADER
from docket.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_headers
from platform_check.contract import document
from platform_sim.server import PlatformSimulator

SECRET = b"fuzz-secret"


def _without_text_policy(node: Any) -> Any:
    """The contract without its `not: {pattern: <refused characters>}` clauses: schemathesis
    cannot generate from a negated pattern (it reads it as `not: {}`). The text policy is
    checked elsewhere (test_contract.py, the kit, the activities' tests)."""
    if isinstance(node, dict):
        return {k: _without_text_policy(v) for k, v in node.items() if k != "not"}
    if isinstance(node, list):
        return [_without_text_policy(v) for v in node]
    return node


@pytest.fixture(scope="module")
def contract() -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(_without_text_policy(document()))


# The operations' tests are built when the test runs, each operation a subtest: built at
# collection (`schemathesis.openapi.from_dict(...).parametrize()`), they cost every pytest
# process ~14 s of CPU, each xdist worker included, whether it runs them or not.
schema = schemathesis.pytest.from_fixture("contract")


@pytest.fixture(autouse=True)
def node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy schema names each subtest through `Node._nodeid`, which
    pytest 9 no longer has (it keeps the id elsewhere): give it one to read and write."""
    request.node._nodeid = request.node.nodeid


class DocketSignature(requests.auth.AuthBase):
    """Sign the bytes actually sent. A generated Idempotency-Key is replaced with the body's
    request_id / notice_id, as Docket sends it (a random key would only ever meet the 422 for
    a key that differs); a key left out on purpose stays out."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        raw = request.body or b""
        body = raw.encode() if isinstance(raw, str) else raw if isinstance(raw, bytes) else b""
        stamp = str(request.headers.get(TIMESTAMP_HEADER, ""))
        signature = str(request.headers.get(SIGNATURE_HEADER, ""))
        if re.match(r"^[0-9]{1,12}$", stamp) and re.match(r"^sha256=[0-9a-f]{64}$", signature):
            # valid-looking generated values become a real signature; a header left out or
            # malformed on purpose stays as generated (the platform must answer 401)
            request.headers.update(signed_headers(SECRET, body, int(time.time())))
        try:
            data: Any = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and IDEMPOTENCY_HEADER in request.headers:
            key = data.get("request_id") if request.path_url.endswith("/requests") else None
            key = key or data.get("notice_id")
            if isinstance(key, str):
                request.headers[IDEMPOTENCY_HEADER] = key
        return request


@pytest.fixture(scope="module")
def sim() -> Iterator[PlatformSimulator]:
    with PlatformSimulator(secrets={"facebook": SECRET}, conformance=True) as s:
        yield s


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.auth = DocketSignature()
        yield s


CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


@pytest.mark.slow(20)
@schema.parametrize()
@settings(
    max_examples=20,  # per operation, after its coverage and explicit examples (40 before)
    deadline=None,
    derandomize=True,  # the same examples every run: CI stays reproducible
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_simulator_keeps_the_contract(
    case: schemathesis.Case[Any], sim: PlatformSimulator, session: requests.Session
) -> None:
    case.call_and_validate(
        base_url=sim.base_url("facebook"), session=session, checks=CHECKS, timeout=15
    )
