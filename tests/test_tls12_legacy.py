"""The legacy-renegotiation server (helpers/lab/tls12_legacy.py) against real clients.

A TLS 1.2 server that omits RFC 5746 renegotiation_info: Python's default client, openssl
s_client and curl (OpenSSL 3) refuse it with UNSAFE_LEGACY_RENEGOTIATION_DISABLED; with
OP_LEGACY_SERVER_CONNECT (``-legacy_server_connect``, ``UnsafeLegacyServerConnect`` in an
OpenSSL config file for curl) they get the page. Everything over loopback.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from helpers import pki
from helpers.errors import UsageError
from helpers.lab.server import Request, Response
from helpers.lab.tls12_legacy import (
    LegacyRenegotiationServer,
    LegacyServerConnection,
    TLSFailure,
    prf,
)
from tests.polling import wait_for

#: ssl.OP_LEGACY_SERVER_CONNECT has a name from Python 3.12 on; the bit is 0x4 before.
OP_LEGACY_SERVER_CONNECT = getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0x4)
REQUEST = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA, an EC (P-256, like the lab's leaves) and an RSA leaf for localhost/127.0.0.1."""
    directory = tmp_path_factory.mktemp("legacy")
    ca = pki.CA("Legacy Renegotiation Test CA")
    (directory / "ca.pem").write_bytes(ca.cert_pem)
    ec_files = ca.issue("localhost", "127.0.0.1").write(directory, "ec")
    rsa_files = ca.issue("localhost", "127.0.0.1", key_type="rsa").write(directory, "rsa")
    return {
        "ca": directory / "ca.pem",
        "ec_chain": ec_files.chain,
        "ec_key": ec_files.key,
        "rsa_chain": rsa_files.chain,
        "rsa_key": rsa_files.key,
    }


@pytest.fixture(scope="module")
def server(material):
    with LegacyRenegotiationServer(material["ec_chain"], material["ec_key"]) as running:
        yield running


def _client(material, *, legacy: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(material["ca"]))
    if legacy:
        ctx.options |= OP_LEGACY_SERVER_CONNECT
    return ctx


def _get(ctx: ssl.SSLContext, address: tuple[str, int]) -> tuple[str | None, str, bytes]:
    """Send one request, read to the end. suppress_ragged_eofs=False: an end without the
    server's close_notify would be an SSLEOFError here, so a clean end proves it came."""
    raw = socket.create_connection(address, timeout=10)
    tls = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
    with tls:
        tls.sendall(REQUEST)
        answer = b""
        while chunk := tls.recv(4096):
            answer += chunk
        return tls.version(), tls.cipher()[0], answer


# --- Python's ssl --------------------------------------------------------------------


def test_a_default_client_refuses_the_server(material, server):
    with pytest.raises(ssl.SSLError) as caught:
        _get(_client(material, legacy=False), server.address)
    assert caught.value.reason == "UNSAFE_LEGACY_RENEGOTIATION_DISABLED"
    # The client told the server why it left, and it had signalled RFC 5746 itself:
    # measured, OpenSSL 3.0.22 with the SCSV cipher value, 3.5.9 with the extension.
    line = _wait_log(server, "client sent alert handshake_failure")
    assert "TLS_EMPTY_RENEGOTIATION_INFO_SCSV" in line or "renegotiation_info" in line


@pytest.mark.parametrize(
    ("key", "cipher"),
    [("ec", "ECDHE-ECDSA-AES128-GCM-SHA256"), ("rsa", "ECDHE-RSA-AES128-GCM-SHA256")],
)
def test_op_legacy_server_connect_gets_the_page(material, key, cipher):
    with LegacyRenegotiationServer(material[f"{key}_chain"], material[f"{key}_key"]) as srv:
        version, used, answer = _get(_client(material, legacy=True), srv.address)
        log = _wait_log(srv, "served HTTP 200")
    assert version == "TLSv1.2"
    assert used == cipher
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert f"Content-Length: {len(body)}".encode() in head
    assert b"renegotiation_info" in body
    assert "x25519" in log  # Python's client offers X25519 first


