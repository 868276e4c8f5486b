"""The lessons' login server, over HTTP and HTTPS, with real clients."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest
import requests

from helpers.errors import UsageError
from helpers.pki import CA
from helpers.servers import Login, LoginServer
from tests.polling import wait_for


@pytest.fixture(scope="module")
def ca():
    return CA()


def _server_ctx(ca, name="127.0.0.1"):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue(name).configure_server(ctx)
    return ctx


def test_plain_http_login_is_checked():
    with LoginServer(password="s3cret") as site:
        ok = requests.post(
            site.url + "login", data={"user": "ada", "password": "s3cret"}, timeout=5
        )
        bad = requests.post(site.url + "login", data={"user": "ada", "password": "nope"}, timeout=5)
    assert ok.status_code == 200 and "Welcome, ada" in ok.text
    assert bad.status_code == 403
    assert [(x.password, x.ok) for x in site.logins] == [("s3cret", True), ("nope", False)]


def test_https_login_with_a_verifying_client(ca, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(ca.cert_pem)
    with LoginServer(tls=_server_ctx(ca), password="pw") as site:
        assert site.url.startswith("https://127.0.0.1:")
        r = requests.post(
            site.url + "login",
            data={"user": "ada", "password": "pw"},
            verify=str(bundle),
            timeout=5,
        )
    assert r.status_code == 200 and r.url.startswith("https://")


def test_a_client_that_never_handshakes_does_not_block_others(ca, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(ca.cert_pem)
    with LoginServer(tls=_server_ctx(ca)) as site:
        idle = socket.create_connection(site.address)  # connects, says nothing
        try:
            r = requests.get(site.url, verify=str(bundle), timeout=3)
            assert r.status_code == 200
        finally:
            idle.close()


def test_untrusted_client_is_refused_and_server_keeps_serving(ca, tmp_path):
    with LoginServer(tls=_server_ctx(ca)) as site:
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(site.url, timeout=3)  # system trust store: does not know our CA
        bundle = tmp_path / "ca.pem"
        bundle.write_bytes(ca.cert_pem)
        assert requests.get(site.url, verify=str(bundle), timeout=3).status_code == 200


def test_stop_releases_port_and_thread():
    before = threading.active_count()
    site = LoginServer().start()
    port = site.port
    site.stop()
    site.stop()  # twice is fine
    assert threading.active_count() == before
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # free again
    with pytest.raises(RuntimeError):
        _ = site.url


def test_extra_headers_are_sent_with_every_page(ca, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(ca.cert_pem)
    hsts = {"Strict-Transport-Security": "max-age=31536000; includeSubDomains"}
    with LoginServer(tls=_server_ctx(ca), headers=hsts) as site:
        page = requests.get(site.url, verify=str(bundle), timeout=5)
        login = requests.post(
            site.url + "login", data={"user": "ada"}, verify=str(bundle), timeout=5
        )
    assert page.headers["Strict-Transport-Security"] == hsts["Strict-Transport-Security"]
    assert login.status_code == 403 and "Strict-Transport-Security" in login.headers


def _mtls_server_ctx(ca):
    ctx = _server_ctx(ca, "localhost")
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=ca.cert_pem.decode())
    return ctx


@pytest.mark.parametrize("client_cert", ["none", "untrusted"])
def test_a_refused_client_certificate_reaches_the_client_as_its_alert(ca, client_cert):
    """TLS 1.3: the client's handshake is over before the server judges its certificate
    (RFC 8446 §4.4.2.4), so the client is already sending its request when the server
    refuses. A server that just closes resets the connection, and the alert is lost in
    about a third of the runs: Python 3.13+ raises ConnectionResetError, 3.11/3.12
    SSLEOFError (measured on loopback with Python 3.11.7 and 3.13.5). The login server
    closes politely, so the client reads the alert every time, on every version."""
    reason = {
        "none": "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "untrusted": "TLSV1_ALERT_UNKNOWN_CA",
    }[client_cert]
    with LoginServer(tls=_mtls_server_ctx(ca)) as site:
        for _ in range(25):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.load_verify_locations(cadata=ca.cert_pem.decode())
            if client_cert == "untrusted":
                CA(common_name="Some Other CA").issue(
                    "mallory", usages=("client",)
                ).configure_server(ctx)
            with socket.create_connection(site.address, timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    assert tls.version() == "TLSv1.3"  # the client's handshake completed
                    with pytest.raises(ssl.SSLError) as info:
                        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                        tls.recv(1024)
            assert info.value.reason == reason, repr(info.value)
        # ... and the server still serves a client with the right certificate.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(cadata=ca.cert_pem.decode())
        ca.issue("ada", usages=("client",)).configure_server(ctx)
        with socket.create_connection(site.address, timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                assert tls.recv(1024).startswith(b"HTTP/1.1 200 OK")


# --------------------------------------------------------------------------- issue 13 (L2, N3, L5)
# What a server must refuse: invalid body lengths (RFC 9112 §6.3, RFC 9110 §8.6), idle and
# trickling clients (timeouts and a deadline), more connections than it serves, any
# address but loopback. Raw sockets, so the test sends exactly the bytes it means.


def _raw_post(address, length_lines: str, body: bytes = b"", *, timeout: float = 5.0) -> bytes:
    """Send a POST with the given Content-Length header lines; return the status line.

    The connection stays open after the body: a server that waits for more (the
    ``read(-1)`` of a negative length) makes ``recv`` time out and the test fail.
    """
    with socket.create_connection(address, timeout=timeout) as s:
        s.sendall(
            b"POST /login HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + length_lines.encode()
            + b"\r\n"
            + body
        )
        try:
            return s.recv(4096).split(b"\r\n")[0]
        except TimeoutError:
            return b"(no answer: the server is still reading)"


BAD_LENGTHS = [
    ("Content-Length: -1\r\n", b"HTTP/1.1 400"),
    ("Content-Length: abc\r\n", b"HTTP/1.1 400"),
    ("Content-Length: +5\r\n", b"HTTP/1.1 400"),
    ("Content-Length: 5, 5\r\n", b"HTTP/1.1 400"),
    ("Content-Length: 5\r\nContent-Length: 6\r\n", b"HTTP/1.1 400"),  # N3
    ("Content-Length: 5\r\nContent-Length: 5\r\n", b"HTTP/1.1 400"),
    ("", b"HTTP/1.1 411"),
    ("Content-Length: 65537\r\n", b"HTTP/1.1 413"),
    ("Content-Length: 99999999999999999999999999\r\n", b"HTTP/1.1 413"),
    ("Transfer-Encoding: chunked\r\n", b"HTTP/1.1 501"),
]


@pytest.mark.parametrize(("lines", "status"), BAD_LENGTHS, ids=[s for s, _ in BAD_LENGTHS])
def test_invalid_or_oversized_content_length_is_refused_before_reading(lines, status, capfd):
    with LoginServer(password="pw") as site:
        answer = _raw_post(site.address, lines, b"user=ada&password=pw" + b"A" * 5000)
        # ... and the server is fine afterwards.
        ok = requests.post(site.url + "login", data={"user": "ada", "password": "pw"}, timeout=5)
    assert answer.startswith(status), answer
    assert ok.status_code == 200
    assert site.logins == [Login("ada", "pw", True)]  # the refused body was never parsed
    assert capfd.readouterr().err == ""  # no traceback from a client's mistake


def test_a_valid_length_within_the_cap_is_still_read_exactly():
    with LoginServer(password="pw") as site:
        body = b"user=ada&password=pw"
        answer = _raw_post(site.address, f"Content-Length: {len(body)}\r\n", body)
    assert answer.startswith(b"HTTP/1.1 200"), answer


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_idle_clients_do_not_keep_their_threads(ca, tls):
    """200 clients connect and say nothing: every thread is back within the timeout."""
    site = LoginServer(tls=_server_ctx(ca) if tls else None)
    site.idle_timeout = 1.0
    with site:
        baseline = threading.active_count()
        idle = [socket.create_connection(site.address, timeout=5) for _ in range(200)]
        try:
            assert wait_for(lambda: threading.active_count() > baseline, 5)
            # 1 s timeout; generous slack for a loaded 2-core machine.
            assert wait_for(lambda: threading.active_count() <= baseline, 15), (
                f"{threading.active_count() - baseline} handler threads still alive"
            )
            assert idle[0].recv(1) == b""  # the server hung up on it
        finally:
            for s in idle:
                s.close()


def test_a_trickling_client_meets_the_request_deadline():
    """One byte every 0.2 s never trips a 1 s idle timeout; the 2 s deadline ends it."""
    site = LoginServer()
    site.idle_timeout, site.request_deadline = 1.0, 2.0
    request = b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n" + b"x" * 10
    with site, socket.create_connection(site.address, timeout=5) as s:
        start = time.monotonic()
        try:
            for byte in request * 10:  # more than the server will wait for
                s.sendall(bytes([byte]))
                time.sleep(0.2)
                if time.monotonic() - start > 10:
                    break
        except OSError:
            pass  # the server closed on us: what we want
        elapsed = time.monotonic() - start
    assert elapsed < 8, f"the server was still reading after {elapsed:.1f} s"


def test_connections_over_the_cap_are_closed_on_arrival():
    site = LoginServer()
    site.max_connections = 4
    with site:
        held = [socket.create_connection(site.address, timeout=5) for _ in range(4)]
        try:
            # Give the server time to hand the four to their threads.
            assert wait_for(lambda: len(site._server._open) == 4, 5)
            with socket.create_connection(site.address, timeout=5) as extra:
                assert extra.recv(1) == b""  # closed at once, no thread
        finally:
            for s in held:
                s.close()
        # The server frees a slot when its thread sees the close: wait for that, then the
        # next client is served again (a GET sent at once could still meet a full house).
        assert wait_for(lambda: not site._server._open, 5), site._server._open
        assert requests.get(site.url, timeout=5).status_code == 200  # slots free again


def test_stop_ends_open_connections_and_returns_promptly():
    before = threading.active_count()
    site = LoginServer().start()
    idle = socket.create_connection(site.address, timeout=5)
    try:
        assert wait_for(lambda: threading.active_count() >= before + 2, 5)
        stopper = threading.Thread(target=site.stop, daemon=True)
        stopper.start()
        stopper.join(5)
        assert not stopper.is_alive(), "stop() waited for an idle client"
        assert idle.recv(1) == b""
    finally:
        idle.close()
    assert wait_for(lambda: threading.active_count() == before, 5)


@pytest.mark.parametrize("host", ["0.0.0.0", "", "192.0.2.1", "::"])
def test_login_server_binds_loopback_unless_told_otherwise(host):
    with pytest.raises(UsageError, match="allow_network=True"):
        LoginServer(host=host)
    # The explicit opt-in is accepted (not started: nothing is exposed by the test).
    assert not LoginServer(host=host, allow_network=True).running


def test_every_loopback_address_is_fine():
    with LoginServer(host="127.0.0.2") as site:
        assert site.address[0] == "127.0.0.2"
    with LoginServer(host="localhost") as site:
        assert site.address[0] == "127.0.0.1"


def test_a_trickled_tls_handshake_is_bounded_as_a_whole(ca):
    """CPython applies a socket's timeout to the whole ``do_handshake()`` (one deadline,
    not one per read; checked on 3.11 and 3.13), and ``refuse()`` lingers 1 s in all,
    not 1 s per read: a ClientHello sent one byte every 0.2 s is cut off after about
    2 s, not after minutes (before, refuse() kept reading for as long as bytes came)."""
    client = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()  # a real ClientHello, a few hundred bytes
    site = LoginServer(tls=_server_ctx(ca))
    site.idle_timeout = 1.0
    with site, socket.create_connection(site.address, timeout=5) as s:
        start = time.monotonic()
        try:
            for byte in hello:
                s.sendall(bytes([byte]))
                time.sleep(0.2)
                if time.monotonic() - start > 10:
                    break
        except OSError:
            pass  # the server hung up: what we want
        elapsed = time.monotonic() - start
    assert elapsed < 6, f"the handshake was still running after {elapsed:.1f} s"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_the_ipv6_loopback_is_loopback_too():
    with LoginServer(host="::1") as site:
        assert site.address[0] == "::1"
        with socket.create_connection(site.address, timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert s.recv(64).startswith(b"HTTP/1.1 200")


def test_a_port_in_use_is_one_sentence():
    with LoginServer() as first:
        with pytest.raises(UsageError, match="cannot listen on '127.0.0.1' port"):
            LoginServer(port=first.port).start()


def test_loopback_names_are_recognised_however_they_are_spelled():
    """As the resolver sees them (helpers.names, issue 13 N1): the fences of the demo
    servers agree with fetch, probe and ocsp on what is local."""
    from helpers.servers import _is_loopback, require_local_upstream

    for host in ("LOCALHOST\u3002", "localhost\uff0e", "ＬＯＣＡＬＨＯＳＴ", "[::1]", "127.0.0.2"):
        assert _is_loopback(host), host
        require_local_upstream(host, allow_remote=False, what="The test")  # no UsageError
    for host in ("example.com\u3002", "localhost.example.com", "127.0.0.1.nip.io", "0.0.0.0"):
        assert not _is_loopback(host), host
        with pytest.raises(UsageError, match="neither loopback nor a lab name"):
            require_local_upstream(host, allow_remote=False, what="The test")
