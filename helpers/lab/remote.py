"""One lab for a whole room: the teacher shares it, students join it (introduced in notebook 02).

Theory of operation
-------------------
``python -m helpers.lab --bind 0.0.0.0`` already puts the lab's servers on the network,
but a student's machine still cannot use them, for four reasons:

1. **names**: ``expired.lab.localhost`` is a loopback name (RFC 6761 §6.3). On the
   student's machine it means the student's *own* machine; curl and Chromium even
   hard-wire it. Python goes through :mod:`helpers.names`, a process-local hosts table,
   so Python *can* be told "these names live at 10.0.0.5", exactly like adding lines to
   ``/etc/hosts``, but only inside one process and only for lab names;
2. **trust**: the student has no copy of the lab CA certificate;
3. **ports**: the scenario ports are chosen by the teacher's OS;
4. **mutual TLS**: the client certificate and its key are on the teacher's disk.

So the teacher's lab also answers one small plain-HTTP **join endpoint**
(:class:`ShareServer`, port :data:`SHARE_PORT` = 8446 by default, a mnemonic for RFC
8446). ``GET /lab.json`` returns the lab description, the same shape as
``python -m helpers.lab --json`` but with the files inlined::

    {"kind": "tls-course-lab", "format": 1, "address": "10.0.0.5",
     "ca_sha256": "3F:2A:...", "ca_pem": PEM, "crl_pem": PEM,
     "chains_pem": {NAME: PEM}, "client_cert_pem": PEM | null, "client_key_pem": PEM | null,
     "scenarios": {NAME: {"url": URL, "host": HOST, "port": PORT, "expect": {...}}}}

``GET /`` is a page for people (fingerprint, links to ``/ca.pem`` and ``/crl.pem``,
``curl`` lines). On the student's side :class:`RemoteLab` (what
:func:`helpers.lab.join` returns, and what :func:`helpers.lab.get_lab` returns when
``TLS_COURSE_LAB=http://TEACHER:8446/`` is set) fetches the description, checks it,
writes the public files to the per-user cache, and maps every lab name to the address
it reached the teacher on. From then on ``lab.url("expired")``, ``lab.ca_bundle`` and
``helpers.diagnose.check`` work as with a local lab.

One scenario has no name: ``ip-san``, "a certificate for the IP address you typed",
127.0.0.1. No hosts table can move an address, so :class:`RemoteLab` forwards it, like
``ssh -L``: a small TCP relay on the student's 127.0.0.1 passes the bytes to the teacher's
port unchanged. TLS runs end to end through it (the relay sees only ciphertext), the
certificate still names the address the client typed, and every helper that treats
loopback as "the lab, not the internet" stays right.

Why plain HTTP is acceptable here, and what is left
---------------------------------------------------
Everything the endpoint serves by default is **public**: a CA *certificate* and the
scenario chains (servers send certificates to anyone who connects), a CRL (published by
design, RFC 5280 §5), host names and port numbers. Encrypting it would hide nothing
worth hiding. What plain HTTP does not give is **authenticity**: someone else in the room
could answer first (ARP spoofing, a rogue access point) with their own CA, and every
student would then trust that CA for lab names. This is *trust on first use*, like the
first ``ssh`` to a new host, and the answer is the same: compare a fingerprint over
another channel. The CLI prints the CA's SHA-256 fingerprint; the teacher writes it on
the board; students pass it to ``join(url, fingerprint=...)`` (or put it after ``#`` in
the URL) and :class:`RemoteLab` refuses a CA whose fingerprint does not start with those
digits. At least 16 hex digits (64 bits) are required: a prefix that long cannot be
matched by brute force during a lesson. The damage is bounded anyway: the lab CA is
trusted only where a student passes ``lab.ca_bundle`` explicitly, and lab names are never
looked up outside :mod:`helpers.names`.

What is never shared
--------------------
* **The CA private key**: the lab never writes it anywhere (see :mod:`helpers.lab.build`).
* **Server keys**: they stay on the teacher's machine. ``lab.files.chains`` works on a
  joined lab (certificates are public); ``lab.files.keys`` raises :class:`LabError`, so
  an exercise that builds its own server from a lab key needs a local lab.
* **The client key**, unless the teacher asks (``--share-client-key``). It is lab-only,
  throw-away material (a new one with every lab build) and opens nothing but this lab's
  ``client-cert-required`` port. Still, it is a private key, and sending private keys
  over cleartext HTTP is the habit this course exists to break; so by default it stays
  home and the mTLS cells only work on the teacher's screen. A teacher who wants every
  student to try mutual TLS turns it on for the lesson, knowingly, and the CLI says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import http.client
import http.server
import ipaddress
import json
import os
import re
import secrets
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .. import names, pki
from ..errors import ConnectionProblem, LabError, OfflineViolation, UsageError
from .build import cache_dir
from .scenarios import SCENARIOS, Scenario

if TYPE_CHECKING:
    from . import Lab

__all__ = [
    "FORMAT",
    "LAB_ENV",
    "SHARE_PORT",
    "JoinedFiles",
    "RemoteLab",
    "ShareServer",
    "ca_fingerprint",
    "local_addresses",
    "short_fingerprint",
]

#: The environment variable that makes :func:`helpers.lab.get_lab` join a teacher's lab.
LAB_ENV = "TLS_COURSE_LAB"
#: Default port of the join endpoint: plain HTTP, and easy to remember in a TLS course (RFC 8446).
SHARE_PORT = 8446
#: Version of the lab description; bumped when its fields change meaning.
FORMAT = 1
KIND = "tls-course-lab"
JOIN_TIMEOUT = 5.0  # seconds to connect to the teacher and read the description
MAX_DESCRIPTION = 1024 * 1024  # bytes: a description is ~20 KB; refuse to buffer more
MIN_FINGERPRINT_HEX = 16  # 64 bits: not matchable by brute force during a lesson


# --------------------------------------------------------------------------- fingerprints


def ca_fingerprint(cert: x509.Certificate | bytes) -> str:
    """SHA-256 over the DER certificate, ``AB:CD:...``: what browsers and ``openssl x509
    -fingerprint -sha256`` show."""
    if isinstance(cert, bytes):
        cert = pki.load_certificate(cert)
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def short_fingerprint(fingerprint: str) -> str:
    """The first 16 hex digits in groups of four (``3F2A 9B1C 77D0 E4A5``): to read aloud."""
    digits = _hex_digits(fingerprint)[:MIN_FINGERPRINT_HEX]
    return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))


def _hex_digits(text: str) -> str:
    return re.sub(r"[\s:\-]", "", text).upper()


def _expected_fingerprint(text: str | None) -> str | None:
    """Normalise what a student typed; ``UsageError`` if it cannot be a fingerprint."""
    if text is None or not text.strip():
        return None
    raw = text.strip()
    if raw.lower().startswith("sha256="):
        raw = raw[len("sha256=") :]
    digits = _hex_digits(raw)
    if not re.fullmatch(r"[0-9A-F]+", digits) or len(digits) > 64:
        raise UsageError(
            f"{text!r} is not a SHA-256 fingerprint.",
            "Copy the hex digits the teacher shows, e.g. '3F2A 9B1C 77D0 E4A5'.",
        )
    if len(digits) < MIN_FINGERPRINT_HEX:
        raise UsageError(
            f"The fingerprint {text!r} is too short to protect you ({len(digits)} hex digits).",
            f"Use at least the first {MIN_FINGERPRINT_HEX} hex digits the teacher shows.",
        )
    return digits


# --------------------------------------------------------------------------- the teacher's side


def local_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses, the one on the default route first.

    Printed by the CLI, so the teacher knows what students should type when the lab
    listens on every interface (``0.0.0.0``). Two tricks, neither of which sends a packet:

    * ``connect()`` on a UDP socket only asks the kernel for a route; the source address
      it would use is then ``getsockname()`` (192.0.2.1 is TEST-NET-1, RFC 5737);
    * on Linux, ``SIOCGIFADDR`` asks each interface for its address.

    No host name is looked up: on a classroom network without DNS that could hang.
    """
    found: list[str] = []
    with contextlib.suppress(OSError, OfflineViolation):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            found.append(probe.getsockname()[0])
    if sys.platform.startswith("linux"):
        import fcntl
        import struct

        siocgifaddr = 0x8915
        with contextlib.suppress(OSError):
            for _index, ifname in socket.if_nameindex():
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    try:
                        packed = fcntl.ioctl(
                            s.fileno(), siocgifaddr, struct.pack("256s", ifname.encode()[:15])
                        )
                    except OSError:
                        continue  # an interface without an IPv4 address
                    found.append(socket.inet_ntoa(packed[20:24]))
    return [a for a in dict.fromkeys(found) if not ipaddress.ip_address(a).is_loopback]


