"""One thread serving every lab port: a small TLS + HTTP/1.1 reactor (introduced in notebook 02).

Theory of operation
-------------------
The lab runs ~20 TLS servers, one port per scenario. The obvious design, a thread per
port plus a thread per connection, would need hundreds of threads and lets one slow
client hold a thread hostage. Instead, one thread runs a **reactor**:

* every socket (the listening ones and every accepted connection) is **non-blocking**
  and registered with one :mod:`selectors` selector;
* the thread waits until some socket is ready, does the little work that socket allows
  *without waiting*, and goes back to waiting.

This works for TLS because OpenSSL's handshake is *resumable*: when
``SSLSocket.do_handshake()`` needs bytes that have not arrived it raises
:class:`ssl.SSLWantReadError` (or :class:`ssl.SSLWantWriteError` when the kernel's send
buffer is full) and picks up where it left off on the next call. So a handshake never
blocks the accept loop, and the same is true of reading a request and writing a
response. Each connection is a small state machine::

    HANDSHAKE --ok--> REQUEST <--> RESPONSE --(Connection: close)--> CLOSING --> LINGER --> closed
        |                 \\___ idle timeout / EOF / garbage ___________________/
        +--failed (alert already written by OpenSSL)----------------> LINGER

Every transition is driven by :meth:`_Connection.step`, which runs until the socket
would block and then says which event (readable or writable) it is waiting for.

Isolation, the reason for each limit:

* a **deadline** per connection (handshake, idle keep-alive, linger) frees sockets held
  by clients that connect and say nothing (slowloris-style resource exhaustion);
* a **connection cap**: at the cap the longest-idle connection is dropped to make room,
  so an attacker opening sockets cannot lock out a real client;
* **bounded buffers**: a request head larger than 16 KiB or a body larger than 64 KiB is
  refused, so garbage cannot grow memory without limit;
* every error is caught **per connection**: garbage bytes, a vanished client or a failed
  handshake end that connection only.

Two details that are easy to get wrong:

* **TCP_NODELAY** on every socket. A handshake is several small writes answered by small
  reads; Nagle's algorithm holds back a small write until the previous one is
  acknowledged, and delayed ACKs hold that acknowledgement back up to 40 ms. Together
  they cap a client at ~25 handshakes per second (measured: 23/s without, ~500/s with).
* **Lingering close** (RFC 9112 §9.6). When a TLS 1.3 server rejects a client (no client
  certificate), the client has already sent its request. Closing a socket with unread
  bytes in its receive buffer makes the kernel send a TCP RST, which can overtake the
  alert we just wrote; the client then sees a reset or an EOF instead of the
  ``certificate_required`` alert. So the server half-closes (``shutdown(SHUT_WR)``),
  reads and discards what the client still sends until it closes or a short deadline
  passes, and only then closes.

The HTTP side is deliberately tiny (RFC 9112): GET and HEAD, persistent connections
(keep-alive by default in HTTP/1.1, opt-in in HTTP/1.0), ``Content-Length`` bodies are
read and ignored, anything chunked or malformed gets an error status and a close.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Request", "Response", "Reactor", "App"]

HANDSHAKE_TIMEOUT = 10.0  # seconds a client may take to finish its handshake
IDLE_TIMEOUT = 15.0  # seconds a keep-alive connection may sit between requests
LINGER_TIMEOUT = 2.0  # seconds we drain a client after our last byte before closing
MAX_CONNECTIONS = 1024  # open client connections per lab; beyond, the idlest is dropped
MAX_HEAD = 16 * 1024  # bytes of request line + headers
MAX_BODY = 64 * 1024  # bytes of request body we are willing to read and discard
MAX_REQUESTS = 100  # requests per connection before we ask the client to reconnect
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


@dataclass
class Request:
    """An HTTP request head (RFC 9112 §3): ``GET /path HTTP/1.1`` plus headers."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    tls: ssl.SSLSocket | None = None  # the connection, for version(), cipher(), getpeercert()


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


#: What a site does with a request.
App = Callable[[Request], Response]


