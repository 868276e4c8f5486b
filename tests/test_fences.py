"""The demos are fenced in code, not only by their default arguments (issue 13, L5).

``capture.Relay`` (notebook 01), ``mitm.Interceptor`` (07), ``ocsp.Responder`` (08) and
``servers.LoginServer`` (01, 07, 08) listen on loopback unless the caller passes
``allow_network=True``; the two that forward bytes refuse a real upstream unless the
caller passes ``allow_remote=True`` *and* live mode is on. Loopback, lab names and the
address a joined lab's names point to (the teacher's machine) stay allowed. The
interceptor's own cases are in ``test_mitm.py``; this file covers the relay and what
all four share.
"""

from __future__ import annotations

import socket
import ssl
import time

import pytest

from helpers import live, names, ocsp, pki
from helpers.capture import Relay
from helpers.errors import LiveModeOff, OfflineViolation, UsageError
from helpers.mitm import Interceptor
from helpers.servers import LoginServer


@pytest.fixture(scope="module")
def ca():
    return pki.CA("Fence Test CA")


@pytest.fixture
def echo():
    """A TCP server on loopback that echoes one message, as the relay's target."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    yield listener
    listener.close()


def _binders(ca):
    leaf = ca.issue("bank.lab.localhost")
    return {
        "LoginServer": lambda host, **kw: LoginServer(host=host, **kw),
        "Responder": lambda host, **kw: ocsp.Responder(ca, host=host, **kw),
        "Interceptor": lambda host, **kw: Interceptor(("127.0.0.1", 9), leaf, bind=host, **kw),
        "Relay": lambda host, **kw: Relay(("127.0.0.1", 9), bind=host, **kw),
    }


@pytest.mark.parametrize("kind", ["LoginServer", "Responder", "Interceptor", "Relay"])
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.0.2.1"])
def test_nothing_listens_beyond_loopback_without_allow_network(ca, kind, host):
    make = _binders(ca)[kind]
    with pytest.raises(UsageError, match="allow_network=True") as info:
        make(host)
    assert "network can reach" in info.value.what  # one sentence, and a hint
    assert info.value.hint


def test_the_opt_in_is_documented_as_dangerous():
    for cls in (LoginServer, ocsp.Responder, Interceptor, Relay):
        doc = (cls.__doc__ or "") + (cls.__mro__[1].__doc__ or "")
        assert "allow_network=True" in doc and "dangerous" in doc, cls.__name__


@pytest.mark.parametrize("target", [("192.0.2.1", 443), ("example.com", 443), ("10.1.2.3", 80)])
def test_the_relay_refuses_a_real_target_unless_live_and_opted_in(target, monkeypatch):
    with pytest.raises(UsageError, match="allow_remote=True"):
        Relay(target)
    monkeypatch.setattr(live, "_override", False)
    with pytest.raises(LiveModeOff):
        Relay(target, allow_remote=True)
    monkeypatch.setattr(live, "_override", True)
    with pytest.raises(UsageError, match="allow_remote=True"):
        Relay(target)  # live mode alone is not an opt-in


def test_the_relay_forwards_to_loopback_as_before(echo):
    with Relay(echo.getsockname()) as relay:
        assert relay.address[0] == "127.0.0.1"
        with socket.create_connection(relay.address, timeout=5) as client:
            conn, _ = echo.accept()
            with conn:
                client.sendall(b"ping")
                assert conn.recv(4) == b"ping"
        relay.wait()
    assert relay.captures[0].chunks[0].data == b"ping"


def test_a_lab_name_and_the_joined_teachers_address_are_lab_targets(echo):
    port = echo.getsockname()[1]
    with names.resolving({"fence.lab.localhost": "127.0.0.1"}):
        with Relay(("fence.lab.localhost", port)) as relay:
            assert relay.target == ("fence.lab.localhost", port)
    # After lab.join, the lab's names point to the teacher's machine, a LAN address:
    # relaying to it (notebook 06 with a shared lab) is still the lab.
    with names.resolving({"teacher.lab.localhost": "192.0.2.50"}):
        Interceptor(("192.0.2.50", 443), pki.self_signed("teacher.lab.localhost"))
    with pytest.raises(UsageError):
        Interceptor(("192.0.2.50", 443), pki.self_signed("teacher.lab.localhost"))


def test_a_negative_delay_is_a_usage_error():
    with pytest.raises(UsageError, match="delay"):
        Relay(("127.0.0.1", 9), delay=-1)


def test_with_live_mode_and_the_opt_in_the_relay_starts(monkeypatch):
    """Both steps taken: the relay is built (no connection is made until a client comes)."""
    monkeypatch.setattr(live, "_override", True)
    with Relay(("192.0.2.1", 443), allow_remote=True) as relay:
        assert relay.target == ("192.0.2.1", 443) and relay.address[0] == "127.0.0.1"


def test_allow_network_lets_the_call_past_the_fence():
    # Past our fence, the test suite's offline guard (helpers/netguard.py) is what
    # refuses to listen on 192.0.2.1: proof the opt-in did its job, with nothing exposed.
    with pytest.raises(OfflineViolation, match="listen on"):
        Relay(("127.0.0.1", 9), bind="192.0.2.1", allow_network=True)


def test_the_relay_turns_away_connections_over_its_cap(echo):
    relay = Relay(echo.getsockname())
    relay.max_connections = 3
    with relay:
        clients = [socket.create_connection(relay.address, timeout=5) for _ in range(5)]
        try:
            deadline = time.monotonic() + 5
            while relay.turned_away < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert relay.turned_away == 2 and len(relay.captures) == 3
        finally:
            for c in clients:
                c.close()


_HOSTILE = [
    b"",
    b"\x16\x03\x01\x00\x05hello",  # a TLS record header, then nonsense
    b"GET / HTTP/1.1\r\n",  # half a request, then gone
    b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",  # a short body
    b"GET /" + b"A" * 70000 + b" HTTP/1.1\r\n\r\n",  # request line over http.server's limit
    b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",  # too many headers
    b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    bytes(range(256)) * 8,
]


def test_hostile_clients_leave_no_traceback_on_stderr(ca, capfd):
    """A regression guard (it held before issue 13 too): whatever a client sends, or
    however it hangs up (FIN or reset), the demo servers print nothing."""
    import struct

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue("127.0.0.1").configure_server(tls)
    with (
        LoginServer() as plain,
        LoginServer(tls=tls) as https,
        ocsp.Responder(ca) as responder,
        Interceptor(plain.address, pki.self_signed("x.lab.localhost")) as mitm,
        Relay(plain.address) as relay,
    ):
        for address in (
            plain.address,
            https.address,
            responder.address,
            mitm.address,
            relay.address,
        ):
            for payload in _HOSTILE:
                for reset in (False, True):
                    with socket.create_connection(address, timeout=2) as s:
                        try:
                            s.sendall(payload)
                            if reset:  # RST instead of FIN on close
                                s.setsockopt(
                                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                                )
                            else:
                                s.settimeout(0.1)  # an answer or not: either is fine
                                s.recv(100)
                        except OSError:
                            pass
    assert capfd.readouterr().err == ""


# --------------------------------------------------------------------------- issue 13 (N1)




@pytest.mark.parametrize(
    "host", ["valid.lab.localhost", "valid.lab.localhost\u3002", "VALID\uff0elab.localhost"]
)
def test_a_lab_target_with_no_lab_running_never_reaches_the_resolver(no_lab_spy, host):
    """The Relay (and the timeline built on it, helpers/timing.py) refuses before it
    resolves its target: a lab name is the lab's to answer, never DNS's."""
    from helpers import timing
    from helpers.errors import LabError

    calls = {
        "Relay": lambda: Relay((host, 8443)),
        "timeline": lambda: timing.measure_timeline(f"{host}:8443", delay=0.0),
    }
    for label, call in calls.items():
        with pytest.raises(LabError, match="no lab is running") as info:
            call()
        assert "\n" not in str(info.value) and info.value.hint, label
    assert no_lab_spy == []


def test_a_name_the_running_lab_does_not_serve_is_refused_by_name(no_lab_spy):
    from helpers.errors import LabError

    with names.resolving({"valid.lab.localhost": "127.0.0.1"}):
        with pytest.raises(LabError, match="not one of the running lab's names"):
            Relay(("typo.lab.localhost", 8443))
    assert no_lab_spy == []
