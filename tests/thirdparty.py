"""Capture real handshakes from TLS clients this project did not write, and read them twice.

Used by ``tests/test_cross_clients.py``. A capture is a pcap written by ``tcpdump`` on
``lo`` (filtered to the server ports) plus the key log the *client* wrote (curl and
gnutls-cli honour ``SSLKEYLOGFILE``, Chromium ``--ssl-key-log-file``). The same pcap is
then read by Wireshark's dissector (``tshark``) and by the project's own decoders
(``helpers.handshake``, ``helpers.tls13``) so the two can be compared field by field.

A capture that lost packets (tcpdump's "dropped by kernel" count, or a TCP sequence gap
that tshark flags) proves nothing about a decoder: :attr:`Capture.inconclusive` says why.
"""

from __future__ import annotations

import re
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

#: From this curl release on, curl's OpenSSL backend lets the handshake finish and checks the
#: server's certificate afterwards (the verify callback accepts; curl then reads
#: SSL_get_verify_result and fails with "SSL certificate OpenSSL verify result: ..."; curl issue
#: #19615 dates the change between 8.16 and 8.17). So it sends its Finished and no alert, and
#: closes. Measured here: curl 7.88 and 8.14 refuse an expired certificate with a
#: certificate_expired alert during the handshake; curl 8.22 (Debian testing, 2026) completes it.
CURL_VERIFIES_AFTER_HANDSHAKE = (8, 17)


def curl_verifies_after_handshake() -> bool:
    """Whether the installed curl refuses a certificate only after the handshake completed."""
    from helpers.lab.legacy import tool_versions

    return (tool_versions().curl or (0,)) >= CURL_VERIFIES_AFTER_HANDSHAKE


#: The tshark fields read for every packet, in this order (one tshark run per capture).
FIELDS = (
    "tcp.stream",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.len",
    "tcp.payload",
    "tcp.analysis.retransmission",
    "tcp.analysis.lost_segment",
    "tcp.analysis.ack_lost_segment",
    "tls.record.content_type",
    "tls.handshake.type",
    "tls.handshake.ciphersuite",
    "tls.handshake.extension.type",
    "tls.handshake.extensions_supported_group",
    "tls.handshake.extensions_key_share_group",
    "tls.handshake.extensions_key_share_key_exchange_length",
    "tls.handshake.sig_hash_alg",
    "tls.handshake.extensions_alpn_str",
    "tls.handshake.extensions_server_name",
    "tls.alert_message.level",
    "tls.alert_message.desc",
)