def _plain(address: str) -> str:
    """``::ffff:10.0.0.5`` (an IPv4 client on a dual-stack socket) -> ``10.0.0.5``."""
    with contextlib.suppress(ValueError):
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
    return address


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


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
            body = json.dumps(share.description(local), indent=1).encode()
            kind = "application/json"
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
    description (see the module docstring for why that is off by default).
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

        The join lines here carry no fingerprint on purpose: this page travels over plain
        HTTP like everything else, so the fingerprint to check must come from the
        teacher's screen or board, not from the page it is meant to check.
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
            "<p>In a notebook, with the fingerprint <b>the teacher shows</b> (not one from this "
            "page, which anyone in the room could have answered in the teacher's place):<br>"
            f"<code>import helpers.lab; lab = helpers.lab.join({e(url)!r}, fingerprint="
            "'XXXX XXXX XXXX XXXX')</code></p>"
            f"<p>Or start JupyterLab with <code>TLS_COURSE_LAB={e(url)}#XXXXXXXXXXXXXXXX</code> "
            "set: then every notebook uses this lab unchanged.</p>"
            f"<p>This lab's CA: <a href='/ca.pem'>ca.pem</a>, SHA-256 fingerprint "
            f"<code>{e(self.fingerprint)}</code> (compare it with the teacher's before you "
            "trust the file); its CRL: <a href='/crl.pem'>crl.pem</a>.</p>"
            "<p>curl resolves <code>*.localhost</code> to your own machine (RFC 6761 §6.3), and "
            "127.0.0.1 is your own machine anyway, so curl needs <code>--connect-to</code>:</p>"
            f"<table>{''.join(rows)}</table></html>\n"
        )


