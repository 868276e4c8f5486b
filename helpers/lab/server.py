"""One thread serving every lab port: a small TLS + HTTP/1.1 reactor (introduced in notebook 02).

Theory of operation
-------------------
The lab runs ~20 TLS servers, one port per scenario, and (with ``--share``) one
plain-HTTP join endpoint. The obvious design, a thread per port plus a thread per
connection, would need hundreds of threads and lets one slow client hold a thread
hostage. Instead, one thread runs a **reactor**:

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
        |                 \\___ deadline / EOF / garbage _______________________/
        +--failed (alert already written by OpenSSL)----------------> LINGER

A plain-HTTP site (``add_site(None, app)``, used by the join endpoint) is the same
machine without the handshake: it starts in REQUEST. Every transition is driven by
:meth:`_Connection.step`, which runs until the socket would block and then says which
event (readable or writable) it is waiting for.

Limits, and the attack each one stops
-------------------------------------
A lab shared with a room (``--share``) listens on the classroom network, so anyone in
the room can try to take it down. Each limit below names what it prevents:

* **absolute deadlines** (slowloris, slow-drip). A client gets
  :data:`HANDSHAKE_TIMEOUT` for its handshake, :data:`IDLE_TIMEOUT` from the end of the
  previous response to the end of its next request (head *and* body), and as long again
  to read our answer. Arriving bytes never push a deadline back, so a client that sends
  one byte every second is dropped exactly when a silent one is.
* **a lifetime per connection** (:data:`MAX_LIFETIME`; keep-alive hoarding): a client
  that sends a complete request just before each deadline would otherwise keep its
  socket for :data:`MAX_REQUESTS` deadlines. Near the end of its life the connection's
  last response says ``Connection: close``.
* **a connection cap derived from the file descriptor limit** (fd exhaustion). Every
  connection is a file descriptor, and a process that runs out of them can accept
  nothing, not even an honest student: :func:`connection_cap` keeps the cap below
  ``RLIMIT_NOFILE`` minus a reserve (:data:`FD_RESERVE`, for the listeners, the
  selector, Python's own files), and :func:`raise_nofile_limit` first raises the soft
  limit toward the hard one (macOS starts processes at 256).
* **fair eviction** (one attacker crowding out everyone). At the cap, the reactor drops
  the idlest connection *of the source address holding the most connections*. A
  machine that opens 1,400 sockets only ever evicts its own; a student on another
  address, holding one or two, is not touched.
* **pausing accept on EMFILE/ENFILE** (a busy loop). If the process still runs out of
  descriptors (other code in the same process opened files), ``accept()`` fails but the
  listening socket stays readable, so a naive loop would spin at 100 % CPU. The reactor
  evicts one connection and stops watching the listeners for :data:`ACCEPT_PAUSE`.
* **bounded buffers** (memory exhaustion): a request head larger than 16 KiB or a body
  larger than 64 KiB is refused, so garbage cannot grow memory without limit.
* **strict framing** (request smuggling, RFC 9112 §6.3): ``Transfer-Encoding``, a
  ``Content-Length`` that is not plain digits, or more than one ``Content-Length`` or
  ``Host`` header gets 400/501 and a close; two servers that disagree on where a request
  ends are how smuggling works.
* **per-connection isolation** (crash by garbage): every error is caught per
  connection: garbage bytes, a vanished client or a failed handshake end that connection
  only, and nothing a client does prints a traceback.

Three details that are easy to get wrong:

* **Descriptor numbers are reused at once.** POSIX gives the next ``accept()`` the lowest
  free number, so the connection just evicted and the one just accepted often share it,
  even within one batch of ready events. The reactor therefore forgets a connection
  only if the table still holds *that object* under its number; forgetting by number
  alone once orphaned a live connection (registered with the selector, owned by nobody:
  its events ignored, so ``select()`` returned at once forever).

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
import errno
import itertools
import re
import selectors
import socket
import ssl
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "App",
    "Reactor",
    "Request",
    "Response",
    "connection_cap",
    "raise_nofile_limit",
]

HANDSHAKE_TIMEOUT = 10.0  # seconds a client may take to finish its handshake
IDLE_TIMEOUT = 15.0  # seconds from our last response to the end of the next request
LINGER_TIMEOUT = 2.0  # seconds we drain a client after our last byte before closing
MAX_LIFETIME = 60.0  # seconds a connection may live, however busy it keeps itself
MAX_CONNECTIONS = 1024  # open client connections at most, whatever the fd limit allows
FD_RESERVE = 48  # descriptors kept free for Python, the selector, files (+1 per listener)
NOFILE_TARGET = 8192  # raise_nofile_limit() asks for this many descriptors, if allowed
ACCEPT_PAUSE = 0.1  # seconds the listeners are not watched after EMFILE/ENFILE
MAX_HEAD = 16 * 1024  # bytes of request line + headers
MAX_BODY = 64 * 1024  # bytes of request body we are willing to read and discard
MAX_REQUESTS = 100  # requests per connection before we ask the client to reconnect
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_OUT_OF_FDS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_DIGITS = re.compile(r"[0-9]{1,12}")

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    421: "Misdirected Request",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


def raise_nofile_limit(target: int = NOFILE_TARGET) -> int | None:
    """Raise this process's soft ``RLIMIT_NOFILE`` toward ``min(hard limit, target)``.

    Returns the soft limit afterwards (None where there is no such limit: Windows).
    Every socket is a file descriptor; macOS starts processes with a soft limit of 256
    and Linux desktops with 1024, while the hard limit (what an unprivileged process may
    raise itself to) is usually far higher. The lab and ``python -m helpers.lab`` call
    this when they start, so a hostile room has to hold thousands of sockets, not
    hundreds. Never lowers the limit.
    """
    try:
        import resource
    except ImportError:  # Windows: no rlimits; select() is bounded instead (connection_cap)
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = target if hard == resource.RLIM_INFINITY else min(hard, target)
    if soft != resource.RLIM_INFINITY and soft < want:
        # macOS refuses a soft limit above OPEN_MAX (10240) even with an infinite hard one.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def connection_cap(listeners: int = 0, reserve: int = FD_RESERVE) -> int:
    """How many client connections fit in this process's file descriptors.

    The soft ``RLIMIT_NOFILE`` minus ``reserve`` and one per listening socket, at most
    :data:`MAX_CONNECTIONS`, at least 16. On Windows the selector is ``select()``, whose
    sets hold 512 sockets in CPython's build, so that is the bound there.
    """
    try:
        import resource
    except ImportError:
        limit = 512 if sys.platform == "win32" else MAX_CONNECTIONS + reserve
    else:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        limit = MAX_CONNECTIONS + reserve + listeners if soft == resource.RLIM_INFINITY else soft
    return max(16, min(MAX_CONNECTIONS, limit - reserve - listeners))


@dataclass
class Request:
    """An HTTP request head (RFC 9112 §3): ``GET /path HTTP/1.1`` plus headers.

    ``local`` is the ``(address, port)`` the client reached (on a machine with several
    networks, which one), ``peer`` the client's own.
    """

    method: str
    target: str
    version: str
    headers: dict[str, str]
    tls: ssl.SSLSocket | None = None  # the connection, for version(), cipher(), getpeercert()
    local: tuple[str, int] = ("", 0)
    peer: tuple[str, int] = ("", 0)


@dataclass
class Response:
    """What an app answers. ``on_sent`` is called once the whole response (head and body)
    has been handed to the kernel, never for a client that hung up before."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    on_sent: Callable[[], None] | None = None


