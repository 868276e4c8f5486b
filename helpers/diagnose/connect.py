"""One real TLS connection and its verdict: :func:`check` (introduced in notebook 02).

:func:`check` parses the target (:mod:`.target`), builds a verifying context from its
options (:mod:`.context`) and connects: with ``via="ssl"`` over a raw socket, followed by
one HTTP request to read the status line; with ``via="requests"`` through ``requests``.
A failure becomes a :class:`~.result.Diagnosis` through :func:`~.classify.explain`, with
the certificates the server sent (:mod:`.server_chain`) when verification was the problem.

**A check is a verdict of one client's policy, not of the certificate.** Python's
:func:`ssl.create_default_context` still accepts a certificate whose name is only in the
Common Name; ``requests`` (through urllib3) does not. Revocation is checked only if you
hand over a CRL (``crl=``). The atlas (:mod:`.survey`) shows where the two clients differ.

:func:`check` never raises for a network or TLS failure: it returns a failed
:class:`~.result.Diagnosis`. Mistakes in the call itself (a malformed URL, a CA file that
does not exist) raise :class:`~helpers.errors.UsageError`.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography import x509

from .. import names
from ..errors import OfflineViolation, UsageError
from .classify import explain
from .context import _client_cert, _context, _Options, _path, _tls_version
from .result import Diagnosis
from .server_chain import _der_chain, _parse_chain, _probe_chain
from .target import (
    _is_never_resolvable,
    _lab_for,
    _looks_like_scenario,
    _parse_target,
    _running_lab,
    _Target,
)
from .unwrap import exception_chain

if TYPE_CHECKING:
    from ..lab import Lab


#: Seconds a :func:`check` waits for each step (connect, handshake, first HTTP bytes).
DEFAULT_TIMEOUT = 5.0


def _http_status(sock: ssl.SSLSocket, t: _Target) -> int | None:
    """Send one HTTP/1.1 request and read the status line (RFC 9112 §4)."""
    host = f"[{t.host}]" if ":" in t.host else t.host
    request = (
        f"GET {t.path} HTTP/1.1\r\nHost: {host}:{t.port}\r\n"
        "User-Agent: helpers.diagnose\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(request.encode("ascii", "replace"))
    data = b""
    while b"\r\n" not in data and len(data) < 8192:
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    line = data.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split()
    if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
        return int(parts[1])
    return None


def _failed(
    exc: BaseException,
    t: _Target,
    via: str,
    started: float,
    *,
    chain: list[x509.Certificate] | None = None,
    source: str = "",
    version: str | None = None,
    cipher: str | None = None,
) -> Diagnosis:
    d = explain(exc, target=t.text, via=via)
    d.host, d.port = t.host, t.port
    d.chain = chain or []
    d.chain_source = source if d.chain else ""
    d.version, d.cipher = version, cipher
    d.elapsed = time.monotonic() - started
    return d


def _no_lookup_failure(t: _Target, via: str, why: str) -> Diagnosis:
    # A real gaierror, made here instead of by the resolver: this name must not be sent.
    exc = socket.gaierror(socket.EAI_NONAME, why)
    d = _failed(exc, t, via, time.monotonic())
    d.elapsed = 0.0
    return d


def _lab_tunnel(proxy: str, host: str, port: int, timeout: float) -> socket.socket:
    """A CONNECT tunnel (RFC 9110 §9.3.6) through one of the running lab's own proxies.

    :func:`helpers.live.open_tunnel` never sends a lab name to a proxy (a real one would
    look it up in DNS); the lab's proxies (helpers/lab/proxy.py) are on this machine and
    answer lab names from the lab's own table, so for them, and only them, we may.
    """
    from ..live import ProxyTunnelError

    p = urlsplit(proxy)
    sock = socket.create_connection((p.hostname or "127.0.0.1", p.port or 80), timeout=timeout)
    try:
        sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer and len(answer) < 16384:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        line = answer.split(b"\r\n", 1)[0].decode("latin-1").strip()
        if not line.startswith("HTTP/1.1 200") and not line.startswith("HTTP/1.0 200"):
            raise ProxyTunnelError(f"Tunnel connection failed: {line or 'no answer'}")
    except BaseException:
        sock.close()
        raise
    return sock


def _is_lab_proxy(proxy: str, lab: Lab | None) -> bool:
    """Is ``proxy`` the tunnel or inspecting proxy of the running lab?"""
    from ..errors import LabError

    candidate = lab if lab is not None else _running_lab()
    if candidate is None or not candidate.running:
        return False
    try:
        ours = {candidate.proxy.tunnel, candidate.proxy.inspecting}
    except (LabError, AttributeError):  # a joined lab: its proxy is the teacher's
        return False
    return proxy.rstrip("/") in ours


def _opener(
    t: _Target, timeout: float, proxy: str | None, lab_proxy: bool
) -> Callable[[], socket.socket]:
    """How :func:`check` (and its probe) open the TCP connection: direct, or through a
    proxy's CONNECT tunnel (TLS still runs end to end with whatever answers there)."""
    if proxy and lab_proxy:
        return lambda: _lab_tunnel(proxy, t.host, t.port, timeout)
    if proxy:
        from ..live import open_tunnel

        return lambda: open_tunnel(proxy, t.host, t.port, timeout=timeout)
    return lambda: socket.create_connection((t.host, t.port), timeout=timeout)