# --------------------------------------------------------------------------- the student's side


class _KeysStayHome(Mapping[str, Path]):
    """``files.keys`` of a joined lab: asking for a server key explains why there is none."""

    def __getitem__(self, name: str) -> Path:
        raise LabError(
            f"The {name!r} server's private key stays on the teacher's machine; a joined lab "
            "has only certificates (files.chains), the CA and the CRL.",
            f"For exercises that build their own server, unset {LAB_ENV} and restart the "
            "kernel to use a lab on your own machine.",
        )

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


@dataclass(frozen=True)
class JoinedFiles:
    """What a student's machine holds for a joined lab (all public, in the per-user cache).

    The same attribute names as :class:`helpers.lab.build.LabFiles` where they make sense:
    ``chains`` are the certificate chains each scenario's server sends; ``keys`` has none.
    """

    directory: Path
    ca_bundle: Path
    crl: Path
    chains: Mapping[str, Path]
    client_chain: Path | None
    client_key: Path | None
    keys: Mapping[str, Path] = field(default_factory=_KeysStayHome)


class _Forwarder:
    """A loopback TCP port that passes every byte to one remote address (like ``ssh -L``).

    One listening socket on ``(host, port)`` (port 0 if that one is taken), one accept
    thread, and per connection two threads that copy one direction each. TLS runs end to
    end through it: the forwarder sees only ciphertext and changes nothing. ``stop()``
    closes every socket, which ends every thread.
    """

    def __init__(self, listen: tuple[str, int], target: tuple[str, int], timeout: float) -> None:
        self.target, self.timeout = target, timeout
        family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            try:
                self._listener.bind(listen)
            except OSError:
                self._listener.bind((listen[0], 0))  # the teacher's number is taken here
            self._listener.listen(64)
        except BaseException:
            self._listener.close()
            raise
        self.port: int = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="tls-lab-forward", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        # Closing a socket from another thread does not wake a blocking accept() (Linux
        # keeps it waiting), so wait in short slices and look at the stop flag in between.
        self._listener.settimeout(0.1)
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=self.timeout)
        except OSError:
            client.close()  # the client sees its connection closed, as if refused late
            return
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # see lab/server.py
        with self._lock:
            self._open |= {client, upstream}
        back = threading.Thread(target=self._copy, args=(upstream, client), daemon=True)
        back.start()
        self._copy(client, upstream)
        back.join()
        with self._lock:
            self._open -= {client, upstream}
        client.close()
        upstream.close()

    @staticmethod
    def _copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass  # a reset, or stop() closed the socket
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)  # pass the end of the stream on

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class _Source:
    url: str  # the join URL as given, without the fragment
    host: str
    port: int
    path: str  # of the description
    fingerprint: str | None  # from the fragment, normalised


