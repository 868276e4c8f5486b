"""The lab's HTTP CONNECT proxy: a plain tunnel, and a TLS-inspecting "corporate" one (notebook 09).

Theory of operation
-------------------
Most companies send their employees' web traffic through a proxy. A client asks it for
a tunnel with one line of HTTP, ``CONNECT bank.example:443 HTTP/1.1`` (RFC 9110
§9.3.6); the proxy opens a TCP connection to that host, answers ``200``, and from then
on copies bytes both ways without looking at them. The client's TLS handshake goes
through the tunnel untouched, so the client still sees the real server's certificate.
That is the **tunnel** mode here (``lab.proxy.tunnel``), and through it every lab
scenario behaves exactly as it does directly.

A **TLS-inspecting** proxy (Zscaler, Netskope, Palo Alto "SSL forward proxy", Cisco
Umbrella, many antivirus products) answers the same ``200`` and then does *not* pass
the handshake on. It **terminates** the client's TLS itself, with a certificate for the
requested name that it issues on the fly, signed by the company's own root (here a
"Corporate Inspection CA" made in memory when the lab starts). It opens a second TLS
connection to the real server, checks that server's certificate like any careful
client (against the lab CA here; a real one uses its own store), and relays the
decrypted HTTP between the two::

    client ==TLS #1==> inspecting proxy ==TLS #2==> real server
        (leaf for the site, issued by            (the real server's certificate,
         "Corporate Inspection CA")               verified by the proxy)

That is the ``inspecting`` mode (``lab.proxy.inspecting``). It explains the most common
TLS failure at work: **every** HTTPS site fails, in every tool, with
``CERTIFICATE_VERIFY_FAILED``. The proxy sends its root along with the leaf (as many
appliances do), so the error is usually verify code 19, "self-signed certificate in
certificate chain" (code 20, "unable to get local issuer certificate", when the root is
not sent). The company pushed its root into the *operating system's* store, where
browsers find it; but Python tools trust ``certifi``'s bundle or OpenSSL's own files,
which have never heard of it. The fix is to trust that root too, in every tool, each
with its own setting (notebook 09's runbook; ``python -m helpers.doctor``).

Two consequences notebook 09 shows:

* The client no longer verifies the real server: the proxy does. A site whose
  certificate has expired reaches the client as a proxy error page (here ``502 Bad
  Gateway`` with one sentence naming the upstream failure), not as a certificate error.
  This proxy verifies with ``ssl.create_default_context(cafile=lab CA)``, the same
  checks as a default client of the running Python, so its verdict on each scenario is
  the scenario's ``expect``.
* Client certificates cannot pass through (the proxy does not have the client's key):
  ``client-cert-required`` fails behind an inspecting proxy, as mutual TLS does behind a
  real one unless the site is exempted.

What clients say (measured December 2026 on Python 3.11 + OpenSSL 3.0 and Python 3.13
+ OpenSSL 3.5, requests 2.34 / urllib3 2.x, curl 7.88 and 8.14; the same on both):

* through ``inspecting``, trusting the lab CA alone: requests and urllib raise
  ``[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate
  in certificate chain``; curl exits 60, ``SSL certificate problem: self-signed
  certificate in certificate chain``; ``openssl s_client -proxy HOST:PORT -showcerts``
  shows ``i:...CN = Corporate Inspection CA`` under every certificate and
  ``Verify return code: 19``. curl's ``--proxy-cacert`` does not help: it is for an
  ``https://`` proxy's *own* certificate; the re-signed site needs ``--cacert``.
* an ``https://`` proxy URL for this plain-HTTP proxy: the client starts TLS, the proxy
  answers ``400`` in plain text at once, and OpenSSL reads ``HTTP/1.1`` as a record
  header: requests raises ``ProxyError`` ("Your proxy appears to only use HTTP and not
  HTTPS, try changing your proxy URL to be HTTP") around ``[SSL: WRONG_VERSION_NUMBER]
  wrong version number``; curl exits 35, ``error:0A00010B:SSL routines::wrong version
  number``. urllib ignores the proxy URL's scheme and works.

Fenced for a classroom, unlike a real proxy: it listens on loopback only; it connects
only to lab names (looked up in the lab's own table, :mod:`helpers.names`, never DNS)
and loopback addresses, and answers ``403 Forbidden`` to any other target, so it is
never an open proxy; the inspection root is name-constrained to ``localhost`` and the
loopback blocks (RFC 5280 §4.2.1.10) and its private key lives only in this process's
memory (its certificate, public, is written next to the lab CA as ``inspection_ca``).
Anything but ``CONNECT`` gets ``405 Method Not Allowed``: the lab has no plain-HTTP
sites to fetch, and a proxy that fetched ``GET http://...`` URLs would be a second,
different code path for learners to misread.

Each connection has a thread of its own (not the lab's one-thread reactor,
:mod:`helpers.lab.server`): a tunnel is a short, readable sequence of blocking steps
(read the head, connect, answer, shake hands twice) followed by a relay, where the
thread waits on both sockets with :mod:`selectors`, so each SSL object is only ever
used by that one thread (OpenSSL forbids sharing one between threads).

Limits (each one a way a client in the room could otherwise hold the proxy hostage):
at most :data:`MAX_CONNECTIONS` connections per mode, each with its own thread (more
are answered ``503`` and closed); the ``CONNECT`` head must arrive within
:data:`HEAD_TIMEOUT` and fit in :data:`MAX_HEAD` bytes; handshakes get
:data:`HANDSHAKE_TIMEOUT`; a tunnel silent both ways for :data:`IDLE_TIMEOUT` is closed,
and none lives longer than :data:`MAX_LIFETIME`; at most :data:`MAX_LEAVES` issued
certificates are cached. Every error ends its own connection only, quietly: nothing
a client sends prints a traceback.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import ipaddress
import os
import re
import selectors
import socket
import ssl
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Self

from cryptography.hazmat.primitives.serialization import Encoding

from .. import names
from ..errors import LabError
from ..pki import CA, Leaf
from ..serving import Service, hang_up, linger_close, set_nodelay

__all__ = ["MODES", "ConnectProxy", "LabProxy", "parse_connect"]

MODES = ("tunnel", "inspecting")
HEAD_TIMEOUT = 10.0  # seconds for the whole CONNECT request head to arrive
HANDSHAKE_TIMEOUT = 10.0  # seconds for each TLS handshake (client side, server side)
CONNECT_TIMEOUT = 5.0  # seconds to open the TCP connection to the target
IDLE_TIMEOUT = 30.0  # seconds a tunnel may stay silent in both directions
MAX_LIFETIME = 600.0  # seconds a tunnel may live, however busy
MAX_HEAD = 8 * 1024  # bytes of request line + headers
MAX_CONNECTIONS = 64  # connections served at once, per mode
MAX_LEAVES = 256  # certificates the inspecting proxy keeps issued (one per host)
LINGER = 1.0  # seconds a refused client gets to read our answer before we close
_POLL = 0.2  # how often a tunnel looks at the stop flag

#: What the inspection root may vouch for (nameConstraints, RFC 5280 §4.2.1.10):
#: ``localhost`` and every name under it (RFC 6761 §6.3), and the loopback blocks.
#: Unlike the lab root (helpers/lab/build.py) there is no dNSName "127.0.0.1" subtree:
#: rustls' verifier (webpki, used by uv) rejects it as ``MalformedNameConstraint``. A
#: leaf for an address gets a Common Name that is no host name instead (:func:`_leaf_cn`).
INSPECTION_PERMITTED: tuple[str, ...] = ("localhost", "127.0.0.0/8", "::1/128")

_REASONS = {
    200: "Connection established",
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}
# RFC 9112 §3.2.3: CONNECT's request-target is the authority-form, host ":" port; the
# host is a reg-name, an IPv4 address, or an IPv6 address in brackets (RFC 3986 §3.2.2).
_AUTHORITY = re.compile(
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s:/?#\[\]@]+)):(?P<port>[0-9]{1,5})"
)
# Bytes no HTTP/1.1 head contains (RFC 9112 §2.2, §5): controls other than HTAB, CR, LF.
_GARBAGE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A host name as RFC 1123 §2.1 allows it (letters, digits, hyphens; labels of 1-63).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\.?$)(?:{_LABEL}\.)*{_LABEL}\.?")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 §5.6.2


class Refusal(Exception):
    """A CONNECT the proxy answers with an error status and one sentence, then closes."""

    def __init__(self, status: int, sentence: str) -> None:
        super().__init__(sentence)
        self.status = status
        self.sentence = sentence


# --------------------------------------------------------------------------- parsing


# RFC 9110 §9.3.6 (CONNECT): "The CONNECT method requests that the recipient establish a
# tunnel to the destination origin server identified by the request target". The target
# is the authority-form only (RFC 9112 §3.2.3): "CONNECT server.example.com:80 HTTP/1.1";
# there is no default port, so the port is required. "Any 2xx (Successful) response
# indicates that the sender (and all inbound proxies) will switch to tunnel mode
# immediately after the response header section"; a CONNECT request has no body.
def parse_connect(head: bytes) -> tuple[str, int]:
    """``(host, port)`` from a CONNECT request head (up to and without the blank line).

    Raises :class:`Refusal` with the status a proxy answers: 400 for a malformed line or
    target, 405 for another method, 505 for a version that is not HTTP/1.x. The host is
    returned as the client wrote it, without IPv6 brackets.
    """
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise Refusal(400, "The request head is not ASCII: this is an HTTP proxy.") from None
    line, _, _headers = text.partition("\r\n")
    parts = line.split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
        raise Refusal(400, "The request line is not 'METHOD target HTTP/1.1'.")
    method, target, version = parts
    if not re.fullmatch(r"HTTP/1\.[01]", version):
        raise Refusal(505, f"This proxy speaks HTTP/1.1, not {version[:16]!r}.")
    if method != "CONNECT":
        raise Refusal(
            405,
            f"This lab proxy only opens CONNECT tunnels (RFC 9110 §9.3.6), not {method[:16]}: "
            "use an https:// URL, which clients send through a tunnel.",
        )
    match = _AUTHORITY.fullmatch(target)
    if match is None:
        raise Refusal(400, "CONNECT needs a target of the form host:port (RFC 9112 §3.2.3).")
    port = int(match["port"])
    if not 0 < port < 65536:
        raise Refusal(400, f"Port {port} is not a TCP port (1-65535).")
    if match["v6"] is not None:
        try:
            ipaddress.IPv6Address(match["v6"])
        except ValueError:
            raise Refusal(400, "The address in brackets is not an IPv6 address.") from None
        return match["v6"], port
    if not _HOSTNAME.fullmatch(match["host"]):
        raise Refusal(400, "The CONNECT target is not a host name or an IPv4 address.")
    return match["host"], port


def _target_address(host: str) -> str:
    """The address to connect to for ``host``, or :class:`Refusal` (403/502).

    Lab names come from the lab's own hosts table (:mod:`helpers.names`), never DNS;
    loopback literals and ``localhost`` (RFC 6761 §6.3) are taken as they are. Anything
    else is refused: this proxy must never carry a classroom's traffic off the machine.
    """
    name = names._normalise(host) or ""
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    if ip is not None:
        if ip.is_loopback:
            return str(ip)
        raise Refusal(403, f"This lab proxy only reaches the lab and loopback, not {name}.")
    if names.is_lab_name(name):
        address = names.lookup(name)
        if address is None:
            raise Refusal(502, f"{name} is not one of the running lab's names.")
        return address
    if name == "localhost" or name.endswith(".localhost"):
        return "127.0.0.1"
    raise Refusal(
        403,
        f"This lab proxy only reaches lab names and loopback, not {name[:80]}: it is no open proxy.",
    )


def _reply(status: int, sentence: str = "") -> bytes:
    body = (sentence + "\n").encode() if sentence else b""
    head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
    if status != 200:
        head += (
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
        )
    if status == 405:
        head += "Allow: CONNECT\r\n"
    return head.encode() + b"\r\n" + body


def _read_head(sock: socket.socket, deadline: float) -> tuple[bytes, bytes]:
    """``(head, rest)``: bytes up to the blank line, and whatever came after it.

    Raises :class:`Refusal` (408 after the deadline, 431 over :data:`MAX_HEAD`) or
    ``ConnectionError`` if the client hangs up first.
    """
    data = b""
    while True:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            return data[:end], data[end + 4 :]
        if len(data) > MAX_HEAD:
            raise Refusal(431, f"The request head is longer than {MAX_HEAD} bytes.")
        left = deadline - time.monotonic()
        if left <= 0:
            raise Refusal(408, f"The request head took longer than {HEAD_TIMEOUT:.0f} s.")
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            continue  # the loop sees the deadline
        if not chunk:
            raise ConnectionError("the client hung up")
        data += chunk
        if data[:1] == b"\x16":  # a TLS handshake record: an https:// proxy URL
            raise Refusal(
                400,
                "This is an HTTP proxy and the client started TLS: write the proxy URL "
                "with http://, not https://.",
            )
        if _GARBAGE.search(data):
            raise Refusal(400, "The request head holds bytes HTTP does not allow.")


# --------------------------------------------------------------------------- relaying


class _Closed(Exception):
    pass


def _send_all(sock: socket.socket, data: bytes, deadline: float, stopping: threading.Event) -> None:
    """``sendall`` for a non-blocking (TLS) socket, bounded by ``deadline``."""
    view = memoryview(data)
    while view:
        if stopping.is_set() or time.monotonic() > deadline:
            raise _Closed
        try:
            view = view[sock.send(view) :]
        except (ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
            _wait(sock, selectors.EVENT_WRITE)
        except ssl.SSLWantReadError:
            _wait(sock, selectors.EVENT_READ)


def _wait(sock: socket.socket, event: int) -> None:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, event)
        selector.select(_POLL)


def _end_write(sock: socket.socket, clean: bool) -> None:
    """Tell the peer behind ``sock`` that nothing more comes: a TLS close_notify (RFC 8446
    §6.1) if the other side closed cleanly, then a TCP FIN. A truncated upstream (EOF
    without close_notify) is passed on as one: no close_notify, just the FIN."""
    if clean and isinstance(sock, ssl.SSLSocket):
        with contextlib.suppress(ssl.SSLError, OSError, ValueError):
            sock.unwrap()  # non-blocking: sends close_notify, then wants to read: fine
    with contextlib.suppress(OSError, ValueError):
        socket.socket.shutdown(sock, socket.SHUT_WR)


def _pump(
    client: socket.socket,
    upstream: socket.socket,
    stopping: threading.Event,
) -> tuple[int, int, Exception | None]:
    """Copy bytes both ways until both sides have finished, a deadline passes, or stop.

    Each direction ends on its own (a half-close is passed on as one), so a tunnel
    behaves as a direct connection does. Both sockets are non-blocking: with TLS, a
    readable socket may carry only a TLS 1.3 NewSessionTicket (RFC 8446 §4.6.1) and no
    application data, and decrypted bytes already in OpenSSL's buffer are invisible to
    the selector (``pending()``). Returns the bytes relayed each way (client to server,
    server to client) and the error that ended the upstream side, if any.
    """
    started = last = time.monotonic()
    peers = {client: upstream, upstream: client}
    counts = {client: 0, upstream: 0}
    reading = {client, upstream}
    upstream_error: Exception | None = None
    for sock in peers:
        sock.setblocking(False)
    with selectors.DefaultSelector() as selector:
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        while reading and not stopping.is_set():
            now = time.monotonic()
            if now - last > IDLE_TIMEOUT or now - started > MAX_LIFETIME:
                break
            ready = [s for s in reading if isinstance(s, ssl.SSLSocket) and s.pending()]
            if not ready:
                ready = [k.fileobj for k, _ in selector.select(_POLL) if k.fileobj in reading]  # type: ignore[misc]
            for sock in ready:
                if sock not in reading:
                    continue  # its side ended earlier in this batch
                other = peers[sock]  # type: ignore[index]
                clean = True
                try:
                    data = sock.recv(65536)  # type: ignore[union-attr]
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    continue
                # SSLEOFError is EOF without close_notify (a truncation): passed on as
                # one, like a reset or an alert, by ending the other side without it.
                except (ssl.SSLError, OSError) as exc:
                    data, clean = b"", False
                    if sock is upstream:
                        upstream_error = exc
                if not data:
                    reading.discard(sock)  # type: ignore[arg-type]
                    selector.unregister(sock)
                    if sock is upstream and counts[upstream] == 0 and upstream_error is not None:
                        # Nothing reached the client yet: the caller answers with the reason.
                        return counts[client], 0, upstream_error
                    _end_write(other, clean)
                    if sock is client and isinstance(upstream, ssl.SSLSocket):
                        reading.discard(upstream)  # the inspected client is done: so are we
                    continue
                last = time.monotonic()
                counts[sock] += len(data)  # type: ignore[index]
                try:
                    _send_all(other, data, last + IDLE_TIMEOUT, stopping)
                except (_Closed, ssl.SSLError, OSError):
                    return counts[client], counts[upstream], upstream_error
    return counts[client], counts[upstream], upstream_error


# --------------------------------------------------------------------------- the proxy


class ConnectProxy(Service):
    """One CONNECT proxy on 127.0.0.1: ``mode="tunnel"`` or ``"inspecting"``.

    ``upstream_cafile`` is what the inspecting proxy trusts for its own connections to
    the real servers (the lab CA); ``authority`` is the CA that signs the leaves it shows
    clients. Use :class:`LabProxy` (``lab.proxy``), which the lab starts and stops.
    """

    def __init__(
        self,
        mode: str,
        *,
        upstream_cafile: str | os.PathLike[str] | None = None,
        authority: CA | None = None,
        bind: str = "127.0.0.1",
    ) -> None:
        if mode not in MODES:
            raise LabError(f"There is no proxy mode {mode!r}.", f"Pick one of: {', '.join(MODES)}.")
        if mode == "inspecting" and (authority is None or upstream_cafile is None):
            raise LabError(
                "The inspecting proxy needs the CA that signs its leaves and the CA it trusts.",
                "Pass authority= and upstream_cafile=, or use lab.proxy.",
            )
        try:
            if not ipaddress.ip_address(bind).is_loopback:
                raise ValueError(bind)
        except ValueError:
            raise LabError(
                f"The lab proxy listens on loopback only, not {bind!r}.",
                "Leave bind at 127.0.0.1: a proxy on the network is an open door.",
            ) from None
        self.mode = mode
        self.authority = authority
        self._bind = bind
        self._upstream_ctx: ssl.SSLContext | None = None
        if mode == "inspecting":
            # The proxy's own client side: a default client that trusts the lab CA.
            self._upstream_ctx = ssl.create_default_context(cafile=str(upstream_cafile))
            self._upstream_ctx.set_alpn_protocols(["http/1.1"])
        self._leaves: OrderedDict[str, ssl.SSLContext] = OrderedDict()
        self._leaf_lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._lock = threading.Lock()
        self._open: dict[threading.Thread, list[socket.socket]] = {}
        #: Connections answered 503 because :data:`MAX_CONNECTIONS` were busy.
        self.turned_away = 0
        #: Tunnels opened (a 200 sent), and CONNECTs refused (an error status sent).
        self.tunnels = 0
        self.refused = 0

    # --- lifecycle
    def start(self) -> Self:
        if self._listener is not None:
            return self
        family = socket.AF_INET6 if ":" in self._bind else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            if os.name == "posix":  # as socket.create_server does: no wait after a restart
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self._bind, 0))
            listener.listen(64)
            listener.setblocking(False)  # the accept thread waits in a selector
        except OSError as exc:
            listener.close()
            raise LabError(
                f"The {self.mode} proxy could not listen on {self._bind}: {exc.strerror or exc}.",
                "Check that loopback is up (ip link set lo up).",
            ) from None
        self._stopping.clear()
        self._wake = socket.socketpair()  # stop() writes a byte: the accept thread wakes
        self._listener = listener
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"lab-proxy-{self.mode}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port and every tunnel; join every thread (idempotent)."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self._stopping.set()
        wake, self._wake = self._wake, None
        if wake is not None:
            with contextlib.suppress(OSError):
                wake[1].send(b"!")
        if self._thread is not None:
            self._thread.join(timeout=5)
        listener.close()
        for end in wake or ():
            end.close()
        with self._lock:
            open_now = dict(self._open)
        for sockets in open_now.values():
            for sock in sockets:
                hang_up(sock)
        for thread in open_now:
            thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._listener is not None

    @property
    def address(self) -> tuple[str, int]:
        listener = self._listener
        if listener is None:
            raise LabError(f"The {self.mode} proxy is not running.", "Start the lab first.")
        host, port = listener.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host = f"[{self._bind}]" if ":" in self._bind else self._bind
        return f"http://{host}:{self.port}"

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._open)

    # --- threads
    def _accept_loop(self) -> None:
        listener, wake = self._listener, self._wake
        assert listener is not None and wake is not None
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake[0], selectors.EVENT_READ)
            while not self._stopping.is_set():
                selector.select()  # a client, or stop()
                if self._stopping.is_set():
                    return
                try:
                    conn, _peer = listener.accept()
                except BlockingIOError:
                    continue  # another wake-up took it, or the client gave up
                except OSError:
                    time.sleep(_POLL)  # out of descriptors: wait instead of spinning
                    continue
                conn.setblocking(True)
                self._admit(conn)

    def _admit(self, conn: socket.socket) -> None:
        """Give ``conn`` a thread, or turn it away if :data:`MAX_CONNECTIONS` are busy."""
        with self._lock:
            full = len(self._open) >= MAX_CONNECTIONS
        if full:
            self._count("turned_away")
            with contextlib.suppress(OSError):
                conn.setblocking(False)
                conn.send(_reply(503, "The lab proxy is busy; try again."))
            conn.close()
            return
        thread = threading.Thread(
            target=self._serve, args=(conn,), name=f"lab-proxy-{self.mode}-conn", daemon=True
        )
        with self._lock:
            self._open[thread] = [conn]
        try:
            thread.start()
        except RuntimeError:  # no more threads on this machine
            with self._lock:
                self._open.pop(thread, None)
            conn.close()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.setdefault(threading.current_thread(), []).append(sock)

    def _serve(self, conn: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            upstream = self._tunnel(conn)
        # One connection's failure is that connection's only, and never a traceback on
        # the terminal; BaseException too, for a Rust panic in cryptography (see
        # helpers/pki/panics.py). A worker thread has no KeyboardInterrupt to lose.
        except BaseException:  # noqa: BLE001, S110
            pass
        finally:
            with self._lock:
                sockets = self._open.pop(threading.current_thread(), [])
            for sock in [*sockets, conn, upstream]:
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()

    def _count(self, what: str) -> None:
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)

    def _refuse(self, conn: socket.socket, refusal: Refusal) -> None:
        self._count("refused")
        with contextlib.suppress(OSError):
            conn.settimeout(LINGER)
            conn.sendall(_reply(refusal.status, refusal.sentence))
        linger_close(conn, LINGER)

    def _tunnel(self, conn: socket.socket) -> socket.socket | None:
        set_nodelay(conn)
        try:
            head, rest = _read_head(conn, time.monotonic() + HEAD_TIMEOUT)
            host, port = parse_connect(head)
            address = _target_address(host)
            if rest and self.mode == "inspecting":
                raise Refusal(400, "Send nothing after CONNECT until the proxy answers 200.")
        except Refusal as refusal:
            self._refuse(conn, refusal)
            return None
        try:
            upstream = socket.create_connection((address, port), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            self._refuse(
                conn, Refusal(502, f"The proxy could not connect to {host}:{port}: {why}.")
            )
            return None
        self._track(upstream)
        set_nodelay(upstream)
        conn.settimeout(HANDSHAKE_TIMEOUT)
        conn.sendall(_reply(200))
        self._count("tunnels")
        if self.mode == "tunnel":
            if rest:
                upstream.sendall(rest)
            _pump(conn, upstream, self._stopping)
            return upstream
        return self._inspect(conn, upstream, host)

    # --- inspection
    def _context_for(self, host: str) -> ssl.SSLContext:
        """A server context presenting a leaf for ``host``, issued once and cached."""
        name = names._normalise(host) or host
        with self._leaf_lock:
            ctx = self._leaves.get(name)
            if ctx is not None:
                self._leaves.move_to_end(name)
                return ctx
            assert self.authority is not None
            leaf = self.authority.issue(name, common_name=_leaf_cn(name))
            # Sent with its root, as many appliances do: the client then reports code 19,
            # "self-signed certificate in certificate chain", the message of issue threads.
            served = Leaf(leaf.cert, leaf.key, self.authority, [leaf.cert, self.authority.cert])
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_alpn_protocols(["http/1.1"])
            served.configure_server(ctx)  # the key goes through a 0600 temporary file
            self._leaves[name] = ctx
            while len(self._leaves) > MAX_LEAVES:
                self._leaves.popitem(last=False)
            return ctx

    def _inspect(self, conn: socket.socket, upstream: socket.socket, host: str) -> socket.socket:
        assert self._upstream_ctx is not None
        tls = self._context_for(host).wrap_socket(
            conn, server_side=True, do_handshake_on_connect=False
        )
        self._track(tls)
        tls.settimeout(HANDSHAKE_TIMEOUT)  # bounds the whole handshake
        try:
            tls.do_handshake()
        except (ssl.SSLError, OSError):
            tls.close()  # the client refused our leaf (its alert): nothing more to do
            return upstream
        name = names._normalise(host) or host
        server = self._upstream_ctx.wrap_socket(
            upstream,
            server_hostname=name,
            do_handshake_on_connect=False,
            suppress_ragged_eofs=False,
        )
        self._track(server)
        server.settimeout(HANDSHAKE_TIMEOUT)
        try:
            server.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            self._block_page(tls, host, exc)
            return server
        _sent, received, error = _pump(tls, server, self._stopping)
        if error is not None and received == 0:
            # The server refused after the handshake (a TLS 1.3 server judges the client
            # certificate then): nothing reached the client yet, so it gets the reason.
            self._block_page(tls, host, error, read_request=False)
        return server

    def _block_page(
        self, tls: ssl.SSLSocket, host: str, exc: BaseException, *, read_request: bool = True
    ) -> None:
        """Answer the client's request with ``502`` and the upstream failure, in one
        sentence, as a proxy's error page does (the client never sees the real server's
        certificate, so this page is all it learns)."""
        why = _why(exc)
        checked = (
            " (the proxy checked the real server's certificate against the lab CA)"
            if isinstance(exc, ssl.SSLCertVerificationError)
            else ""
        )
        sentence = f"The inspecting proxy could not reach {host} securely: {why}{checked}."
        with contextlib.suppress(ssl.SSLError, OSError, ValueError):
            tls.setblocking(True)
            if read_request:
                _read_head(tls, time.monotonic() + HEAD_TIMEOUT)
            tls.settimeout(LINGER)
            tls.sendall(_reply(502, sentence))
            tls.unwrap()
        linger_close(tls, LINGER)


def _leaf_cn(name: str) -> str | None:
    """The Common Name of the leaf issued for ``name``: the name itself, except for an
    address. OpenSSL checks a Common Name that *looks like* a host name against the
    root's DNS name constraints when the leaf has no DNS subjectAltName, and
    ``127.0.0.1`` looks like one; ``127.0.0.1 (inspected)`` does not (a space), so only
    the iPAddress SAN is checked, against the address blocks."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return None  # pki copies the DNS name, as for every leaf
    return f"{name} (inspected)"