def _check_ssl(
    t: _Target, opts: _Options, probe: bool, connect: Callable[[], socket.socket]
) -> Diagnosis:
    started = time.monotonic()
    ctx = _context(opts)
    try:
        raw = connect()
    except (OSError, OfflineViolation) as exc:
        return _failed(exc, t, "ssl", started)
    with raw:
        # server_hostname does two jobs: it is sent as SNI (for names only, RFC 6066 §3)
        # and it is what check_hostname matches the certificate against.
        sock = ctx.wrap_socket(raw, server_hostname=t.host, do_handshake_on_connect=False)
        with sock:
            try:
                sock.do_handshake()
            except (OSError, ValueError) as exc:
                chain: list[x509.Certificate] = []
                source = ""
                if isinstance(exc, ssl.SSLCertVerificationError):
                    if hasattr(sock, "get_unverified_chain"):  # Python 3.13+
                        chain, source = _parse_chain(_der_chain(sock)), "the failed connection"
                    elif probe:
                        chain = _probe_chain(t, opts, connect)
                        source = "a second, non-verifying probe"
                return _failed(exc, t, "ssl", started, chain=chain, source=source)
            version, cipher = sock.version(), (sock.cipher() or ("",))[0]
            chain = _parse_chain(_der_chain(sock))
            try:
                status = _http_status(sock, t)
            except ssl.SSLError as exc:
                # TLS 1.3: a refused client certificate arrives as an alert after the
                # client's handshake has finished (RFC 8446 §4.4.2.4).
                return _failed(
                    exc,
                    t,
                    "ssl",
                    started,
                    chain=chain,
                    source="the verified connection",
                    version=version,
                    cipher=cipher,
                )
            except OSError:
                status = None  # TLS worked; the server just did not answer HTTP
    return Diagnosis(
        target=t.text,
        ok=True,
        kind="ok",
        via="ssl",
        host=t.host,
        port=t.port,
        version=version,
        cipher=cipher,
        chain=chain,
        chain_source="the verified connection",
        status=status,
        elapsed=time.monotonic() - started,
    )


