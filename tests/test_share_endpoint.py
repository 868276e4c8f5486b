"""The join endpoint under a hostile room (issue 13: audit M1, L3, N5, N6), on loopback.

The endpoint (:class:`helpers.lab.ShareServer`) is served by the lab's own reactor
(``helpers/lab/server.py``). These tests hold it to what a teacher's terminal and an
honest student need while others misbehave: half requests, slow drips, a crowd of idle
sockets, requests addressed to a rebound host name. Students and attackers are this
process, on distinct 127.0.0.x source addresses (Linux routes all of 127/8 to ``lo``).
The end-to-end room at ``ulimit -n 256`` is tests/test_hostile_room.py.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers.lab import Lab, ShareServer
from helpers.lab.remote.share import RateLimitedLog
from helpers.lab.server import Reactor, Request, Response
from tests.polling import open_fds, wait_for

pytestmark = pytest.mark.slow


def _http(
    port: int,
    path: str = "/lab.json",
    *,
    source: str = "127.0.0.1",
    target: str = "127.0.0.1",
    method: str = "GET",
    host: str | None = "",
    version: str = "HTTP/1.1",
) -> tuple[int, dict[str, str], bytes]:
    """One request on a fresh connection; ``(status, headers, body)``. ``host=""``: the
    address we connect to, as http.client would send it; ``None``: no Host header."""
    with socket.socket() as s:
        s.settimeout(5)
        s.bind((source, 0))
        s.connect((target, port))
        if host == "":
            host = f"{target}:{port}"
        lines = [f"{method} {path} {version}", "Connection: close"]
        if host is not None:
            lines.append(f"Host: {host}")
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


def test_half_requests_print_nothing_and_join_nobody(capfd: pytest.CaptureFixture[str]) -> None:
    """The audit's tb_spam.sh: ``GET /lab.json HTTP/1.1`` and a hang-up, 20 times. Before,
    each printed a traceback and a false ``joined:`` line. Now: nothing, and only a client
    that received the whole description counts as joined."""
    joined: list[str] = []
    with Lab() as lab, ShareServer(lab, port=0, on_join=joined.append) as share:
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", share.port), timeout=5) as s:
                s.sendall(b"GET /lab.json HTTP/1.1\r\n")
        for _ in range(5):  # the request complete, but gone before the answer is read
            with socket.create_connection(("127.0.0.1", share.port), timeout=5) as s:
                s.sendall(b"GET /lab.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, headers, _ = _http(share.port, method="HEAD", source="127.0.0.6")
        assert status == 200 and headers["cache-control"] == "no-store"
        status, headers, body = _http(share.port, source="127.0.0.7")
        assert status == 200 and len(body) == int(headers["content-length"]) > 1000
        assert wait_for(lambda: "127.0.0.7" in joined, 5)
        time.sleep(0.3)  # any late, false report would arrive now
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err[-2000:]
    # The five hang-ups after a complete request may or may not have been sent their
    # answer before the kernel noticed; a HEAD (no description) never counts.
    assert "127.0.0.6" not in joined
    assert joined.count("127.0.0.7") == 1


def test_cli_terminal_stays_readable_under_abuse(repo_root: Path, tmp_path: Path) -> None:
    """``python -m helpers.lab --share``: what the teacher reads while a room misbehaves.
    At most one line per refused address (rate-limited), one ``joined:`` line per student,
    never a traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "helpers.lab", "--bind", "127.0.0.2", "--share",
         "--share-port", "0", "--dir", str(tmp_path)],
        cwd=repo_root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        out, port = "", 0
        deadline = time.monotonic() + 90
        fd = proc.stdout.fileno()  # type: ignore[union-attr]
        while "Serving until Ctrl-C" not in out and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 1)
            if ready:
                chunk = os.read(fd, 65536)  # not readline(): its buffer hides data from select
                if not chunk:
                    break
                out += chunk.decode()
        found = re.search(r"http://127\.0\.0\.2:(\d+)/", out)
        assert found, out[-2000:]
        port = int(found.group(1))
        assert "client connections at once" in out
        for _ in range(20):  # tb_spam.sh
            with socket.socket() as s:
                s.bind(("127.0.0.5", 0))
                s.connect(("127.0.0.2", port))
                s.sendall(b"GET /lab.json HTTP/1.1\r\n")
        for path in ("/../../etc/passwd", "/client-key.pem", "/ca-key.pem"):
            assert _http(port, path, source="127.0.0.5", target="127.0.0.2")[0] == 404
        for _ in range(5):
            assert _http(port, "/", method="POST", source="127.0.0.8", target="127.0.0.2")[0] == 405
        for _ in range(3):  # a student, joining three times
            assert _http(port, source="127.0.0.6", target="127.0.0.2")[0] == 200
        time.sleep(0.5)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            _, err = proc.communicate(timeout=5)
    lines = err.splitlines()
    assert "Traceback" not in err, err[-3000:]
    assert lines.count("joined: 127.0.0.6") == 1, lines
    assert not any("joined: 127.0.0.5" in line for line in lines), lines
    refused5 = [line for line in lines if line.startswith("refused 127.0.0.5:")]
    refused8 = [line for line in lines if line.startswith("refused 127.0.0.8:")]
    assert len(refused5) == 1 and len(refused8) == 1, lines
    assert len(lines) <= 5, lines  # refused x2, joined, "Lab stopped."