def _why(exc: BaseException) -> str:
    """The upstream failure in words: the verify message (``certificate has expired``),
    or OpenSSL's text and reason (``tlsv13 alert certificate required
    (TLSV13_ALERT_CERTIFICATE_REQUIRED)``), without the ``_ssl.c`` line number."""
    verify = getattr(exc, "verify_message", None)
    if verify:
        return str(verify)
    text = str(exc) or type(exc).__name__
    match = re.fullmatch(r"\[SSL: [A-Z0-9_]+\] (.*?)(?: \(_ssl\.c:\d+\))?", text)
    if match:
        text = match[1]
    reason = getattr(exc, "reason", None)
    return f"{text} ({reason})" if reason and str(reason) not in text else text


class LabProxy:
    """The lab's two proxies (``lab.proxy``): ``tunnel`` and ``inspecting`` URLs, and the
    inspection root clients must trust to get through the second (``inspection_ca``).

    Started and stopped by :class:`helpers.lab.Lab`. The inspection root is made in
    memory at start; only its certificate is written, to ``directory``.
    """

    def __init__(self, lab_ca: Path, directory: Path) -> None:
        self._lab_ca = Path(lab_ca)
        self._directory = Path(directory)
        self.authority = CA(
            "Corporate Inspection CA",
            organization="Example Corp TLS Inspection (TLS course lab)",
            permitted=INSPECTION_PERMITTED,
        )
        fingerprint = hashlib.sha256(self.authority.cert.public_bytes(Encoding.DER)).hexdigest()
        #: The inspection root's certificate (PEM). Its private key is never written.
        self.inspection_ca = self._directory / f"inspection-ca-{fingerprint[:12]}.pem"
        self._tunnel = ConnectProxy("tunnel")
        self._inspecting = ConnectProxy(
            "inspecting", upstream_cafile=self._lab_ca, authority=self.authority
        )

    def start(self) -> LabProxy:
        _write_public(self.inspection_ca, self.authority.cert_pem)
        try:
            self._tunnel.start()
            self._inspecting.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._tunnel.stop()
        self._inspecting.stop()
        with contextlib.suppress(OSError):
            self.inspection_ca.unlink()

    @property
    def running(self) -> bool:
        return self._tunnel.running and self._inspecting.running

    @property
    def tunnel(self) -> str:
        """``http://127.0.0.1:PORT`` of the plain CONNECT proxy."""
        return self._tunnel.url

    @property
    def inspecting(self) -> str:
        """``http://127.0.0.1:PORT`` of the TLS-inspecting proxy."""
        return self._inspecting.url

    @property
    def proxies(self) -> dict[str, ConnectProxy]:
        """Both :class:`ConnectProxy` objects by mode (counters, connections)."""
        return {"tunnel": self._tunnel, "inspecting": self._inspecting}

    def as_json(self) -> dict[str, str]:
        """The ``"proxy"`` entry of ``python -m helpers.lab --json``."""
        return {
            "tunnel": self.tunnel,
            "inspecting": self.inspecting,
            "inspection_ca": str(self.inspection_ca),
        }

    def __repr__(self) -> str:
        if not self.running:
            return "<LabProxy stopped>"
        return f"<LabProxy tunnel={self.tunnel} inspecting={self.inspecting}>"

    def _repr_html_(self) -> str:
        e = html.escape
        if not self.running:
            return f"<p>{e(repr(self))}</p>"
        rows = [
            ("tunnel", self.tunnel, "plain CONNECT: the server's own certificate reaches you"),
            (
                "inspecting",
                self.inspecting,
                "terminates TLS and re-signs every site with the Corporate Inspection CA",
            ),
        ]
        body = "".join(
            f"<tr><td>{e(a)}</td><td><code>{e(b)}</code></td><td>{e(c)}</td></tr>"
            for a, b, c in rows
        )
        return (
            "<table><tr><th>proxy</th><th>URL</th><th>what it does</th></tr>"
            f"{body}</table><p>Inspection root to trust: <code>{e(str(self.inspection_ca))}</code> "
            "(helpers/lab/proxy.py)</p>"
        )


def _write_public(path: Path, data: bytes) -> None:
    """Write a certificate atomically (0644: it is public)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".inspection-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
