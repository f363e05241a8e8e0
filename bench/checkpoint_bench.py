"""Checkpoint benchmark: cost of the first checkpoint of N entries, of an incremental one, of
proofs and bundles, and of `verify --checkpoint`; time and peak RSS of each, each phase in a
fresh process (so its peak RSS is its own).

    python -m bench.checkpoint_bench                 # N = 1,000,000, 1,000 new entries
    python -m bench.checkpoint_bench --entries 100000 --new 1000

The log: real Docket lines (bench/data/lifecycle_template.jsonl, a comply lifecycle with
evidence, ~2.1 kB a line) with their chain ids renamed per request, written into two segment
directories (two worker hosts). The checkpointer only hashes bytes, so the chain hashes need not
be recomputed. Files live under var/bench/checkpoint-N/ (kept between runs; delete to redo).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, VAR, Table, rss_mib, say

TEMPLATE = ROOT / "bench" / "data" / "lifecycle_template.jsonl"


def _template() -> list[bytes]:
    """The template lines as the writer renders them (compact JSON)."""
    return [
        json.dumps(json.loads(x), ensure_ascii=False, separators=(",", ":")).encode()
        for x in TEMPLATE.read_bytes().splitlines()
    ]


def _generate(directory: Path, entries: int) -> None:
    lines = _template()
    hosts = [directory / "host-a", directory / "host-b"]
    for h in hosts:
        h.mkdir(parents=True, exist_ok=True)
    names = [h / f"segment-{h.name}-1-20260101T000000000000Z.jsonl" for h in hosts]
    files = [open(n, "wb") for n in names]  # noqa: SIM115 - closed below
    try:
        written, chain = 0, 0
        while written < entries:
            tag = f"g{chain}".encode()
            block = [line.replace(b"CHAIN", tag) for line in lines[: entries - written]]
            files[chain % 2].write(b"\n".join(block) + b"\n")
            written += len(block)
            chain += 1
    finally:
        for f in files:
            f.close()


def _append(directory: Path, n: int, chain: int) -> None:
    lines = _template()
    path = directory / "host-b" / "segment-host-b-2-20260102T000000000000Z.jsonl"
    with open(path, "ab") as f:
        for i in range(n):
            f.write(lines[i % len(lines)].replace(b"CHAIN", f"n{chain + i // 9}".encode()) + b"\n")


def _phase(args: argparse.Namespace) -> dict[str, Any]:
    """One measured phase, in this (fresh) process."""
    from audit.bundle import build_bundle
    from audit.checkpoint import CheckpointConfig, Source, make_checkpoint
    from audit.checkpoint_store import TreeStore
    from audit.checkpoint_verify import verify_completeness
    from audit.merkle import consistency_proof, inclusion_proof
    from audit.note import SignerKey

    work = Path(args.dir)
    key = SignerKey.parse((work / "log.key").read_text())
    config = CheckpointConfig(
        work / "state", (Source("host-a", work / "host-a"), Source("host-b", work / "host-b"))
    )
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    if args.phase == "checkpoint":
        result = make_checkpoint(config, key)
        out.update(size=result.size, new=result.new_entries)
    elif args.phase == "proofs":
        rng = random.Random(1)
        with TreeStore(config.tree_dir, create=False) as store:
            size = store.size
            picks = [rng.randrange(size) for _ in range(1000)]
            t0 = time.perf_counter()
            for i in picks:
                inclusion_proof(store, i, size)
            out["inclusion_ms_each"] = (time.perf_counter() - t0) * 1000 / len(picks)
            t1 = time.perf_counter()
            for old in (size // 3, size // 2, size - 1000):
                consistency_proof(store, old, size)
            out["consistency_ms_each"] = (time.perf_counter() - t1) * 1000 / 3
    elif args.phase == "bundle":
        bundle = build_bundle("req-mst-g77", config, key.verifier())
        out["entries"] = len(bundle["entries"])
    elif args.phase == "verify":
        res = verify_completeness(
            [work / "host-a", work / "host-b"], config.checkpoint_path, key.verifier()
        )
        out.update(ok=res.ok, checked=res.entries_checked)
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss_mib"] = rss_mib(os.getpid())[1]
    return out


def _run_phase(work: Path, phase: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.checkpoint_bench", "--phase", phase, "--dir", str(work)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        raise SystemExit(f"phase {phase} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run_suite(entries: int, new: int) -> list[Table]:
    """The checkpoint phases on a log of `entries` entries, `new` appended before the
    incremental checkpoint; one table (seconds and peak RSS of each phase)."""
    from audit.note import generate_key

    work = VAR / f"checkpoint-{entries}"
    if not (work / "host-a").exists():
        say(f"checkpoint: generating {entries:,} entries under {work} ...")
        _generate(work, entries)
    shutil.rmtree(work / "state", ignore_errors=True)
    for f in (work / "host-b").glob("segment-host-b-2-*"):
        f.unlink()
    (work / "log.key").write_text(generate_key("bench.docket/audit").encode())
    os.chmod(work / "log.key", 0o600)
    log_bytes = sum(
        f.stat().st_size for d in ("host-a", "host-b") for f in (work / d).glob("*.jsonl")
    )
    rows: list[tuple[str, dict[str, Any]]] = []
    first = _run_phase(work, "checkpoint")
    rows.append((f"first checkpoint, {first['new']:,} entries", first))
    _append(work, new, 10**9)
    inc = _run_phase(work, "checkpoint")
    rows.append((f"incremental checkpoint, +{inc['new']:,} entries", inc))
    proofs = _run_phase(work, "proofs")
    rows.append(("1000 inclusion + 3 consistency proofs", proofs))
    bundle = _run_phase(work, "bundle")
    rows.append((f"prove one request ({bundle['entries']} entries, scans the log)", bundle))
    verify = _run_phase(work, "verify")
    rows.append((f"verify --checkpoint ({verify['checked']:,} entries)", verify))
    tree = sum(f.stat().st_size for f in (work / "state" / "tree").iterdir())
    title = (
        f"checkpoints: {entries:,} entries, {log_bytes / 2**20:,.0f} MiB in 2 segments; tree "
        f"files {tree / 2**20:,.1f} MiB; inclusion proof {proofs['inclusion_ms_each']:.3f} ms, "
        f"consistency proof {proofs['consistency_ms_each']:.3f} ms each"
    )
    return [
        Table(
            title,
            ["phase (a fresh process each)", "seconds", "peak RSS MiB"],
            [[name, f"{r['seconds']:.3f}", f"{r['peak_rss_mib']:.1f}"] for name, r in rows],
        )
    ]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.checkpoint_bench", description=__doc__)
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--new", type=int, default=1000)
    p.add_argument("--phase", help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.phase:
        print(json.dumps(_phase(args)))
        return
    for table in run_suite(args.entries, args.new):
        say(table.render())


if __name__ == "__main__":
    main()
