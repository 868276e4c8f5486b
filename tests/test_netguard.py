"""The offline guard is on for the whole test session, and it really trips."""

from __future__ import annotations

import socket
import threading

import pytest
import requests

from helpers import netguard
from helpers.errors import OfflineViolation


def test_guard_is_on_for_the_test_session():
    assert netguard.active()


@pytest.mark.parametrize(
    "address", [("192.0.2.1", 443), ("8.8.8.8", 53), ("2001:db8::1", 443, 0, 0)]
)
def test_connecting_off_machine_is_blocked(address):
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s, pytest.raises(OfflineViolation):
        s.connect(address)


@pytest.mark.parametrize("name", ["example.com", "expired.lab.localhost", "badssl.com"])
def test_resolving_names_is_blocked(name):
    with pytest.raises(OfflineViolation):
        socket.getaddrinfo(name, 443)


def test_requests_to_the_internet_fail_loudly_not_with_a_retry():
    # urllib3 catches OSError and retries; OfflineViolation is not an OSError, so it escapes.
    with pytest.raises(OfflineViolation):
        requests.get("https://example.com/", timeout=2)


def test_udp_datagrams_off_machine_are_blocked():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s, pytest.raises(OfflineViolation):
        s.sendto(b"\x00", ("192.0.2.53", 53))


def test_binding_a_public_interface_is_blocked():
    with socket.socket() as s, pytest.raises(OfflineViolation):
        s.bind(("0.0.0.0", 0))


def test_loopback_traffic_is_allowed():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        got: list[bytes] = []

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                got.append(conn.recv(5))

        t = threading.Thread(target=serve)
        t.start()
        with socket.create_connection(("localhost", port), timeout=2) as c:
            c.sendall(b"hello")
        t.join(timeout=5)
    assert got == [b"hello"]


def test_switching_off_lets_calls_through_to_the_os():
    netguard.uninstall()
    try:
        # Numeric lookups need no DNS either way; what matters is that the hook is silent.
        assert socket.getaddrinfo("127.0.0.1", 80)
        assert not netguard.active()
    finally:
        netguard.install()
    assert netguard.active()


def test_the_error_is_one_readable_sentence():
    with pytest.raises(OfflineViolation) as info:
        socket.getaddrinfo("example.com", 443)
    message = str(info.value)
    assert "example.com" in message and "loopback" in message
    assert info.value._render_traceback_()[0].endswith(message)
