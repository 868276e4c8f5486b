"""Benchmark: certificates issued per second through the whole ACME flow, and 100 six-day certificates renewed by ARI.

Run from the project root::

    .venv/bin/python bench/acme.py [--count 100] [--renew 100] [--poll-hours 6] [--incident 10]
    .venv/bin/python bench/acme.py --renew 0 --only acme     # (or direct) one side of part 1

1. **Issuance.** ``--count`` certificates obtained by :class:`helpers.acme.client.AcmeClient`
   from :class:`helpers.acme.server.AcmeServer` on loopback: a signed ``newOrder``, the
   authorization, HTTP-01 for real (the server fetches the token from an
   :class:`~helpers.acme.http01.Http01Responder` over TCP), ``finalize`` with a CSR, polling,
   the chain download. Reference, measured in the same run: the same CA signing the same
   CSRs directly (:meth:`helpers.pki.CA.sign_csr`). Keys are made before either clock
   starts, and the account is registered once. The ratio is what the protocol costs.
2. **Renewal by ARI.** ``--renew`` ``shortlived`` certificates (160 hours, Let's Encrypt's
   6-day profile), then a simulated renewal daemon on the server's clock
   (``AcmeServer(clock=...)``): it asks ``renewalInfo`` for every certificate every
   ``--poll-hours`` (simulated) hours (RFC 9773 §4.3), schedules a random moment in the
   window (:func:`helpers.acme.renewal.decide`, RFC 9773 §4.2), moves the clock there and
   renews with ``replaces`` (RFC 9773 §5). Halfway, the CA pulls ``--incident``
   certificates' windows earlier (as before a mass revocation), which only the polling
   notices. Printed: how many were renewed inside their window, how long it took (wall
   clock) and renewals per second.

Not a test: numbers depend on the machine (benches are not tests). Loopback only: the
offline guard is on for the whole run; every server it starts is stopped.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import heapq
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from helpers import netguard
from helpers.acme.ari import RenewalWindow
from helpers.acme.client import AcmeClient
from helpers.acme.http01 import Http01Responder
from helpers.acme.renewal import RenewalDecision, decide
from helpers.acme.server import AcmeServer
from helpers.pki import CA, make_csr, new_private_key

HOUR = _dt.timedelta(hours=1)


@dataclass
class SimClock:
    """The server's clock, moved by hand (it starts at the real now)."""

    now: _dt.datetime

    def __call__(self) -> _dt.datetime:
        return self.now


def _names(count: int, prefix: str) -> list[str]:
    return [f"{prefix}{i}.lab.localhost" for i in range(count)]


def bench_issuance(
    server: AcmeServer,
    client: AcmeClient,
    responder: Http01Responder,
    issuer: CA,
    count: int,
    only: str | None = None,
) -> None:
    names = _names(count, "issue")
    keys = [new_private_key() for _ in names]  # outside both clocks
    acme = direct = 0.0
    if only != "direct":
        start = time.perf_counter()
        for name, key in zip(names, keys, strict=True):
            client.obtain([name], responder=responder, key=key)
        acme = time.perf_counter() - start
    if only != "acme":
        csrs = [make_csr(key, name) for name, key in zip(names, keys, strict=True)]
        start = time.perf_counter()
        for csr in csrs:
            issuer.sign_csr(csr)
        direct = time.perf_counter() - start
    if only is not None:  # one side only: for timing whole processes from outside
        print(f"{only}: {count} certificates in {acme or direct:.3f} s")
        return
    print(
        f"issuance:  {count} certificates through ACME in {acme:.2f} s = {count / acme:.1f}/s "
        "(newOrder, authorization, HTTP-01 fetched by the CA, finalize, poll, download)"
    )
    print(
        f"reference: the same CA signing the same {count} CSRs directly: {direct:.3f} s "
        f"= {count / direct:.0f}/s"
    )
    print(f"ratio:     the protocol costs {acme / direct:.0f}x direct signing")


