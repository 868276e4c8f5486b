"""Fetch the certificates of many hosts at once (introduced in notebook 03).

Theory of operation
-------------------
Fetching one certificate is mostly *waiting*: a TCP handshake, then a TLS handshake,
each costing network round trips, while the CPU does almost nothing. A hundred hosts
one after another cost a hundred times the waiting. Threads are the simplest cure in
Python: while one thread waits in ``select``/``recv`` the GIL is released, so a pool
of 32 threads waits for 32 hosts at the same time. (``asyncio`` would do the same with
one thread; the pool keeps the code readable as plain blocking calls.)

For each host, :func:`fetch_certificates` does:

1. **a verifying handshake**, exactly like a browser or ``requests``: the chain must
   lead to a trusted root and the name must match (``ssl.create_default_context()``);
2. **if, and only if, that fails at the TLS level**, a second, *non-verifying* probe to
   read what the server sent anyway. An expired or self-signed certificate is still a
   certificate, and inspecting it is the whole point of notebook 03. The probe
   connection is closed right after the handshake; nothing is ever sent over it.
3. One :class:`FetchResult` per host, failure or not, with an error *sentence*.

Every host has its own deadline (``timeout`` seconds for everything: connecting, both
handshakes). The handshake runs on a non-blocking socket in a ``select`` loop that
checks the deadline, so a server that accepts the connection and then never answers
cannot hold a worker longer than ``timeout``.

Live mode: hosts on loopback (``127.0.0.0/8``, ``::1``, ``localhost``) and lab names
(``*.lab.localhost``) are always allowed; anything else needs
:func:`helpers.live.enable` (else :class:`~helpers.errors.LiveModeOff`). A lab name is
answered by the running lab inside this process (:mod:`helpers.names`) and never sent
to DNS, however it is spelled (``valid.lab.localhost\u3002`` too): with no lab running
it raises :class:`~helpers.errors.LabError` before anything is looked up.

Proxies: a machine that reaches the web only through an HTTP proxy has
``HTTPS_PROXY`` set, and ``requests`` honours it. So does this module, for internet
hosts: :func:`helpers.live.proxy_for` reads ``HTTPS_PROXY``/``ALL_PROXY`` and
``NO_PROXY`` exactly as ``requests`` does, and :func:`helpers.live.open_tunnel` asks the
proxy to ``CONNECT host:port`` (RFC 9110 §9.3.6). The TLS handshake then runs end to end
through the tunnel: the proxy relays encrypted records and sees only the name in SNI,
so the certificate we read is the server's own (unless the proxy re-signs traffic with a
company CA, which then shows up as the issuer). Loopback and ``*.localhost`` names always
go direct: they mean *this* machine (RFC 6761 §6.3), which a proxy elsewhere cannot
reach, and lab names resolve only inside this Python process. ``trust_env=False``
ignores the environment, as in a ``requests.Session``; ``proxy=`` names one explicitly.
"""

from __future__ import annotations

import html
import ipaddress
import select
import socket
import ssl
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Union

from cryptography import x509

from . import live, names
from .errors import ConnectionProblem, CourseError, LiveModeOff, PEMError
from .pki.panics import panics_as

__all__ = [
    "FetchResult",
    "FetchResults",
    "Target",
    "parse_target",
    "data_file",
    "fetch_certificate",
    "fetch_certificates",
]

#: What a caller may pass as one target: ``"host"``, ``"host:port"``, ``"[::1]:8443"``,
#: ``"https://host:port/path"`` or ``(host, port)``.
TargetLike = Union[str, "tuple[str, int]", "Target"]


@dataclass(frozen=True)
class Target:
    """Where to connect, and which name to ask for and check."""

    host: str
    port: int = 443

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_target(target: TargetLike) -> Target:
    """Turn ``"host:port"``, ``(host, port)`` or a URL into a :class:`Target` (port 443 by default).

    >>> parse_target("https://expired.lab.localhost:8443/index.html")
    Target(host='expired.lab.localhost', port=8443)
    >>> parse_target(("127.0.0.1", 8443))
    Target(host='127.0.0.1', port=8443)
    """
    if isinstance(target, Target):
        return target
    if isinstance(target, tuple):
        host, port = target[0], target[1]
        return Target(str(host), int(port))
    if not isinstance(target, str) or not target.strip():
        raise ValueError(
            f"Cannot read {target!r} as a host: use 'host:port', (host, port) or a URL."
        )
    text = target.strip()
    # urlsplit understands "[::1]:8443" and "host:port" once they look like a URL.
    parts = urllib.parse.urlsplit(text if "://" in text else "//" + text)
    if not parts.hostname:
        raise ValueError(f"Cannot find a host name in {target!r}.")
    try:
        port = parts.port or 443
    except ValueError as exc:
        raise ValueError(f"The port in {target!r} is not a number from 0 to 65535.") from exc
    return Target(parts.hostname, port)


