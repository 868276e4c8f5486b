"""A TLS server that hangs up without close_notify: the lab's ``truncation`` scenario (notebook 09).

Why a server of its own
-----------------------
Every other lab server (:mod:`helpers.lab.server`) does HTTP/1.1 and TLS by the book: each
response carries ``Content-Length`` and every connection ends with a ``close_notify`` alert
(RFC 8446 §6.1, RFC 5246 §7.2.1), so a client always knows it has the whole answer. This
one breaks both rules on purpose, as crashed workers, badly written proxies and some
embedded servers do:

1. the response has **no** ``Content-Length`` and no chunked encoding, so the body ends
   where the connection ends (RFC 9112 §6.3, rule 8: "read until the server closes");
2. after the body the server **drops the TLS layer without close_notify** and closes TCP.

A client reading to the end meets a TCP FIN with no close_notify before it. It cannot
tell an honest end from an attacker who cut the connection (a *truncation attack*: the
end of a page, of a download, of a JSON list is silently gone). OpenSSL 3 reports it as
``SSL_R_UNEXPECTED_EOF_WHILE_READING``; what a client then does is its own policy:

* :mod:`ssl` sockets made with ``suppress_ragged_eofs=True`` (the default of
  ``wrap_socket``, hence ``http.client``, ``urllib``, ``requests``/``urllib3``) turn it
  into an ordinary end of file: the truncated body is returned with no error;
* ``suppress_ragged_eofs=False`` and :class:`ssl.SSLObject` users raise
  :class:`ssl.SSLEOFError` ("EOF occurred in violation of protocol",
  ``UNEXPECTED_EOF_WHILE_READING``);
* curl reports error 56 ("unexpected eof while reading").

The lab's measured verdicts are in the ``truncation`` scenario (:mod:`helpers.lab.scenarios`).

How it runs
-----------
One thread accepts; each connection gets a thread with a per-read timeout and an absolute
deadline (handshake, request and answer together), at most ``max_connections`` at once.
At the cap the oldest connection of the address that holds the most is dropped (fair
eviction, as the lab's reactor does), so one noisy client cannot lock others out.
Loopback only unless ``allow_network=True`` (a teacher's shared lab).
"""

from __future__ import annotations

import collections
import contextlib
import socket
import ssl
import threading
import time
from typing import Self

from ..errors import UsageError
from ..servers import require_loopback_bind
from .server import App, Request

__all__ = ["TruncatingServer"]

#: The largest request head read before giving up (bytes).
MAX_REQUEST = 16 * 1024