def bench_renewal(
    server: AcmeServer,
    client: AcmeClient,
    responder: Http01Responder,
    clock: SimClock,
    count: int,
    poll: _dt.timedelta,
    incident: int,
    rng: random.Random,
) -> bool:
    names = _names(count, "short")
    began = time.perf_counter()
    current = {}
    for name in names:
        current[name] = client.obtain([name], responder=responder, profile="shortlived").cert
    issued = time.perf_counter() - began
    lifetimes = {c.not_valid_after_utc - c.not_valid_before_utc for c in current.values()}
    print(
        f"renewal:   {count} 'shortlived' certificates issued in {issued:.2f} s "
        f"(lifetime {', '.join(f'{life / HOUR:.0f} h' for life in sorted(lifetimes))})"
    )

    # The daemon: a queue of (moment, kind, name). "poll" asks renewalInfo again and
    # reschedules; "renew" renews if the (fresh) decision says the moment has come.
    start_sim = clock.now
    queue: list[tuple[_dt.datetime, int, str]] = []
    plan: dict[str, tuple[RenewalWindow | None, RenewalDecision]] = {}
    for i, name in enumerate(names):
        heapq.heappush(queue, (start_sim + poll * rng.random(), i, name))
    pulled: set[str] = set()
    incident_at = start_sim + (min(c.not_valid_after_utc for c in current.values()) - start_sim) / 2
    renewed_inside = renewed_outside = asks = expired_first = 0
    renewing = 0.0  # wall time inside obtain(..., replaces=...)
    before = len(server.issued)
    late: list[str] = []
    began = time.perf_counter()
    while queue:
        moment, order, name = heapq.heappop(queue)
        clock.now = max(clock.now, moment)
        if incident and not pulled and clock.now >= incident_at:
            # The CA must replace some certificates early: their windows move to "now".
            for victim in names[:incident]:
                until = min(clock.now + 2 * poll, current[victim].not_valid_after_utc)
                server.suggest_renewal(current[victim], RenewalWindow(clock.now, until))
                pulled.add(victim)
        cert = current[name]
        window = client.renewal_info(cert)
        asks += 1
        if name not in plan or plan[name][0] != window:
            # A new (or moved) window: pick a moment in it once, and keep it until the
            # window changes (re-picking at every poll would drift toward the end).
            plan[name] = (window, decide(cert, window, clock.now, rng))
        decision = plan[name][1]
        if decision.when > clock.now:
            # Sleep until the chosen moment or the next poll, whichever comes first.
            heapq.heappush(queue, (min(decision.when, clock.now + poll), order, name))
            continue
        t0 = time.perf_counter()
        client.obtain([name], responder=responder, profile="shortlived", replaces=cert)
        renewing += time.perf_counter() - t0
        if clock.now > cert.not_valid_after_utc:
            expired_first += 1
        if window is not None and window.start <= clock.now < window.end:
            renewed_inside += 1
        else:
            renewed_outside += 1
            late.append(f"{name} at {clock.now:%m-%d %H:%M} ({decision.source})")
    took = time.perf_counter() - began
    renewals = renewed_inside + renewed_outside
    simulated = clock.now - start_sim
    print(
        f"           renewed inside their ARI window: {renewed_inside}/{count}"
        + (f" (outside: {', '.join(late[:3])})" if late else "")
        + f"; expired before their renewal: {expired_first}"
    )
    print(
        f"           {renewals} renewals and {asks} renewalInfo requests in {took:.2f} s "
        f"= {renewals / took:.1f} renewals/s with the polling "
        f"({simulated / HOUR:.0f} simulated hours, polled every {poll / HOUR:g} h; "
        f"{len(pulled)} windows pulled forward by the CA)"
    )
    print(
        f"           the renewals alone (order with replaces, HTTP-01, finalize, download): "
        f"{renewing:.2f} s = {renewals / renewing:.1f}/s; the CA issued "
        f"{len(server.issued) - before} new certificates"
    )
    return renewed_inside == count and not expired_first and len(server.issued) - before == count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="certificates for part 1 (100)")
    parser.add_argument("--renew", type=int, default=100, help="certificates renewed (100)")
    parser.add_argument("--poll-hours", type=float, default=6.0, help="ARI poll interval (6)")
    parser.add_argument("--incident", type=int, default=10, help="windows pulled forward (10)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    parser.add_argument(
        "--only",
        choices=("acme", "direct"),
        help="part 1 with one side only (to time the two as whole processes)",
    )
    args = parser.parse_args(argv)

    netguard.install()  # loopback only, whatever happens
    root = CA("Bench Root CA", permitted=["lab.localhost", "127.0.0.0/8"])
    issuer = root.create_intermediate("Bench ACME CA")
    clock = SimClock(_dt.datetime.now(_dt.UTC).replace(microsecond=0))
    with tempfile.TemporaryDirectory(prefix="bench-acme-") as tmp:
        bundle = Path(tmp, "root.pem")
        bundle.write_bytes(root.cert_pem)
        with AcmeServer(issuer, issuer.chain[:-1], clock=clock) as server:
            with Http01Responder(port=server.http01_port) as responder:
                client = AcmeClient(server.directory, ca_bundle=bundle)
                client.register()
                print(f"ACME server {server.directory}, HTTP-01 on port {server.http01_port}")
                bench_issuance(server, client, responder, issuer, args.count, args.only)
                ok = not args.renew or bench_renewal(
                    server,
                    client,
                    responder,
                    clock,
                    args.renew,
                    _dt.timedelta(hours=args.poll_hours),
                    args.incident,
                    random.Random(args.seed),
                )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
