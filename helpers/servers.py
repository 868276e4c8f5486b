"""Tiny web servers for the lessons: a login page, over HTTP or HTTPS (introduced in notebook 01).

Notebook 01 sends a password to this server in plain HTTP and then over TLS, to show
what an eavesdropper sees; notebook 07 uses it as the "bank" that a man in the
middle attacks. It is built on the standard library's :mod:`http.server`, so a
learner can read all of it; notebook 05 shows the same TLS wrapping step by step.

Theory of operation
-------------------
:class:`http.server.ThreadingHTTPServer` accepts TCP connections in one thread and
hands each one to a new thread. To serve HTTPS we wrap each accepted socket with
:meth:`ssl.SSLContext.wrap_socket` *inside that per-connection thread*
(:meth:`_Server.finish_request`). Wrapping the listening socket instead would run
every handshake in the accept loop, where one client that connects and says nothing
would stall everyone else.

The server binds 127.0.0.1 on a port chosen by the operating system (port 0), so
re-running a cell never fails with "address already in use". It is a context
manager; :meth:`LoginServer.stop` closes the socket, ends every open connection and
joins the threads. Any other address needs ``allow_network=True``
(:func:`require_loopback_bind`).

What a server must refuse
-------------------------
Even a demo server is a model of one, and one thread per connection is only safe when
no client can keep its thread forever or make it buffer without limit:

* **The body's length.** ``Content-Length`` is ``1*DIGIT`` (RFC 9110 §8.6): a
  negative, signed or non-numeric value, or two of them, make the message's framing
  invalid, and RFC 9112 §6.3 (rule 5) says a server then answers 400 and closes the
  connection. Before this check, ``Content-Length: -1`` turned into ``read(-1)``,
  "read until the client hangs up", past any size limit. A body the request needs but
  whose length is not given gets 411 Length Required (RFC 9110 §15.5.12); one over the
  server's cap gets 413 Content Too Large (RFC 9110 §15.5.14), without being read.
  ``Transfer-Encoding`` (chunked) is not implemented here: 501 (RFC 9112 §6.1).
  :meth:`QuietHandler.read_body` does all of this.
* **Time.** Every socket gets a timeout (:attr:`HTTPService.idle_timeout`), so a
  client that connects and says nothing frees its thread. A timeout bounds each
  ``recv`` only: a client that sends one byte every few seconds would never trigger
  it. So each request also has an absolute deadline
  (:attr:`HTTPService.request_deadline`) for its request line, headers and body,
  checked before every read (:class:`_DeadlineReader`).
* **Numbers.** At most :attr:`HTTPService.max_connections` connections are served at
  once; the next one is closed at once instead of getting a thread.

That life cycle lives in :class:`HTTPService`, which the OCSP responder of notebook 08
(:mod:`helpers.ocsp`) shares: a subclass only says how to answer a request.
"""

from __future__ import annotations

import contextlib
import html
import io
import ipaddress
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from . import live, names
from .errors import UsageError
from .serving import Service, hang_up, linger_close, set_nodelay

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family:sans-serif"><h1>{title}</h1>{body}</body></html>"""


@dataclass
class Login:
    """One login attempt the server received."""

    user: str
    password: str
    ok: bool


def _is_loopback(host: str) -> bool:
    """A loopback address literal, or ``localhost``/``*.localhost`` (RFC 6761 §6.3).

    The name is compared as the resolver will see it (:func:`helpers.names._normalise`):
    case, a trailing dot, fullwidth letters and Unicode full stops do not matter, as in
    :mod:`helpers.fetch`, :mod:`helpers.probe` and :mod:`helpers.ocsp`.
    """
    name = names._normalise(host.strip("[]")) or ""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def require_loopback_bind(host: str, *, allow_network: bool, what: str) -> None:
    """Refuse to listen anywhere but loopback unless the caller said ``allow_network=True``.

    Used by :class:`HTTPService` (so :class:`LoginServer` and
    :class:`helpers.ocsp.Responder`), :class:`helpers.mitm.Interceptor` and
    :class:`helpers.capture.Relay` (notebooks 01, 07, 08). On ``0.0.0.0``, ``::`` or a
    LAN address, anyone on the same network (a classroom, a café's Wi-Fi) can connect:
    to a man in the middle that shows them its victims' plaintext, or a relay that
    forwards them wherever it points.
    """
    if allow_network or _is_loopback(host):
        return
    raise UsageError(
        f"{what} would listen on {host or 'every interface'!r}, which other machines on "
        "the network can reach.",
        "Leave the address at 127.0.0.1, or pass allow_network=True if you really mean "
        "to expose it (read that argument's docstring first).",
    )


