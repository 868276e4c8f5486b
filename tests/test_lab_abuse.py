"""Isolation: garbage, idle and vanishing clients never disturb a normal client."""

from __future__ import annotations

import json
import os
import random
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

import pytest

from helpers.lab import Lab
from tests.polling import open_fds, wait_for
from tests.reporting import report

pytestmark = pytest.mark.slow


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


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def test_abuse_leaves_the_lab_healthy() -> None:
    rng = random.Random(1234)
    with Lab() as lab:
        _served_quickly(lab)  # warm up (first handshake loads the certificate, etc.)
        base_fds, base_threads = open_fds(), threading.active_count()
        ports = [lab.port(n) for n in ("valid", "client-cert-required", "dh-1024", "expired")]
        hello = _client_hello(lab.host("valid"))

        # 1. 200 idle clients: connect and say nothing. The lab must serve others meanwhile.
        idle = [_connect(ports[i % len(ports)]) for i in range(200)]
        assert wait_for(lambda: lab.connections >= 200)
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
        assert wait_for(lambda: reactor.accepted >= 2150), reactor.accepted
        assert wait_for(lambda: lab.connections == 0), lab.connections
        assert wait_for(lambda: open_fds() <= base_fds), (open_fds(), base_fds)
        assert threading.active_count() == base_threads
        assert _served_quickly(lab) < 1.0


def test_idle_clients_are_timed_out() -> None:
    """A client that connects and never speaks is dropped after the handshake timeout."""
    with Lab() as lab:
        lab._reactor.handshake_timeout = 0.3  # type: ignore[union-attr]
        with _connect(lab.port("valid")) as silent:
            assert wait_for(lambda: lab.connections == 1, 2)
            assert wait_for(lambda: lab.connections == 0, 3)
            silent.settimeout(2)
            assert silent.recv(10) == b""  # the server closed its side


def test_connection_cap_evicts_the_idlest() -> None:
    with Lab() as lab:
        lab._reactor.max_connections = 20  # type: ignore[union-attr]
        idle = [_connect(lab.port("valid")) for _ in range(40)]
        try:
            assert wait_for(lambda: lab._reactor.accepted >= 40)  # type: ignore[union-attr]
            assert lab.connections <= 20
            assert _served_quickly(lab) < 1.0
        finally:
            for s in idle:
                s.close()


# --- issue 13 (audit M2, N3): limits that hold when the room is hostile ----------------


def _tls(lab: Lab, source: str = "127.0.0.1") -> ssl.SSLSocket:
    """A verified TLS connection to ``valid`` from the loopback address ``source``."""
    ctx = ssl.create_default_context(cafile=lab.ca_bundle)
    raw = socket.socket()
    raw.settimeout(5)
    raw.bind((source, 0))
    raw.connect(("127.0.0.1", lab.port("valid")))
    return ctx.wrap_socket(raw, server_hostname=lab.host("valid"))


def _answer(tls: ssl.SSLSocket, request: bytes) -> bytes:
    """Send ``request`` and read one response head plus up to its Content-Length body."""
    tls.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _open_from(source: str, port: int) -> socket.socket:
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def test_fair_eviction_spares_an_honest_address() -> None:
    """At the cap the idlest connection *of the busiest address* goes, not the idlest of all:
    a student's quiet keep-alive connection survives 60 sockets from another machine."""
    with Lab() as lab:
        reactor = lab._reactor
        assert reactor is not None
        reactor.max_connections = 30
        base_fds, base_threads = open_fds(), threading.active_count()
        host = lab.host("valid")
        request = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        with _tls(lab) as honest:
            assert _answer(honest, request).startswith(b"HTTP/1.1 200 OK")
            time.sleep(0.1)  # the honest connection is now the idlest one in the lab
            attackers = [_open_from(f"127.0.0.{2 + i % 3}", lab.port("valid")) for i in range(60)]
            try:
                assert wait_for(lambda: reactor.accepted >= 61)
                assert wait_for(lambda: lab.connections <= 30)
                # Still open, still served: the attacker addresses paid for the room.
                assert _answer(honest, request).startswith(b"HTTP/1.1 200 OK")
                assert reactor.evicted >= 30
            finally:
                for s in attackers:
                    s.close()
        assert wait_for(lambda: lab.connections == 0), lab.connections
        # The bookkeeping that finds the busiest address is empty again too.
        assert (reactor._top, reactor._by_count, reactor._by_address) == (0, {}, {})
        assert wait_for(lambda: open_fds() <= base_fds), (open_fds(), base_fds)
        assert threading.active_count() == base_threads


