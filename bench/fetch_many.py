"""Benchmark: fetch 100 lab certificates through a slow network, concurrently vs one by one.

Every lab scenario gets a :class:`helpers.capture.Relay` that adds ``--delay`` seconds
(default 0.2 s) in *each* direction, so one round trip costs 400 ms: a transatlantic
link on a bad day. The 100 targets cycle through the scenarios (good and broken hosts
alike) and connect via the relays, asking for the lab names (SNI) as a browser would.

* **concurrent**: ``fetch_certificates(targets, workers=100)`` — must finish in
  ``--budget`` seconds (1.5 s by default);
* **sequential reference**: ``--sample`` targets (default 10) with ``workers=1``,
  extrapolated to all targets (or all of them with ``--sample 100`` if you have time).

Run it with ``python bench/fetch_many.py``. It exits with status 1 when the concurrent
run is over budget. Loopback only: the offline guard is on for the whole run.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections import Counter

from helpers import netguard
from helpers.capture import Relay
from helpers.fetch import FetchResult, fetch_certificates
from helpers.lab import Lab


def _summary(results: list[FetchResult]) -> str:
    counts = Counter(
        "verified" if r.verified else ("not verified" if r.ok else "no certificate")
        for r in results
    )
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="targets to fetch (100)")
    parser.add_argument("--delay", type=float, default=0.2, help="one-way delay, s (0.2)")
    parser.add_argument("--workers", type=int, default=100, help="threads (100)")
    parser.add_argument("--sample", type=int, default=10, help="sequential sample size (10)")
    parser.add_argument("--budget", type=float, default=1.5, help="seconds allowed (1.5)")
    args = parser.parse_args(argv)

    netguard.install()  # loopback only, whatever happens
    with contextlib.ExitStack() as stack:
        lab = stack.enter_context(Lab())
        relays = {
            name: stack.enter_context(Relay(lab.address(name), delay=args.delay, label=name))
            for name in lab.scenarios
        }
        names = list(relays)
        targets = [
            f"{lab.host(name)}:{relays[name].port}"
            for name in (names[i % len(names)] for i in range(args.count))
        ]
        print(
            f"{len(targets)} targets over {len(names)} lab scenarios, "
            f"{args.delay * 1000:.0f} ms each way (RTT {2 * args.delay * 1000:.0f} ms), "
            f"{args.workers} workers"
        )

        start = time.perf_counter()
        results = fetch_certificates(
            targets, workers=args.workers, cafile=lab.ca_bundle, progress=False
        )
        concurrent = time.perf_counter() - start
        slowest = max(results, key=lambda r: r.elapsed)
        print(f"concurrent: {concurrent:.2f} s for {len(results)} hosts ({_summary(results)})")
        print(f"  slowest host: {slowest.label} {slowest.elapsed:.2f} s ({slowest.error or 'ok'})")

        sample = targets[: max(1, min(args.sample, len(targets)))]
        start = time.perf_counter()
        fetch_certificates(sample, workers=1, cafile=lab.ca_bundle, progress=False)
        took = time.perf_counter() - start
        sequential = took * len(targets) / len(sample)
        how = "measured" if len(sample) == len(targets) else f"{len(sample)} measured, extrapolated"
        print(f"sequential: {sequential:.1f} s ({how}: {took:.2f} s)")
        print(f"speed-up:   {sequential / concurrent:.1f}x")

    ok = concurrent <= args.budget
    print(f"budget {args.budget:.1f} s: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