class _HTTPError(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


@dataclass
class _Site:
    listener: socket.socket
    context: ssl.SSLContext
    app: App
    name: str


class _Connection:
    """One client connection and its state machine (see the module docstring)."""

    __slots__ = (
        "tls",
        "site",
        "reactor",
        "state",
        "deadline",
        "last_active",
        "inbuf",
        "outbuf",
        "close_after",
        "requests",
        "drained",
        "events",
    )

    def __init__(self, tls: ssl.SSLSocket, site: _Site, reactor: Reactor) -> None:
        self.tls = tls
        self.site = site
        self.reactor = reactor
        self.state = "handshake"
        now = time.monotonic()
        self.deadline = now + reactor.handshake_timeout
        self.last_active = now
        self.inbuf = bytearray()
        self.outbuf = b""
        self.close_after = False
        self.requests = 0
        self.drained = 0
        self.events = 0

    # Each branch runs until the socket would block, then returns the event it waits
    # for (_READ or _WRITE), or 0 when the connection is finished and must be closed.
    def step(self) -> int:
        self.last_active = time.monotonic()
        while True:
            if self.state == "handshake":
                try:
                    self.tls.do_handshake()
                except ssl.SSLWantReadError:
                    return _READ
                except ssl.SSLWantWriteError:
                    return _WRITE
                except (ssl.SSLError, OSError, ValueError):
                    # Bad certificate from the client, garbage bytes, a vanished peer:
                    # OpenSSL has already written any alert. Linger so it arrives.
                    self._start_linger()
                    continue
                self.state = "request"
                self.deadline = time.monotonic() + self.reactor.idle_timeout
            elif self.state == "request":
                if self._next_response():
                    self.state = "response"
                    continue
                try:
                    data = self.tls.recv(65536)
                except ssl.SSLWantReadError:
                    return _READ
                except ssl.SSLWantWriteError:
                    return _WRITE
                except (ssl.SSLError, OSError):
                    return 0  # close_notify, reset, or a broken record: nothing to save
                if not data:
                    return 0  # the client closed: so do we
                self.inbuf += data
            elif self.state == "response":
                try:
                    sent = self.tls.send(self.outbuf)
                except ssl.SSLWantReadError:
                    return _READ
                except ssl.SSLWantWriteError:
                    return _WRITE
                except (ssl.SSLError, OSError):
                    return 0
                self.outbuf = self.outbuf[sent:]
                if self.outbuf:
                    continue
                if self.close_after:
                    self.state = "closing"
                else:
                    self.state = "request"
                    self.deadline = time.monotonic() + self.reactor.idle_timeout
            elif self.state == "closing":
                # RFC 8446 §6.1: say close_notify before closing, so the client can tell
                # a complete response from a truncation attack.
                with contextlib.suppress(ssl.SSLError, OSError, ValueError):
                    self.tls.unwrap()
                self._start_linger()
            elif self.state == "linger":
                try:
                    data = self.tls.recv(65536)  # plain socket now: just discard bytes
                except (BlockingIOError, InterruptedError):
                    return _READ
                except OSError:
                    return 0
                self.drained += len(data)
                if not data or self.drained > MAX_BODY:
                    return 0
            else:  # pragma: no cover - states above are exhaustive
                return 0

    def _start_linger(self) -> None:
        self.state = "linger"
        self.deadline = time.monotonic() + self.reactor.linger_timeout
        try:
            # SSLSocket.shutdown drops the TLS layer and half-closes the TCP socket.
            self.tls.shutdown(socket.SHUT_WR)
        except OSError:
            self.deadline = 0.0  # already gone: the sweep closes it

    def _next_response(self) -> bool:
        """Parse one request from ``inbuf``; queue its response. False if incomplete."""
        try:
            request = self._parse()
        except _HTTPError as err:
            self.outbuf = _render(Response(err.status, _error_page(err.status)), False, "GET")
            self.close_after = True
            self.inbuf.clear()
            return True
        if request is None:
            return False
        self.requests += 1
        keep_alive = _wants_keep_alive(request) and self.requests < MAX_REQUESTS
        try:
            response = self.site.app(request)
        except Exception:  # noqa: BLE001 - a bug in a page must not kill the reactor
            response = Response(500, _error_page(500))
            keep_alive = False
        self.outbuf = _render(response, keep_alive, request.method)
        self.close_after = not keep_alive
        return True

    def _parse(self) -> Request | None:
        end = self.inbuf.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
        if end < 0:
            if len(self.inbuf) > MAX_HEAD:
                raise _HTTPError(431)
            return None
        head = bytes(self.inbuf[:end]).decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise _HTTPError(400)
        method, target, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise _HTTPError(505)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise _HTTPError(400)  # RFC 9112 §5.1: no whitespace before the colon
            headers[name.lower()] = value.strip()
        if "transfer-encoding" in headers:
            raise _HTTPError(501)  # no chunked bodies here; closing avoids request smuggling
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise _HTTPError(400) from None
        if length < 0:
            raise _HTTPError(400)
        if length > MAX_BODY:
            raise _HTTPError(413)
        if len(self.inbuf) < end + 4 + length:
            return None  # the body is still on its way
        del self.inbuf[: end + 4 + length]
        return Request(method, target, version, headers, self.tls)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.tls.close()


def _wants_keep_alive(request: Request) -> bool:
    # RFC 9112 §9.3: HTTP/1.1 is persistent unless "close"; HTTP/1.0 only with "keep-alive".
    tokens = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
    if request.version == "HTTP/1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def _render(response: Response, keep_alive: bool, method: str) -> bytes:
    reason = _REASONS.get(response.status, "Error")
    headers = {
        "Content-Type": response.content_type,
        "Content-Length": str(len(response.body)),
        "Connection": "keep-alive" if keep_alive else "close",
        "Cache-Control": "no-store",
        **response.headers,
    }
    if response.status == 405:
        headers.setdefault("Allow", "GET, HEAD")
    head = f"HTTP/1.1 {response.status} {reason}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    # RFC 9110 §9.3.2: HEAD gets the same headers as GET, and no body.
    return head.encode("latin-1") + (b"" if method == "HEAD" else response.body)


def _error_page(status: int) -> bytes:
    reason = _REASONS.get(status, "Error")
    return f"<!doctype html><title>{status} {reason}</title><h1>{status} {reason}</h1>\n".encode()


def _nodelay(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        # See the module docstring: Nagle + delayed ACK would cost ~40 ms per handshake.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Reactor:
    """Serve any number of TLS sites from one thread.

    ``add_site(context, app)`` binds a listening socket (port chosen by the OS unless
    given) and returns it; ``start()`` starts the thread; ``stop()`` closes every socket
    and joins the thread.
    """

    def __init__(
        self,
        *,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        linger_timeout: float = LINGER_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        name: str = "tls-lab",
    ) -> None:
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.linger_timeout = linger_timeout
        self.max_connections = max_connections
        self.name = name
        self._selector = selectors.DefaultSelector()
        self._sites: dict[int, _Site] = {}
        self._connections: dict[int, _Connection] = {}
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, _READ, None)
        self._closed = False
        self.accepted = 0  # connections accepted so far (for tests and curiosity)

    # --- setup
    def add_site(
        self,
        context: ssl.SSLContext,
        app: App,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "",
        backlog: int = 512,
    ) -> socket.socket:
        """Listen on ``(host, port)`` (port 0: the OS picks a free one) for ``context``."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            # Lets a restarted server reuse its port while old connections sit in
            # TIME_WAIT. (On Linux it does NOT let two live servers share a port.)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(backlog)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        site = _Site(listener, context, app, name)
        self._sites[listener.fileno()] = site
        self._selector.register(listener, _READ, site)
        return listener

    # --- lifecycle
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread, close every connection and listening socket. Idempotent."""
        if self._closed:
            return
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout)
        self._closed = True
        for conn in list(self._connections.values()):
            conn.close()
        self._connections.clear()
        for site in self._sites.values():
            site.listener.close()
        self._sites.clear()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    @property
    def connections(self) -> int:
        """How many client connections are open right now."""
        return len(self._connections)

    # --- the loop
    def _run(self) -> None:
        next_sweep = time.monotonic() + 0.25
        while not self._stopping.is_set():
            timeout = max(0.0, next_sweep - time.monotonic())
            for key, _mask in self._selector.select(timeout):
                data = key.data
                if data is None:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(64)
                elif isinstance(data, _Site):
                    self._accept(data)
                else:
                    self._advance(data)
            now = time.monotonic()
            if now >= next_sweep:
                self._sweep(now)
                next_sweep = now + 0.25

    def _accept(self, site: _Site) -> None:
        for _ in range(64):  # accept a burst, then let other sockets have a turn
            try:
                sock, _addr = site.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # EMFILE and friends: try again on the next event
            self.accepted += 1
            _nodelay(sock)
            sock.setblocking(False)
            try:
                tls = site.context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
            except (ssl.SSLError, OSError):
                sock.close()
                continue
            if len(self._connections) >= self.max_connections:
                self._evict()
            conn = _Connection(tls, site, self)
            self._connections[tls.fileno()] = conn
            conn.events = _READ
            self._selector.register(tls, _READ, conn)
            self._advance(conn)

    def _advance(self, conn: _Connection) -> None:
        try:
            wanted = conn.step()
        except Exception:  # noqa: BLE001 - isolation: one broken connection only
            wanted = 0
        if wanted == 0:
            self._drop(conn)
        elif wanted != conn.events:
            conn.events = wanted
            self._selector.modify(conn.tls, wanted, conn)

    def _drop(self, conn: _Connection) -> None:
        fd = conn.tls.fileno()
        if self._connections.pop(fd, None) is not None:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(conn.tls)
        conn.close()

    def _evict(self) -> None:
        idlest = min(self._connections.values(), key=lambda c: c.last_active)
        self._drop(idlest)

    def _sweep(self, now: float) -> None:
        for conn in [c for c in self._connections.values() if c.deadline <= now]:
            self._drop(conn)
