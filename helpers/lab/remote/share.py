"""The teacher's side: :class:`ShareServer`, the plain-HTTP join endpoint (notebook 02).

``python -m helpers.lab --share`` starts one next to the lab, on port :data:`SHARE_PORT`
(8446) by default. It answers four paths and nothing else:

=============  ============================================================
``/lab.json``  the lab description (:mod:`helpers.lab.remote.description`),
               built for the address the student reached this machine on
``/``          a page for people: fingerprint, links, ``curl`` lines
``/ca.pem``    the lab CA certificate
``/crl.pem``   the lab CRL
=============  ============================================================

Everything it serves is public, unless the teacher passes ``share_client_key=True``
(``--share-client-key``): see :mod:`helpers.lab.remote` for why that is off by default.

A hostile room
--------------
The endpoint listens on the classroom network, where anyone can connect, so it is
served by the lab's own non-blocking reactor (:meth:`Lab.serve_plain
<helpers.lab.Lab.serve_plain>`, :mod:`helpers.lab.server`), not by a thread per client:
it gets the reactor's absolute deadlines, its connection cap derived from the file
descriptor limit and its fair eviction, so a student who opens a thousand slow sockets
starves only themselves, and the TLS scenarios keep working. On top of that:

* GET and HEAD only (405 otherwise), four exact paths (404 otherwise), and
  ``Cache-Control: no-store`` (a rebuilt lab has a new CA);
* ``on_join`` is called only once the whole description has been handed to the
  kernel: a client that hangs up halfway is not reported as joined;
* nothing a client does prints a traceback. Refused clients (malformed or half
  requests, deadlines, evictions, wrong paths) are reported through ``log`` at most once
  per address per minute, and at most :data:`LOG_BURST` lines a minute in all
  (:class:`RateLimitedLog`), so the teacher's terminal stays readable under attack;
* **DNS rebinding** (the decision): with ``share_client_key=True`` a request whose
  ``Host`` is a name rather than an IP literal gets 421 Misdirected Request. A web page
  on ``evil.example`` can make its own name resolve to the teacher's address and then
  read answers as same-origin, but its requests still say ``Host: evil.example``; an IP
  literal cannot be rebound. Students join with the address the CLI prints, an IP, so
  nothing honest is refused. Without the client key everything served is public and any
  ``Host`` is accepted (a teacher may use a ``.local`` name).
"""

from __future__ import annotations

import html
import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ...errors import LabError
from ..server import Request, Response
from .addresses import _plain, _url_host
from .description import FORMAT, KIND, SHARE_PORT
from .fingerprint import _hex_digits, ca_fingerprint, short_fingerprint

if TYPE_CHECKING:
    from .. import Lab

LOG_INTERVAL = 60.0  # seconds: one line per address at most, this often
LOG_BURST = 10  # lines in all per LOG_INTERVAL; the rest are counted in a summary line


class RateLimitedLog:
    """Write at most one line per key (a client address) per ``interval`` seconds, and at
    most ``burst`` lines per ``interval`` in all.

    What it holds back is counted: the next line for that address says how many, and
    when the window ends the first line after it says how many were held back overall.
    A room of attackers therefore costs the teacher a handful of lines a minute.
    """

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        interval: float = LOG_INTERVAL,
        burst: int = LOG_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write = write
        self.interval = interval
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, list[float]] = {}  # key -> [time of its last line, held back]
        self._window = clock()
        self._lines = 0
        self._quiet = 0  # lines held back by the burst limit in this window

    def __call__(self, key: str, line: str) -> None:
        with self._lock:
            now = self._clock()
            out: list[str] = []
            if now - self._window >= self.interval:
                if self._quiet:
                    out.append(f"... and {self._quiet} more like these in the last minute")
                self._window, self._lines, self._quiet = now, 0, 0
                if len(self._seen) > 4096:  # forget old addresses: bounded memory
                    self._seen = {k: v for k, v in self._seen.items() if now - v[0] < self.interval}
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self.interval:
                seen[1] += 1
            elif self._lines >= self.burst:
                self._quiet += 1
            else:
                more = int(seen[1]) if seen is not None else 0
                self._seen[key] = [now, 0]
                self._lines += 1
                out.append(line + (f" (and {more} more since its last line)" if more else ""))
        for text in out:
            self.write(text)


def _host_is_ip(host: str | None) -> bool:
    """True if a ``Host`` header is an IP literal (``10.0.0.5:8446``, ``[::1]:8446``) or
    absent (HTTP/1.0 clients; browsers always send one)."""
    if host is None:
        return True
    host = host.strip()
    if host.startswith("["):
        name = host[1 : host.find("]")] if "]" in host else ""
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _message(status: int, text: str) -> Response:
    body = f"<!doctype html><title>{status}</title><p>{text}</p>\n".encode()
    return Response(status, body)