def _check_requests(
    t: _Target,
    opts: _Options,
    probe: bool,
    proxy: str | None,
    connect: Callable[[], socket.socket],
) -> Diagnosis:
    import requests
    from requests.adapters import HTTPAdapter

    started = time.monotonic()
    session = requests.Session()
    # No REQUESTS_CA_BUNDLE (or proxies) from the environment: the answer must not depend
    # on your shell. A proxy is used only when the caller passes one (helpers.live does,
    # from HTTPS_PROXY/NO_PROXY, exactly as requests would).
    session.trust_env = False
    if opts.crl or opts.min_version or opts.max_version:
        ctx = _context(opts, for_requests=True)

        class _ContextAdapter(HTTPAdapter):
            """requests has no ssl_context= argument; an adapter hands ours to urllib3."""

            def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
                kwargs["ssl_context"] = ctx
                super().init_poolmanager(*args, **kwargs)

        session.mount("https://", _ContextAdapter())
    verify: str | bool = opts.cafile or True  # True: requests' own bundle (certifi)
    cert: Any = None
    if opts.client_cert:
        cert = opts.client_cert if opts.client_cert[1] else opts.client_cert[0]
    try:
        with session:
            response = session.get(
                t.url,
                timeout=(opts.timeout, opts.timeout),
                verify=verify,
                cert=cert,
                proxies={"https": proxy} if proxy else None,
                allow_redirects=False,
                stream=True,
            )
            with response:
                sock = getattr(getattr(response.raw, "connection", None), "sock", None)
                sock = sock or _socket_of(response.raw)
                version = cipher = None
                chain: list[x509.Certificate] = []
                if isinstance(sock, ssl.SSLSocket):
                    version, cipher = sock.version(), (sock.cipher() or ("",))[0]
                    chain = _parse_chain(_der_chain(sock))
                status = response.status_code
    except Exception as exc:  # noqa: BLE001 - every failure becomes a Diagnosis
        verdict_chain = exception_chain(exc)
        if any(isinstance(e, OfflineViolation) for e in verdict_chain):
            return _failed(exc, t, "requests", started)
        if not isinstance(exc, requests.RequestException) and not any(
            isinstance(e, (OSError, ssl.SSLError)) for e in verdict_chain
        ):
            raise  # a bug, not a network failure: let it show
        chain, source = [], ""
        if probe and any(isinstance(e, ssl.SSLCertVerificationError) for e in verdict_chain):
            chain, source = _probe_chain(t, opts, connect), "a second, non-verifying probe"
        return _failed(exc, t, "requests", started, chain=chain, source=source)
    return Diagnosis(
        target=t.text,
        ok=True,
        kind="ok",
        via="requests",
        host=t.host,
        port=t.port,
        version=version,
        cipher=cipher,
        chain=chain,
        chain_source="the verified connection" if chain else "",
        status=status,
        elapsed=time.monotonic() - started,
    )


def _socket_of(raw: Any) -> Any:
    """The socket under a urllib3 response whose connection let go of it.

    http.client closes its connection object as soon as a response says the connection
    will close (no Content-Length, ``Connection: close``); the socket lives on inside the
    response's file object (``makefile()``), which is where we find it.
    """
    fp = getattr(getattr(raw, "_fp", None), "fp", None)  # http.client.HTTPResponse.fp
    return getattr(getattr(fp, "raw", None), "_sock", None)  # BufferedReader > SocketIO


