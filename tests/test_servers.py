"""The lessons' login server, over HTTP and HTTPS, with real clients."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest
import requests

from helpers.pki import CA
from helpers.servers import LoginServer


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
