"""The lab's ACME server: HTTPS on loopback around the sans-IO CA (introduced in notebook 10).

Theory of operation
-------------------
:class:`AcmeServer` is the thin transport around :class:`helpers.acme.ca.AcmeCA`:

* **HTTPS** on 127.0.0.1 and a port the OS picks, built on
  :class:`helpers.servers.HTTPService` (one thread per connection, idle timeout, a
  deadline per request, a connection cap, ``stop()`` hangs up every connection). Each
  request is read with :meth:`~helpers.servers.QuietHandler.read_body` (64 KiB at most;
  over that: 413 and a problem document), handed to ``AcmeCA.handle`` and the answer
  written back. Its own certificate, unless ``tls`` is given, is issued at start by
  ``issuer`` for ``acme.lab.localhost`` and the bind address, so a client that trusts
  the lab root trusts it.
* **HTTP-01 validation** (RFC 8555 §8.3) in a small pool of worker threads, because a
  validation is an outgoing HTTP request that can take up to its timeout: the CA
  fetches ``http://NAME:http01_port/.well-known/acme-challenge/TOKEN`` from the address
  ``resolve(NAME)`` gives (by default the lab's hosts table, :mod:`helpers.names`, else
  this server's own address: the lab zone's wildcard), with ``Host: NAME``. Plain
  HTTP, as the RFC says: the proof is that whoever answers for the name serves the
  key authorization. It gives up after 5 s, reads at most 8 KiB, and compares after
  stripping trailing whitespace ("SHOULD ignore whitespace characters at the end").
  Two deliberate departures from §8.3, both because the lab lives on one machine:
  the RFC says the request "MUST be sent to TCP port 80", which is privileged, so the
  lab validates on ``http01_port`` (certbot: ``--http-01-port``); and the RFC says a
  server "SHOULD follow redirects", which the lab does not (a redirect is reported as
  the failure, so a lesson sees exactly which URL answered; §10.2 lists the risks of
  following them). Let's Encrypt and Pebble use port 80 (Pebble: configurable) and
  follow redirects.
* It never issues outside ``domain`` (the CA refuses the order), and it never looks a
  name up in DNS: validation addresses come from ``resolve``.

>>> from helpers import pki
>>> root = pki.CA(); issuer = root.create_intermediate("Lab ACME CA")
>>> with AcmeServer(issuer, issuer.chain) as acme:      # doctest: +SKIP
...     acme.directory                                  # https://127.0.0.1:PORT/directory
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as _dt
import html
import http.client
import io
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .. import names as lab_names
from ..pki import CA
from ..servers import HTTPService, QuietHandler
from .ari import RenewalWindow
from .ca import MAX_BODY, PROFILES, AcmeCA, Response
from .problems import AcmeProblem

__all__ = ["HTTP01_MAX_BODY", "HTTP01_TIMEOUT", "AcmeServer", "CrlPublisher", "fetch_http01"]

#: Seconds an HTTP-01 validation may take in all (connect, request, answer).
HTTP01_TIMEOUT = 5.0
#: The largest HTTP-01 answer read, in bytes (a key authorization is about 87).
HTTP01_MAX_BODY = 8 * 1024


class _TooLarge(Exception):
    pass


class _Replay:
    """Bytes already read, offered to :class:`http.client.HTTPResponse` as a socket."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self._data)


def _complete(data: bytes) -> bool:
    """Has a whole HTTP response arrived (headers, and Content-Length bytes of body)?"""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        field_name, _, value = line.partition(b":")
        if field_name.strip().lower() == b"content-length" and value.strip().isdigit():
            return len(body) >= int(value.strip())
    return False  # no length: read until the responder closes


def _exchange(address: str, port: int, request: bytes, timeout: float) -> bytes:
    """Send ``request`` and read the answer, all within ``timeout`` seconds in total (each
    read gets what is left of the deadline, so a trickling responder cannot hold a
    validation thread) and at most 8 KiB of headers plus :data:`HTTP01_MAX_BODY`."""
    deadline = time.monotonic() + timeout
    limit = 8 * 1024 + HTTP01_MAX_BODY
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while not _complete(data):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
            if len(data) > limit:
                raise _TooLarge
    return data


