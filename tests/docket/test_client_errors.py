"""How the client turns Temporal's answers into Docket's errors, and which ones it tries again.

A definite answer (not found, bad input, refused, denied) is reported at once: sending it again
would only repeat it. Anything else (a dropped connection, an overloaded or restarting server,
an Update that got no answer in time) is `Unavailable`, tried again with backoff, and reported
(exit status 5 in the starter) only when the outage outlasts the retries."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from docket import client as docket
from docket.client import (
    AccessDenied,
    BadInput,
    CommandRefused,
    DocketError,
    NotFound,
    QueryFailed,
    SubmissionConflict,
    Unavailable,
    _rpc_error,
)


def rpc(status: RPCStatusCode, message: str = "boom") -> RPCError:
    return RPCError(message, status, b"")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (RPCStatusCode.NOT_FOUND, NotFound),
        (RPCStatusCode.INVALID_ARGUMENT, BadInput),
        (RPCStatusCode.ALREADY_EXISTS, SubmissionConflict),
        (RPCStatusCode.FAILED_PRECONDITION, CommandRefused),
        (RPCStatusCode.PERMISSION_DENIED, AccessDenied),
        (RPCStatusCode.UNAUTHENTICATED, AccessDenied),
        # not an answer about the request: the call may be sent again
        (RPCStatusCode.UNAVAILABLE, Unavailable),
        (RPCStatusCode.DEADLINE_EXCEEDED, Unavailable),
        (RPCStatusCode.RESOURCE_EXHAUSTED, Unavailable),
        (RPCStatusCode.ABORTED, Unavailable),
        (RPCStatusCode.UNKNOWN, Unavailable),
        (RPCStatusCode.INTERNAL, Unavailable),
        (RPCStatusCode.CANCELLED, Unavailable),
    ],
)
def test_each_status_becomes_the_error_a_script_can_act_on(
    status: RPCStatusCode, error: type[DocketError]
) -> None:
    mapped = _rpc_error(rpc(status, "detail from the server"), "CASE-1")
    assert type(mapped) is error
    assert mapped.exit_code == error.exit_code


def test_exit_codes_tell_a_script_what_to_do() -> None:
    # 5: try again later; 6: fix the client's credentials; both distinct from refusals
    assert Unavailable("x").exit_code == 5
    assert AccessDenied("x").exit_code == 6
    assert len({e.exit_code for e in (Unavailable, AccessDenied, NotFound, BadInput)}) == 4


def test_not_found_names_the_request_and_the_way_to_check_it() -> None:
    message = str(_rpc_error(rpc(RPCStatusCode.NOT_FOUND), "CASE-404"))
    assert "CASE-404" in message and "list" in message


def test_access_denied_points_at_the_client_settings() -> None:
    message = str(_rpc_error(rpc(RPCStatusCode.PERMISSION_DENIED), "CASE-1"))
    assert "TEMPORAL_NAMESPACE" in message


class Flaky:
    """A call that fails `failures` times with `error`, then answers."""

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "answer"


@pytest.mark.parametrize(
    "error",
    [
        rpc(RPCStatusCode.UNAVAILABLE),
        rpc(RPCStatusCode.INTERNAL),
        WorkflowUpdateRPCTimeoutOrCancelledError(),
        Unavailable("a nested helper already gave up once"),
    ],
    ids=["unavailable", "internal", "update-timeout", "nested-unavailable"],
)
async def test_an_outage_is_tried_again_until_it_passes(error: BaseException) -> None:
    call = Flaky(2, error)
    assert await docket.retrying(call, "CASE-1", attempts=3, max_delay=0.01) == "answer"
    assert call.calls == 3


async def test_a_long_outage_is_reported_as_unavailable_after_the_last_try() -> None:
    call = Flaky(10, rpc(RPCStatusCode.UNAVAILABLE, "connection refused"))
    with pytest.raises(Unavailable, match="connection refused"):
        await docket.retrying(call, "CASE-1", attempts=3, max_delay=0.01)
    assert call.calls == 3


@pytest.mark.parametrize(
    "status",
    [RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.PERMISSION_DENIED],
)
async def test_a_definite_answer_is_not_tried_again(status: RPCStatusCode) -> None:
    call = Flaky(10, rpc(status))
    with pytest.raises(DocketError) as raised:
        await docket.retrying(call, "CASE-1", attempts=5, max_delay=0.01)
    assert not isinstance(raised.value, Unavailable)
    assert call.calls == 1


async def test_a_query_the_worker_cannot_answer_is_named_not_a_traceback() -> None:
    class Handle:
        async def query(self, name: str) -> None:
            raise WorkflowQueryFailedError("[TMPRL1100] Nondeterminism error: ...")

    class FakeClient:
        def get_workflow_handle(self, request_id: str) -> Handle:
            return Handle()

    with pytest.raises(QueryFailed, match=r"could not answer 'status'.*Nondeterminism") as raised:
        await docket.query(FakeClient(), "CASE-9", "status")  # type: ignore[arg-type]
    assert raised.value.exit_code == 7
