"""`./run bench` (python -m bench): Docket's benchmarks, printed as tables.

    ./run bench --quick                       # every suite, small sizes (~5 min)
    ./run bench --full                        # the sizes in docs/performance.md (long)
    ./run bench --suite lifecycle --n 100,500 --store memory,sqlite --rounds 3
    ./run bench --suite audit --audit-entries 1000000
    ./run bench --suite memory --memory-sizes 100,2000,10000 --memory-budget 900
    ./run bench --suite updates --updates-n 2000
    ./run bench --suite signing,metrics,checkpoint,signatures

Suites: lifecycle (Docket vs a bare workflow of the same shape), audit (writer, verify,
report), memory (worker RSS with open requests on timers), updates (failed Updates under
load), signing (signing and verifying one command), metrics (what metrics add to an audit
write, a scrape), checkpoint (first and incremental checkpoints, proofs, bundles, verify
--checkpoint), signatures (what `audit verify --trust` adds). Each run also writes its tables
to var/bench/results-<time>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from typing import Any

from bench import (
    audit_bench,
    audit_signatures_bench,
    checkpoint_bench,
    lifecycle,
    memory,
    metrics_bench,
    signing_bench,
    stack,
    updates,
)
from bench.common import VAR, Table, say

SUITES = (
    "lifecycle",
    "audit",
    "memory",
    "updates",
    "signing",
    "metrics",
    "checkpoint",
    "signatures",
)
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "n": [30],
        "store": ["memory"],
        "rounds": 2,
        "audit_entries": 50_000,
        "append_entries": 500,
        "memory_sizes": [100],
        "memory_budget": 120.0,
        "updates_n": 100,
        "micro_n": 500,
        "checkpoint_entries": 50_000,
        "signed_entries": 45_000,
    },
    "full": {
        "n": [100, 500],
        "store": ["memory", "sqlite"],
        "rounds": 3,
        "audit_entries": 1_000_000,
        "append_entries": 5_000,
        "memory_sizes": [100, 2000, 10000],
        "memory_budget": 900.0,
        "updates_n": 2000,
        "micro_n": 2000,
        "checkpoint_entries": 1_000_000,
        "signed_entries": 1_000_000,
    },
}


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./run bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    profile = parser.add_mutually_exclusive_group()
    profile.add_argument("--quick", action="store_const", dest="profile", const="quick")
    profile.add_argument("--full", action="store_const", dest="profile", const="full")
    parser.add_argument(
        "--suite", default=",".join(SUITES), help="comma list of " + ", ".join(SUITES)
    )
    parser.add_argument("--n", type=_ints, help="lifecycle: concurrent requests, e.g. 100,500")
    parser.add_argument("--store", help="lifecycle: memory,sqlite")
    parser.add_argument("--rounds", type=int, help="alternating rounds per comparison")
    parser.add_argument(
        "--variants",
        default="docket,bare",
        help="lifecycle variants: docket, bare, docket-unsandboxed, bare-unsandboxed,\n"
        "docket-regular-audit, docket-passthrough-all, docket-no-audit-write,\n"
        "docket-no-disk-write, docket-no-publish (bench/worker_proc.py)",
    )
    parser.add_argument("--audit-entries", type=int, help="audit: log size for verify/report")
    parser.add_argument("--append-entries", type=int, help="audit: entries per append run")
    parser.add_argument("--memory-sizes", type=_ints, help="memory: open requests, e.g. 100,2000")
    parser.add_argument("--memory-budget", type=float, help="memory: seconds per size, at most")
    parser.add_argument("--max-cached", type=int, help="memory: worker max_cached_workflows")
    parser.add_argument("--updates-n", type=int, help="updates: concurrent approvals")
    parser.add_argument("--micro-n", type=int, help="signing, metrics: runs per row")
    parser.add_argument("--checkpoint-entries", type=int, help="checkpoint: log size")
    parser.add_argument("--signed-entries", type=int, help="signatures: log size")
    parser.add_argument(
        "--server-config",
        default="",
        help="extra dynamic config for every dev server, e.g.\n"
        "system.enableActivityEagerExecution=true (comma list)",
    )
    parser.set_defaults(profile=None)
    args = parser.parse_args(argv)
    args.explicit_profile = args.profile is not None
    args.profile = args.profile or "quick"
    defaults = PROFILES[args.profile]
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if isinstance(args.store, str):
        args.store = args.store.split(",")
    args.suite = args.suite.split(",")
    unknown = set(args.suite) - set(SUITES)
    if unknown:
        parser.error(f"unknown suite(s) {sorted(unknown)}; choose from {', '.join(SUITES)}")
    return args


async def run(args: argparse.Namespace) -> list[Table]:
    stack.EXTRA_DYNAMIC_CONFIG[:] = [c for c in args.server_config.split(",") if c]
    tables: list[Table] = []
    if "lifecycle" in args.suite:
        variants = tuple(args.variants.split(","))
        _, found = await lifecycle.run_suite(args.n, args.store, args.rounds, variants)
        tables += found
    if "audit" in args.suite:
        tables += audit_bench.run_suite(args.audit_entries, args.append_entries, args.rounds)
    if "memory" in args.suite:
        tables += await memory.run_suite(args.memory_sizes, args.memory_budget, args.max_cached)
    if "updates" in args.suite:
        tables += await updates.run_suite(args.updates_n)
    if "signing" in args.suite:
        tables += signing_bench.run_suite(args.micro_n)
    if "metrics" in args.suite:
        tables += metrics_bench.run_suite(args.micro_n)
    if "checkpoint" in args.suite:
        tables += checkpoint_bench.run_suite(args.checkpoint_entries, 1000)
    if "signatures" in args.suite:
        tables += audit_signatures_bench.run_suite(
            args.signed_entries, args.rounds, min(args.signed_entries, 20_000)
        )
    return tables


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwind the context managers: servers and workers are stopped


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.time()
    profile = args.profile if args.explicit_profile else f"{args.profile} sizes unless given"
    say(f"bench ({profile}): suites {', '.join(args.suite)}")
    try:
        tables = asyncio.run(run(args))
    except KeyboardInterrupt:
        say("bench: interrupted")
        return 130
    elapsed = time.time() - started
    say("")
    for table in tables:
        say(table.render() + "\n")
    say(f"bench: done in {elapsed:.0f} s")
    VAR.mkdir(parents=True, exist_ok=True)
    out = VAR / f"results-{time.strftime('%Y%m%d-%H%M%S')}.md"
    command = "./run bench " + " ".join(sys.argv[1:] if argv is None else argv)
    out.write_text(
        f"`{command}` ({elapsed:.0f} s)\n\n"
        + "\n\n".join(f"**{t.title}**\n\n{t.markdown()}" for t in tables)
        + "\n"
    )
    say(f"bench: tables written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
