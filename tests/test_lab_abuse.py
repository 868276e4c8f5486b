"""Isolation: garbage, idle and vanishing clients never disturb a normal client."""

from __future__ import annotations

import gc
import os
import random
import socket
import ssl
import struct
import threading
import time

import pytest

from helpers.lab import Lab

pytestmark = pytest.mark.slow


def _open_fds() -> int:
    gc.collect()  # sockets other tests dropped without closing must not count either way
    return len(os.listdir("/proc/self/fd"))


def _client_hello(host: str) -> bytes:
    """A real ClientHello, made by the ssl module into memory (no socket needed)."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=host)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def _served_quickly(lab: Lab) -> float:
    """Seconds for a complete, verified HTTPS request on a fresh connection."""
    ctx = ssl.create_default_context(cafile=lab.ca_bundle)
    host = lab.host("valid")
    start = time.perf_counter()
    with socket.create_connection((host, lab.port("valid")), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK")
    return time.perf_counter() - start


def _wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def test_abuse_leaves_the_lab_healthy() -> None:
    rng = random.Random(1234)
    with Lab() as lab:
        _served_quickly(lab)  # warm up (first handshake loads the certificate, etc.)
        base_fds, base_threads = _open_fds(), threading.active_count()
        ports = [lab.port(n) for n in ("valid", "client-cert-required", "dh-1024", "expired")]
        hello = _client_hello(lab.host("valid"))

        # 1. 200 idle clients: connect and say nothing. The lab must serve others meanwhile.
        idle = [_connect(ports[i % len(ports)]) for i in range(200)]
        assert _wait_for(lambda: lab.connections >= 200)
        assert _served_quickly(lab) < 1.0

        # 2. 1,000 clients sending garbage: random bytes, a TLS header announcing a huge
        #    record, or plain-text HTTP to a TLS port. 100 open at a time.
        garbage_kinds = [
            lambda: rng.randbytes(rng.randint(1, 600)),
            lambda: b"\x16\x03\x01\xff\xff" + rng.randbytes(100),
            lambda: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
        for batch in range(10):
            socks = [_connect(ports[(batch + i) % len(ports)]) for i in range(100)]
            for i, s in enumerate(socks):
                s.sendall(garbage_kinds[i % 3]())
            for s in socks:
                s.close()
        assert _served_quickly(lab) < 1.0

        # 3. 1,000 clients vanishing mid-handshake: a real ClientHello, then gone; half
        #    of them read part of the server's answer first, a quarter reset (RST).
        for batch in range(10):
            socks = [_connect(ports[(batch + i) % len(ports)]) for i in range(100)]
            for s in socks:
                s.sendall(hello)
            for i, s in enumerate(socks):
                if i % 2:
                    try:
                        s.recv(100)
                    except OSError:
                        pass
                if i % 4 == 0:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
        assert _served_quickly(lab) < 1.0

        # The idle clients are still connected and harmless; now they leave.
        assert _served_quickly(lab) < 1.0
        for s in idle:
            s.close()

        # Everything the abuse opened is closed again: the lab holds no connections,
        # and this process has exactly the sockets and threads it had before.
        reactor = lab._reactor
        assert reactor is not None
        # The server really took the abuse (a client that resets before accept() may be
        # dropped by the kernel and never reach the server, hence not == 2205).
        assert _wait_for(lambda: reactor.accepted >= 2150), reactor.accepted
        assert _wait_for(lambda: lab.connections == 0), lab.connections
        assert _wait_for(lambda: _open_fds() <= base_fds), (_open_fds(), base_fds)
        assert threading.active_count() == base_threads
        assert _served_quickly(lab) < 1.0


def test_idle_clients_are_timed_out() -> None:
    """A client that connects and never speaks is dropped after the handshake timeout."""
    with Lab() as lab:
        lab._reactor.handshake_timeout = 0.3  # type: ignore[union-attr]
        with _connect(lab.port("valid")) as silent:
            assert _wait_for(lambda: lab.connections == 1, 2)
            assert _wait_for(lambda: lab.connections == 0, 3)
            silent.settimeout(2)
            assert silent.recv(10) == b""  # the server closed its side


def test_connection_cap_evicts_the_idlest() -> None:
    with Lab() as lab:
        lab._reactor.max_connections = 20  # type: ignore[union-attr]
        idle = [_connect(lab.port("valid")) for _ in range(40)]
        try:
            assert _wait_for(lambda: lab._reactor.accepted >= 40)  # type: ignore[union-attr]
            assert lab.connections <= 20
            assert _served_quickly(lab) < 1.0
        finally:
            for s in idle:
                s.close()