def test_slow_drip_meets_absolute_deadlines() -> None:
    """Bytes trickling in never push a deadline back: not for the handshake, not for a
    request head, and a client that sends a complete request before every deadline is
    still closed when its connection's lifetime ends (keep-alive hoarding)."""
    with Lab() as lab:
        reactor = lab._reactor
        assert reactor is not None
        reactor.handshake_timeout = reactor.idle_timeout = 1.0
        reactor.max_lifetime = 2.5  # attribute read by the reactor (helpers/lab/server.py)
        host = lab.host("valid")

        def closed_after(sock: socket.socket, drip: bytes) -> float:
            """Send ``drip`` one byte every 0.1 s; seconds until the server closes."""
            start = time.monotonic()
            sock.settimeout(0.1)
            for i in range(100):  # 10 s at most
                try:
                    sock.send(drip[i % len(drip) : i % len(drip) + 1])
                    if sock.recv(65536) == b"":
                        break
                except TimeoutError:
                    continue
                except OSError:
                    break
            return time.monotonic() - start

        hello = _client_hello(host)
        with _connect(lab.port("valid")) as raw:
            assert closed_after(raw, hello[:-1]) < 2.5  # the handshake: 1 s deadline
        with _tls(lab) as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nX-a: ")  # a request head that never ends
            assert closed_after(tls, b"a") < 2.5

        # A complete request every 0.5 s, each within the 1 s idle deadline: the lifetime
        # (2.5 s) ends it, with "Connection: close" on its last answer.
        request = f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
        start = time.monotonic()
        answers: list[bytes] = []
        with _tls(lab) as tls:
            while time.monotonic() - start < 8:
                try:
                    answer = _answer(tls, request)
                except OSError:
                    break
                if not answer:
                    break
                answers.append(answer)
                if b"Connection: close" in answer:
                    break
                time.sleep(0.5)
        lived = time.monotonic() - start
        assert lived < 4.0, f"a keep-alive client kept its connection {lived:.1f} s"
        assert answers and b"Connection: close" in answers[-1]


def test_duplicate_content_length_is_refused() -> None:
    """RFC 9112 §6.3: two Content-Length headers (even equal ones), or a length that is not
    plain digits, leave the end of the request ambiguous: 400 and close."""
    with Lab() as lab:
        host = lab.host("valid")
        cases = {
            "different values": "Content-Length: 5\r\nContent-Length: 0\r\n",
            "equal values": "Content-Length: 5\r\nContent-Length: 5\r\n",
            "a sign": "Content-Length: +5\r\n",
            "two Host headers": "Content-Length: 5\r\nHost: other\r\n",
        }
        for what, headers in cases.items():
            with _tls(lab) as tls:
                head = f"GET / HTTP/1.1\r\nHost: {host}\r\n{headers}\r\nhello"
                answer = _answer(tls, head.encode())
                assert answer.startswith(b"HTTP/1.1 400 "), (what, answer[:60])
                assert b"Connection: close" in answer
        with _tls(lab) as tls:  # one Content-Length is fine
            head = f"GET / HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n\r\nhello"
            assert _answer(tls, head.encode()).startswith(b"HTTP/1.1 200 OK")