class Sniffer:
    """``tcpdump`` on ``lo`` for some TCP ports; ready once it says it is listening.

    ``--immediate-mode`` and ``-U`` hand every packet to the file at once, so stopping right
    after the connections loses nothing; :attr:`dropped` is tcpdump's own count of packets
    the kernel dropped (printed when it stops).
    """

    def __init__(self, ports: list[int], pcap: Path) -> None:
        expression = " or ".join(f"tcp port {p}" for p in ports)
        self.process = subprocess.Popen(
            [
                "tcpdump",
                "-i",
                "lo",
                "-B",
                "8192",
                "--immediate-mode",
                "-U",
                "-w",
                str(pcap),
                expression,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.ready = threading.Event()
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self.ready.wait(10):
            self.stop()
            raise RuntimeError(f"tcpdump did not start capturing: {''.join(self.stderr)}")

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)
            if "listening on" in line:
                self.ready.set()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # our own child, by its PID
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._reader.join(5)

    @property
    def dropped(self) -> int:
        found = re.search(r"(\d+) packets? dropped by kernel", "".join(self.stderr))
        return int(found.group(1)) if found else 0


@dataclass
class Hello:
    """The ClientHello fields as tshark decoded them (numbers, in wire order)."""

    cipher_suites: list[int]
    extensions: list[int]
    supported_groups: list[int]
    key_share_groups: list[int]
    key_share_lengths: list[int]
    signature_schemes: list[int]  # signature_algorithms, then signature_algorithms_cert
    alpn: list[str]
    sni: str | None


@dataclass
class Connection:
    """One TCP connection of a capture: the bytes each way and tshark's reading of them."""

    stream: int
    server_port: int
    c2s: bytearray = field(default_factory=bytearray)
    s2c: bytearray = field(default_factory=bytearray)
    content_types: dict[str, list[int]] = field(default_factory=lambda: {"c2s": [], "s2c": []})
    handshake_types: dict[str, list[int]] = field(default_factory=lambda: {"c2s": [], "s2c": []})
    hello: Hello | None = None
    alerts: dict[str, list[tuple[int, int]]] = field(default_factory=lambda: {"c2s": [], "s2c": []})


@dataclass
class Capture:
    connections: list[Connection]
    dropped: int  # tcpdump's count
    gaps: int  # packets tshark flags as following (or acking) a lost segment

    @property
    def inconclusive(self) -> str | None:
        """Why this capture cannot judge a decoder, or None when nothing was lost."""
        if self.dropped:
            return f"tcpdump reports {self.dropped} packets dropped by kernel"
        if self.gaps:
            return f"tshark flags {self.gaps} TCP sequence gaps (lost segments)"
        return None


def _ints(value: str) -> list[int]:
    return [int(v, 0) for v in value.split(",") if v]


def read(pcap: Path, keylog: Path, server_ports: set[int], dropped: int = 0) -> Capture:
    """Read ``pcap`` with tshark (decrypting with ``keylog``): every TLS connection in it."""
    out = subprocess.run(
        [
            "tshark", "-n", "-r", str(pcap), "-o", f"tls.keylog_file:{keylog}",
            "-o", "tcp.relative_sequence_numbers:TRUE",
            "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
            *(a for f in FIELDS for a in ("-e", f)),
        ],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    connections: dict[int, Connection] = {}
    gaps = 0
    for line in out.splitlines():
        row = dict(zip(FIELDS, line.split("\t") + [""] * len(FIELDS), strict=False))
        if row["tcp.analysis.lost_segment"] or row["tcp.analysis.ack_lost_segment"]:
            gaps += 1
        src, dst = int(row["tcp.srcport"]), int(row["tcp.dstport"])
        server = src if src in server_ports else dst
        conn = connections.setdefault(
            int(row["tcp.stream"]), Connection(int(row["tcp.stream"]), server)
        )
        direction = "s2c" if src == server else "c2s"
        if int(row["tcp.len"] or 0) and not row["tcp.analysis.retransmission"]:
            getattr(conn, direction).extend(bytes.fromhex(row["tcp.payload"].replace(":", "")))
        conn.content_types[direction] += _ints(row["tls.record.content_type"])
        conn.alerts[direction] += list(
            zip(
                _ints(row["tls.alert_message.level"]),
                _ints(row["tls.alert_message.desc"]),
                strict=True,
            )
        )
        types = _ints(row["tls.handshake.type"])
        conn.handshake_types[direction] += types
        if direction == "c2s" and types[:1] == [1] and conn.hello is None:
            conn.hello = Hello(
                cipher_suites=_ints(row["tls.handshake.ciphersuite"]),
                extensions=_ints(row["tls.handshake.extension.type"]),
                supported_groups=_ints(row["tls.handshake.extensions_supported_group"]),
                key_share_groups=_ints(row["tls.handshake.extensions_key_share_group"]),
                key_share_lengths=_ints(
                    row["tls.handshake.extensions_key_share_key_exchange_length"]
                ),
                signature_schemes=_ints(row["tls.handshake.sig_hash_alg"]),
                alpn=[a for a in row["tls.handshake.extensions_alpn_str"].split(",") if a],
                sni=row["tls.handshake.extensions_server_name"] or None,
            )
    tls = [c for c in connections.values() if c.hello is not None]
    return Capture(tls, dropped, gaps)
