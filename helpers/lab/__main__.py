"""``python -m helpers.lab``: serve every scenario in the foreground (introduced in notebook 02).

Prints a table (scenario, URL, what a default Python client decides) and how to trust
the lab CA, then serves until Ctrl-C or SIGTERM. ``--json`` prints one JSON object as
the first line of standard output instead (for scripts and tests), then serves::

    {"ca_bundle": PATH, "crl": PATH, "client_cert": PATH, "client_key": PATH,
     "scenarios": {NAME: {"url": URL, "host": HOST, "port": PORT,
                          "expect": {"ok": BOOL, "verify_code": INT|null, "error": TEXT|null}}}}

``--bind ADDRESS`` listens elsewhere than 127.0.0.1 (a teacher serving a room; the
students then need the CA file and the names); ``--dir`` chooses where the CA lives.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from . import Lab


def _summary(lab: Lab) -> dict[str, Any]:
    chain, key = lab.client_cert
    return {
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
            }
            for name, scenario in lab.scenarios.items()
        },
    }


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
        "",
        "Serving until Ctrl-C.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m helpers.lab",
        description="Serve the TLS course lab (an offline badssl.com).",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line, then serve")
    parser.add_argument(
        "--bind", default="127.0.0.1", help="listening address (default 127.0.0.1, loopback only)"
    )
    parser.add_argument("--dir", default=None, help="where the lab CA and certificates are cached")
    args = parser.parse_args(argv)

    done = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    with Lab(directory=args.dir, bind=args.bind) as lab:
        if args.json:
            print(json.dumps(_summary(lab)), flush=True)
        else:
            print(_table(lab), flush=True)
        while not done.wait(0.5):
            pass
    if not args.json:
        print("Lab stopped.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
