"""``python -m helpers.lab``: serve every scenario in the foreground (introduced in notebook 02).

Prints a table (scenario, URL, what a default Python client decides) and how to trust
the lab CA, then serves until Ctrl-C or SIGTERM. ``--json`` prints one JSON object as
the first line of standard output instead (for scripts and tests), then serves::

    {"ca_bundle": PATH, "crl": PATH, "client_cert": PATH, "client_key": PATH,
     "scenarios": {NAME: {"url": URL, "host": HOST, "port": PORT,
                          "expect": {"ok": BOOL, "verify_code": INT|null, "error": TEXT|null},
                          "cli": {"ok": BOOL, "verify_code": INT|null}}},
     "proxy": {"tunnel": "http://127.0.0.1:P1", "inspecting": "http://127.0.0.1:P2",
               "inspection_ca": PATH},                            (helpers/lab/proxy.py)
     "acme": {"directory": "https://127.0.0.1:P3/directory",      (helpers/acme/server.py)
              "http01_port": PORT},
     "share": {"port": PORT, "urls": [URL...], "join": [URL#FINGERPRINT...],
               "fingerprint": "AB:CD:...", "client_key": BOOL}}     (with --share only)

Serving a classroom (see docs/teaching.md and :mod:`helpers.lab.remote`)::

    python -m helpers.lab --share                  # = --bind 0.0.0.0, join endpoint on 8446
    python -m helpers.lab --share --ports-from 9000 --advertise 10.0.0.5

``--share`` also answers a plain-HTTP join endpoint (``--share-port``, default 8446;
0 lets the OS pick) that gives students the CA certificate, the CRL, the names and the
ports; without ``--bind`` it listens on every interface. ``--advertise`` is the address
students type (default: the bound address, or this machine's addresses).
``--share-client-key`` also hands out the lab's client key, for mutual TLS.
``--ports-from N`` puts the scenarios on N, N+1, ... so a firewall can open one range.
``--dir`` chooses where the lab CA lives (default: the per-user cache).

A room can be hostile (see :mod:`helpers.lab.server` for the limits and what each one
stops): at start the CLI raises its open-file limit toward the hard limit, and while it
serves, a refused client costs at most one line a minute on this terminal, never a
traceback; ``joined:`` lines are rate-limited the same way.

The ACME CA (notebook 10) issues certificates for names under ``lab.localhost`` from
"TLS Course Lab ACME CA". Its ``directory`` is served over HTTPS that ``ca_bundle``
verifies; ``http01_port`` is where its HTTP-01 validation connects (on 127.0.0.1) to
fetch ``/.well-known/acme-challenge/TOKEN``, so an ACME client serves its challenge
there (certbot: ``--standalone --http-01-address 127.0.0.1 --http-01-port PORT``). It
listens on loopback even with ``--share``: HTTP-01 from this machine could not reach a
student's laptop.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import signal
import sys
import threading
from typing import Any

from ..errors import CourseError
from . import Lab
from .remote import (
    LAB_ENV,
    SHARE_PORT,
    ShareServer,
    local_addresses,
    short_fingerprint,
)
from .remote.share import RateLimitedLog
from .server import raise_nofile_limit

_WILDCARDS = ("", "0.0.0.0", "::")  # noqa: S104 - names for "every interface", not a bind


def _summary(lab: Lab, share: ShareServer | None, advertise: list[str]) -> dict[str, Any]:
    chain, key = lab.client_cert
    out: dict[str, Any] = {
        "ca_bundle": str(lab.ca_bundle),
        "crl": str(lab.crl),
        "client_cert": str(chain),
        "client_key": str(key),
        "scenarios": {
            name: {
                "url": lab.url(name),
                "host": lab.host(name),
                "port": lab.port(name),
                "expect": scenario.expect.as_json(),
                # openssl s_client -verify_return_error, system OpenSSL (issue 14)
                "cli": {"ok": scenario.cli.ok, "verify_code": scenario.cli.verify_code},
            }
            for name, scenario in lab.scenarios.items()
        },
        "proxy": lab.proxy.as_json(),
        "acme": {"directory": lab.acme.directory, "http01_port": lab.acme.http01_port},
    }
    if share is not None:
        out["share"] = {
            "port": share.port,
            "urls": [share.url(a) for a in advertise],
            "join": [share.join_url(a) for a in advertise],
            "fingerprint": share.fingerprint,
            "client_key": share.share_client_key,
        }
    return out


def _table(lab: Lab) -> str:
    rows = [("scenario", "URL", "default Python client")]
    for name, scenario in lab.scenarios.items():
        verdict = scenario.expect.describe()
        if scenario.strict is not None:
            verdict += (
                f"; with {'+'.join(scenario.check_flags)} and the CRL: {scenario.strict.describe()}"
            )
        rows.append((name, lab.url(name), verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in rows]
    lines.insert(1, "-" * min(120, max(len(line) for line in lines)))
    ca = lab.ca_bundle
    some = next(iter(lab.scenarios))
    host, port = lab.host(some), lab.port(some)
    lines += [
        "",
        f"Lab CA (trust it to verify these servers): {ca}",
        f"  Python:   requests.get(url, verify={str(ca)!r})  or  ssl.create_default_context(cafile=...)",
        f"  curl:     curl --cacert {ca} --resolve {host}:{port}:127.0.0.1 https://{host}:{port}/",
        f"  openssl:  openssl s_client -connect 127.0.0.1:{port} -servername {host} "
        f"-verify_hostname {host} -CAfile {ca}",
        "  browser:  import the file as a certificate authority (Chrome: Settings > Privacy >"
        " Manage certificates; Firefox: Settings > Certificates > Import). Chromium and curl"
        " resolve *.localhost to loopback themselves (RFC 6761 §6.3).",
        f"  mTLS:     client certificate {lab.client_cert[0]}, key {lab.client_cert[1]}",
        f"  CRL:      {lab.crl}",
        f"  proxies:  tunnel {lab.proxy.tunnel}, TLS-inspecting {lab.proxy.inspecting}"
        f" (its root: {lab.proxy.inspection_ca})",
        *_acme_lines(lab),
    ]
    return "\n".join(lines)


def _acme_lines(lab: Lab) -> list[str]:
    """The ACME CA's line (notebook 10) and how to point certbot at it."""
    acme, ca = lab.acme, lab.ca_bundle
    return [
        f"  ACME:     directory {acme.directory} (names under *.lab.localhost; loopback only),"
        f" HTTP-01 validation connects to port {acme.http01_port}",
        f"            REQUESTS_CA_BUNDLE={ca} certbot certonly --standalone"
        f" --http-01-address 127.0.0.1 --http-01-port {acme.http01_port}"
        f" --server {acme.directory} -d www.lab.localhost --agree-tos"
        " --register-unsafely-without-email --config-dir lab-certbot --work-dir lab-certbot"
        " --logs-dir lab-certbot",
    ]


