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
        login = requests.post(site.url + "login", data={"user": "ada"}, verify=str(bundle), timeout=5)
    assert page.headers["Strict-Transport-Security"] == hsts["Strict-Transport-Security"]
    assert login.status_code == 403 and "Strict-Transport-Security" in login.headers
