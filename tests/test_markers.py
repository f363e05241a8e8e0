"""The collection hook of tests/conftest.py: a test that reaches a Temporal server through a
fixture (directly or through another fixture) and is not marked `integration` stops the run,
naming the test; a marked one, or one that needs no server, passes. Tests marked
`slow(seconds)` are put first, the longest first, the others keeping their order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from conftest import SERVER_FIXTURES, pytest_collection_modifyitems


@dataclass
class Collected:
    """What the hook reads of a collected test: its id, fixture closure and markers."""

    nodeid: str
    fixturenames: list[str]
    markers: set[str] = field(default_factory=set)
    seconds: float | None = None  # marked slow(seconds)

    def get_closest_marker(self, name: str) -> Any:
        if name == "slow" and self.seconds is not None:
            return pytest.mark.slow(self.seconds).mark
        return getattr(pytest.mark, name).mark if name in self.markers else None


def check(*items: Collected) -> list[str]:
    """The hook run on `items`: their ids in the order it leaves them."""
    config = cast(pytest.Config, None)  # the hook does not read the configuration
    collected = cast(list[pytest.Item], list(items))
    pytest_collection_modifyitems(config, collected)
    return [item.nodeid for item in collected]


def test_an_unmarked_test_on_a_server_stops_the_run_by_name() -> None:
    for fixture in sorted(SERVER_FIXTURES):
        with pytest.raises(pytest.UsageError) as refused:
            check(
                Collected("t.py::marked", ["dev_stack", fixture], {"integration"}),
                Collected("t.py::unmarked", ["tmp_path", fixture]),
            )
        assert "t.py::unmarked" in str(refused.value)
        assert "t.py::marked" not in str(refused.value)


def test_marked_server_tests_and_serverless_tests_pass() -> None:
    check(
        Collected("t.py::a", ["dev_env", "dev_stack"], {"integration"}),
        Collected("t.py::b", ["tmp_path", "simulator"]),
        Collected("t.py::c", ["ts_env"], {"integration", "slow"}),
    )


def test_the_longest_tests_go_first_the_others_keep_their_order() -> None:
    order = check(
        Collected("a.py::quick", []),
        Collected("b.py::some", [], seconds=10),
        Collected("c.py::quick", []),
        Collected("d.py::drill", ["dev_env"], {"integration"}, seconds=80),
        Collected("e.py::quick", []),
    )
    assert order == ["d.py::drill", "b.py::some", "a.py::quick", "c.py::quick", "e.py::quick"]