#: The course's ``data/`` folder. The course is installed editable (``pip install -e .``, as
#: ``make setup`` does), so this package sits in the checkout, next to it.
DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def data_file(name: str) -> Path:
    """The path of a file in the course's ``data/`` folder, wherever the notebook runs (notebook 03).

    A kernel starts in its notebook's folder: ``notebooks/`` in the repository, where
    ``../data/hosts.txt`` works, but an nbgrader assignment folder or a student's home on a
    JupyterHub anywhere else, where it does not. The folder is found from this module's own
    file instead, so the same cell works in all of them.
    """
    path = DATA_DIR / name
    if not path.is_file():
        raise CourseError(
            f"The course's data file {path} is not there.",
            "Install the course from its repository with `pip install -e .` (make setup does), "
            "so that helpers/ and data/ stay side by side.",
        )
    return path


def _is_local(host: str) -> bool:
    """Loopback or a name that can only mean loopback (RFC 6761 §6.3: ``*.localhost``).

    The name is compared as the resolver will see it (:mod:`helpers.names`): case, a
    trailing dot and Unicode full stops do not matter, so ``"valid.lab.localhost\u3002"``
    is local too, and never goes through a proxy or needs live mode.
    """
    name = names._normalise(host) or ""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


# ------------------------------------------------------------------------- the result


@dataclass
class FetchResult:
    """What one host sent us, and whether we trust it.

    ``ok``
        True when we got a certificate (with or without trusting it).
    ``verified``
        True when the chain led to a trusted root *and* the name matched: what a
        browser would accept. ``ok and not verified`` is the interesting case.
    ``error``
        One sentence when something went wrong ("" when verified).
    ``cert`` / ``chain``
        The leaf certificate, and the certificates the server sent (leaf first, RFC 8446
        §4.4.2) when this Python can tell (3.13+, or the equivalent private method on
        3.10–3.12); else just the leaf.
    ``elapsed``
        Seconds for this host, both handshakes included.
    """

    host: str
    port: int
    ok: bool
    cert: x509.Certificate | None
    verified: bool
    error: str
    elapsed: float
    chain: list[x509.Certificate] = field(default_factory=list)
    tls_version: str | None = None
    via_proxy: str | None = None  # the proxy it went through (no password), or None: direct

    @property
    def label(self) -> str:
        return Target(self.host, self.port).label

    @property
    def not_after(self) -> Any:
        return self.cert.not_valid_after_utc if self.cert is not None else None

    def __repr__(self) -> str:
        if self.verified:
            state = "verified"
        elif self.ok:
            state = f"NOT verified: {self.error}"
        else:
            state = f"failed: {self.error}"
        via = f" via {self.via_proxy}" if self.via_proxy else ""
        return f"<FetchResult {self.label} {state} ({self.elapsed * 1000:.0f} ms){via}>"

    def _html_row(self) -> str:
        if self.verified:
            badge = '<span style="color:#009E73">&#10004; verified</span>'
        elif self.ok:
            badge = '<span style="color:#D55E00">&#10008; not verified</span>'
        else:
            badge = '<span style="color:#8C8C8C">&#9888; no certificate</span>'
        if self.cert is not None:
            subject = self.cert.subject.rfc4514_string()
            expires = f"{self.cert.not_valid_after_utc:%Y-%m-%d}"
        else:
            subject = expires = ""
        cells = [
            html.escape(self.label),
            badge,
            html.escape(subject),
            expires,
            html.escape(self.tls_version or ""),
            f"{self.elapsed * 1000:.0f} ms",
            html.escape(self.error),
        ]
        return "<tr>" + "".join(f"<td style='text-align:left'>{c}</td>" for c in cells) + "</tr>"

    def _repr_html_(self) -> str:
        return _html_table([self])


_HEAD = ("host", "result", "subject", "expires", "TLS", "time", "error")


