"""The offline guard is on for the whole test session, and it really trips."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from helpers import netguard
from helpers.errors import OfflineViolation

ROOT = Path(__file__).resolve().parent.parent


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


# --- issue 13 (L6): reverse DNS, the loopback resolver, and a record nobody can switch off


def _udp_connect(address: tuple[str, int]) -> None:
    """``connect()`` on a UDP socket: the audit event fires, but no packet is ever sent.

    Where there is no route (the matrix runs the suite in a loopback-only namespace), the
    OS says ENETUNREACH once the guard has let the call through: that is fine here.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(address)
        except OSError:
            pass


def test_reverse_lookups_off_machine_are_blocked():
    with pytest.raises(OfflineViolation):
        socket.getnameinfo(("192.0.2.1", 80), 0)
    with pytest.raises(OfflineViolation):
        socket.getfqdn("192.0.2.1")  # through gethostbyaddr
    assert socket.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICSERV)[1] == "80"


def test_a_resolver_listening_on_loopback_is_off_limits():
    # systemd-resolved's stub (127.0.0.53:53) would forward the query to the internet.
    with pytest.raises(OfflineViolation):
        _udp_connect(("127.0.0.53", 53))
    with socket.socket() as s:  # binding a port of our own on loopback is fine
        s.bind(("127.0.0.1", 0))


def test_a_caught_attempt_is_still_recorded():
    from helpers import diagnose

    try:
        socket.getaddrinfo("example.com", 443)
    except OfflineViolation:
        pass  # swallowed, as a careless helper would
    assert netguard.attempts()[-1] == netguard.Attempt("resolve", "'example.com'", blocked=True)
    # diagnose.check turns the violation into a readable result, and it is recorded all the same.
    assert diagnose.check("https://example.com/").kind == "blocked"
    assert netguard.attempts()[-1] == netguard.Attempt("resolve", "'example.com'", blocked=True)


def test_switching_the_guard_off_does_not_switch_the_record_off(monkeypatch):
    monkeypatch.setattr(netguard, "_active", False)  # what any notebook cell could do
    monkeypatch.setattr(netguard, "_judge", lambda event, args: None)  # or this
    _udp_connect(("192.0.2.1", 9))  # let through: the guard is off
    assert netguard.attempts()[-1] == netguard.Attempt(
        "connect to", "('192.0.2.1', 9)", blocked=False
    )
    assert "NOT blocked" in str(netguard.attempts()[-1])


def test_the_record_file_has_one_json_line_per_attempt_and_notes_uninstall(tmp_path):
    record = tmp_path / "attempts.jsonl"
    code = (
        "import socket, sys\n"
        "from helpers import netguard\n"
        "netguard.install(record=sys.argv[1])\n"
        "try:\n"
        "    socket.getaddrinfo('example.com', 443)\n"
        "except Exception:\n"
        "    pass\n"
        "netguard.uninstall()\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "try:\n"
        "    s.connect(('192.0.2.1', 9))\n"  # no packet leaves: UDP connect only picks a route
        "except OSError:\n"
        "    pass\n"  # no route at all in a loopback-only namespace
    )
    subprocess.run([sys.executable, "-c", code, str(record)], check=True, timeout=60, cwd=ROOT)
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(line["action"], line["blocked"]) for line in lines] == [
        ("install", False),
        ("resolve", True),
        ("switch off", False),
        ("connect to", False),
    ]
    assert record.stat().st_mode & 0o777 == 0o600
