"""An HTTPS server whose certificate is replaced while it serves (introduced in notebook 10).

Theory of operation
-------------------
A certificate that lives 6 or 47 days is replaced dozens of times a year, so the
replacement must cost nothing: no dropped connection, no moment when the port is
closed. Restarting the server does both wrong: connections in flight are cut, and
between the old process closing its listening socket and the new one binding it,
clients get "connection refused". Servers therefore **reload**: nginx (``nginx -s
reload``, SIGHUP) reads the new files, starts new workers with them and lets the old
workers finish their connections; HAProxy (``-sf``, or its runtime API ``set ssl
cert``) hands its listening sockets over to the new process, or swaps the certificate
in memory; Caddy renews and swaps by itself. Certbot's ``--deploy-hook`` is where you
put that reload.

Python's :mod:`ssl` has no atomic reload. Calling ``load_cert_chain`` again on a
context in use does change what later handshakes get, but it sets the certificate and
then the key, in two OpenSSL calls, under the feet of handshakes in other threads; and
when the second step fails (a key that does not match) the context keeps the new
certificate *without a key*: every later handshake fails with ``NO_SHARED_CIPHER``
(measured on OpenSSL 3.0 and 3.5; ``tests/test_acme_renewal.py`` shows it). What
:mod:`ssl` does offer: a *new* context is cheap, every socket remembers the context it
was made from (``SSLSocket.context``), and an SNI callback may point a handshake that
has already begun at another context (assign ``sslsocket.context`` inside
``SSLContext.sni_callback``). So :class:`HotSwapServer` keeps **one reference** to the
current context and wraps each accepted connection with whatever that reference holds
at that moment:

1. :meth:`HotSwapServer.swap` reads the new chain and key **once**, checks them
   (parsable PEM, the key matches the leaf, the leaf is in date), and builds a *new*
   context from exactly those bytes. Reading the files twice, once to check and once
   to load, would leave a window in which certbot (or an attacker) replaces them
   (a TOCTOU race); a half-written file is exactly what a renewal job leaves behind
   for a moment.
2. Only when that succeeded does it replace the reference (one assignment: atomic
   for the other threads). If anything failed, it raises a
   :class:`~helpers.errors.CourseError` that says what was wrong, and **the old
   certificate keeps serving**: a bad renewal must never take a working site down.
3. Connections already accepted keep the context they were wrapped with, handshake
   and all; new connections get the new one. Nothing is closed, no port changes.

Every response names the certificate that served it (``X-Certificate-Serial`` and
the body), so a client loop (:func:`helpers.acme.renewal.keep_fetching`) can watch
the switch happen. Built on :class:`helpers.serving.ThreadedServer` (notebook 09
reads it): loopback only, port 0, caps and deadlines, ``with`` or :meth:`stop`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import socket
import ssl
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import CourseError
from ..pki import ensure_key_matches, load_certificates, load_private_key, private_key_pem
from ..servers import require_loopback_bind
from ..serving import ThreadedServer, set_nodelay

__all__ = ["HotSwapServer", "Loaded", "SwapRefused", "SERIAL_HEADER"]

#: The response header that names the serving certificate's serial number (hex).
SERIAL_HEADER = "X-Certificate-Serial"
#: The largest request head read before giving up (bytes).
MAX_REQUEST = 16 * 1024


class SwapRefused(CourseError, ValueError):
    """A new certificate or key could not be loaded; the server kept the old one."""


@dataclass(frozen=True)
class Loaded:
    """One certificate as the server holds it: the context built from it, and what it is."""

    context: ssl.SSLContext
    chain: tuple[x509.Certificate, ...]
    source: str  # the chain file it came from, for messages
    loaded_at: _dt.datetime

    @property
    def cert(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def serial(self) -> int:
        return self.cert.serial_number

    def __str__(self) -> str:
        return (
            f"serial {self.serial:x} (not after {self.cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC)"
        )


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SwapRefused(
            f"The {what} {str(path)!r} cannot be read ({exc.strerror or exc}).",
            "Check the path the renewal wrote (certbot: /etc/letsencrypt/live/NAME/).",
        ) from None


def load(chain_path: str | os.PathLike[str], key_path: str | os.PathLike[str]) -> Loaded:
    """Read a chain and key once, check them, and build a server context from those bytes.

    Raises :class:`SwapRefused` (one sentence: what was wrong, what to try) when a file
    is missing or not PEM, when the key does not belong to the leaf, or when the leaf is
    out of its dates (RFC 5280 §4.1.2.5): every case in which swapping would break the
    site.
    """
    chain_pem, key_pem = _read(chain_path, "chain file"), _read(key_path, "key file")
    try:
        chain = load_certificates(chain_pem)
        key = load_private_key(key_pem)
        ensure_key_matches(chain[0], key)
    except CourseError as exc:
        raise SwapRefused(exc.what, exc.hint) from None
    now = _dt.datetime.now(_dt.UTC)
    leaf = chain[0]
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise SwapRefused(
            f"The certificate in {str(chain_path)!r} is valid from "
            f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} to {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} "
            "UTC, which does not include now.",
            "Serve a certificate that is in date; check the renewal's output and this machine's clock.",
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # load_cert_chain only takes file names: write the very bytes we checked (re-encoded
    # from the parsed objects) to a private directory, so nothing can change in between.
    with tempfile.TemporaryDirectory(prefix="hotswap-") as private:  # mode 0700
        chain_file = Path(private, "chain.pem")
        key_file = Path(private, "key.pem")
        chain_file.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in chain))
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(private_key_pem(key))
        try:
            context.load_cert_chain(chain_file, key_file)
        except ssl.SSLError as exc:  # checked above; kept for what OpenSSL alone refuses
            raise SwapRefused(
                f"OpenSSL refused the chain or key ({exc.reason or exc}).",
                "Check both files with `openssl x509 -in CHAIN -noout -text` and `openssl pkey -in KEY -noout`.",
            ) from None
    return Loaded(context, tuple(chain), str(chain_path), now)


class HotSwapServer(ThreadedServer):
    """HTTPS on loopback that answers every GET with the serial of the certificate serving it.

    ``HotSwapServer(chain_path, key_path)`` loads the first certificate (a bad one raises
    :class:`SwapRefused` at once); :meth:`swap` replaces it while connections keep
    coming. :attr:`current` is what new connections get; :attr:`history` lists every
    certificate served so far, oldest first. ``with`` or :meth:`start`/:meth:`stop`;
    :attr:`url`, :attr:`port`; :attr:`log` has a line per connection.
    """

    what = "The hot-swap server"
    thread_name = "hotswap"

    def __init__(
        self,
        chain_path: str | os.PathLike[str],
        key_path: str | os.PathLike[str],
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
        self._current = load(chain_path, key_path)
        self._swap_lock = threading.Lock()  # one swap at a time; serving never waits on it
        #: Every certificate served so far, oldest first.
        self.history: list[Loaded] = [self._current]
        #: How many connections each certificate (by serial) was given at accept time.
        self.accepted: Counter[int] = Counter()

    @property
    def current(self) -> Loaded:
        """The certificate new connections are served with."""
        return self._current

    def swap(self, chain_path: str | os.PathLike[str], key_path: str | os.PathLike[str]) -> Loaded:
        """Serve ``chain_path``/``key_path`` to every *new* connection from now on.

        The new context is built and checked first (:func:`load`); only then is the
        reference replaced. On any error :class:`SwapRefused` says what was wrong and the
        old certificate keeps serving. Connections already accepted are not touched.
        """
        with self._swap_lock:
            try:
                loaded = load(chain_path, key_path)
            except SwapRefused as exc:  # self._current is unchanged: the old one serves on
                raise SwapRefused(
                    f"Swap refused, still serving {self._current}. {exc.what}", exc.hint
                ) from None
            self._current = loaded  # one assignment: new connections see it from now on
            self.history.append(loaded)
        return loaded

    # -- ThreadedServer --------------------------------------------------------

    def wrap(self, sock: socket.socket) -> ssl.SSLSocket:
        # Read the reference once: this connection keeps that context, whatever swap() does
        # while it handshakes. No I/O here: the handshake runs in the connection's thread.
        set_nodelay(sock)  # each flight and the answer are one write: no Nagle delay
        current = self._current
        self.accepted[current.serial] += 1  # only the accept thread writes it
        return current.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)

    def serve(self, sock: socket.socket, peer: tuple[str, int]) -> str:
        assert isinstance(sock, ssl.SSLSocket)
        end = time.monotonic() + self.deadline
        served = self._loaded_for(sock.context)
        try:
            sock.settimeout(self.read_timeout(end))
            sock.do_handshake()
            head = bytearray()
            while b"\r\n\r\n" not in head:
                sock.settimeout(self.read_timeout(end))
                data = sock.recv(4096)
                if not data:
                    return "client hung up before its request"
                head += data
                if len(head) > MAX_REQUEST:
                    return "request head too large"
            body = (
                f"served by certificate {served}\nsubject {served.cert.subject.rfc4514_string()}\n"
            ).encode()
            response = (
                "HTTP/1.1 200 OK\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\n"
                f"{SERIAL_HEADER}: {served.serial:x}\r\n"
                "Connection: close\r\n"
                "Cache-Control: no-store\r\n\r\n"
            ).encode("ascii") + body
            sock.settimeout(self.read_timeout(end))
            sock.sendall(response)
        except TimeoutError:
            return "timed out"
        except (ssl.SSLError, OSError, ValueError) as exc:
            return f"ended: {type(exc).__name__}"
        with contextlib.suppress(ssl.SSLError, OSError, ValueError):
            sock.settimeout(1.0)
            sock.unwrap()  # close_notify: the client knows the answer is complete
        return f"served serial {served.serial:x}"

    def _loaded_for(self, context: ssl.SSLContext) -> Loaded:
        """Which certificate a connection's context holds (it may be an older one)."""
        for loaded in reversed(self.history):
            if loaded.context is context:
                return loaded
        return self._current  # not reached: every context we wrap with is in history

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return f"<HotSwapServer {where} serving {self._current}>"