def _exposure(bind: str) -> list[str]:
    """N5: say where a wildcard bind is reachable from, and how to narrow it."""
    if bind not in _WILDCARDS:
        return []
    found = local_addresses()
    where = ", ".join(found) if found else "(none found besides loopback)"
    example = found[0] if found else "ADDRESS"
    return [
        "",
        "  EXPOSED ON EVERY INTERFACE (no --bind): this machine's addresses now are",
        f"      {where}  (and loopback, and any network it joins while serving, e.g. public Wi-Fi)",
        "  To serve the classroom network only, restart with --bind <classroom address>, e.g.",
        f"      python -m helpers.lab --share --bind {example}",
    ]


def _share_table(lab: Lab, share: ShareServer, advertise: list[str]) -> str:
    """What the teacher reads out and writes on the board."""
    short = short_fingerprint(share.fingerprint)
    lines = [
        "",
        "=" * 78,
        "SHARED WITH THE ROOM (join endpoint: plain HTTP, public material only)",
        f"  Lab CA SHA-256 fingerprint: {share.fingerprint}",
        f"  Read out / write on the board: {short}",
    ]
    lines += _exposure(share.bind)
    if not advertise:
        lines += [
            "  Could not find this machine's address. Look it up (ip addr / ipconfig) and",
            "  restart with --advertise ADDRESS, or tell students http://ADDRESS:"
            f"{share.port}/#{short.replace(' ', '')}",
        ]
    for address in advertise:
        join = share.join_url(address)
        lines += [
            "",
            f"  Students on the network that reaches {address} type, in a notebook:",
            f"      import helpers.lab; lab = helpers.lab.join({join!r})",
            "  or, to make every notebook use this lab unchanged, before starting JupyterLab:",
            f"      {LAB_ENV}={join} make lab                  (macOS, Linux)",
            f'      $env:{LAB_ENV}="{join}"; jupyter lab --ServerApp.root_dir=. '
            f"notebooks/00_start_here.ipynb       (Windows PowerShell, in the course folder)",
            f"  Browser page (CA file, fingerprint, curl lines): {share.url(address)}",
        ]
    if advertise and all(ipaddress.ip_address(a).is_loopback for a in advertise if _is_ip(a)):
        lines.append("  (Loopback only: no other machine can join. Use --bind 0.0.0.0 for a room.)")
    ports = sorted(lab.port(name) for name in lab.scenarios)
    if lab.ports_from is not None:
        scenario_ports = f"TCP {ports[0]}-{ports[-1]} (the scenarios)"
    else:
        scenario_ports = (
            "the scenario ports, which are random: allow this Python, or restart with "
            "--ports-from 9000 for a fixed range"
        )
    lines += [
        "",
        f"  Firewall: allow incoming TCP {share.port} (join) and {scenario_ports}.",
        "  Mutual TLS: the client key IS shared (--share-client-key)."
        if share.share_client_key
        else "  Mutual TLS: the client key is NOT shared; client-cert-required works on this "
        "machine only (--share-client-key to share it).",
        "=" * 78,
    ]
    return "\n".join(lines)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _advertised(bind: str, given: list[str] | None) -> list[str]:
    if given:
        return list(dict.fromkeys(given))
    if bind in _WILDCARDS:
        return local_addresses()
    return [bind]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.lab",
        description="Serve the TLS course lab (an offline badssl.com), to this machine or a room.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line, then serve")
    parser.add_argument(
        "--bind",
        default=None,
        help="listening address (default 127.0.0.1, loopback only; with --share, 0.0.0.0)",
    )
    parser.add_argument("--dir", default=None, help="where the lab CA and certificates are cached")
    parser.add_argument(
        "--ports-from",
        type=int,
        default=None,
        metavar="N",
        help="put the scenarios on ports N, N+1, ... instead of random ports (for a firewall "
        "rule; pick N below 32768, where the OS does not hand out ports of its own)",
    )
    room = parser.add_argument_group("serving a classroom")
    room.add_argument(
        "--share",
        action="store_true",
        help="also serve the join endpoint students use (helpers.lab.join / TLS_COURSE_LAB)",
    )
    room.add_argument(
        "--share-port",
        type=int,
        default=SHARE_PORT,
        metavar="PORT",
        help=f"port of the join endpoint (default {SHARE_PORT}; 0: any free port)",
    )
    room.add_argument(
        "--share-client-key",
        action="store_true",
        help="also hand out the lab's client certificate AND private key (for mutual TLS)",
    )
    room.add_argument(
        "--advertise",
        action="append",
        metavar="ADDRESS",
        help="the address students use to reach this machine (repeatable; default: detected)",
    )
    args = parser.parse_args(argv)
    # Every client is a file descriptor; macOS starts us with 256 (helpers/lab/server.py).
    raise_nofile_limit()
    if (args.share_client_key or args.advertise) and not args.share:
        parser.error("--share-client-key and --advertise only make sense with --share")
    bind = args.bind if args.bind is not None else ("0.0.0.0" if args.share else "127.0.0.1")  # noqa: S104 - --share asks for the room

    done = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    advertise = _advertised(bind, args.advertise) if args.share else []
    try:
        _serve(args, bind, advertise, done)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.json:
        print("Lab stopped.", file=sys.stderr)
    return 0


def _serve(
    args: argparse.Namespace, bind: str, advertise: list[str], done: threading.Event
) -> None:
    def _say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    # One "joined:" line per student per minute: a script fetching /lab.json in a loop
    # must not scroll the fingerprint off the teacher's screen.
    joins = RateLimitedLog(_say)

    def _joined(address: str) -> None:
        if not args.json:
            joins(address, f"joined: {address}")

    lab = Lab(directory=args.dir, bind=bind, ports_from=args.ports_from)
    with lab:
        share = (
            ShareServer(
                lab,
                port=args.share_port,
                share_client_key=args.share_client_key,
                on_join=_joined,
                log=None if args.json else _say,
            ).start()
            if args.share
            else None
        )
        try:
            if args.json:
                print(json.dumps(_summary(lab, share, advertise)), flush=True)
            else:
                text = _table(lab)
                if share is not None:
                    text += "\n" + _share_table(lab, share, advertise)
                text += (
                    f"\n\nAt most {lab.max_connections} client connections at once "
                    "(from the open-file limit)."
                )
                print(text + "\nServing until Ctrl-C.", flush=True)
            while not done.wait(0.5):
                pass
        finally:
            if share is not None:
                share.stop()


if __name__ == "__main__":
    sys.exit(main())