def require_local_upstream(host: str, *, allow_remote: bool, what: str) -> None:
    """Refuse to forward to a real host unless live mode is on *and* ``allow_remote=True``.

    Local means loopback, a lab name (``*.lab.localhost``, :mod:`helpers.names`) or an
    address the lab's names point to (the teacher's machine, after ``lab.join``). Any
    other host is a real server on the internet: intercepting or relaying traffic to it
    is what an attacker does, so it takes two deliberate steps, like the live cells of
    :func:`helpers.ocsp.check_ocsp` or :mod:`helpers.probe` (one: live mode,
    :func:`helpers.live.require`).
    """
    if _is_loopback(host) or names.is_lab_name(host) or host in set(names.table().values()):
        return
    if not allow_remote:
        raise UsageError(
            f"{what} refuses to forward to {host!r}: it is neither loopback nor a lab name.",
            "Point it at a lab server (lab.address(...)); to use a real host, turn live "
            "mode on and pass allow_remote=True.",
        )
    live.require()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a client opening more connections at once (a
    # scanner, notebook 08) gets its extra SYNs dropped and waits a 1 s retransmit.
    request_queue_size = 64
    tls: ssl.SSLContext | None = None
    idle_timeout = 10.0
    request_deadline = 20.0
    max_connections = 128

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()  # the connections being served

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve in a new thread, unless :attr:`max_connections` are already served."""
        with self._lock:
            full = len(self._open) >= self.max_connections
            if not full:
                self._open.add(request)
        if full:
            self.shutdown_request(request)  # closed before it gets a thread
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread (the machine is out of them): forget it
            with self._lock:
                self._open.discard(request)
            self.shutdown_request(request)

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            self._serve(request, client_address)
        finally:
            with self._lock:
                self._open.discard(request)

    def _serve(self, request: Any, client_address: Any) -> None:
        set_nodelay(request)
        request.settimeout(self.idle_timeout)  # the handler also sets it; this covers the handshake
        if self.tls is not None:
            # do_handshake_on_connect=False: if the handshake fails, the socket is still
            # ours, so we can close it politely (refuse) instead of wrap_socket closing it.
            # The timeout bounds the whole handshake (CPython counts it as one deadline).
            tls = self.tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            with self._lock:  # wrap_socket took over the descriptor: stop() must see tls
                self._open.discard(request)
                self._open.add(tls)
            try:
                try:
                    tls.do_handshake()
                except (ssl.SSLError, OSError):
                    refuse(tls)  # a refused handshake ends that connection only
                    return
                # socketserver would close the old, now empty, socket object, so the TLS
                # one must be closed here.
                with tls:
                    super().finish_request(tls, client_address)
            finally:
                with self._lock:
                    self._open.discard(tls)
            return
        super().finish_request(request, client_address)

    def hang_up_all(self) -> None:
        """End every connection being served, so their threads return (for ``stop()``)."""
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            hang_up(sock)  # wakes that thread's recv with EOF, leaves its TLS state alone

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that vanishes is not the server's problem (and not stderr noise)."""


class _Server6(_Server):
    address_family = socket.AF_INET6  # for host="::1"


_LINGER = 1.0  # seconds a refused client gets to read the alert and hang up


def refuse(tls: ssl.SSLSocket) -> None:
    """Close a connection whose handshake failed so that the client can read why.

    Introduced in notebook 05 (its ``EchoServer`` calls it after a refused client
    certificate); :class:`LoginServer` and the lab close refused clients the same way.

    OpenSSL has already sent the alert (``certificate_required``, ``unknown_ca``, ...).
    Under TLS 1.3 the *client's* handshake ended before the server judged its
    certificate (RFC 8446 §4.4.2.4), so the client may already be sending its request.
    Closing a socket with unread bytes in it makes the kernel send a TCP reset, and a
    reset can reach the client before it reads the alert: Python 3.13+ then raises
    ``ConnectionResetError``, 3.11/3.12 ``SSLEOFError``, instead of the alert. So: send
    our FIN after the alert (``shutdown(SHUT_WR)``), read and drop what the client still
    sends until it hangs up (at most :data:`_LINGER` seconds in all, and 1 MiB: a
    deadline, not a timeout per read, or a client trickling a byte at a time would
    keep the thread), then close.
    """
    linger_close(tls, _LINGER)  # helpers/serving.py; the alert is already on its way


class _DeadlineReader(io.RawIOBase):
    """The socket's bytes, each ``recv`` bounded by the idle timeout *and* a deadline.

    :class:`QuietHandler` reads a request in many steps (a line, each header, the body).
    A socket timeout bounds each step, so a client that trickles one byte every few
    seconds would keep the thread forever. Before every ``recv`` this reader sets the
    timeout to what is left of the request's deadline, and once it has passed raises
    :class:`TimeoutError`, as a socket timeout would.
    """

    def __init__(self, sock: socket.socket, idle: float) -> None:
        self._sock, self._idle = sock, idle
        self.deadline = time.monotonic() + idle

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took longer than its deadline")
        self._sock.settimeout(min(self._idle, left))
        return self._sock.recv_into(buffer)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that speaks HTTP/1.1, keeps stderr clean and bounds every read.

    Its socket has the server's idle timeout, every request an absolute deadline, and
    :meth:`read_body` refuses bodies whose length is invalid or over a cap (see the
    module docstring).
    """

    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        self.timeout = self.server.idle_timeout  # StreamRequestHandler applies it
        super().setup()
        self.rfile.close()  # replaced by one that honours the request deadline
        self._reader = _DeadlineReader(self.connection, self.server.idle_timeout)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        # The clock starts when we wait for a request line, so an idle keep-alive
        # connection and a slow request are bounded alike.
        self._reader.deadline = time.monotonic() + self.server.request_deadline
        super().handle_one_request()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the default writes every request to stderr

    def reply(
        self, status: HTTPStatus, body: bytes, content_type: str, *, close: bool = False
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: HTTPStatus, why: str) -> None:
        """Answer ``status`` with one sentence, and close: the framing cannot be trusted.

        A body may still be on its way. Closing a socket with unread bytes makes the
        kernel send a reset, which can destroy our answer before the client reads it
        (RFC 9112 §9.6), so we first read and drop what arrives: at most 1 MiB, for at
        most :data:`_LINGER` seconds.
        """
        self.reply(status, why.encode() + b"\n", "text/plain; charset=utf-8", close=True)
        self._reader.deadline = time.monotonic() + _LINGER
        scratch, dropped = bytearray(65536), 0
        with contextlib.suppress(OSError, ValueError):  # TimeoutError is an OSError
            while dropped < 1 << 20:
                count = self._reader.readinto(scratch)
                if not count:
                    break
                dropped += count

    def read_body(self, cap: int, *, required: bool = True) -> bytes | None:
        """The request body, or None after answering 400/411/413/501 (RFC 9112 §6.3).

        ``cap`` is the largest body accepted, in bytes. The length is checked *before*
        anything is read: ``0 <= length <= cap``; then exactly that many bytes are read
        (within the request deadline; 408 if it passes).
        """
        if self.headers.get("Transfer-Encoding") is not None:
            self._refuse(HTTPStatus.NOT_IMPLEMENTED, "Transfer-Encoding is not supported here.")
            return None
        values = self.headers.get_all("Content-Length") or []
        if not values:
            if required:
                self._refuse(HTTPStatus.LENGTH_REQUIRED, "This request needs a Content-Length.")
                return None
            return b""
        # One field, one value: "Content-Length: 5, 5" and two lines are both refused
        # (RFC 9110 §8.6 allows accepting identical ones; a model server need not).
        value = values[0].strip()
        if len(values) > 1 or not re.fullmatch(r"[0-9]+", value):
            self._refuse(HTTPStatus.BAD_REQUEST, "Content-Length must be one decimal number.")
            return None
        if len(value) > 18 or int(value) > cap:
            self._refuse(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"The body may be at most {cap} bytes."
            )
            return None
        length = int(value)
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            self._refuse(HTTPStatus.REQUEST_TIMEOUT, "The request took too long to arrive.")
            return None
        if len(body) < length:  # the client hung up mid-body
            self.close_connection = True
            return None
        return body


class HTTPService(Service):
    """An :mod:`http.server` in a background thread, on 127.0.0.1 and a port the OS picks.

    Subclasses implement :meth:`handler`, returning the request handler class. With
    ``tls`` set, each connection is wrapped in TLS in its own thread (see the module
    docstring). Use it as a context manager, or call :meth:`start` and :meth:`stop`.

    ``host`` must be a loopback address unless ``allow_network=True``. That argument is
    dangerous: on ``0.0.0.0`` or a LAN address every machine on the network can reach a
    server that exists to be attacked, or to collect passwords, in a lesson.
    """

    #: Seconds a connection may stay silent (each read) before it is closed.
    idle_timeout: float = 10.0
    #: Seconds a whole request (request line, headers, body) may take to arrive.
    request_deadline: float = 20.0
    #: Connections served at once; more are closed as they arrive.
    max_connections: int = 128

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_network: bool = False,
    ) -> None:
        require_loopback_bind(host, allow_network=allow_network, what=f"The {type(self).__name__}")
        self.tls = tls
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Self:
        if self._server is not None:
            return self
        kind = _Server6 if ":" in self._address[0] else _Server
        try:
            server = kind(self._address, self.handler())
        except OSError as exc:
            raise UsageError(
                f"The {type(self).__name__} cannot listen on {self._address[0]!r} port "
                f"{self._address[1]} ({exc.strerror or exc}).",
                "Use port 0 (the OS picks a free one) and an address this machine owns.",
            ) from None
        server.tls = self.tls
        server.idle_timeout = self.idle_timeout
        server.request_deadline = self.request_deadline
        server.max_connections = self.max_connections
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the port, end open connections and join every thread (safe
        to call twice)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.hang_up_all()
        server.server_close()  # joins the connection threads
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError(
                f"the {type(self).__name__} is not running: call start() or use `with`"
            )
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.address[0]}:{self.port}/"


class LoginServer(HTTPService):
    """A one-page site with a login form, on 127.0.0.1, over HTTP or (with ``tls=``) HTTPS.

    >>> with LoginServer(password="hunter2") as site:
    ...     requests.post(site.url + "login", data={"user": "ada", "password": "hunter2"})

    ``headers`` are added to every response, e.g.
    ``{"Strict-Transport-Security": "max-age=31536000"}``. ``host`` other than loopback
    needs ``allow_network=True`` (see :class:`HTTPService`: a login page on the
    network collects real people's passwords).
    """

    #: The largest login form accepted, in bytes.
    max_body = 64 * 1024

    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        user: str = "ada",
        password: str = "correct horse battery staple",  # noqa: S107 (a demo secret the lesson reveals)
        title: str = "Tiny Bank",
        host: str = "127.0.0.1",
        port: int = 0,
        headers: Mapping[str, str] | None = None,
        allow_network: bool = False,
    ) -> None:
        super().__init__(tls=tls, host=host, port=port, allow_network=allow_network)
        self.user, self.password, self.title = user, password, title
        #: Extra response headers sent with every page (notebook 08: Strict-Transport-Security).
        self.headers: dict[str, str] = dict(headers or {})
        self.logins: list[Login] = []

    def handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(QuietHandler):
            def _send(self, status: HTTPStatus, body: str) -> None:
                data = _PAGE.format(title=html.escape(site.title), body=body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in site.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._send(
                    HTTPStatus.OK,
                    '<form method="post" action="/login">'
                    '<input name="user"> <input name="password" type="password">'
                    "<button>Log in</button></form>",
                )

            def do_POST(self) -> None:
                body = self.read_body(site.max_body)
                if body is None:
                    return  # refused (400/411/413/501), see QuietHandler.read_body
                form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
                user = form.get("user", [""])[0]
                password = form.get("password", [""])[0]
                ok = (user, password) == (site.user, site.password)
                site.logins.append(Login(user, password, ok))
                if ok:
                    self._send(
                        HTTPStatus.OK, f"<p>Welcome, {html.escape(user)}. Balance: 1,234.56</p>"
                    )
                else:
                    self._send(HTTPStatus.FORBIDDEN, "<p>Wrong user or password.</p>")

        return Handler

    def __repr__(self) -> str:
        state = self.url if self.running else "stopped"
        return f"<LoginServer {self.title!r} {state}>"
