"""The platform conformance kit: ``./run platform-check BASE_URL --secret-env VAR``.

Drives a platform's implementation of Docket's platform protocol through every scenario of
the contract (docs/platform-protocol.openapi.json) and prints a pass/fail report a platform
engineer can act on: what was sent, what came back, what the contract says.
"""

from platform_check.kit import SCENARIOS, Kit
from platform_check.report import Check, Exchange, Report

__all__ = ["SCENARIOS", "Check", "Exchange", "Kit", "Report"]