def test_keys_from_objects_and_the_extended_master_secret_offer_is_ignored(material):
    chain = pki.load_certificates(material["ec_chain"])
    key = pki.load_private_key(material["ec_key"])
    with LegacyRenegotiationServer(chain, key) as srv:
        _get(_client(material, legacy=True), srv.address)
        assert "extended_master_secret (ignored)" in _wait_log(srv, "served HTTP 200")


def test_an_app_gets_the_request_and_what_was_negotiated(material):
    """The lab passes its scenario page as ``app`` (helpers.lab.pages.app_for)."""
    seen: list[Request] = []

    def app(request: Request) -> Response:
        seen.append(request)
        if request.target == "/boom":
            raise RuntimeError("a bug in a page")
        facts = f"{request.tls.version()} {request.tls.cipher()[0]} {request.tls.getpeercert()}"
        return Response(200, facts.encode(), "text/plain")

    with LegacyRenegotiationServer(material["ec_chain"], material["ec_key"], app=app) as srv:
        _, _, answer = _get(_client(material, legacy=True), srv.address)
        assert answer.endswith(b"\r\n\r\nTLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256 {}")
        assert seen[0].method == "GET" and seen[0].headers["host"] == "localhost"
        assert seen[0].local == srv.address and seen[0].peer[0] == "127.0.0.1"
        ctx = _client(material, legacy=True)
        with socket.create_connection(srv.address, timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET /boom HTTP/1.1\r\nHost: localhost\r\n\r\n")
                assert tls.recv(4096).startswith(b"HTTP/1.1 500 ")
        assert "served HTTP 500" in _wait_log(srv, "HTTP 500"), list(srv.log)


def test_the_sans_io_connection_talks_to_a_memory_bio_client(material):
    """No sockets at all: Python's client on MemoryBIOs and the connection object."""
    ctx = _client(material, legacy=True)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    conn = LegacyServerConnection(
        [c.public_bytes(Encoding.DER) for c in pki.load_certificates(material["ec_chain"])],
        pki.load_private_key(material["ec_key"]),
    )
    for _ in range(10):
        try:
            client.do_handshake()
            break
        except ssl.SSLWantReadError:
            conn.receive(outgoing.read())
            incoming.write(conn.data_to_send())
    assert conn.established and client.version() == "TLSv1.2"
    client.write(b"ping")
    assert conn.receive(outgoing.read()) == b"ping"
    conn.send(b"pong")
    conn.close()
    incoming.write(conn.data_to_send())
    assert client.read(4) == b"pong"
    # b"" is a close_notify: without one this read would raise SSLWantReadError.
    assert client.read(4) == b""


def test_the_prf_agrees_with_openssl_kdf():
    """P_SHA256 written by hand (RFC 5246 §5) against OpenSSL's TLS1-PRF."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed here")
    secret, seed = bytes(range(48)), bytes(range(64, 128))
    result = subprocess.run(
        ["openssl", "kdf", "-keylen", "100", "-kdfopt", "digest:SHA256",
         "-kdfopt", f"hexsecret:{secret.hex()}", "-kdfopt", f"hexseed:{(b'key expansion' + seed).hex()}",
         "TLS1-PRF"],
        capture_output=True, text=True, timeout=20, check=True,
    )  # fmt: skip
    expected = bytes.fromhex(result.stdout.strip().replace(":", ""))
    assert prf(secret, b"key expansion", seed, 100) == expected


# --- other clients -------------------------------------------------------------------


def _s_client(server, material, *options: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed here")
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-servername",
         "localhost", "-CAfile", str(material["ca"]), "-ign_eof", *options],
        input="GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", capture_output=True, text=True,
        timeout=30,
    )  # fmt: skip


def test_openssl_s_client_refuses_by_default(material, server):
    result = _s_client(server, material)
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "Secure Renegotiation IS NOT supported" in output
    assert "unsafe legacy renegotiation disabled" in output
    assert "HTTP/1.1 200 OK" not in output


def test_openssl_s_client_with_legacy_server_connect_gets_the_page(material, server):
    result = _s_client(server, material, "-legacy_server_connect", "-groups", "P-256")
    output = result.stdout + result.stderr
    assert result.returncode == 0
    assert "Secure Renegotiation IS NOT supported" in output
    assert "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" in output
    assert "prime256v1" in output  # the P-256 key share works too
    assert "HTTP/1.1 200 OK" in output


UNSAFE_CONF = """openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
Options = UnsafeLegacyServerConnect
"""


def test_curl_refuses_and_only_an_openssl_config_lets_it_in(material, server, tmp_path):
    """curl has no flag for it: the escape hatch is OpenSSL's configuration file."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed here")
    command = ["curl", "-sS", "--cacert", str(material["ca"]), "-o", "-",
               "-w", "%{http_code}", f"https://127.0.0.1:{server.port}/"]  # fmt: skip
    refused = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 35  # CURLE_SSL_CONNECT_ERROR
    assert "unsafe legacy renegotiation disabled" in refused.stderr
    (tmp_path / "unsafe.cnf").write_text(UNSAFE_CONF)
    env = {"PATH": "/usr/bin:/bin", "OPENSSL_CONF": str(tmp_path / "unsafe.cnf")}
    allowed = subprocess.run(command, capture_output=True, text=True, timeout=30, env=env)
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.endswith("200")


def test_gnutls_cli_connects_by_default_and_refuses_with_safe_renegotiation(material, server):
    """GnuTLS's default (%PARTIAL_RENEGOTIATION) allows the first handshake with a legacy
    server and only refuses renegotiating; %SAFE_RENEGOTIATION refuses the server."""
    if shutil.which("gnutls-cli") is None:
        pytest.skip("gnutls-cli is not installed here")
    base = ["gnutls-cli", "--x509cafile", str(material["ca"]), "-p", str(server.port), "127.0.0.1"]
    default = subprocess.run(base, input="", capture_output=True, text=True, timeout=30)
    assert "Handshake was completed" in default.stdout + default.stderr
    strict = subprocess.run(
        [*base, "--priority", "NORMAL:%SAFE_RENEGOTIATION"],
        input="", capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert strict.returncode != 0
    assert "Safe renegotiation failed" in strict.stdout + strict.stderr


# --- hostile and wrong clients --------------------------------------------------------


def _raw_exchange(
    address: tuple[str, int], data: bytes, timeout: float = 10
) -> tuple[bytes, float]:
    """Send bytes, read until the server hangs up; return what came back and how long it took."""
    start = time.monotonic()
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    return answer, time.monotonic() - start


def test_garbage_gets_a_decode_error_alert_and_a_close(server):
    answer, _ = _raw_exchange(server.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer == bytes.fromhex("15 0303 0002 02 32")  # fatal decode_error (50)


def test_not_http_after_the_handshake_gets_400(material, server):
    ctx = _client(material, legacy=True)
    with socket.create_connection(server.address, timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"HELLO THERE\r\n\r\n")
            assert tls.recv(4096).startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_a_tls13_only_client_gets_protocol_version(material, server):
    ctx = _client(material, legacy=True)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    with pytest.raises(ssl.SSLError, match="alert protocol version"):
        _get(ctx, server.address)


def test_a_client_without_the_suite_gets_handshake_failure(material, server):
    ctx = _client(material, legacy=True)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES256-GCM-SHA384")
    with pytest.raises(ssl.SSLError, match="alert handshake failure"):
        _get(ctx, server.address)


def test_messages_out_of_order_get_unexpected_message(material):
    """A ClientKeyExchange first (sans-IO): the alert is queued, then TLSFailure."""
    conn = LegacyServerConnection([b"unused"], pki.load_private_key(material["ec_key"]))
    with pytest.raises(TLSFailure, match="unexpected_message"):
        conn.receive(bytes.fromhex("16 0303 0006 10 000002 01 00"))
    assert conn.data_to_send() == bytes.fromhex("15 0303 0002 02 0a")


def test_half_a_client_hello_is_closed_at_the_deadline(material):
    with LegacyRenegotiationServer(
        material["ec_chain"], material["ec_key"], deadline=1.0, idle_timeout=0.5
    ) as srv:
        half = bytes.fromhex("16 0301 0200 01 0001fc 0303") + bytes(40)
        answer, took = _raw_exchange(srv.address, half)
        assert answer == b""
        assert took < 5  # the deadline (1 s), with room for a loaded machine
        assert "timed out" in _wait_log(srv, "timed out")


def test_connections_over_the_cap_are_closed_on_arrival(material):
    with LegacyRenegotiationServer(
        material["ec_chain"], material["ec_key"], max_connections=2
    ) as srv:
        idle = [socket.create_connection(srv.address, timeout=10) for _ in range(2)]
        try:
            assert wait_for(lambda: len(srv._open) == 2)
            answer, took = _raw_exchange(srv.address, b"")
            assert answer == b"" and took < 5
            assert "refused, 2 connections already open" in _wait_log(srv, "refused")
        finally:
            for sock in idle:
                sock.close()
        assert wait_for(lambda: not srv._open)
        version, _, _ = _get(_client(material, legacy=True), srv.address)  # served again
        assert version == "TLSv1.2"


def test_one_address_cannot_take_every_slot(material):
    with LegacyRenegotiationServer(
        material["ec_chain"], material["ec_key"], max_per_address=1
    ) as srv:
        with socket.create_connection(srv.address, timeout=10):
            assert wait_for(lambda: len(srv._open) == 1)
            answer, _ = _raw_exchange(srv.address, b"")  # a second from 127.0.0.1
            assert answer == b""
            assert "1 already open from 127.0.0.1" in _wait_log(srv, "already open from")
            # Another loopback address (another student) still gets in.
            raw = socket.create_connection(srv.address, timeout=10, source_address=("127.0.0.2", 0))
            ctx = _client(material, legacy=True)
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.version() == "TLSv1.2"


def test_stop_hangs_up_on_an_idle_client_at_once(material):
    srv = LegacyRenegotiationServer(material["ec_chain"], material["ec_key"], deadline=60).start()
    sock = socket.create_connection(srv.address, timeout=10)
    try:
        assert wait_for(lambda: len(srv._open) == 1)
        start = time.monotonic()
        srv.stop()
        assert time.monotonic() - start < 5
        assert sock.recv(10) == b""
        assert not srv.running
    finally:
        sock.close()


def test_it_listens_on_loopback_only_unless_told(material):
    with pytest.raises(UsageError, match="other machines on the network"):
        LegacyRenegotiationServer(material["ec_chain"], material["ec_key"], host="0.0.0.0")


def test_a_key_that_does_not_match_the_certificate_is_refused(material):
    from helpers.errors import KeyMismatchError

    with pytest.raises(KeyMismatchError):
        LegacyRenegotiationServer(material["ec_chain"], material["rsa_key"])


def test_no_tracebacks_from_hostile_clients(material, capfd):
    with LegacyRenegotiationServer(material["ec_chain"], material["ec_key"], deadline=2) as srv:
        for data in (
            b"\x80\x2e\x01\x03\x01",
            b"\x16\x03\x03\xff\xff",
            bytes(10),
            b"\x17\x03\x03\x00\x01x",
        ):
            _raw_exchange(srv.address, data)
        _get(_client(material, legacy=True), srv.address)
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err + captured.out


# --- helpers ------------------------------------------------------------------


def _wait_log(server: LegacyRenegotiationServer, text: str) -> str:
    """The server's newest log line containing ``text`` (it is written as the thread ends)."""
    wait_for(lambda: any(text in line for line in server.log))
    return next((line for line in reversed(server.log) if text in line), "")
