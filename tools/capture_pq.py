"""Record a post-quantum hybrid TLS 1.3 handshake for learners on OpenSSL 3.0 (notebook 06).

OpenSSL 3.5 and newer offer the hybrid group **X25519MLKEM768** (ML-KEM-768, FIPS 203,
combined with X25519) first by default, and servers on 3.5+ pick it. A learner whose Python
is linked against OpenSSL 3.0 cannot make such a handshake, so notebook 06 shows them one
recorded here, and parses it with :mod:`helpers.handshake` like their own.

Run it on OpenSSL >= 3.5, e.g. in the Debian 13 root::

    /work/roots/run trixie 'cd /work/main && python tools/capture_pq.py'

What it does, all on 127.0.0.1:

1. starts a throw-away HTTPS server (a fresh CA and certificate from :mod:`helpers.pki`,
   kept in memory only) with OpenSSL's default groups;
2. connects through a recording :class:`helpers.capture.Relay` (real TCP sockets), twice:
   with the default client context (hybrid + x25519 key shares) and with a client that
   offers x25519 only (``helpers.versions.offer_only``: ``set_groups`` on Python 3.15+, else ``set_ecdh_curve``);
3. times many more handshakes of each kind directly against the server (loopback: CPU
   only, no network delay), and
4. writes ``data/pq_handshake.json``: the two captures' raw bytes (hex), the versions that
   made them, the medians of the timings.

**No secret is written.** No key log is requested (there is no ``keylog_filename`` on any
context here), the private keys stay in this process, and the file is checked before it is
written: no ``PRIVATE KEY``, no NSS key-log label (``CLIENT_RANDOM``,
``*_TRAFFIC_SECRET``). Without a key log, the encrypted records in the file stay encrypted
for everyone, which is the point of a capture you can publish.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import socket
import ssl
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from helpers import versions
from helpers.capture import Capture, Relay
from helpers.lab.server import Reactor, Request, Response
from helpers.pki import CA

ROOT = Path(__file__).resolve().parent.parent

OUT = ROOT / "data" / "pq_handshake.json"
FORMAT = "tls-course-pq-capture/1"
HOST = "pq.lab.localhost"
HYBRID = "X25519MLKEM768"

#: What must never appear in the saved file: PEM private keys and NSS key-log labels.
FORBIDDEN = re.compile(
    r"PRIVATE KEY|CLIENT_RANDOM|TRAFFIC_SECRET|EXPORTER_SECRET|EARLY_EXPORTER|keylog",
    re.IGNORECASE,
)


def x25519_only_client(cafile: str) -> ssl.SSLContext:
    """A default client that offers (and sends a key share for) x25519 only."""
    return versions.offer_only(ssl.create_default_context(cafile=cafile), "X25519")


def negotiated_group(tls: ssl.SSLSocket, capture: Capture | None = None) -> str | None:
    """The key-exchange group: ``SSLSocket.group()`` on Python 3.15+, else the ServerHello."""
    group = getattr(tls, "group", None)
    if callable(group):
        return group()
    if capture is not None and capture.server_hello is not None:
        share = capture.server_hello.key_share
        return share.group_name if share is not None else None
    return None


def _one_request(address: tuple[str, int], ctx: ssl.SSLContext) -> tuple[str | None, float]:
    """One HTTPS GET; returns (group from SSLSocket.group() if available, handshake seconds)."""
    with socket.create_connection(address, timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST, do_handshake_on_connect=False) as tls:
            start = time.perf_counter()
            tls.do_handshake()
            took = time.perf_counter() - start
            group = negotiated_group(tls)
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            while tls.recv(65536):
                pass
    return group, took


def _hello(_request: Request) -> Response:
    return Response(body=b"post-quantum hello\n")


def _capture_info(capture: Capture, group: str | None) -> dict[str, Any]:
    """Only public facts go into the file (never ``capture.info`` wholesale)."""
    hello, server_hello = capture.client_hello, capture.server_hello
    assert hello is not None and server_hello is not None
    return {
        "version": capture.version,
        "cipher": capture.cipher_suite,
        "server_hostname": HOST,
        "group": group or (server_hello.key_share.group_name if server_hello.key_share else None),
        "client_key_shares": [[k.group_name, k.key_length] for k in hello.key_shares],
        "server_key_share": [server_hello.key_share.group_name, server_hello.key_share.key_length]
        if server_hello.key_share
        else None,
    }


def record(runs: int) -> dict[str, Any]:
    if ssl.OPENSSL_VERSION_INFO < (3, 5):
        raise SystemExit(
            f"This Python uses {ssl.OPENSSL_VERSION}; X25519MLKEM768 needs OpenSSL 3.5 or newer. "
            "Run it in the Debian 13 root: /work/roots/run trixie 'cd /work/main && python "
            "tools/capture_pq.py'"
        )
    ca = CA("PQ Capture CA")
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # OpenSSL's default groups
    ca.issue(HOST).configure_server(server)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="capture-pq-") as tmp:
        cafile = Path(tmp, "ca.pem")
        cafile.write_bytes(ca.cert_pem)  # the CA *certificate* only
        default_client = ssl.create_default_context(cafile=str(cafile))
        classic_client = x25519_only_client(str(cafile))
        reactor = Reactor(name="capture-pq")
        port = reactor.add_site(server, _hello).getsockname()[1]
        reactor.start()
        try:
            captures: dict[str, Any] = {}
            with Relay(("127.0.0.1", port), label="pq") as relay:
                for index, (name, ctx) in enumerate(
                    (("hybrid", default_client), ("x25519", classic_client))
                ):
                    group, _ = _one_request(relay.address, ctx)
                    capture = relay.wait(index + 1)[index]
                    capture.label = f"{name}: default client on {ssl.OPENSSL_VERSION}"
                    if name == "x25519":
                        capture.label = f"x25519 only: client restricted, {ssl.OPENSSL_VERSION}"
                    saved = Capture(capture.chunks, capture.label, _capture_info(capture, group))
                    captures[name] = saved.to_dict()
            timings: dict[str, list[float]] = {"hybrid": [], "x25519": []}
            for _ in range(runs):  # interleaved, so both see the same machine load
                for name, ctx in (("hybrid", default_client), ("x25519", classic_client)):
                    timings[name].append(_one_request(("127.0.0.1", port), ctx)[1])
        finally:
            reactor.stop()
    hybrid = Capture.from_dict(captures["hybrid"])
    assert hybrid.server_hello and hybrid.server_hello.key_share
    assert hybrid.server_hello.key_share.group_name == HYBRID, "the server did not pick the hybrid"
    return {
        "format": FORMAT,
        "about": (
            "Two real TLS 1.3 handshakes on 127.0.0.1, recorded by tools/capture_pq.py for "
            "notebook 06: 'hybrid' with the default client (X25519MLKEM768 + x25519 key shares), "
            "'x25519' with a client restricted to x25519. Raw bytes only: no key log and no "
            "key of either end, so the encrypted records cannot be decrypted."
        ),
        "recorded": {
            "date": dt.date.today().isoformat(),
            "python": sys.version.split()[0],
            "openssl": ssl.OPENSSL_VERSION,
            "group_api": "SSLSocket.group()"
            if hasattr(ssl.SSLSocket, "group")
            else "ServerHello key_share",
        },
        "handshake_ms": {
            "runs": runs,
            "method": "median of SSLSocket.do_handshake() on loopback, client side, interleaved",
            **{name: round(statistics.median(t) * 1000, 3) for name, t in timings.items()},
        },
        "captures": captures,
    }


def check_no_secrets(text: str) -> None:
    """Refuse to write anything that looks like key material."""
    found = FORBIDDEN.search(text)
    if found:
        raise SystemExit(f"refusing to write {OUT.name}: it contains {found.group(0)!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="handshakes timed per kind")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    result = record(args.runs)
    text = json.dumps(result, indent=1) + "\n"
    check_no_secrets(text)
    args.out.write_text(text, encoding="utf-8")
    sizes = {
        name: [len(bytes.fromhex(c["data"])) for c in cap["chunks"]][:2]
        for name, cap in result["captures"].items()
    }
    print(f"wrote {args.out} ({len(text)} bytes) with {result['recorded']['openssl']}")
    print("first two flights (bytes):", sizes, "· handshake ms:", result["handshake_ms"])


if __name__ == "__main__":
    main()
