"""helpers/serving.py: the limits every small server shares, over real loopback sockets.

Each test names the attack its limit stops; the servers built on it (the lab's side
servers, the proxy, the man in the middle, the login site) have their own tests too.
"""

from __future__ import annotations

import socket
import time

import pytest

from helpers.errors import UsageError
from helpers.serving import ThreadedServer, linger_close, listen
from tests.polling import wait_for


class Echo(ThreadedServer):
    """Echoes lines; ``boom`` is a bug in the server (an exception)."""

    what = "The echo server"
    thread_name = "test-echo"

    def __init__(self, **limits: object) -> None:
        settings: dict[str, object] = {
            "max_connections": 8,
            "idle_timeout": 5.0,
            "deadline": 10.0,
            **limits,
        }
        super().__init__("127.0.0.1", 0, **settings)  # type: ignore[arg-type]

    def serve(self, sock: socket.socket, peer: tuple[str, int]) -> str:
        end = time.monotonic() + self.deadline
        while True:
            sock.settimeout(self.read_timeout(end))
            data = sock.recv(1024)
            if not data:
                return "client hung up"
            if data == b"boom\n":
                raise RuntimeError("a bug in serve()")
            sock.sendall(data)


def _client(server: Echo, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket()
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", server.port))
    return sock


def _served(sock: socket.socket) -> bool:
    """True if the server echoes on this connection, False if it was closed."""
    try:
        sock.sendall(b"ping\n")
        return sock.recv(16) == b"ping\n"
    except OSError:
        return False


def test_a_connection_over_the_cap_is_closed_on_arrival() -> None:
    """Thread and descriptor exhaustion: past max_connections, no thread is started."""
    with Echo(max_connections=2) as server:
        first, second = _client(server), _client(server)
        assert _served(first) and _served(second)
        third = _client(server)
        assert not _served(third)
        assert wait_for(lambda: any("refused, 2 connections already open" in x for x in server.log))
        assert _served(first)
        for sock in (first, second, third):
            sock.close()


def test_one_address_cannot_take_every_slot() -> None:
    """A per-address cap: the second connection from 127.0.0.2 is closed, 127.0.0.3 is served."""
    with Echo(max_per_address=1) as server:
        mine = _client(server, "127.0.0.2")
        assert _served(mine)
        again = _client(server, "127.0.0.2")
        assert not _served(again)
        other = _client(server, "127.0.0.3")
        assert _served(other)
        assert any("1 already open from 127.0.0.2" in line for line in server.log)
        for sock in (mine, again, other):
            sock.close()


def test_fair_eviction_drops_the_flooding_address_not_the_honest_one() -> None:
    """At the cap, the oldest connection of the busiest address makes room."""
    with Echo(max_connections=3, fair_eviction=True) as server:
        honest = _client(server, "127.0.0.1")
        assert _served(honest)
        flood = [_client(server, "127.0.0.2") for _ in range(2)]
        assert all(_served(sock) for sock in flood)
        newcomer = _client(server, "127.0.0.3")
        assert _served(newcomer)
        assert not _served(flood[0]), "the oldest of the busiest address is dropped"
        assert _served(honest) and _served(flood[1])
        assert any("127.0.0.2: oldest connection dropped" in line for line in server.log)
        for sock in (honest, *flood, newcomer):
            sock.close()


def test_a_trickling_client_is_dropped_at_the_deadline() -> None:
    """Slowloris: a byte every 0.1 s never trips the idle timeout, the deadline ends it."""
    with Echo(idle_timeout=0.5, deadline=1.0) as server:
        sock = _client(server)
        started = time.monotonic()
        with pytest.raises(OSError):  # noqa: PT012 - the loop is the trickle
            while time.monotonic() - started < 10:
                sock.sendall(b"x")
                if not sock.recv(16):
                    raise ConnectionError("closed by the server")
                time.sleep(0.1)
        assert time.monotonic() - started < 5
        assert wait_for(lambda: any(line.endswith(": timed out") for line in server.log))
        sock.close()


def test_a_bug_in_serve_ends_its_connection_quietly(capfd: pytest.CaptureFixture[str]) -> None:
    """No traceback on the terminal; one log line; other connections go on."""
    with Echo() as server:
        other = _client(server)
        sock = _client(server)
        sock.sendall(b"boom\n")
        assert sock.recv(16) == b""
        assert wait_for(lambda: any("internal error (RuntimeError)" in x for x in server.log))
        assert _served(other)
        sock.close()
        other.close()
    assert "Traceback" not in capfd.readouterr().err


def test_stop_hangs_up_idle_connections_and_frees_the_port() -> None:
    """Threads that outlive the server: stop() wakes them at once, not after the timeout."""
    server = Echo(idle_timeout=30.0, deadline=60.0).start()
    port = server.port
    sock = _client(server)
    assert _served(sock)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3
    assert sock.recv(16) == b""
    assert not server._workers and not server.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    server.stop()  # a second stop() does nothing
    sock.close()


def test_listen_says_what_cannot_listen_in_one_sentence() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match="The echo server cannot listen on '127.0.0.1'"):
            listen("127.0.0.1", port, what="The echo server")


def test_linger_close_delivers_the_answer_despite_unread_bytes() -> None:
    """Closing with unread bytes sends a reset that can destroy our answer (RFC 9112 §9.6)."""
    with listen("127.0.0.1", 0, what="The test listener") as listener:
        client = socket.create_connection(listener.getsockname()[:2], timeout=5)
        conn, _ = listener.accept()
        client.sendall(b"x" * 65536)  # the server will not read this
        time.sleep(0.05)
        conn.sendall(b"answer")
        linger_close(conn, 1.0)
        received = b""
        while chunk := client.recv(4096):
            received += chunk
        assert received == b"answer"
        client.close()