class ShareServer:
    """The join endpoint for a running :class:`~helpers.lab.Lab` (plain HTTP, public data).

    ``bind`` defaults to the lab's own address; ``port`` to :data:`SHARE_PORT` (0: the OS
    picks). ``share_client_key=True`` adds the lab's client certificate *and key* to the
    description (see :mod:`helpers.lab.remote` for why that is off by default) and
    refuses requests addressed to a host name (DNS rebinding; see the module docstring).
    ``on_join(address)`` is called for every description completely sent. ``log(line)``
    receives one line per refused client, rate-limited (:class:`RateLimitedLog`). It is
    served from the lab's own server thread (:meth:`Lab.serve_plain
    <helpers.lab.Lab.serve_plain>`); use it as a context manager, or :meth:`start` /
    :meth:`stop`, while the lab runs.
    """

    def __init__(
        self,
        lab: Lab,
        *,
        bind: str | None = None,
        port: int = SHARE_PORT,
        share_client_key: bool = False,
        on_join: Callable[[str], None] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.lab = lab
        self.bind = bind if bind is not None else lab.bind
        self.requested_port = port
        self.share_client_key = share_client_key
        self.on_join = on_join
        self._log = RateLimitedLog(log) if log is not None else None
        self._listener: socket.socket | None = None
        self.ca_pem = b""
        self.crl_pem = b""
        self.fingerprint = ""
        self._chains: dict[str, str] = {}
        self._client: tuple[str, str] | None = None

    def start(self) -> ShareServer:
        if self._listener is not None:
            return self
        self.ca_pem = self.lab.ca_bundle.read_bytes()
        self.crl_pem = self.lab.crl.read_bytes()
        self.fingerprint = ca_fingerprint(self.ca_pem)
        files = self.lab.files
        self._chains = {name: path.read_text() for name, path in files.chains.items()}
        chain, key = self.lab.client_cert
        self._client = (chain.read_text(), key.read_text()) if self.share_client_key else None
        # --- description signing (helper B; helpers/lab/remote/signing.py): the key the lab
        # root certified at build time signs every description served (the root key is gone).
        from .signing import DescriptionSigner

        self._signer = DescriptionSigner.load(
            files.signer_cert, files.signer_key, self.lab.ca_bundle
        )
        # --- end of description signing
        host = self.bind or "0.0.0.0"  # noqa: S104 - an empty bind means every interface
        try:
            self._listener = self.lab.serve_plain(
                self._answer, host=host, port=self.requested_port, name="share",
                on_refused=self._refused,
            )  # fmt: skip
        except OSError as exc:
            raise LabError(
                f"The join endpoint could not listen on {self.bind}:{self.requested_port}: "
                f"{exc.strerror or exc}.",
                "Choose another port with --share-port N (0 lets the system pick one).",
            ) from exc
        return self

    def stop(self) -> None:
        """Stop answering, close the socket and its connections. Idempotent."""
        listener, self._listener = self._listener, None
        if listener is not None:
            self.lab.stop_serving(listener)

    def __enter__(self) -> ShareServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- answering (on the lab's server thread: quick, and never raises for a client)
    def _answer(self, request: Request) -> Response:
        """GET /, /lab.json, /ca.pem, /crl.pem. Nothing else."""
        peer = _plain(request.peer[0])
        if request.method not in ("GET", "HEAD"):
            self._refused(peer, f"method {request.method[:16]!r} (HTTP 405)")
            return _message(405, "Only GET and HEAD.")
        if self.share_client_key and not _host_is_ip(request.headers.get("host")):
            self._refused(peer, "addressed by host name while the client key is shared (421)")
            return _message(
                421,
                "This lab shares its client key, so it only answers requests addressed to "
                "its IP address (a defence against DNS rebinding). Use the address the "
                "teacher shows.",
            )
        path = request.target.split("?", 1)[0]
        local = _plain(request.local[0])
        on_sent = None
        if path == "/lab.json":
            body, kind = self.lab_json(local), "application/json"
            if self.on_join is not None and request.method == "GET":
                on_join = self.on_join
                on_sent = lambda: on_join(peer)  # noqa: E731 - after the last byte only
        elif path in ("/", "/index.html"):
            body, kind = self.page(local).encode(), "text/html; charset=utf-8"
        elif path == "/ca.pem":
            body, kind = self.ca_pem, "application/x-pem-file"
        elif path == "/crl.pem":
            body, kind = self.crl_pem, "application/x-pem-file"
        else:
            self._refused(peer, f"asked for {request.target[:40]!r} (HTTP 404)")
            return _message(404, "Not found: this endpoint serves /, /lab.json, /ca.pem, /crl.pem.")
        return Response(200, body, kind, on_sent=on_sent)

    def _refused(self, address: str, reason: str) -> None:
        if self._log is not None:
            address = _plain(address)
            self._log(address, f"refused {address}: {reason}")

    @property
    def port(self) -> int:
        """The port the join endpoint listens on."""
        if self._listener is None:
            raise LabError("The join endpoint is not running.", "Call start() first.")
        return int(self._listener.getsockname()[1])

    def url(self, address: str) -> str:
        """``http://ADDRESS:PORT/``: what a student passes to :func:`helpers.lab.join`."""
        return f"http://{_url_host(address)}:{self.port}/"

    def join_url(self, address: str) -> str:
        """:meth:`url` with the short fingerprint after ``#``, checked by ``join()``."""
        return self.url(address) + "#" + _hex_digits(short_fingerprint(self.fingerprint))

    def lab_json(self, address: str) -> bytes:
        """The body of ``GET /lab.json`` for a student who reached us at ``address``.

        The description's exact bytes, dated and signed by the lab's description signer
        in an envelope (:mod:`helpers.lab.remote.signing`): ``join()`` checks the
        signature against the CA whose fingerprint the student typed before it writes
        anything. Signed per request (the address differs; an ECDSA P-256 signature
        takes well under a millisecond).
        """
        description = json.dumps(self.description(address), indent=1).encode()
        return self._signer.envelope(description)

    def description(self, address: str) -> dict[str, Any]:
        """The lab as seen by a student who reached this machine at ``address``."""
        scenarios = {
            name: {
                "url": self.lab.url(name),
                "host": self.lab.host(name),
                "port": self.lab.port(name),
                "expect": scenario.expect.as_json(),
            }
            for name, scenario in self.lab.scenarios.items()
        }
        return {
            "kind": KIND,
            "format": FORMAT,
            "address": address,
            "ca_sha256": self.fingerprint,
            "ca_pem": self.ca_pem.decode("ascii"),
            "crl_pem": self.crl_pem.decode("ascii"),
            "chains_pem": self._chains,
            "client_cert_pem": self._client[0] if self._client else None,
            "client_key_pem": self._client[1] if self._client else None,
            "scenarios": scenarios,
        }

    def page(self, address: str) -> str:
        """``GET /``: the same facts for a person with a browser.

        The join lines here carry a placeholder, not the fingerprint, on purpose: this page
        travels over plain HTTP like everything else, so the fingerprint to check must come
        from the teacher's screen or board, not from the page it is meant to check.
        """
        e = html.escape
        url = self.url(address)
        rows = []
        for name in self.lab.scenarios:
            target = f"{_url_host(address)}:{self.lab.port(name)}"
            curl = f"curl --cacert ca.pem --connect-to ::{target} {self.lab.url(name)}"
            rows.append(f"<tr><td><code>{e(name)}</code></td><td><code>{e(curl)}</code></td></tr>")
        return (
            "<!doctype html><html lang=en><meta charset=utf-8><title>TLS course lab</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto}"
            "code{background:#f3f3f3}</style><h1>Join the TLS course lab</h1>"
            "<p>In a notebook, with the fingerprint <b>the teacher shows</b> after <code>#"
            "</code> (not one from this page, which anyone in the room could have answered in "
            "the teacher's place; <code>join()</code> refuses to run without one):<br>"
            f"<code>import helpers.lab; lab = helpers.lab.join({e(url + '#XXXXXXXXXXXXXXXX')!r})"
            "</code></p>"
            f"<p>Or start JupyterLab with <code>TLS_COURSE_LAB={e(url)}#XXXXXXXXXXXXXXXX</code> "
            "set: then every notebook uses this lab unchanged.</p>"
            f"<p>This lab's CA: <a href='/ca.pem'>ca.pem</a>, SHA-256 fingerprint "
            f"<code>{e(self.fingerprint)}</code> (compare it with the teacher's before you "
            "trust the file); its CRL: <a href='/crl.pem'>crl.pem</a>.</p>"
            "<p>curl resolves <code>*.localhost</code> to your own machine (RFC 6761 §6.3), and "
            "127.0.0.1 is your own machine anyway, so curl needs <code>--connect-to</code>:</p>"
            f"<table>{''.join(rows)}</table></html>\n"
        )