def _html_table(results: Sequence[FetchResult]) -> str:
    head = "".join(f"<th style='text-align:left'>{h}</th>" for h in _HEAD)
    body = "".join(r._html_row() for r in results)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class FetchResults(list):  # list[FetchResult], with a summary for notebooks
    """The results of :func:`fetch_certificates`: a plain list, in the order you asked."""

    def summary(self) -> str:
        verified = sum(r.verified for r in self)
        unverified = sum(r.ok and not r.verified for r in self)
        failed = sum(not r.ok for r in self)
        return (
            f"{len(self)} hosts: {verified} verified, {unverified} not verified, "
            f"{failed} without a certificate"
        )

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self.summary())}</p>" + _html_table(self)


# ------------------------------------------------------------------------- one handshake


def _verifying_context(cafile: str | PathLike[str] | None) -> ssl.SSLContext:
    # create_default_context(): CERT_REQUIRED + check_hostname. Without both, anyone on
    # the path can present their own certificate (man-in-the-middle).
    return ssl.create_default_context(cafile=cafile)


def _probe_context() -> ssl.SSLContext:
    """A context that accepts *anything*, used only to look at what a server sends.

    Never use it for data: with verification off, an attacker in the middle would be
    accepted silently (that is exactly the mistake ``verify=False`` makes).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # Also let old protocol versions and weak parameters through, so that a server
    # refused for "TLS 1.0" or "DH key too small" still shows its certificate.
    try:
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):  # some OpenSSL builds refuse; keep the defaults
        pass
    return ctx


def _handshake_until(tls: ssl.SSLSocket, deadline: float, timeout: float) -> None:
    """Drive the handshake on a non-blocking socket, never past ``deadline``.

    A blocking socket's timeout applies to each ``recv`` separately; a server that
    trickles one byte per second could stretch the handshake forever. Here the one
    deadline covers the whole exchange.
    """
    while True:
        try:
            tls.do_handshake()
            return
        except ssl.SSLWantReadError:
            wait = ([tls], [])
        except ssl.SSLWantWriteError:
            wait = ([], [tls])
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not any(select.select(*wait, [], remaining)):
            raise TimeoutError(f"no TLS answer within {timeout:g} s")


def _der_chain(tls: ssl.SSLSocket) -> list[bytes]:
    """The certificates the server sent (DER), leaf first, when Python can tell us."""
    getter = getattr(tls, "get_unverified_chain", None)  # public since Python 3.13
    if getter is None:
        # Python 3.10-3.12 have the same method on the private C object.
        getter = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)
    try:
        chain = getter() if getter is not None else None
    except (AttributeError, ssl.SSLError, ValueError):
        chain = None
    out: list[bytes] = []
    for item in chain or []:
        out.append(item if isinstance(item, bytes) else item.public_bytes(ssl._ssl.ENCODING_DER))  # type: ignore[attr-defined]
    return out


def _shown(proxy: str) -> str:
    """A proxy URL without its user name and password, for messages and tables."""
    parts = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"


def _proxy_of(target: Target, proxy: str | None, trust_env: bool) -> str | None:
    """The proxy to reach ``target`` through, or None for a direct connection."""
    if _is_local(target.host):
        return None  # this machine: a proxy cannot reach it (see the module docstring)
    if proxy is not None:
        return proxy
    return live.proxy_for(f"https://{target.label}/") if trust_env else None


def _tunnel(target: Target, proxy: str, remaining: float, timeout: float) -> socket.socket:
    """A TCP connection to ``target`` through ``proxy``; failures as one sentence."""
    shown = _shown(proxy)
    try:
        return live.open_tunnel(proxy, target.host, target.port, timeout=remaining)
    except live.ProxyTunnelError as exc:
        answer = str(exc).removeprefix("Tunnel connection failed: ")
        wants = (
            " It wants a user name and password: write them into the proxy URL "
            "(http://user:password@host:port)."
            if exc.status == 407
            else ""
        )
        raise ConnectionProblem(
            f"The proxy {shown} would not open a tunnel to {target.label}: {answer}.{wants}"
        ) from exc
    except TimeoutError as exc:
        raise TimeoutError(f"the proxy {shown} did not answer within {timeout:g} s") from exc
    except OSError as exc:
        raise ConnectionProblem(
            f"Could not reach the proxy {shown} to tunnel to {target.label}: "
            f"{exc.strerror or exc}.",
        ) from exc


def _sni_name(host: str) -> str:
    """The name to send in SNI and check on the certificate: as the resolver sees it.

    RFC 6066 §3: SNI carries the name "without a trailing dot", and Python's ``ssl``
    would send ``"valid.lab.localhost\u3002"`` as ``valid.lab.localhost.``, which then
    matches no certificate. :mod:`helpers.names` gives the resolver's spelling (ASCII,
    lower case, no trailing dot).
    """
    return names._normalise(host) or host


def _handshake(
    target: Target,
    ctx: ssl.SSLContext,
    deadline: float,
    timeout: float,
    proxy: str | None = None,
) -> tuple[list[x509.Certificate], str | None]:
    """Connect (through ``proxy`` if given), shake hands, and return (certificates sent,
    TLS version). Raises on failure."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"no TLS answer within {timeout:g} s")
    if proxy is not None:
        sock = _tunnel(target, proxy, remaining, timeout)
    else:
        try:
            sock = socket.create_connection((target.host, target.port), timeout=remaining)
        except TimeoutError as exc:  # connect() itself ran out of time
            raise TimeoutError(f"could not connect within {timeout:g} s") from exc
    with sock:
        with ctx.wrap_socket(
            sock, server_hostname=_sni_name(target.host), do_handshake_on_connect=False
        ) as tls:
            tls.setblocking(False)
            _handshake_until(tls, deadline, timeout)
            ders = _der_chain(tls)
            leaf = tls.getpeercert(binary_form=True)
            version = tls.version()
    if not ders and leaf:
        ders = [leaf]
    # The server's bytes go to cryptography's Rust parser. It refuses with ValueError or
    # InvalidVersion (not a ValueError), and a panic there is a BaseException that would
    # slip past every ``except Exception`` (helpers/pki/panics.py): all one sentence.
    what = f"The certificate {target.label} sent could not be parsed"
    hint = (
        "The server sent a certificate cryptography cannot read; try openssl s_client -showcerts."
    )
    with panics_as(PEMError, what, hint):
        try:
            return [x509.load_der_x509_certificate(d) for d in ders], version
        except (ValueError, x509.InvalidVersion) as exc:
            raise PEMError(f"{what} ({exc}).", hint) from None


