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
As a :class:`helpers.serving.ThreadedServer` (that module says which attack each limit
stops): one thread accepts; each connection gets a thread with a per-read timeout and an
absolute deadline (handshake, request and answer together), at most ``max_connections``
at once. At the cap the oldest connection of the address that holds the most is dropped
(fair eviction, as the lab's reactor does), so one noisy client cannot lock others out.
Loopback only unless ``allow_network=True`` (a teacher's shared lab).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time

from ..servers import require_loopback_bind
from ..serving import ThreadedServer
from .server import App, Request

__all__ = ["TruncatingServer"]

#: The largest request head read before giving up (bytes).
MAX_REQUEST = 16 * 1024


class TruncatingServer(ThreadedServer):
    """Answer each HTTP request over TLS without Content-Length, then hang up without
    close_notify.

    ``context`` is a server :class:`ssl.SSLContext` (certificate loaded); ``app`` makes the
    response (:data:`helpers.lab.server.App`: the same pages the other lab servers show).
    ``host`` must be loopback unless ``allow_network=True``; ``port=0`` lets the OS pick.
    :meth:`start`/:meth:`stop` or ``with``; :attr:`port`, :attr:`address`; :attr:`log`
    has a line per connection (who, how it ended).
    """

    what = "The truncation server"
    thread_name = "tls-truncating"

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
        require_loopback_bind(host, allow_network=allow_network, what=self.what)
        super().__init__(
            host,
            port,
            max_connections=max_connections,
            fair_eviction=True,
            idle_timeout=idle_timeout,
            deadline=deadline,
        )
        self._context = context
        self._app = app

    def wrap(self, sock: socket.socket) -> ssl.SSLSocket:
        # No I/O yet: the handshake runs in the connection's thread.
        return self._context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)

    def serve(self, sock: socket.socket, peer: tuple[str, int]) -> str:
        assert isinstance(sock, ssl.SSLSocket)
        try:
            return self._converse(sock, time.monotonic() + self.deadline)
        except TimeoutError:
            return "timed out"
        except (ssl.SSLError, OSError, ValueError) as exc:
            return f"ended: {type(exc).__name__}"

    def _converse(self, tls: ssl.SSLSocket, end: float) -> str:
        tls.settimeout(self.read_timeout(end))
        tls.do_handshake()
        head = bytearray()
        while b"\r\n\r\n" not in head:
            tls.settimeout(self.read_timeout(end))
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
        tls.settimeout(self.read_timeout(end))
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