_EMFILE_CHILD = r"""
import json, os, resource, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))  # soft = hard: it cannot be raised
from helpers.lab import Lab
from tests.reporting import report
with Lab() as lab:
    reactor = lab._reactor
    calls = [0]
    real_select = reactor._selector.select
    def counting_select(timeout=None):
        calls[0] += 1
        return real_select(timeout)
    reactor._selector.select = counting_select
    hog = []  # other code in this process (a notebook kernel) used up the descriptors
    try:
        while True:
            hog.append(open(os.devnull))
    except OSError:
        pass
    info = {"port": lab.port("valid"), "cap": reactor.max_connections, "ca": str(lab.ca_bundle)}
    print(json.dumps(info), flush=True)
    sys.stdin.readline()  # the parent holds its connections now
    c0, t0, w0 = calls[0], time.process_time(), time.monotonic()
    time.sleep(2)
    wall = time.monotonic() - w0
    out = {"selects": calls[0] - c0, "cpu": (time.process_time() - t0) / wall}
    for f in hog:
        f.close()
    print(json.dumps(out), flush=True)
    sys.stdin.readline()
"""


def test_out_of_descriptors_pauses_instead_of_spinning(repo_root, request) -> None:
    """EMFILE on accept(): the listener stays readable, so a loop that just returns from
    accept() wakes up again at once, forever. The reactor must look away instead."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _EMFILE_CHILD],
        cwd=repo_root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    held: list[socket.socket] = []
    try:
        info = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        held = [_connect(info["port"]) for _ in range(40)]  # queued, waiting for accept()
        time.sleep(0.3)
        proc.stdin.write("go\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        figures = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
        report(
            request.config,
            [
                f"out of descriptors (RLIMIT_NOFILE 128, cap {info['cap']}), 40 clients "
                f"waiting: {figures['selects']} wake-ups and {100 * figures['cpu']:.0f}% CPU in 2 s"
            ],
        )
        # A busy loop makes tens of thousands of wake-ups in 2 s even on a loaded machine;
        # the reactor's sweep (4/s) and accept pauses (10/s) make a few dozen.
        assert figures["selects"] < 300, figures
        # The descriptors are back: the lab serves again (it paused; it did not stop).
        ctx = ssl.create_default_context(cafile=info["ca"])
        with socket.create_connection(("127.0.0.1", info["port"]), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="valid.lab.localhost") as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert tls.recv(100).startswith(b"HTTP/1.1 200 OK")
    finally:
        for s in held:
            s.close()
        if proc.poll() is None:
            proc.stdin.write("done\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, 9)
            proc.wait(timeout=5)


def test_a_reused_descriptor_number_is_not_forgotten() -> None:
    """The kernel gives a closed connection's descriptor number to the next accept(),
    sometimes within one batch of events, so a late event (or drop) can name a connection
    that is gone. Forgetting connections by number would then forget the *new* one: still
    registered, never served, never closed; its events ignored, select() returns at once
    forever (found by tests/test_hostile_room.py: 79 % CPU, 217 fds never given back)."""
    from helpers.lab.server import Reactor, Response

    reactor = Reactor()  # not started: this thread drives it, step by step
    listener = reactor.add_site(None, lambda request: Response(200, b"ok"))
    site = reactor._sites[listener.fileno()]
    try:
        with socket.create_connection(listener.getsockname(), timeout=5):
            assert wait_for(lambda: (reactor._accept(site), reactor.connections)[1] == 1, 5)
            (gone,) = reactor._connections.values()
            reactor._drop(gone)
        with socket.create_connection(listener.getsockname(), timeout=5):
            assert wait_for(lambda: (reactor._accept(site), reactor.connections)[1] == 1, 5)
            (new,) = reactor._connections.values()
            assert new.fd == gone.fd  # the lowest free number, as POSIX promises
            reactor._drop(gone)  # a late drop of the old connection
            assert reactor._connections.get(new.fd) is new
            assert reactor._selector.get_key(new.sock).data is new
            assert reactor._by_address["127.0.0.1"][new.fd] is new
    finally:
        reactor.stop()