def _parse_source(text: str) -> _Source:
    """``http://10.0.0.5:8446/#3F2A...``, ``10.0.0.5:8446`` or ``10.0.0.5`` -> parts."""
    raw = (text or "").strip()
    if not raw:
        raise UsageError(
            "No address was given for the teacher's lab.",
            "Pass the URL the teacher shows, e.g. join('http://10.0.0.5:8446/').",
        )
    if "://" not in raw:
        raw = "http://" + raw
    parts = urlsplit(raw)
    if parts.scheme != "http":
        raise UsageError(
            f"{text!r} is not an http:// URL.",
            "The join endpoint is plain HTTP (what it serves is public): use http://TEACHER:8446/.",
        )
    try:
        port = parts.port or SHARE_PORT
    except ValueError as exc:
        raise UsageError(f"{text!r} has an invalid port ({exc}).", "Ports are 1-65535.") from exc
    if not parts.hostname:
        raise UsageError(f"{text!r} has no host.", "Write it as http://TEACHER:8446/.")
    path = parts.path or "/"
    if not path.endswith(".json"):
        path = path.rstrip("/") + "/lab.json"
    url = f"http://{_url_host(parts.hostname)}:{port}{parts.path or '/'}"
    return _Source(url, parts.hostname, port, path, _expected_fingerprint(parts.fragment))


def _fetch(source: _Source, timeout: float) -> tuple[dict[str, Any], str]:
    """GET the description; return it and the numeric address we reached the teacher on."""
    hint = (
        "Check the address and port the teacher shows, that you are on the same network, "
        "and that the teacher's lab is running."
    )
    # http.client, not urllib: no proxy from the environment may stand between a
    # student and the classroom (a proxy would see and could change the answer).
    conn = http.client.HTTPConnection(source.host, source.port, timeout=timeout)
    try:
        conn.request("GET", source.path, headers={"Accept": "application/json"})
        peer = _plain(conn.sock.getpeername()[0]) if conn.sock is not None else source.host
        response = conn.getresponse()
        body = response.read(MAX_DESCRIPTION + 1)
    except ConnectionRefusedError:
        raise ConnectionProblem(
            f"Nothing answers at {source.url}: the teacher's lab is not running there.", hint
        ) from None
    except TimeoutError:
        raise ConnectionProblem(
            f"{source.url} did not answer within {timeout:g} s.", hint
        ) from None
    except socket.gaierror:
        raise ConnectionProblem(
            f"The name {source.host!r} could not be resolved.",
            "Use the teacher's IP address, as the teacher's screen shows it.",
        ) from None
    except (OSError, http.client.HTTPException) as exc:
        raise ConnectionProblem(
            f"Could not read the lab description from {source.url}: "
            f"{getattr(exc, 'strerror', None) or exc}.",
            hint,
        ) from None
    finally:
        conn.close()
    not_a_lab = "Check the URL: it is the one `python -m helpers.lab --share` prints."
    if response.status != 200:
        raise LabError(
            f"{source.url} answered HTTP {response.status}, not a lab description.", not_a_lab
        )
    if len(body) > MAX_DESCRIPTION:
        raise LabError(f"{source.url} sent more than a lab description.", not_a_lab)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise LabError(f"{source.url} is not a TLS course lab.", not_a_lab)
    if data.get("format") != FORMAT:
        raise LabError(
            f"The teacher's lab speaks description format {data.get('format')!r}; "
            f"this copy of the course knows format {FORMAT}.",
            "Update the older copy of the course (git pull) and restart.",
        )
    return data, peer


