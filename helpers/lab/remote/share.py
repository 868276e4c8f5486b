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
The server is :class:`socketserver.ThreadingTCPServer` with an
:class:`http.server.BaseHTTPRequestHandler`: GET and HEAD only, short socket timeouts,
and no reverse DNS lookup that could hang on a classroom network.
"""

from __future__ import annotations

import html
import http.server
import json
import socket
import socketserver
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ...errors import LabError
from .addresses import _plain, _url_host
from .description import FORMAT, KIND, SHARE_PORT
from .fingerprint import _hex_digits, ca_fingerprint, short_fingerprint

if TYPE_CHECKING:
    from .. import Lab


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET /, /lab.json, /ca.pem, /crl.pem. Nothing else, no bodies, short timeouts."""

    server: _HTTPServer
    timeout = 5  # seconds per socket operation: an idle client cannot hold a thread for long
    server_version = "tls-course-lab"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self._answer(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(head=True)

    def _answer(self, head: bool) -> None:
        share = self.server.share
        path = self.path.split("?", 1)[0]
        local = _plain(self.connection.getsockname()[0])
        if path == "/lab.json":
            body, kind = share.lab_json(local), "application/json"
            if share.on_join is not None:
                share.on_join(_plain(self.client_address[0]))
        elif path in ("/", "/index.html"):
            body, kind = share.page(local).encode(), "text/html; charset=utf-8"
        elif path == "/ca.pem":
            body, kind = share.ca_pem, "application/x-pem-file"
        elif path == "/crl.pem":
            body, kind = share.crl_pem, "application/x-pem-file"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")  # a rebuilt lab has a new CA
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the CLI reports joins through on_join; nothing else is worth a line


class _HTTPServer(socketserver.ThreadingTCPServer):
    # Not http.server.HTTPServer: its server_bind() does a reverse DNS lookup of the
    # bound address (getfqdn), which can hang on a classroom network without DNS.
    allow_reuse_address = True  # a restarted lab gets its port back at once
    daemon_threads = True
    share: ShareServer


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class ShareServer:
    """The join endpoint for a running :class:`~helpers.lab.Lab` (plain HTTP, public data).

    ``bind`` defaults to the lab's own address; ``port`` to :data:`SHARE_PORT` (0: the OS
    picks). ``share_client_key=True`` adds the lab's client certificate *and key* to the
    description (see :mod:`helpers.lab.remote` for why that is off by default).
    ``on_join(address)`` is called for every description served. Use it as a context
    manager, or :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        lab: Lab,
        *,
        bind: str | None = None,
        port: int = SHARE_PORT,
        share_client_key: bool = False,
        on_join: Callable[[str], None] | None = None,
    ) -> None:
        self.lab = lab
        self.bind = bind if bind is not None else lab.bind
        self.requested_port = port
        self.share_client_key = share_client_key
        self.on_join = on_join
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.ca_pem = b""
        self.crl_pem = b""
        self.fingerprint = ""
        self._chains: dict[str, str] = {}
        self._client: tuple[str, str] | None = None

    def start(self) -> ShareServer:
        if self._httpd is not None:
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
        server_class = _HTTPServer6 if ":" in host else _HTTPServer
        try:
            httpd = server_class((host, self.requested_port), _Handler)
        except OSError as exc:
            raise LabError(
                f"The join endpoint could not listen on {self.bind}:{self.requested_port}: "
                f"{exc.strerror or exc}.",
                "Choose another port with --share-port N (0 lets the system pick one).",
            ) from exc
        httpd.share = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="tls-lab-share"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering, close the socket, join the thread. Idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> ShareServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the join endpoint listens on."""
        if self._httpd is None:
            raise LabError("The join endpoint is not running.", "Call start() first.")
        return int(self._httpd.server_address[1])

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
