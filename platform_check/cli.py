"""Command line of the conformance kit.

Exit codes: 0 every check passed (warnings allowed), 1 a check failed, 2 bad usage (no secret,
a malformed base URL or vantage).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from urllib.parse import urlsplit

from activities.vantages import check_proxy, redact
from platform_check.kit import SCENARIOS, Kit

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./run platform-check",
        description="Check a platform's implementation of Docket's platform protocol against "
        "the contract (docs/platform-protocol.openapi.json). Run it against a test "
        "environment: it opens orders, sends notices and, with the conformance hooks, makes "
        "the platform act on them.",
    )
    parser.add_argument("base_url", help="the platform's base URL for Docket (…/v1/requests)")
    parser.add_argument(
        "--secret-env",
        required=True,
        metavar="VAR",
        help="the environment variable holding the shared signing secret (never on the "
        "command line)",
    )
    parser.add_argument(
        "--vantage",
        action="append",
        default=[],
        metavar="CC=PROXY",
        help="probe content from country CC through this proxy (http://, https://, socks5://, "
        "socks5h://; repeatable); without one, the X-Docket-Vantage stand-in is used if the "
        "platform's test mode honours it",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        choices=SCENARIOS,
        help="run only these scenarios (repeatable)",
    )
    parser.add_argument(
        "--no-hooks",
        action="store_true",
        help="do not use the conformance hooks (the scenarios that need them are skipped)",
    )
    parser.add_argument(
        "--require-signed-responses",
        action="store_true",
        help="fail, rather than warn, on answers without a response signature",
    )
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per request")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--verbose", action="store_true", help="show the contract and exchanges of every check"
    )
    args = parser.parse_args(argv)

    parts = urlsplit(args.base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        parser.error(f"base_url {args.base_url!r}: expected http(s)://host[:port]/path")
    if not _ENV_NAME.match(args.secret_env):
        parser.error(f"--secret-env {args.secret_env!r}: expected an environment variable name")
    secret = os.environ.get(args.secret_env, "")
    if not secret:
        parser.error(f"--secret-env {args.secret_env}: the variable is not set or empty")
    vantages: dict[str, str] = {}
    for spec in args.vantage:
        country, _, proxy = spec.partition("=")
        if not re.match(r"^[A-Z]{2}$", country):
            parser.error(f"--vantage {redact(spec)}: expected CC=PROXY with an ISO country code")
        problem = check_proxy(proxy)
        if problem is not None:
            parser.error(f"--vantage {country}={redact(proxy)}: the proxy {problem}")
        vantages[country] = proxy

    kit = Kit(
        args.base_url,
        secret.encode(),
        vantages=vantages,
        hooks=not args.no_hooks,
        require_signed_responses=args.require_signed_responses,
        timeout=args.timeout,
    )
    try:
        report = kit.run(set(args.only) if args.only else None)
    finally:
        kit.close()
    if args.json:
        sys.stdout.buffer.write(report.json())
    else:
        sys.stdout.write(report.text(verbose=args.verbose))
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
