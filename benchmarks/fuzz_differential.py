"""Differential fuzzing of bpc: many random networks, no hypothesis overhead.

    python benchmarks/fuzz_differential.py --count 100000 --seed 0 --jobs 2 \\
        --failures failures.jsonl

Network ``i`` is ``tests.netgen.generate(random.Random(f"{seed}:{i}"))``, checked
by ``tests.netgen.check_spec`` (every optimization level vs the reference
interpreter and finite differences; see ``tests/netgen.py``). Prints counts
and the most frequent failure signatures; writes one JSON line per failing
network to ``--failures`` (its spec, a minimized spec for the first
``--minimize`` failures of each signature, and what went wrong). Exit code 1
when any network failed.

Reproduce one network: ``--seed S --start I --count 1``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.netgen import Outcome, check_spec, failure_predicate, generate, shrink, signature  # noqa: E402

# Report lines: (label, failure kinds counted in it).
GROUPS: list[tuple[str, set[str]]] = [
    ("mismatches vs finite differences", {"fd_mismatch", "rule_mismatch"}),
    ("mismatches vs interpreter", {"interp_mismatch", "pass_mismatch"}),
    ("run errors", {"run_error", "compile_error", "oracle_error"}),
    ("non-float or wrong-shape gradients", {"grad_type", "value_type"}),
    ("numpy warnings", {"numpy_warning"}),
    ("mutated arguments", {"mutated_input"}),
]


def run_one(job: tuple[int, int, int, int | None]) -> dict[str, Any]:
    seed, index, max_nodes, fd_elements = job
    net = generate(random.Random(f"{seed}:{index}"), max_nodes)
    t = time.perf_counter()
    try:
        o = check_spec(net.spec, max_fd_elements=fd_elements)
    except Exception as e:  # noqa: BLE001 - a crash of the checker itself is reported, not fatal
        o = Outcome()
        o.fail("oracle_error", "-", f"check_spec crashed: {type(e).__name__}: {e}")
    return {
        "seed": seed,
        "index": index,
        "status": o.status,
        "rejection": o.rejection,
        "kinds": sorted(o.kinds),
        "failures": [f.as_dict() for f in o.failures],
        "signatures": sorted({signature(f) for f in o.failures}),
        "fd_checked": o.fd_checked,
        "fd_skipped": o.fd_skipped,
        "seconds": time.perf_counter() - t,
        "spec": net.spec,
    }


def minimize(job: tuple[dict[str, Any], str]) -> tuple[int, str, dict[str, Any]]:
    """The smallest spec found that still shows failure signature ``sig``."""
    record, sig = job
    outcome = check_spec(record["spec"])
    if not any(signature(f) == sig for f in outcome.failures):  # flaky (should not happen)
        return record["index"], sig, record["spec"]
    return record["index"], sig, shrink(record["spec"], failure_predicate(outcome, sig), budget=100)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000, help="networks to check")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="index of the first network")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--max-nodes", type=int, default=7, help="most generation steps per network")
    ap.add_argument(
        "--fd-elements", type=int, default=32, help="most elements per tensor checked by differences"
    )
    ap.add_argument("--failures", type=Path, help="write failing networks here (JSON lines)")
    ap.add_argument("--minimize", type=int, default=2, help="minimize the first N failures of each signature")
    ap.add_argument("--top", type=int, default=40, help="failure signatures to print")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)

    jobs = [
        (args.seed, i, args.max_nodes, args.fd_elements) for i in range(args.start, args.start + args.count)
    ]
    t0 = time.perf_counter()
    status: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    sigs: Counter[str] = Counter()
    rejections: Counter[str] = Counter()
    failing: list[dict[str, Any]] = []
    checked = skipped = 0
    ctx = mp.get_context("spawn") if args.jobs > 1 else None
    pool = ctx.Pool(args.jobs) if ctx else None
    results = pool.imap_unordered(run_one, jobs, chunksize=4) if pool else map(run_one, jobs)
    try:
        for n, r in enumerate(results, 1):
            status[r["status"]] += 1
            checked += r["fd_checked"]
            skipped += r["fd_skipped"]
            if r["status"] == "rejected":
                rejections[re.sub(r"'[^']*'", "'N'", r["rejection"])[:100]] += 1
            kinds.update(r["kinds"])
            sigs.update(r["signatures"])
            if r["failures"]:
                failing.append(r)
            if not args.quiet and (n % 100 == 0 or n == len(jobs)):
                print(
                    f"  {n}/{len(jobs)} checked, {len(failing)} failing, {time.perf_counter() - t0:.0f} s",
                    file=sys.stderr,
                )

        check_time = time.perf_counter() - t0
        # Minimize the first few failures of each signature (in the workers too).
        per_sig: Counter[str] = Counter()
        to_min = []
        for r in sorted(failing, key=lambda r: r["index"]):
            for sig in r["signatures"]:
                if per_sig[sig] < args.minimize:
                    to_min.append((r, sig))
                    per_sig[sig] += 1
        if to_min and not args.quiet:
            print(f"  minimizing {len(to_min)} (network, signature) pairs", file=sys.stderr)
        minimized: dict[int, dict[str, Any]] = {}
        smallest: dict[str, dict[str, Any]] = {}
        for index, sig, small in pool.imap_unordered(minimize, to_min) if pool else map(minimize, to_min):
            minimized.setdefault(index, {})[sig] = small
            if sig not in smallest or len(json.dumps(small)) < len(json.dumps(smallest[sig])):
                smallest[sig] = small
    finally:
        if pool:
            pool.close()
            pool.join()
    min_time = time.perf_counter() - t0 - check_time

    total = sum(status.values())
    print(f"networks:  {total}")
    print(f"compiled:  {total - status['rejected']}")
    print(f"rejected (BpcError): {status['rejected']}")
    print(f"failing networks: {len(failing)}")
    for label, ks in GROUPS:
        n = sum(1 for r in failing if ks & set(r["kinds"]))
        print(f"  {label}: {n}")
    print(f"failure kinds (networks): {dict(sorted(kinds.items()))}")
    print(f"finite differences: {checked} elements checked, {skipped} skipped (kinks, ties)")
    print(
        f"time: {check_time:.1f} s checking ({check_time / max(total, 1) * 1000:.0f} ms per network,"
        f" {args.jobs} jobs), {min_time:.1f} s minimizing"
    )
    if rejections:
        print("rejections:")
        for msg, n in rejections.most_common(5):
            print(f"  {n:6d}  {msg}")
    if sigs:
        print("failure signatures (networks), each with its smallest minimized spec:")
        for sig, n in sigs.most_common(args.top):
            print(f"  {n:6d}  {sig}")
            if sig in smallest:
                print(f"          {json.dumps(smallest[sig])}")
    if args.failures:
        with args.failures.open("w") as f:
            for r in sorted(failing, key=lambda r: r["index"]):
                if r["index"] in minimized:
                    r["minimized"] = minimized[r["index"]]  # signature -> spec
                r["reproduce"] = (
                    f"python benchmarks/fuzz_differential.py --seed {r['seed']} --start {r['index']} --count 1"
                )
                f.write(json.dumps(r) + "\n")
        print(f"wrote {len(failing)} failing networks to {args.failures}")
    return 1 if failing else 0


if __name__ == "__main__":
    raise SystemExit(main())