def _sentence(exc: BaseException, target: Target, timeout: float) -> str:
    """One plain-English sentence for what went wrong."""
    where = target.label
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = str(exc.verify_message or exc.reason or exc).rstrip(".")
        return f"The certificate of {where} did not verify: {message}."
    if isinstance(exc, ssl.SSLEOFError):
        return f"{where} closed the connection in the middle of the TLS handshake."
    if isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or exc.strerror or exc).rstrip(".")
        return f"The TLS handshake with {where} failed: {reason}."
    if isinstance(exc, ConnectionRefusedError):
        return f"Connection refused: nothing is listening on {where}."
    if isinstance(exc, ConnectionResetError):
        return f"{where} reset the connection during the handshake."
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since 3.10
        detail = str(exc) or f"no answer within {timeout:g} s"
        return f"{where} timed out: {detail}."
    if isinstance(exc, socket.gaierror):
        return f"Cannot resolve {target.host!r}: {exc.strerror or exc}."
    if isinstance(exc, CourseError):
        return exc.what
    if isinstance(exc, OSError):
        return f"Could not reach {where}: {exc.strerror or exc}."
    return f"Fetching {where} failed: {type(exc).__name__}: {exc}."


def fetch_certificate(
    target: TargetLike,
    *,
    timeout: float = 5.0,
    cafile: str | PathLike[str] | None = None,
    context: ssl.SSLContext | None = None,
    proxy: str | None = None,
    trust_env: bool = True,
) -> FetchResult:
    """Fetch one host's certificate. Never raises for network or TLS trouble: see ``.error``.

    ``proxy`` (``"http://proxy:3128"``) tunnels through that proxy; by default an internet
    host goes through the proxy ``requests`` would use (``HTTPS_PROXY``, ``NO_PROXY``),
    unless ``trust_env=False``. Raises :class:`~helpers.errors.LiveModeOff` for an
    internet host while live mode is off, and :class:`~helpers.errors.LabError` for a
    lab name while no lab is running (it is never sent to DNS).
    """
    t = parse_target(target)
    _check_names([t])
    _check_live([t])
    verifier = context or _verifying_context(cafile)
    return _fetch_one(t, verifier, _probe_context(), timeout, _proxy_of(t, proxy, trust_env))