#: What a site does with a request.
App = Callable[[Request], Response]

#: Told about each client a site refuses: ``(client address, what happened)``.
RefusalHook = Callable[[str, str], None]


class _HTTPError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason


@dataclass
class _Site:
    listener: socket.socket
    context: ssl.SSLContext | None  # None: plain HTTP
    app: App
    name: str
    on_refused: RefusalHook | None = None


class _Connection:
    """One client connection and its state machine (see the module docstring)."""

    __slots__ = (
        "sock",
        "fd",
        "site",
        "reactor",
        "state",
        "deadline",
        "expires",
        "last_active",
        "inbuf",
        "outbuf",
        "close_after",
        "requests",
        "drained",
        "events",
        "local",
        "peer",
        "on_sent",
    )

    def __init__(
        self,
        sock: socket.socket,
        site: _Site,
        reactor: Reactor,
        local: tuple[str, int],
        peer: tuple[str, int],
    ) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.site = site
        self.reactor = reactor
        now = time.monotonic()
        self.expires = now + reactor.max_lifetime
        if site.context is None:
            self.state = "request"
            self.deadline = min(now + reactor.idle_timeout, self.expires)
        else:
            self.state = "handshake"
            self.deadline = min(now + reactor.handshake_timeout, self.expires)
        self.last_active = now
        self.inbuf = bytearray()
        self.outbuf = b""
        self.close_after = False
        self.requests = 0
        self.drained = 0
        self.events = 0
        self.local = local
        self.peer = peer
        self.on_sent: Callable[[], None] | None = None

    @property
    def tls(self) -> ssl.SSLSocket | None:
        return self.sock if isinstance(self.sock, ssl.SSLSocket) else None

    def _wait(self, seconds: float) -> None:
        """Start an absolute deadline: bytes that arrive later never move it."""
        self.deadline = min(time.monotonic() + seconds, self.expires)

    # Each branch runs until the socket would block, then returns the event it waits
    # for (_READ or _WRITE), or 0 when the connection is finished and must be closed.
    def step(self) -> int:
        self.last_active = time.monotonic()
        while True:
            if self.state == "handshake":
                try:
                    self.sock.do_handshake()  # type: ignore[attr-defined]
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
                self._wait(self.reactor.idle_timeout)
            elif self.state == "request":
                if self._next_response():
                    self.state = "response"
                    self._wait(self.reactor.idle_timeout)  # to read what we answer
                    continue
                try:
                    data = self.sock.recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
                    return _READ
                except ssl.SSLWantWriteError:
                    return _WRITE
                except (ssl.SSLError, OSError):
                    return 0  # close_notify, reset, or a broken record: nothing to save
                if not data:
                    if self.inbuf:
                        self.reactor._refused(self, "hung up in the middle of a request")
                    return 0  # the client closed: so do we
                self.inbuf += data
            elif self.state == "response":
                try:
                    sent = self.sock.send(self.outbuf)
                except ssl.SSLWantReadError:
                    return _READ
                except (ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
                    return _WRITE
                except (ssl.SSLError, OSError):
                    return 0
                self.outbuf = self.outbuf[sent:]
                if self.outbuf:
                    continue
                callback, self.on_sent = self.on_sent, None
                if callback is not None:
                    self.reactor._call_quietly(callback)
                if self.close_after:
                    self.state = "closing"
                else:
                    self.state = "request"
                    self._wait(self.reactor.idle_timeout)
            elif self.state == "closing":
                # RFC 8446 §6.1: say close_notify before closing, so the client can tell
                # a complete response from a truncation attack.
                if self.tls is not None:
                    with contextlib.suppress(ssl.SSLError, OSError, ValueError):
                        self.tls.unwrap()
                self._start_linger()
            elif self.state == "linger":
                try:
                    data = self.sock.recv(65536)  # plain socket now: just discard bytes
                except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
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
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.deadline = 0.0  # already gone: the sweep closes it

    def _next_response(self) -> bool:
        """Parse one request from ``inbuf``; queue its response. False if incomplete."""
        try:
            request = self._parse()
        except _HTTPError as err:
            self.reactor._refused(self, f"{err.reason} (HTTP {err.status})")
            self.outbuf = _render(Response(err.status, _error_page(err.status)), False, "GET")
            self.close_after = True
            self.inbuf.clear()
            return True
        if request is None:
            return False
        self.requests += 1
        # Near the end of its lifetime a connection says goodbye instead of idling into
        # its deadline, so a keep-alive client is not cut off in the middle of a request.
        last = time.monotonic() + self.reactor.idle_timeout >= self.expires
        keep_alive = _wants_keep_alive(request) and self.requests < MAX_REQUESTS and not last
        try:
            response = self.site.app(request)
        except Exception:  # noqa: BLE001 - a bug in a page must not kill the reactor
            response = Response(500, _error_page(500))
            keep_alive = False
        self.outbuf = _render(response, keep_alive, request.method)
        self.on_sent = response.on_sent
        self.close_after = not keep_alive
        return True

    def _parse(self) -> Request | None:
        end = self.inbuf.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
        if end < 0:
            if len(self.inbuf) > MAX_HEAD:
                raise _HTTPError(431, "request head over 16 KiB")
            return None
        head = bytes(self.inbuf[:end]).decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            raise _HTTPError(400, "not an HTTP request")
        method, target, version = parts
        if version not in ("HTTP/1.1", "HTTP/1.0"):
            raise _HTTPError(505, f"unsupported version {version[:20]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise _HTTPError(400, "malformed header")  # RFC 9112 §5.1: no space before ':'
            key = name.lower()
            if key in ("content-length", "host") and key in headers:
                # RFC 9112 §6.3 and §3.2: two lengths (even equal ones) or two hosts mean
                # the request can be read two ways; a proxy and we might disagree.
                raise _HTTPError(400, f"more than one {name} header")
            headers[key] = value.strip()
        if "transfer-encoding" in headers:
            # No chunked bodies here; closing avoids request smuggling.
            raise _HTTPError(501, "Transfer-Encoding")
        raw_length = headers.get("content-length", "0")
        if not _DIGITS.fullmatch(raw_length):
            raise _HTTPError(400, "Content-Length is not a number of bytes")  # -1, +5, 1e9, " "
        length = int(raw_length)
        if length > MAX_BODY:
            raise _HTTPError(413, "body over 64 KiB")
        if len(self.inbuf) < end + 4 + length:
            return None  # the body is still on its way
        del self.inbuf[: end + 4 + length]
        return Request(method, target, version, headers, self.tls, self.local, self.peer)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


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


def _address(sockaddr: object) -> tuple[str, int]:
    """``(host, port)`` from any socket address (IPv6 ones carry flow info and scope)."""
    if isinstance(sockaddr, tuple) and len(sockaddr) >= 2:
        return (str(sockaddr[0]), int(sockaddr[1]))
    return (str(sockaddr), 0)


class Reactor:
    """Serve any number of TLS (and plain HTTP) sites from one thread.

    ``add_site(context, app)`` binds a listening socket (port chosen by the OS unless
    given) and returns it; ``context=None`` serves plain HTTP. ``start()`` starts the
    thread; ``stop()`` closes every socket and joins the thread. Sites can be added and
    removed (:meth:`remove_site`) while the reactor runs.
    """

    def __init__(
        self,
        *,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
        linger_timeout: float = LINGER_TIMEOUT,
        max_lifetime: float = MAX_LIFETIME,
        max_connections: int | None = None,
        accept_pause: float = ACCEPT_PAUSE,
        name: str = "tls-lab",
    ) -> None:
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.linger_timeout = linger_timeout
        self.max_lifetime = max_lifetime
        self.accept_pause = accept_pause
        #: None: derived from the fd limit when the reactor starts (connection_cap()).
        self.max_connections: int = max_connections or 0
        self._cap_from_limit = max_connections is None
        self.name = name
        self._selector = selectors.DefaultSelector()
        self._sites: dict[int, _Site] = {}
        self._connections: dict[int, _Connection] = {}
        # Per client address, its connections from the least to the most recently active
        # (an OrderedDict: moving one to the end is O(1)), for fair eviction; which
        # addresses hold how many (so the busiest is found without scanning them all);
        # and every connection in the same order (the idlest of all, when all tie).
        self._by_address: dict[str, OrderedDict[int, _Connection]] = {}
        self._by_count: dict[int, dict[str, None]] = {}
        self._top = 0  # the most connections any one address holds
        self._lru: OrderedDict[int, _Connection] = OrderedDict()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, _READ, None)
        self._closed = False
        self._calls: list[tuple[Callable[[], None], threading.Event]] = []
        self._calls_lock = threading.Lock()
        self._paused_until = 0.0
        self.accepted = 0  # connections accepted so far (for tests and curiosity)
        self.evicted = 0  # connections dropped to make room
        self.accept_pauses = 0  # times accept() ran out of file descriptors

    # --- setup
    def add_site(
        self,
        context: ssl.SSLContext | None,
        app: App,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "",
        backlog: int = 512,
        on_refused: RefusalHook | None = None,
    ) -> socket.socket:
        """Listen on ``(host, port)`` (port 0: the OS picks a free one) for ``context``.

        ``context=None`` serves plain HTTP. ``on_refused(address, reason)`` is told about
        each client this site refuses (malformed request, deadline, eviction, hang-up
        mid-request); it runs on the reactor thread and must be quick.
        """
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
        site = _Site(listener, context, app, name, on_refused)

        def register() -> None:
            self._sites[listener.fileno()] = site
            if self._paused_until == 0.0:
                self._selector.register(listener, _READ, site)

        self._in_loop(register)
        return listener

    def remove_site(self, listener: socket.socket) -> None:
        """Stop serving ``listener``: close it and every connection it accepted."""

        def remove() -> None:
            site = self._sites.pop(listener.fileno(), None)
            if site is None:
                return
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(listener)
            for conn in [c for c in self._connections.values() if c.site is site]:
                self._drop(conn)
            listener.close()

        self._in_loop(remove)

    def _in_loop(self, call: Callable[[], None]) -> None:
        """Run ``call`` on the reactor thread (selectors are not thread-safe) and wait."""
        thread = self._thread
        if thread is None or not thread.is_alive() or thread is threading.current_thread():
            call()
            return
        done = threading.Event()
        failure: list[BaseException] = []

        def guarded() -> None:
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - handed back to the calling thread
                failure.append(exc)

        with self._calls_lock:
            self._calls.append((guarded, done))
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if not done.wait(5):
            raise RuntimeError("the lab's server thread did not answer within 5 s")
        if failure:
            raise failure[0]

    # --- lifecycle
    def start(self) -> None:
        if self._thread is not None:
            return
        if self._cap_from_limit:
            self.max_connections = connection_cap(listeners=len(self._sites))
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
        self._by_address.clear()
        self._by_count.clear()
        self._lru.clear()
        for site in self._sites.values():
            site.listener.close()
        self._sites.clear()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
        with self._calls_lock:
            calls, self._calls = self._calls, []
        for _call, done in calls:
            done.set()

    @property
    def connections(self) -> int:
        """How many client connections are open right now."""
        return len(self._connections)

    # --- the loop
    def _run(self) -> None:
        next_sweep = time.monotonic() + 0.25
        while not self._stopping.is_set():
            wake_at = next_sweep if not self._paused_until else min(next_sweep, self._paused_until)
            for key, _mask in self._selector.select(max(0.0, wake_at - time.monotonic())):
                data = key.data
                try:
                    if data is None:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(64)
                        self._run_calls()
                    elif isinstance(data, _Site):
                        if data.listener.fileno() in self._sites:
                            self._accept(data)
                    elif self._connections.get(data.fd) is data:
                        # (A connection dropped earlier in this batch may have had its
                        # descriptor number reused by one accepted since: skip its event.)
                        self._advance(data)
                except Exception:  # noqa: BLE001,S112 - isolation: one socket, never the loop
                    continue
            now = time.monotonic()
            if self._paused_until and now >= self._paused_until:
                self._resume_accepting()
            if now >= next_sweep:
                self._sweep(now)
                next_sweep = now + 0.25

    def _run_calls(self) -> None:
        with self._calls_lock:
            calls, self._calls = self._calls, []
        for call, done in calls:
            try:
                call()
            finally:
                done.set()

    def _accept(self, site: _Site) -> None:
        retried = False
        for _ in range(64):  # accept a burst, then let other sockets have a turn
            try:
                sock, addr = site.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno not in _OUT_OF_FDS:
                    return  # ECONNABORTED and friends: that client is gone already
                # Out of descriptors. The listener stays readable, so select() would
                # return at once, forever (a busy loop). Free one descriptor (fair
                # eviction) and try once more; if that is not enough (the descriptors
                # are held by something else in this process), look away from the
                # listeners for a moment.
                if self._connections and not retried:
                    self._evict()
                    retried = True
                    continue
                self._pause_accepting()
                return
            self.accepted += 1
            try:
                _nodelay(sock)
                sock.setblocking(False)
                local = _address(sock.getsockname())
                conn_sock: socket.socket = sock
                if site.context is not None:
                    conn_sock = site.context.wrap_socket(
                        sock, server_side=True, do_handshake_on_connect=False
                    )
            except (ssl.SSLError, OSError):
                sock.close()
                continue
            while len(self._connections) >= self.max_connections and self._evict():
                pass
            conn = _Connection(conn_sock, site, self, local, _address(addr))
            self._connections[conn.fd] = conn
            self._lru[conn.fd] = conn
            bucket = self._by_address.setdefault(conn.peer[0], OrderedDict())
            self._recount(conn.peer[0], len(bucket), len(bucket) + 1)
            bucket[conn.fd] = conn
            conn.events = _READ
            self._selector.register(conn_sock, _READ, conn)
            self._advance(conn)

    def _pause_accepting(self) -> None:
        self.accept_pauses += 1
        self._paused_until = time.monotonic() + self.accept_pause
        for site in self._sites.values():
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(site.listener)

    def _resume_accepting(self) -> None:
        self._paused_until = 0.0
        for site in self._sites.values():
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.register(site.listener, _READ, site)

    def _advance(self, conn: _Connection) -> None:
        try:
            wanted = conn.step()
        except Exception:  # noqa: BLE001 - isolation: one broken connection only
            wanted = 0
        if wanted == 0:
            self._drop(conn)
            return
        bucket = self._by_address.get(conn.peer[0])
        if bucket is not None and bucket.get(conn.fd) is conn:
            bucket.move_to_end(conn.fd)  # now the most recently active of its address
            self._lru.move_to_end(conn.fd)  # ... and of all
        if wanted != conn.events:
            conn.events = wanted
            self._selector.modify(conn.sock, wanted, conn)

    def _drop(self, conn: _Connection) -> None:
        # Compare identities, not descriptor numbers: the kernel reuses a closed
        # connection's number for the next accept(), and forgetting *that* connection
        # would leave it registered but unowned (its events ignored: a busy loop).
        if self._connections.get(conn.fd) is conn:
            del self._connections[conn.fd]
            self._lru.pop(conn.fd, None)
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._selector.unregister(conn.sock)
            bucket = self._by_address.get(conn.peer[0])
            if bucket is not None and bucket.get(conn.fd) is conn:
                self._recount(conn.peer[0], len(bucket), len(bucket) - 1)
                del bucket[conn.fd]
                if not bucket:
                    del self._by_address[conn.peer[0]]
        conn.close()

    def _recount(self, address: str, old: int, new: int) -> None:
        """``address`` now holds ``new`` connections instead of ``old``."""
        if old:
            group = self._by_count[old]
            del group[address]
            if not group:
                del self._by_count[old]
        if new:
            self._by_count.setdefault(new, {})[address] = None
            self._top = max(self._top, new)
        while self._top and self._top not in self._by_count:
            self._top -= 1

    def _evict(self) -> bool:
        """Drop the idlest connection of the address that holds the most (fair eviction).

        Constant time, since an attacker can make the reactor do this thousands of times
        a second: the busiest addresses are looked up by count, and among at most 32 of
        them the one whose idlest connection is idlest loses it. When every address holds
        one connection, that is simply the idlest connection of all.
        """
        if not self._connections:
            return False
        if self._top <= 1:
            victim = next(iter(self._lru.values()))
        else:
            busiest = itertools.islice(self._by_count[self._top], 32)
            victim = min(
                (next(iter(self._by_address[a].values())) for a in busiest),
                key=lambda c: c.last_active,
            )
        self.evicted += 1
        if victim.state in ("handshake", "request") and (victim.inbuf or victim.requests == 0):
            self._refused(victim, "dropped to make room (too many connections)")
        self._drop(victim)
        return True

    def _sweep(self, now: float) -> None:
        for conn in [c for c in self._connections.values() if c.deadline <= now]:
            if conn.state in ("handshake", "request") and (conn.inbuf or conn.requests == 0):
                self._refused(conn, "too slow (deadline passed)")
            self._drop(conn)

    def _refused(self, conn: _Connection, reason: str) -> None:
        hook = conn.site.on_refused
        if hook is not None:
            self._call_quietly(lambda: hook(conn.peer[0], reason))

    @staticmethod
    def _call_quietly(call: Callable[[], None]) -> None:
        """Run a site's callback; its bug must not take down the loop or print a traceback."""
        with contextlib.suppress(Exception):
            call()