def check(
    target: str,
    *,
    cafile: str | os.PathLike[str] | None = None,
    crl: str | os.PathLike[str] | None = None,
    client_cert: tuple[str | os.PathLike[str], str | os.PathLike[str]]
    | str
    | os.PathLike[str]
    | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    min_version: ssl.TLSVersion | str | None = None,
    max_version: ssl.TLSVersion | str | None = None,
    via: str = "ssl",
    lab: Lab | None = None,
    probe: bool = True,
    proxy: str | None = None,
) -> Diagnosis:
    """Connect to ``target`` over TLS and say what happened.

    ``target`` is a URL (``https://expired.lab.localhost:8443/``), ``host:port``
    (``example.com:443``; the port defaults to 443) or the name of a lab scenario
    (``"expired"``, which starts the lab if needed).

    ``via="ssl"`` uses :func:`ssl.create_default_context` and a raw socket, then sends
    one HTTP request to see the status line (and any alert that only arrives after the
    handshake). ``via="requests"`` makes the same request with ``requests`` and reports
    what it raised (ignoring proxy and CA-bundle environment variables, so the answer
    does not depend on your shell). Both verify: the certificate chain must lead to a trusted root
    (``cafile``: a PEM bundle; default: the system store for ssl, certifi for requests,
    and the lab's CA for lab hosts) and must name the host.

    ``crl`` loads a certificate revocation list and turns on ``VERIFY_CRL_CHECK_LEAF``;
    ``client_cert`` is ``(cert, key)`` for servers that want one (mutual TLS);
    ``min_version``/``max_version`` pin the protocol (``"TLSv1.2"``). ``timeout`` is in
    seconds, for each step. ``probe=False`` skips the second connection that reads the
    chain after a verification failure. ``proxy`` (``"http://proxy:3128"``) sends the
    connection through that HTTP proxy's ``CONNECT`` tunnel; by default a check goes
    direct. :func:`helpers.live.proxy_for` finds the proxy ``requests`` would use.

    Never raises for network or TLS failures: the result has ``ok=False``, a ``kind``,
    the raw ``message`` and the explanation. Show it in a notebook, or ``print()`` it.
    """
    if via not in ("ssl", "requests"):
        raise UsageError(
            f"via={via!r} is not a client this module knows.", "Use via='ssl' or via='requests'."
        )
    if not isinstance(timeout, (int, float)) or timeout <= 0:
        raise UsageError(
            f"timeout={timeout!r} must be a positive number of seconds.", "Try timeout=5."
        )
    target_text = target
    if isinstance(target, str) and _looks_like_scenario(target):
        from ..lab import get_lab

        lab = lab or get_lab()
        target_text = lab.url(target)
    t = _parse_target(target_text)
    if target_text != target:
        t = _Target(target, t.host, t.port, t.path, t.url)
    opts = _Options(
        cafile=_path(cafile, "CA bundle"),
        crl=_path(crl, "CRL"),
        client_cert=_client_cert(client_cert),
        timeout=float(timeout),
        min_version=_tls_version(min_version, "min_version"),
        max_version=_tls_version(max_version, "max_version"),
    )
    _context(opts)  # a bad cafile/crl/client_cert is the caller's mistake: UsageError now
    why = _is_never_resolvable(t.host)
    if why:
        return _no_lookup_failure(t, via, why)
    lab_proxy = bool(proxy) and _is_lab_proxy(proxy or "", lab)
    if proxy and names.is_lab_name(t.host) and not lab_proxy:
        # Another proxy would resolve the name itself, with real DNS, and could not reach
        # this machine's loopback anyway. The lab's own proxies (lab.proxy) can.
        raise UsageError(
            f"{t.host!r} is a lab name, served on this machine: a proxy cannot reach it and "
            "would send the name to DNS.",
            "Leave out proxy= for lab hosts, or use the lab's own (lab.proxy.inspecting).",
        )
    notes: list[str] = []
    if opts.cafile is None:
        serving = _lab_for(t.host, t.port, lab)
        if serving is not None:
            opts = dataclasses.replace(opts, cafile=str(serving.ca_bundle))
            notes.append("Trusted the lab's CA (lab.ca_bundle), as for every lab host.")
    if proxy:
        shown = proxy.rsplit("@", 1)[-1]  # never print a password from the proxy URL
        notes.append(f"Went through the proxy {shown} (a CONNECT tunnel, RFC 9110 §9.3.6).")
    connect = _opener(t, opts.timeout, proxy, lab_proxy)
    if via == "ssl":
        d = _check_ssl(t, opts, probe, connect)
    else:
        d = _check_requests(t, opts, probe, proxy, connect)
    d.notes = notes + d.notes
    if d.ok and not opts.crl:
        d.notes.append("Revocation was not checked (pass crl= to check a CRL).")
    return d