class TruncatingServer:
    """Answer each HTTP request over TLS without Content-Length, then hang up without
    close_notify.

    ``context`` is a server :class:`ssl.SSLContext` (certificate loaded); ``app`` makes the
    response (:data:`helpers.lab.server.App`: the same pages the other lab servers show).
    ``host`` must be loopback unless ``allow_network=True``; ``port=0`` lets the OS pick.
    :meth:`start`/:meth:`stop` or ``with``; :attr:`port`, :attr:`address`.
    """

    def __init__(
        self,
        context: ssl.SSLContext,
        app: App,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_network: bool = False,
        max_connections: int = 64,
        idle_timeout: float = 5.0,
        deadline: float = 10.0,
    ) -> None:
        require_loopback_bind(host, allow_network=allow_network, what="The truncation server")
        self._context = context
        self._app = app
        self._bind = (host, port)
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.deadline = deadline
        #: One line per connection: who and how it ended (last 200).
        self.log: collections.deque[str] = collections.deque(maxlen=200)
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: dict[ssl.SSLSocket, tuple[str, float]] = {}  # socket -> (address, opened)
        self._workers: set[threading.Thread] = set()

    # -- life cycle -----------------------------------------------------------

    def start(self) -> Self:
        """Listen and start accepting (a second call does nothing)."""
        if self._listener is not None:
            return self
        family = socket.AF_INET6 if ":" in self._bind[0] else socket.AF_INET
        try:
            listener = socket.create_server(self._bind, family=family, backlog=64)
        except OSError as exc:
            raise UsageError(
                f"The truncation server cannot listen on {self._bind[0]!r} port "
                f"{self._bind[1]} ({exc.strerror or exc}).",
                "Use port 0 (the OS picks a free one) and an address this machine owns.",
            ) from None
        listener.settimeout(0.1)  # how often the accept loop looks at the stop flag
        self._stopping.clear()
        self._listener = listener
        self._thread = threading.Thread(
            target=self._accept_loop, name="tls-truncating", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port, hang up every connection, join the threads (safe twice)."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        listener.close()
        with self._lock:
            for sock in self._open:
                _hang_up(sock)
            workers = list(self._workers)
        for worker in workers:
            worker.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._listener is not None

    @property
    def address(self) -> tuple[str, int]:
        if self._listener is None:
            raise UsageError("The truncation server is not running.", "Call start() or use `with`.")
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        return self.address[1]

    # -- connections ----------------------------------------------------------

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            try:
                sock, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                time.sleep(0.05)  # EMFILE and friends: do not spin
                continue
            try:  # no I/O yet: the handshake runs in the connection's thread
                tls = self._context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
            except (ssl.SSLError, OSError):
                sock.close()
                continue
            with self._lock:
                if len(self._open) >= self.max_connections:
                    self._evict()
                self._open[tls] = (str(peer[0]), time.monotonic())
                worker = threading.Thread(
                    target=self._serve, args=(tls, peer), name="tls-truncating-conn", daemon=True
                )
                self._workers.add(worker)
            worker.start()

    def _evict(self) -> None:
        """At the cap: drop the oldest connection of the address holding the most (lock held)."""
        per_address = collections.Counter(address for address, _ in self._open.values())
        busiest = per_address.most_common(1)[0][0]
        victim = min(
            (s for s, (address, _) in self._open.items() if address == busiest),
            key=lambda s: self._open[s][1],
        )
        _hang_up(victim)  # its thread wakes up and cleans up
        self._open.pop(victim, None)
        self.log.append(f"{busiest}: oldest connection dropped, {self.max_connections} open")

    def _serve(self, tls: ssl.SSLSocket, peer: tuple[str, int]) -> None:
        who = f"{peer[0]}:{peer[1]}"
        outcome = "closed"
        end = time.monotonic() + self.deadline
        try:
            outcome = self._converse(tls, end)
        except TimeoutError:
            outcome = "timed out"
        except (ssl.SSLError, OSError, ValueError) as exc:
            outcome = f"ended: {type(exc).__name__}"
        except Exception as exc:  # noqa: BLE001 - a lesson's server prints no tracebacks
            outcome = f"internal error ({type(exc).__name__})"
        finally:
            with contextlib.suppress(OSError):
                tls.close()
            with self._lock:
                self._open.pop(tls, None)
                self._workers.discard(threading.current_thread())
            self.log.append(f"{who}: {outcome}")

    def _timeout(self, end: float) -> float:
        remaining = end - time.monotonic()
        if remaining <= 0 or self._stopping.is_set():
            raise TimeoutError
        return min(self.idle_timeout, remaining)

    def _converse(self, tls: ssl.SSLSocket, end: float) -> str:
        tls.settimeout(self._timeout(end))
        tls.do_handshake()
        head = bytearray()
        while b"\r\n\r\n" not in head:
            tls.settimeout(self._timeout(end))
            data = tls.recv(4096)
            if not data:
                return "client hung up before its request"
            head += data
            if len(head) > MAX_REQUEST:
                return "request head too large"
        request = _parse(bytes(head), tls)
        response = self._app(request)
        # RFC 9112 §6.3 rule 8: no Content-Length, no Transfer-Encoding: the body is
        # everything until the connection closes. That is what makes the missing
        # close_notify matter: only it could tell the client the end is the real end.
        lines = [
            f"HTTP/1.1 {response.status} {'OK' if response.status == 200 else 'Error'}",
            f"Content-Type: {response.content_type}",
            "Connection: close",
            "Cache-Control: no-store",
        ]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if request.method != "HEAD":
            data += response.body
        tls.settimeout(self._timeout(end))
        tls.sendall(data)
        # The fault this server exists to show: SSLSocket.shutdown() drops the TLS layer
        # *without* sending close_notify (unwrap() would send it) and half-closes TCP.
        tls.shutdown(socket.SHUT_WR)
        # Read (plain bytes now: the client's own close_notify) until it hangs up, briefly:
        # closing with bytes unread would turn our FIN into a reset.
        linger = min(end, time.monotonic() + 1.0)
        with contextlib.suppress(OSError):
            while time.monotonic() < linger:
                tls.settimeout(max(0.01, linger - time.monotonic()))
                if not tls.recv(4096):  # a plain socket's recv once the TLS layer is gone
                    break
        return "answered, hung up without close_notify"


def _hang_up(sock: ssl.SSLSocket) -> None:
    """Shut the TCP connection down under another thread's feet. ``socket.socket.shutdown``
    on purpose: ``SSLSocket.shutdown`` would also drop the TLS object that thread is using."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _parse(head: bytes, tls: ssl.SSLSocket) -> Request:
    """The request line and headers (RFC 9112 §3, §5), leniently: this is a demo server."""
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    method, target, version = (parts + ["", "", ""])[:3] if len(parts) != 3 else parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    local = tls.getsockname()[:2]
    peer = tls.getpeername()[:2]
    return Request(
        method,
        target or "/",
        version,
        headers,
        tls=tls,
        local=(str(local[0]), int(local[1])),
        peer=(str(peer[0]), int(peer[1])),
    )
