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
manager; :meth:`LoginServer.stop` closes the socket and joins the thread.

That life cycle lives in :class:`HTTPService`, which the OCSP responder of notebook 08
(:mod:`helpers.ocsp`) shares: a subclass only says how to answer a request.
"""

from __future__ import annotations

import html
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family:sans-serif"><h1>{title}</h1>{body}</body></html>"""


@dataclass
class Login:
    """One login attempt the server received."""

    user: str
    password: str
    ok: bool


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a client opening more connections at once (a
    # scanner, notebook 08) gets its extra SYNs dropped and waits a 1 s retransmit.
    request_queue_size = 64
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            request.settimeout(10)  # a client that never finishes its handshake frees the thread
            # do_handshake_on_connect=False: if the handshake fails, the socket is still
            # ours, so we can close it politely (refuse) instead of wrap_socket closing it.
            tls = self.tls.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            try:
                tls.do_handshake()
            except (ssl.SSLError, OSError):
                refuse(tls)  # a refused handshake ends that connection only
                return
            # wrap_socket took over the file descriptor: socketserver would close the old,
            # now empty, socket object, so the TLS one must be closed here.
            with tls:
                super().finish_request(tls, client_address)
            return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that vanishes is not the server's problem (and not stderr noise)."""


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
    sends until it hangs up (at most :data:`_LINGER` seconds), then close.
    """
    try:
        tls.shutdown(socket.SHUT_WR)  # drops the TLS layer; the alert is already on its way
        tls.settimeout(_LINGER)
        received = 0
        while received < 1 << 20:
            chunk = tls.recv(65536)  # plain TCP now
            if not chunk:
                break
            received += len(chunk)
    except OSError:
        pass  # the client was quicker; nothing left to be polite to
    finally:
        tls.close()


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that speaks HTTP/1.1 and keeps stderr clean."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the default writes every request to stderr

    def reply(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class HTTPService:
    """An :mod:`http.server` in a background thread, on 127.0.0.1 and a port the OS picks.

    Subclasses implement :meth:`handler`, returning the request handler class. With
    ``tls`` set, each connection is wrapped in TLS in its own thread (see the module
    docstring). Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self, *, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.tls = tls
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Self:
        if self._server is not None:
            return self
        server = _Server(self._address, self.handler())
        server.tls = self.tls
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the port and join the thread (safe to call twice)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

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
    def port(self) -> int:
        return self.address[1]

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.address[0]}:{self.port}/"


class LoginServer(HTTPService):
    """A one-page site with a login form, on 127.0.0.1, over HTTP or (with ``tls=``) HTTPS.

    >>> with LoginServer(password="hunter2") as site:
    ...     requests.post(site.url + "login", data={"user": "ada", "password": "hunter2"})

    ``headers`` are added to every response, e.g.
    ``{"Strict-Transport-Security": "max-age=31536000"}``.
    """

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
    ) -> None:
        super().__init__(tls=tls, host=host, port=port)
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
                length = min(int(self.headers.get("Content-Length") or 0), 64 * 1024)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
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