def _fetch_one(
    target: Target,
    verifier: ssl.SSLContext,
    probe: ssl.SSLContext,
    timeout: float,
    proxy: str | None = None,
) -> FetchResult:
    start = time.monotonic()
    deadline = start + timeout
    certs: list[x509.Certificate] = []
    version: str | None = None
    verified = False
    error = ""
    try:
        names.refuse_unserved(target.host)  # a lab name no lab serves never reaches DNS
        certs, version = _handshake(target, verifier, deadline, timeout, proxy)
        verified = True
    except ssl.SSLError as exc:  # verification or protocol failure: the server did answer
        error = _sentence(exc, target, timeout)
        try:
            certs, version = _handshake(target, probe, deadline, timeout, proxy)
        except Exception as probe_exc:  # noqa: BLE001 - reported, never raised
            error += f" (Reading the certificate anyway failed too: {_sentence(probe_exc, target, timeout)})"
    except Exception as exc:  # noqa: BLE001 - one result per host, whatever happened
        error = _sentence(exc, target, timeout)
    return FetchResult(
        host=target.host,
        port=target.port,
        ok=bool(certs),
        cert=certs[0] if certs else None,
        verified=verified,
        error=error,
        elapsed=time.monotonic() - start,
        chain=certs,
        tls_version=version,
        via_proxy=_shown(proxy) if proxy else None,
    )


# ------------------------------------------------------------------------- many hosts


def _check_names(targets: Sequence[Target]) -> None:
    """With no lab running, a lab name cannot be answered: say so before connecting.

    Lab names are answered inside this process by the lab (:mod:`helpers.names`) and
    must never go to DNS. A name the running lab does not know is reported per host
    (in that host's ``error``) by :func:`_fetch_one`, like any other unknown name.
    """
    if names.table():
        return
    for t in targets:
        names.refuse_unserved(t.host)


def _check_live(targets: Sequence[Target]) -> None:
    remote = [t.label for t in targets if not _is_local(t.host)]
    if remote and not live.enabled():
        shown = ", ".join(remote[:3]) + (f" and {len(remote) - 3} more" if len(remote) > 3 else "")
        raise LiveModeOff(
            f"fetch_certificates() was asked for real internet hosts ({shown}) while live mode is off.",
            f"Use lab hosts (*.lab.localhost), or set {live.ENV_VAR}=1 / call helpers.live.enable().",
        )


def fetch_certificates(
    targets: Iterable[TargetLike],
    *,
    timeout: float = 5.0,
    workers: int = 32,
    cafile: str | PathLike[str] | None = None,
    progress: bool = True,
    context: ssl.SSLContext | None = None,
    proxy: str | None = None,
    trust_env: bool = True,
) -> FetchResults:
    """Fetch the certificates of many hosts concurrently; one result per host, in order.

    ``targets``: ``"host"``, ``"host:port"``, ``(host, port)`` or ``https://`` URLs.
    ``timeout``: seconds per host, for everything. ``workers``: threads (hosts in flight
    at once). ``cafile``: trust these roots instead of the system's (for the lab:
    ``lab.ca_bundle``); or pass a ready ``context``. ``progress``: a tqdm bar.
    ``proxy``/``trust_env``: as for :func:`fetch_certificate` (internet hosts go through
    the proxy from ``HTTPS_PROXY``/``NO_PROXY`` by default; loopback and lab hosts never do).

    The results draw directly: ``plots.expiry_gantt(fetch_certificates(hosts))``.
    """
    if progress:
        from tqdm.auto import tqdm
    else:
        # Plain tqdm, disabled below: importing tqdm.auto in a Jupyter kernel without
        # ipywidgets writes a TqdmWarning to stderr even when no bar is ever shown.
        from tqdm import tqdm

    parsed = [parse_target(t) for t in targets]
    _check_names(parsed)
    _check_live(parsed)
    results: list[FetchResult | None] = [None] * len(parsed)
    if not parsed:
        return FetchResults()
    verifier = context or _verifying_context(cafile)
    probe = _probe_context()
    with (
        tqdm(total=len(parsed), desc="certificates", unit="host", disable=not progress) as bar,
        ThreadPoolExecutor(max_workers=max(1, min(workers, len(parsed)))) as pool,
    ):
        futures = {
            pool.submit(
                _fetch_one, target, verifier, probe, timeout, _proxy_of(target, proxy, trust_env)
            ): index
            for index, target in enumerate(parsed)
        }
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            bar.update(1)
    return FetchResults(results)