def _text(data: Mapping[str, Any], key: str, url: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise LabError(f"The lab description from {url} has no {key!r}.", "Ask the teacher.")
    return value


def _scenarios_from(
    data: Mapping[str, Any], url: str
) -> tuple[dict[str, Scenario], dict[str, int]]:
    """The scenarios this copy of the course knows, and the teacher's port for each.

    Only the port numbers are taken from the description. Names, addresses and verdicts
    come from this copy of the course, so a description cannot point a name anywhere
    but at the teacher, or make this machine listen anywhere but on loopback.
    """
    raw = data.get("scenarios")
    if not isinstance(raw, dict) or not raw:
        raise LabError(f"The lab description from {url} lists no scenarios.", "Ask the teacher.")
    scenarios: dict[str, Scenario] = {}
    ports: dict[str, int] = {}
    for name, info in raw.items():
        local = SCENARIOS.get(name)
        if local is None or not isinstance(info, dict) or info.get("host") != local.host:
            continue  # added or changed after this copy of the course: skip it
        port = info.get("port")
        if not isinstance(port, int) or not 0 < port < 65536:
            raise LabError(
                f"The lab description from {url} has an invalid port for {name!r}.",
                "Ask the teacher to restart the lab.",
            )
        scenarios[name] = local
        ports[name] = port
    if not scenarios:
        raise LabError(
            f"The lab at {url} has no scenario this copy of the course knows.",
            "Update the course (git pull).",
        )
    return scenarios, ports


def _write(path: Path, data: bytes) -> None:
    """Write public material atomically (another kernel may be reading the same file)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class RemoteLab:
    """A teacher's lab, joined over the classroom network: the same accessors as :class:`Lab`.

    ``source`` is the URL the teacher's ``python -m helpers.lab --share`` prints
    (``http://10.0.0.5:8446/``; a bare ``10.0.0.5`` means port 8446). ``fingerprint``:
    the lab CA's SHA-256 fingerprint, or its first 16+ hex digits, as the teacher shows
    it; it may also follow ``#`` in the URL. When given, a CA with another fingerprint is
    refused. ``directory``: where the public files are written (default: the per-user
    cache, :func:`helpers.lab.cache_dir` ``/joined``).

    :meth:`start` fetches the description, maps the lab names to the teacher's address
    in :mod:`helpers.names` and forwards the IP-address scenario; :meth:`stop` undoes
    both (the teacher's lab keeps running, of course). Prefer :func:`helpers.lab.join`,
    which also makes it this kernel's lab.
    """

    def __init__(
        self,
        source: str,
        fingerprint: str | None = None,
        *,
        directory: str | os.PathLike[str] | None = None,
        timeout: float = JOIN_TIMEOUT,
    ) -> None:
        self._source = _parse_source(source)
        given = _expected_fingerprint(fingerprint)
        if given and self._source.fingerprint and given != self._source.fingerprint:
            raise UsageError(
                "The URL and the fingerprint= argument name different fingerprints.",
                "Give the fingerprint once, as the teacher shows it.",
            )
        self._expected = given or self._source.fingerprint
        self._directory = Path(directory) if directory is not None else None
        self.timeout = timeout
        self._lock = threading.Lock()
        self._running = False
        self._address = ""
        self._fingerprint = ""
        self._scenarios: dict[str, Scenario] = {}
        self._addresses: dict[str, tuple[str, int]] = {}
        self._files: JoinedFiles | None = None
        self._names: list[tuple[str, str]] = []
        self._forwarders: list[_Forwarder] = []

    # --- lifecycle
    def start(self) -> RemoteLab:
        """Fetch the teacher's description, check it, write the public files, map the names."""
        with self._lock:
            if self._running:
                return self
            data, peer = _fetch(self._source, self.timeout)
            url = self._source.url
            ca_pem = _text(data, "ca_pem", url).encode("ascii", "replace")
            try:
                ca = pki.load_certificate(ca_pem)
            except ValueError:
                raise LabError(
                    f"The lab description from {url} carries no valid CA certificate.",
                    "Ask the teacher to restart the lab.",
                ) from None
            fingerprint = ca_fingerprint(ca)
            if self._expected and not _hex_digits(fingerprint).startswith(self._expected):
                raise LabError(
                    f"The lab at {url} has CA fingerprint {short_fingerprint(fingerprint)}, "
                    f"not the {short_fingerprint(self._expected)} you were given.",
                    "Do not use it: check the fingerprint with the teacher (someone in the room "
                    "may be answering in the teacher's place).",
                )
            scenarios, ports = _scenarios_from(data, url)
            files = self._write_files(data, ca, fingerprint, scenarios)
            addresses: dict[str, tuple[str, int]] = {}
            forwarders: list[_Forwarder] = []
            registered: list[tuple[str, str]] = []
            try:
                for name, scenario in scenarios.items():
                    if names.is_lab_name(scenario.host):
                        names.add(scenario.host, peer)  # like a line in /etc/hosts
                        registered.append((scenario.host, peer))
                        addresses[name] = (peer, ports[name])
                    else:  # an IP literal (ip-san): forward it from this machine
                        forward = _Forwarder(
                            (scenario.host, ports[name]), (peer, ports[name]), self.timeout
                        )
                        forwarders.append(forward)
                        addresses[name] = (scenario.host, forward.port)
            except BaseException:
                _undo(registered, forwarders)
                raise
            self._address, self._fingerprint = peer, fingerprint
            self._scenarios, self._addresses, self._files = scenarios, addresses, files
            self._names, self._forwarders, self._running = registered, forwarders, True
        return self

    def _write_files(
        self,
        data: Mapping[str, Any],
        ca: x509.Certificate,
        fingerprint: str,
        scenarios: Mapping[str, Scenario],
    ) -> JoinedFiles:
        url = self._source.url
        damaged = "Ask the teacher to restart the lab."
        parent = self._directory or cache_dir() / "joined"
        # One directory per CA: a rebuilt teacher lab (new CA) never mixes with the old one.
        directory = parent / _hex_digits(fingerprint)[:16].lower()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        ca_bundle, crl = directory / "ca.pem", directory / "crl.pem"
        _write(ca_bundle, ca.public_bytes(serialization.Encoding.PEM))
        crl_pem = _text(data, "crl_pem", url).encode("ascii", "replace")
        try:
            x509.load_pem_x509_crl(crl_pem)
        except ValueError:
            raise LabError(
                f"The lab description from {url} carries no valid CRL.", damaged
            ) from None
        _write(crl, crl_pem)
        chains: dict[str, Path] = {}
        raw_chains = data.get("chains_pem")
        for name in scenarios:
            pem = raw_chains.get(name) if isinstance(raw_chains, dict) else None
            if not isinstance(pem, str) or not pki.load_certificates(pem.encode()):
                raise LabError(
                    f"The lab description from {url} has no chain for {name!r}.", damaged
                )
            chains[name] = directory / f"{name}-chain.pem"
            _write(chains[name], pem.encode())
        chain = key = None
        cert_pem, key_pem = data.get("client_cert_pem"), data.get("client_key_pem")
        if isinstance(cert_pem, str) and isinstance(key_pem, str):
            try:
                client = pki.load_certificate(cert_pem.encode())
                private = pki.load_private_key(key_pem.encode())
                pki.ensure_key_matches(client, private)
            except ValueError:
                raise LabError(f"The client certificate from {url} is damaged.", damaged) from None
            chain = directory / "client-chain.pem"
            _write(chain, cert_pem.encode())
            key = pki.write_private_key(directory / "client-key.pem", private)  # mode 0600
        return JoinedFiles(directory, ca_bundle, crl, chains, chain, key)

    def stop(self) -> None:
        """Forget the teacher's names, stop forwarding (the files stay in the cache). Idempotent."""
        with self._lock:
            if not self._running:
                return
            _undo(self._names, self._forwarders)
            self._names, self._forwarders, self._addresses = [], [], {}
            self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def __enter__(self) -> RemoteLab:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- where things are (the same names as Lab's)
    def _scenario(self, name: str) -> Scenario:
        try:
            return self._scenarios[name] if self._scenarios else SCENARIOS[name]
        except KeyError:
            raise LabError(
                f"There is no lab scenario called {name!r}.",
                "Pick one of: " + ", ".join(self._scenarios or SCENARIOS) + ".",
            ) from None

    def _running_files(self) -> JoinedFiles:
        if self._files is None or not self._running:
            raise LabError(
                "This kernel has not joined the teacher's lab (or has left it).",
                "Call helpers.lab.join(URL) with the URL the teacher shows.",
            )
        return self._files

    @property
    def source(self) -> str:
        """The join URL (without any fingerprint)."""
        return self._source.url

    @property
    def bind(self) -> str:
        """The teacher's address, as this machine reaches it."""
        return self._address

    @property
    def fingerprint(self) -> str:
        """SHA-256 fingerprint of the lab CA (``AB:CD:...``): compare it with the teacher's."""
        self._running_files()
        return self._fingerprint

    @property
    def scenarios(self) -> Mapping[str, Scenario]:
        """Every scenario the teacher serves (that this copy of the course knows)."""
        return self._scenarios or SCENARIOS

    def host(self, name: str) -> str:
        """The host name clients use for scenario ``name`` (``expired.lab.localhost``)."""
        return self._scenario(name).host

    def address(self, name: str) -> tuple[str, int]:
        """``(ip, port)`` to connect to for ``name``: the teacher's, or the local forward's."""
        self._scenario(name)
        self._running_files()
        try:
            return self._addresses[name]
        except KeyError:
            raise LabError(
                f"The teacher's lab does not serve {name!r}.", "Pick another scenario."
            ) from None

    def port(self, name: str) -> int:
        """The TCP port to use for scenario ``name``."""
        return self.address(name)[1]

    def url(self, name: str) -> str:
        """``https://expired.lab.localhost:PORT/``, as with a local lab."""
        return f"https://{_url_host(self.host(name))}:{self.port(name)}/"

    @property
    def ca_bundle(self) -> Path:
        """The teacher's lab CA certificate, written to this machine's cache."""
        return self._running_files().ca_bundle

    @property
    def crl(self) -> Path:
        """The teacher's lab CRL, written to this machine's cache."""
        return self._running_files().crl

    @property
    def client_cert(self) -> tuple[Path, Path]:
        """``(chain, key)`` for mutual TLS, if the teacher shares them."""
        files = self._running_files()
        if files.client_chain is None or files.client_key is None:
            raise LabError(
                "The teacher's lab does not share its client key, so mutual TLS "
                "(client-cert-required) only works on the teacher's machine.",
                "Watch it on the teacher's screen, ask for --share-client-key, or unset "
                f"{LAB_ENV} and use a lab on your own machine.",
            )
        return (files.client_chain, files.client_key)

    @property
    def files(self) -> JoinedFiles:
        """The public files: ``ca_bundle``, ``crl``, ``chains``; ``keys`` stay with the teacher."""
        return self._running_files()

    # --- display
    def __repr__(self) -> str:
        if not self._running:
            return f"<RemoteLab {self.source} (not joined)>"
        return f"<RemoteLab {len(self._addresses)} servers at {self._address} via {self.source}>"

    def _repr_html_(self) -> str:
        from . import _scenario_rows_html

        e = html.escape
        if not self._running:
            return f"<p>{e(repr(self))}: call <code>helpers.lab.join(url)</code>.</p>"
        checked = (
            "it matches the one you gave"
            if self._expected
            else "compare it with the one the teacher shows"
        )
        files = self._running_files()
        mtls = (
            "shared"
            if files.client_key is not None
            else "not shared (mutual TLS works on the teacher's screen)"
        )
        return (
            f"<p>Joined the teacher's lab at <code>{e(self.source)}</code>: "
            f"{len(self._addresses)} servers on <code>{e(self._address)}</code>.<br>"
            f"Lab CA SHA-256 fingerprint <code>{e(short_fingerprint(self._fingerprint))}"
            f"</code>&hellip; ({checked}); trust <code>{e(str(files.ca_bundle))}</code> to "
            f"verify them. Client key: {e(mtls)}.</p>" + _scenario_rows_html(self)
        )


def _undo(registered: list[tuple[str, str]], forwarders: list[_Forwarder]) -> None:
    for host, address in registered:
        names.remove(host, address)
    for forward in forwarders:
        forward.stop()
