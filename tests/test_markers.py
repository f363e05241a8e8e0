"""The collection check of tests/conftest.py: a test that reaches a Temporal server through a
fixture (directly or through another fixture) and is not marked `integration` stops the run,
naming the test; a marked one, or one that needs no server, passes."""

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

    def get_closest_marker(self, name: str) -> Any:
        return name if name in self.markers else None


def check(*items: Collected) -> None:
    config = cast(pytest.Config, None)  # the hook does not read the configuration
    pytest_collection_modifyitems(config, cast(list[pytest.Item], list(items)))


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
