"""Cross-check helpers.tls13 against Wireshark's dissector (tshark).

A loopback TLS 1.3 connection is captured to a pcap with tcpdump while the client
writes a key log into tmp_path. Then tshark decrypts the pcap with that key log, and
helpers.tls13 decrypts the very same bytes (the TCP payloads of the pcap, joined per
direction). Both must see the same records and the same handshake messages.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from helpers import pki, tls13

from .thirdparty import Sniffer

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(
        not (shutil.which("tshark") and shutil.which("tcpdump")),
        reason="needs tshark and tcpdump",
    ),
]

REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def _handshake(port_socket: socket.socket, keylog: Path) -> bytes:
    """One HTTP-style exchange over TLS 1.3; returns the server certificate (DER)."""
    root = pki.CA(common_name="tshark test root")
    leaf = root.issue("localhost")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    leaf.configure_server(server_ctx)
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    root.configure_trust(client_ctx)
    client_ctx.keylog_filename = str(keylog)
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            conn, _ = port_socket.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.settimeout(5)
                tls.recv(4096)
                tls.sendall(RESPONSE)
                tls.unwrap()
        except (OSError, ssl.SSLError) as exc:  # reported below, on the test's thread
            errors.append(exc)

    server = threading.Thread(target=serve)
    server.start()
    host, port = port_socket.getsockname()
    with socket.create_connection((host, port), timeout=5) as raw:
        with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(REQUEST)
            assert tls.recv(4096) == RESPONSE
            tls.unwrap()
    server.join(5)
    assert not errors, errors
    return leaf.cert.public_bytes(serialization.Encoding.DER)


def _tshark(*args: str) -> list[list[str]]:
    out = subprocess.run(
        ["tshark", *args], capture_output=True, text=True, timeout=20, check=True
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]


def _ints(field: str) -> list[int]:
    return [int(v, 0) for v in field.split(",") if v]


def test_our_decryption_matches_tshark(tmp_path: Path) -> None:
    pcap, keylog = tmp_path / "capture.pcap", tmp_path / "keys.log"
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        sniffer = Sniffer([port], pcap)
        try:
            server_der = _handshake(listener, keylog)
            time.sleep(0.2)  # the last FIN/ACKs
        finally:
            sniffer.stop()

    # Our side: the TCP payloads of the pcap, joined per direction.
    streams = {"c2s": bytearray(), "s2c": bytearray()}
    for source, payload in _tshark(
        "-r",
        str(pcap),
        "-Y",
        "tcp.len > 0",
        "-T",
        "fields",
        "-e",
        "tcp.srcport",
        "-e",
        "tcp.payload",
    ):
        streams["s2c" if int(source) == port else "c2s"] += bytes.fromhex(payload)
    ours = tls13.decrypt(bytes(streams["c2s"]), bytes(streams["s2c"]), keylog.read_text())
    assert ours.certificate_verify_ok and ours.server_finished_ok and ours.client_finished_ok
    assert ours.application_data.client == REQUEST
    assert ours.application_data.server == RESPONSE
    assert ours.certificate is not None
    assert ours.certificate.public_bytes(serialization.Encoding.DER) == server_der

    # Wireshark's side: decrypt the pcap with the same key log.
    theirs: dict[str, dict[str, list[int]]] = {
        d: {"content": [], "handshake": []} for d in ("c2s", "s2c")
    }
    rows = _tshark(
        "-r", str(pcap), "-o", f"tls.keylog_file:{keylog}", "-Y", "tls",
        "-T", "fields", "-e", "tcp.srcport", "-e", "tls.record.content_type",
        "-e", "tls.handshake.type",
    )  # fmt: skip
    for source, content_types, handshake_types in (row + [""] * (3 - len(row)) for row in rows):
        direction = "s2c" if int(source) == port else "c2s"
        theirs[direction]["content"] += _ints(content_types)
        theirs[direction]["handshake"] += _ints(handshake_types)

    for direction in ("c2s", "s2c"):
        records = [r for r in ours.records if r.direction == direction]
        assert [r.inner_type for r in records] == theirs[direction]["content"], direction
        assert [m.msg_type for r in records for m in r.messages] == theirs[direction]["handshake"]
    assert theirs["s2c"]["handshake"][:5] == [2, 8, 11, 15, 20]  # SH EE Cert CV Finished
    assert theirs["c2s"]["handshake"] == [1, 20]  # ClientHello, Finished