def test_slow_drip_meets_an_absolute_deadline() -> None:
    """One byte every 0.2 s of a request head that never ends: before, each byte bought
    another 5 s (a per-recv timeout); now the request has one deadline."""
    with Lab() as lab, ShareServer(lab, port=0) as share:
        assert lab._reactor is not None
        lab._reactor.idle_timeout = 1.0
        with socket.create_connection(("127.0.0.1", share.port), timeout=5) as s:
            s.sendall(b"GET /lab.json HTTP/1.1\r\nX-Drip: ")
            s.settimeout(0.2)
            start = time.monotonic()
            while time.monotonic() - start < 8:
                try:
                    s.send(b"a")
                    if s.recv(4096) == b"":
                        break
                except TimeoutError:
                    continue
                except OSError:
                    break
            held = time.monotonic() - start
        assert held < 2.5, f"a slow-drip client held the endpoint {held:.1f} s"


def test_a_crowd_of_sockets_cannot_lock_out_a_student() -> None:
    """150 idle and 50 slow-drip sockets from two attacker addresses, above the cap (40):
    the student (another address) is served at once, the endpoint spends no thread on
    anyone, and descriptors come back when the crowd leaves."""
    with Lab() as lab, ShareServer(lab, port=0) as share:
        reactor = lab._reactor
        assert reactor is not None
        reactor.max_connections = 40
        _http(share.port)  # warm up
        base_fds, base_threads = open_fds(), threading.active_count()
        crowd: list[socket.socket] = []
        try:
            for i in range(200):
                s = socket.socket()
                s.bind((f"127.0.0.{7 + i % 2}", 0))
                s.connect(("127.0.0.1", share.port))
                if i % 4 == 0:
                    s.sendall(b"GET /lab.json HTTP/1.1\r\nX: ")  # and never the rest
                crowd.append(s)
            assert wait_for(lambda: reactor.accepted >= 200)
            assert threading.active_count() == base_threads  # no thread per connection
            assert lab.connections <= 40
            for _ in range(5):
                start = time.monotonic()
                status, _, body = _http(share.port)
                assert status == 200 and body
                assert time.monotonic() - start < 1.0
        finally:
            for s in crowd:
                s.close()
        assert wait_for(lambda: lab.connections == 0), lab.connections
        assert wait_for(lambda: open_fds() <= base_fds), (open_fds(), base_fds)
        assert threading.active_count() == base_threads


def test_dns_rebinding_and_methods() -> None:
    """With the client key shared, only requests addressed to an IP literal are answered
    (a rebound name says ``Host: evil.example``); GET and HEAD only; four paths."""
    with Lab() as lab:
        with ShareServer(lab, port=0, share_client_key=True) as share:
            port = share.port
            assert _http(port, host="evil.example")[0] == 421
            assert _http(port, host=f"evil.example:{port}")[0] == 421
            assert _http(port, host="localhost")[0] == 421
            assert _http(port)[0] == 200  # Host: 127.0.0.1:PORT, as join() sends it
            assert _http(port, host=f"[::1]:{port}")[0] == 200
            assert _http(port, host=None, version="HTTP/1.0")[0] == 200  # no browser
        with ShareServer(lab, port=0) as share:  # public material only: any Host
            assert _http(share.port, host="teacher.local")[0] == 200
            assert _http(share.port, "/", method="POST")[0] == 405
            assert _http(share.port, "/ca-key.pem")[0] == 404
            status, headers, _ = _http(share.port, "/ca.pem")
            assert status == 200 and headers["cache-control"] == "no-store"


def test_a_plain_site_knows_both_addresses() -> None:
    """A plain-HTTP site on the reactor: the app sees the address the client reached
    (which the join endpoint puts in the description) and the client's own."""
    seen: list[Request] = []

    def app(request: Request) -> Response:
        seen.append(request)
        return Response(200, b"ok", "text/plain")

    reactor = Reactor()
    listener = reactor.add_site(None, app, host="127.0.0.2")
    reactor.start()
    try:
        port = listener.getsockname()[1]
        status, _, body = _http(port, "/", source="127.0.0.3", target="127.0.0.2")
        assert (status, body) == (200, b"ok")
        assert seen[0].local == ("127.0.0.2", port)
        assert seen[0].peer[0] == "127.0.0.3" and seen[0].tls is None
        reactor.remove_site(listener)
        with pytest.raises(OSError):
            _http(port, "/", target="127.0.0.2")
    finally:
        reactor.stop()


def test_refusal_log_is_rate_limited() -> None:
    """One line per address per minute, ten a minute in all, the rest counted."""
    now = [0.0]
    lines: list[str] = []
    log = RateLimitedLog(lines.append, clock=lambda: now[0])
    for _ in range(100):
        log("10.0.0.9", "refused 10.0.0.9: too slow")
    assert lines == ["refused 10.0.0.9: too slow"]
    for n in range(30):
        log(f"10.0.1.{n}", f"refused 10.0.1.{n}: too slow")
    assert len(lines) == 10
    now[0] = 61.0
    log("10.0.0.9", "refused 10.0.0.9: too slow")
    assert lines[-2] == "... and 21 more like these in the last minute"
    assert lines[-1] == "refused 10.0.0.9: too slow (and 99 more since its last line)"


def test_cli_says_where_a_wildcard_share_is_exposed() -> None:
    """N5: ``--share`` without ``--bind`` listens on every interface; the teacher is told
    which addresses that means and how to narrow it."""
    from helpers.lab.__main__ import _exposure, _share_table

    assert _exposure("127.0.0.1") == []
    text = "\n".join(_exposure("0.0.0.0"))
    assert "EVERY INTERFACE" in text and "--bind" in text
    with Lab() as lab, ShareServer(lab, port=0) as share:
        share.bind = "0.0.0.0"  # what --share without --bind listens on (display only here)
        assert "--share --bind" in _share_table(lab, share, ["127.0.0.1"])