def fetch_http01(
    address: str,
    port: int,
    name: str,
    token: str,
    expected: str,
    *,
    timeout: float = HTTP01_TIMEOUT,
) -> AcmeProblem | None:
    """One HTTP-01 check (RFC 8555 §8.3): None if ``address:port`` serves ``expected``.

        GET /.well-known/acme-challenge/{token} HTTP/1.1
        Host: {name}

    "The server ... verifies that the body of the response is a well-formed key
    authorization", ignoring whitespace at its end. Otherwise the problem says what went
    wrong: ``connection`` (nothing listening, timeout), ``unauthorized``/
    ``incorrectResponse`` (a status other than 200, a redirect, the wrong body).
    """
    where = f"http://{name}:{port}/.well-known/acme-challenge/{token}"
    request = (
        f"GET /.well-known/acme-challenge/{token} HTTP/1.1\r\n"
        f"Host: {name if port == 80 else f'{name}:{port}'}\r\n"
        "User-Agent: tls-course-acme\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    try:
        raw = _exchange(address, port, request, timeout)
        response = http.client.HTTPResponse(_Replay(raw))  # type: ignore[arg-type]
        response.begin()
        body = response.read()
        if len(body) > HTTP01_MAX_BODY:
            raise _TooLarge
    except TimeoutError:
        return AcmeProblem(
            "connection", f"Fetching {where} from {address} took longer than {timeout:g} s."
        )
    except _TooLarge:
        return AcmeProblem(
            "unauthorized", f"{where} answered more than {HTTP01_MAX_BODY} bytes.", 403
        )
    except (OSError, http.client.HTTPException) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        return AcmeProblem(
            "connection",
            f"Could not fetch {where} from {address}:{port}: {why}. Is the HTTP-01 "
            "responder running on that port?",
        )
    if 300 <= response.status < 400:
        return AcmeProblem(
            "unauthorized",
            f"{where} answered {response.status} (a redirect to "
            f"{response.getheader('Location', '?')!r:.100}); the lab CA follows no redirects "
            "(RFC 8555 §8.3 says SHOULD; public CAs do): serve the key authorization directly.",
            403,
        )
    if response.status != 200:
        return AcmeProblem(
            "unauthorized", f"{where} answered {response.status} {response.reason}, not 200.", 403
        )
    got = body.decode("utf-8", "replace").rstrip()
    if got != expected:
        return AcmeProblem(
            "incorrectResponse",
            f"{where} served {got[:100]!r}, not the key authorization {expected!r} "
            '(token "." account key thumbprint, RFC 8555 §8.1).',
            403,
        )
    return None


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class CrlPublisher(HTTPService):
    """The ACME CA's CRL over plain HTTP: ``GET /crl``, DER, ``application/pkix-crl``.

    Why a second, plain-HTTP port when the ACME server already answers ``/crl`` over
    HTTPS: a client checking revocation must not need a TLS connection (with its own
    certificate to check, and its own revocation to check...) to fetch the list, and a
    CRL is signed, so it needs no channel security. RFC 5280 §4.2.1.13: an ``http`` URI in
    the CRL Distribution Point "MUST point to a single DER encoded CRL"; the CA/Browser
    Forum's Baseline Requirements (§7.1.2.11.2) allow only ``http://`` there. Let's
    Encrypt publishes its CRLs the same way (``http://*.c.lencr.org/``).
    """

    def __init__(self, crl_der: Callable[[], bytes], *, host: str = "127.0.0.1") -> None:
        super().__init__(host=host, port=0)
        self._crl_der = crl_der

    def handler(self) -> type[BaseHTTPRequestHandler]:
        publisher = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                if self.path != "/crl":
                    self.reply(HTTPStatus.NOT_FOUND, b"only /crl here\n", "text/plain")
                    return
                self.reply(HTTPStatus.OK, publisher._crl_der(), "application/pkix-crl")

        return Handler


class AcmeServer(HTTPService):
    """The lab's ACME CA over HTTPS on loopback (see the module docstring).

    ``issuer`` signs what it issues; ``chain`` is the issuer's chain (a self-signed root
    in it is not sent). ``http01_port`` is where HTTP-01 responders must listen (None:
    a free port picked at start). ``resolve(name)`` gives the address to validate
    ``name`` at. ``tls`` is ``(chain.pem, key.pem)`` for its HTTPS; None issues one.
    ``clock`` returns the current UTC time (tests and the bench move it).
    """

    #: Validations run at once.
    validation_workers = 4
    #: Seconds one HTTP-01 validation may take in all.
    http01_timeout = HTTP01_TIMEOUT
    #: Seconds a poll of a challenge being validated waits for the result (see _settle).
    settle_wait = 0.25

    def __init__(
        self,
        issuer: CA,
        chain: Sequence[x509.Certificate],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        http01_port: int | None = None,
        domain: str = "lab.localhost",
        resolve: Callable[[str], str] | None = None,
        tls: tuple[Path, Path] | None = None,
        clock: Callable[[], _dt.datetime] | None = None,
    ) -> None:
        super().__init__(host=host, port=port)
        self.issuer = issuer
        self._chain = list(chain)
        self._host = host
        self._http01_port = http01_port
        self.domain = domain
        self._resolve = resolve
        self._tls_files = tls
        self._clock = clock
        self._ca: AcmeCA | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._inflight: dict[str, concurrent.futures.Future[None]] = {}
        self._inflight_lock = threading.Lock()
        self._crl_publisher: CrlPublisher | None = None

    # --- life cycle
    def _context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self._tls_files is not None:
            ctx.load_cert_chain(str(self._tls_files[0]), str(self._tls_files[1]))
        else:
            leaf = self.issuer.issue("acme." + self.domain, self._host)
            leaf.configure_server(ctx)
        return ctx

    def start(self) -> Self:
        if self.running:
            return self
        if self._http01_port is None:
            self._http01_port = _free_port(self._host)
        self.tls = self._context()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            self.validation_workers, thread_name_prefix="acme-http01"
        )
        super().start()
        host, port = self.address
        shown = f"[{host}]" if ":" in host else host
        base = f"https://{shown}:{port}"
        try:
            publisher = CrlPublisher(lambda: self.ca.crl_der(), host=host).start()
        except BaseException:
            super().stop()
            raise
        self._crl_publisher = publisher
        crl_url = f"http://{shown}:{publisher.port}/crl"
        if self._ca is None:
            self._ca = AcmeCA(
                self.issuer,
                self._chain,
                base_url=base,
                domain=self.domain,
                validate=self._validate,
                clock=self._clock,
                crl_url=crl_url,
            )
        else:
            self._ca.base_url = base  # a restart picks new ports
            self._ca._crl_url = crl_url
        return self

    def stop(self) -> None:
        super().stop()
        publisher, self._crl_publisher = self._crl_publisher, None
        if publisher is not None:
            publisher.stop()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    # --- what the lab and lessons use
    @property
    def ca(self) -> AcmeCA:
        """The protocol logic (:class:`helpers.acme.ca.AcmeCA`)."""
        if self._ca is None:
            raise RuntimeError("the AcmeServer is not running: call start() or use `with`")
        return self._ca

    @property
    def directory(self) -> str:
        return self.ca.directory_url

    @property
    def http01_port(self) -> int:
        if self._http01_port is None:
            raise RuntimeError("the HTTP-01 port is picked at start(): start the server first")
        return self._http01_port

    @property
    def crl_url(self) -> str:
        return self.ca.crl_url

    @property
    def crl_pem(self) -> bytes:
        """The issuer's CRL (RFC 5280 §5), listing what revokeCert revoked."""
        return x509.load_der_x509_crl(self.ca.crl_der()).public_bytes(serialization.Encoding.PEM)

    @property
    def issued(self) -> list[x509.Certificate]:
        return self.ca.issued

    def suggest_renewal(self, cert: x509.Certificate, window: RenewalWindow) -> None:
        """Make renewalInfo suggest ``window`` for ``cert`` (RFC 9773 §4.2)."""
        self.ca.suggest_renewal(cert, window)

    # --- validation (worker threads)
    def _address_for(self, name: str) -> str:
        if self._resolve is not None:
            return self._resolve(name)
        return lab_names.lookup(name) or self._host

    def _validate(self, name: str, token: str, expected: str) -> AcmeProblem | None:
        return fetch_http01(
            self._address_for(name),
            self.http01_port,
            name,
            token,
            expected,
            timeout=self.http01_timeout,
        )

    def _dispatch(self) -> None:
        pool = self._pool
        if pool is None or self._ca is None:
            return
        for job in self._ca.take_pending():
            try:
                future = pool.submit(self._ca.run_validation, job)
            except RuntimeError:  # the pool is shutting down
                continue
            paths = (f"/chall/{job.challenge_id}", f"/authz/{job.authz_id}")
            with self._inflight_lock:
                for path in paths:
                    self._inflight[path] = future
            future.add_done_callback(lambda _f, paths=paths: self._forget(paths))

    def _forget(self, paths: tuple[str, ...]) -> None:
        with self._inflight_lock:
            for path in paths:
                self._inflight.pop(path, None)

    def _settle(self, path: str) -> None:
        """Before answering a poll of a challenge or authorization whose validation is
        running, wait a moment (at most :attr:`settle_wait`) for it to finish.

        RFC 8555 §7.5.1 has the client poll once it has *seen* the validation request;
        on loopback it polls within a millisecond of being fetched, before the CA has
        recorded the result, and would then sleep its back-off (0.25 s or more) for a
        validation that was a few milliseconds from done.
        """
        with self._inflight_lock:
            future = self._inflight.get(path.split("?", 1)[0])
        if future is not None:
            with contextlib.suppress(
                concurrent.futures.TimeoutError, concurrent.futures.CancelledError
            ):
                future.result(timeout=self.settle_wait)

    # --- HTTP
    def handler(self) -> type[BaseHTTPRequestHandler]:
        acme = self

        class Handler(QuietHandler):
            def _send(self, response: Response, *, head: bool = False, close: bool = False) -> None:
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if not head:
                    self.wfile.write(response.body)

            def _answer(self, body: bytes) -> Response:
                ca = acme.ca
                if self.command == "POST":
                    acme._settle(self.path)
                response = ca.handle(self.command, self.path, dict(self.headers.items()), body)
                acme._dispatch()
                return response

            def do_GET(self) -> None:
                self._send(self._answer(b""))

            def do_HEAD(self) -> None:
                self._send(self._answer(b""), head=True)

            def do_POST(self) -> None:
                length = (self.headers.get("Content-Length") or "").strip()
                if length.isdigit() and (len(length) > 18 or int(length) > MAX_BODY):
                    # Refused before reading, as a problem document (RFC 8555 §6.7).
                    problem = AcmeProblem(
                        "malformed", f"The body may be at most {MAX_BODY} bytes.", 413
                    )
                    response = acme.ca.problem_response(problem)
                    self._send(response, close=True)
                    self._drain()
                    return
                body = self.read_body(MAX_BODY)
                if body is None:
                    return  # refused (400/411/501/408) by read_body
                self._send(self._answer(body))

            def _drain(self) -> None:
                """Read and drop the unread body for a moment, so closing does not reset
                the connection before the client reads our 413 (RFC 9112 §9.6)."""
                self._reader.deadline = time.monotonic() + 1.0
                scratch, dropped = bytearray(65536), 0
                with contextlib.suppress(OSError, ValueError):
                    while dropped < 1 << 20:
                        count = self._reader.readinto(scratch)
                        if not count:
                            break
                        dropped += count

        return Handler

    # --- display
    def _summary(self) -> tuple[str, str, int, str]:
        if not self.running or self._ca is None:
            return "stopped", "-", 0, "-"
        return self.directory, str(self.http01_port), len(self.issued), self.crl_url

    def __repr__(self) -> str:
        directory, port, count, _ = self._summary()
        return (
            f"<AcmeServer {directory} http01_port={port} profiles={','.join(PROFILES)} "
            f"issued={count}>"
        )

    def _repr_html_(self) -> str:
        directory, port, count, crl = self._summary()
        rows = [
            ("Directory", directory),
            ("HTTP-01 port", port),
            ("Issues for", f"names under {self.domain} (HTTP-01 only, no wildcards)"),
            (
                "Profiles",
                "; ".join(f"{n}: {PROFILES[n][0]}" for n in PROFILES),
            ),
            ("Issued", str(count)),
            ("CRL", crl),
        ]
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td><code>{html.escape(v)}</code></td></tr>"
            for k, v in rows
        )
        return f"<table><caption>AcmeServer (helpers/acme/server.py)</caption>{body}</table>"
