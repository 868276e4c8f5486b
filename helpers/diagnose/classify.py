"""From an exception to a kind of failure, and :func:`explain` (introduced in notebook 02).

:func:`explain` turns an exception your own code caught into a
:class:`~.result.Diagnosis` (notebook 01 already shows its card, for a tampered record
and a wrong host name). It works in two steps:

1. **Judge every exception in the chain on its own** (:func:`_judge`, using the tables of
   :mod:`.reasons`). A typed exception whose OpenSSL name is known scores 3; one recognised
   by the words of its message, or by a ``requests``/``urllib3`` class that names the
   failure, scores 2; a TLS error nobody recognises scores 1. The
   offline guard's :class:`~helpers.errors.OfflineViolation` scores 4: a connection that
   was never made has no other explanation.
2. **Keep the best** (:func:`_classify`). The chain is walked outermost first and a later,
   deeper exception wins a tie: the closer to the cause, the more it knows.

Nothing here connects: a test or a notebook can feed :func:`explain` any exception.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from typing import NamedTuple
from urllib.parse import urlsplit

from ..errors import OfflineViolation, UsageError
from .reasons import (
    _PHRASES,
    _REASONS,
    _RECORD_LAYER_KIND,
    _RECORD_LAYER_PHRASE,
    _RECORD_LAYER_REASON,
    _UNREACHABLE_ERRNOS,
    _VERIFY_CODES,
    _VERIFY_MESSAGES,
)
from .result import Diagnosis
from .unwrap import _qualname, exception_chain


def _verify_kind(message: str | None, code: int | None) -> str | None:
    if message:
        # OpenSSL 1.1 wrote "self signed"; Python appends ", certificate is not valid for
        # 'host'." to a hostname mismatch.
        key = message.strip().lower().replace("self signed", "self-signed")
        if key in _VERIFY_MESSAGES:
            return _VERIFY_MESSAGES[key]
        head = key.split(",", 1)[0]
        if head in _VERIFY_MESSAGES:
            return _VERIFY_MESSAGES[head]
        # A newer OpenSSL may append a hint ("... or the system clock is incorrect" in
        # 3.6): the longest known message the text starts with decides.
        for known in sorted(_VERIFY_MESSAGES, key=len, reverse=True):
            if key.startswith(known + " "):
                return _VERIFY_MESSAGES[known]
    if code is not None and ssl.OPENSSL_VERSION_INFO >= (3, 0):
        return _VERIFY_CODES.get(code)
    return None


class _Finding(NamedTuple):
    score: int  # how specific: 3 typed and recognised, 2 recognised by text, 1 generic
    kind: str
    exc: BaseException


def _judge(exc: BaseException) -> _Finding | None:
    """What one exception, on its own, says about the failure."""
    if isinstance(exc, OfflineViolation):
        return _Finding(4, "blocked", exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        kind = _verify_kind(getattr(exc, "verify_message", None), getattr(exc, "verify_code", None))
        if kind:
            return _Finding(3, kind, exc)
        phrase = _phrase_kind(str(exc))
        return _Finding(2 if phrase else 1, phrase or "certificate-invalid", exc)
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None)
        if reason in _REASONS:
            return _Finding(3, _REASONS[reason], exc)
        if reason == _RECORD_LAYER_REASON and _RECORD_LAYER_KIND:
            # OpenSSL >= 3.2 only: the general name for a refused record (see .reasons).
            return _Finding(3, _RECORD_LAYER_KIND, exc)
        if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return _Finding(3, "closed", exc)
        if reason == "CERTIFICATE_VERIFY_FAILED":
            kind = _message_verify_kind(str(exc))
            return _Finding(2 if kind else 1, kind or "certificate-invalid", exc)
        phrase = _phrase_kind(str(exc))
        return _Finding(2 if phrase else 1, phrase or "tls-error", exc)
    if isinstance(exc, socket.gaierror):
        return _Finding(3, "dns", exc)
    if isinstance(exc, ConnectionRefusedError):
        return _Finding(3, "refused", exc)
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
        return _Finding(3, "timeout", exc)
    if type(exc).__name__ == "RemoteDisconnected":
        # http.client's "Remote end closed connection without response" subclasses
        # ConnectionResetError for old code's sake, but it is an orderly close (EOF), not a
        # TCP reset: ssl's suppress_ragged_eofs turns a close without close_notify into b"".
        return _Finding(3, "closed", exc)
    if isinstance(exc, ConnectionResetError):
        return _Finding(3, "reset", exc)
    if isinstance(exc, (ConnectionAbortedError, BrokenPipeError)):
        return _Finding(3, "closed", exc)
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS:
        return _Finding(3, "unreachable", exc)
    typed = _library_kind(exc)
    if typed:
        return _Finding(2, typed, exc)
    text = str(exc)
    kind = _message_verify_kind(text) or _phrase_kind(text)
    if kind:
        return _Finding(2, kind, exc)
    return None


#: Client-library classes that name the failure even when their cause is gone, by the
#: class name anywhere in the exception's MRO (so no client has to be installed to be
#: read): requests/urllib3, httpx/httpcore and aiohttp.
_LIBRARY_KINDS: tuple[tuple[frozenset[str], str], ...] = (
    # aiohttp 3.10+ ClientConnectorDNSError; urllib3 NameResolutionError
    (frozenset({"NameResolutionError", "ClientConnectorDNSError"}), "dns"),
    # urllib3, requests, httpx (TimeoutException and its Connect/Read/Write/Pool children)
    (
        frozenset(
            {
                "ConnectTimeoutError",
                "ReadTimeoutError",
                "Timeout",
                "ConnectTimeout",
                "TimeoutException",
            }
        ),
        "timeout",
    ),
    # a proxy that refused the CONNECT tunnel (407, 403, 502) or could not be reached:
    # urllib3/requests ProxyError, httpx ProxyError, aiohttp ClientHttpProxyError and
    # ClientProxyConnectionError, helpers.live.ProxyTunnelError
    (
        frozenset(
            {"ProxyError", "ClientHttpProxyError", "ClientProxyConnectionError", "ProxyTunnelError"}
        ),
        "proxy",
    ),
    # aiohttp: the server closed the connection before (or while) answering
    (frozenset({"ServerDisconnectedError"}), "closed"),
)


def _library_kind(exc: BaseException) -> str | None:
    """A client-library class that names the failure even when its cause is gone."""
    names = {c.__name__ for c in type(exc).__mro__}
    for classes, kind in _LIBRARY_KINDS:
        if names & classes:
            return kind
    return None


def _message_verify_kind(text: str) -> str | None:
    """``... certificate verify failed: certificate has expired (_ssl.c:1006)`` -> expired."""
    marker = "certificate verify failed:"
    low = text.lower()
    if marker not in low:
        return None
    rest = low.split(marker, 1)[1]
    rest = rest.split("(_ssl.c", 1)[0].strip().rstrip("')\"")
    return _verify_kind(rest, None)


def _phrase_kind(text: str) -> str | None:
    low = text.lower()
    if _RECORD_LAYER_PHRASE in low and _RECORD_LAYER_KIND:
        return _RECORD_LAYER_KIND
    for phrase, kind in _PHRASES:
        if phrase in low:
            return kind
    return None


class _Verdict(NamedTuple):
    kind: str
    cause: BaseException
    chain: list[BaseException]


def _classify(exc: BaseException) -> _Verdict:
    chain = exception_chain(exc)
    best: _Finding | None = None
    for item in chain:  # outermost first; a deeper exception wins a tie
        finding = _judge(item)
        if finding is not None and (best is None or finding.score >= best.score):
            best = finding
    if best is None:
        return _Verdict("error", chain[-1], chain)
    return _Verdict(best.kind, best.exc, chain)


def explain(exc: BaseException, *, target: str | None = None, via: str | None = None) -> Diagnosis:
    """Turn an exception your own code caught into a :class:`Diagnosis`.

    Works on anything :mod:`ssl`, :mod:`socket`, :mod:`urllib`, ``urllib3``,
    ``requests``, ``httpx``/``httpcore`` or ``aiohttp`` raises, sync or async::

        try:
            requests.get(url, timeout=5)       # or httpx.get(...), await session.get(...)
        except Exception as e:
            diagnose.explain(e)       # shows a card: kind, explanation, fix

    Each client wraps the :mod:`ssl` exception differently (notebook 09 prints the
    chains): ``requests.exceptions.SSLError`` > ``MaxRetryError`` > ``urllib3 SSLError``
    > ``ssl.SSLCertVerificationError``; ``httpx.ConnectError`` > ``httpcore.ConnectError``
    > ``ssl.SSLCertVerificationError`` (through ``__cause__``, then ``.args``);
    aiohttp's ``ClientConnectorCertificateError`` *is* an ``SSLCertVerificationError``
    (without ``verify_code``) and holds the real one in ``.args``.

    The exception chain is unwrapped (see :func:`exception_chain`) and the most specific
    exception in it decides the kind; ``exception`` is the class you caught, ``cause``
    the one that decided. ``target`` defaults to the URL of the request, when the
    exception carries one.
    """
    if not isinstance(exc, BaseException):
        raise UsageError(
            f"explain() needs an exception, not {type(exc).__name__}.",
            "Catch it first: try: ... except Exception as e: diagnose.explain(e)",
        )
    verdict = _classify(exc)
    url = target or _url_of(exc)
    host, port = _host_port_of(url)
    cause = verdict.cause
    code = getattr(cause, "verify_code", None)
    return Diagnosis(
        target=url or "?",
        ok=False,
        kind=verdict.kind,
        via=via or _via_of(verdict.chain),
        host=host,
        port=port,
        message=_message_of(cause),
        exception=_qualname(exc),
        cause=_qualname(cause),
        exceptions=tuple(_qualname(e) for e in verdict.chain),
        verify_code=code if isinstance(code, int) else None,
        verify_message=getattr(cause, "verify_message", None),
        error=exc,
    )


def _message_of(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, OSError) and exc.strerror and not text:
        return exc.strerror
    return text or type(exc).__name__


def _url_of(exc: BaseException) -> str | None:
    """The URL the failed request was for, wherever its library keeps it.

    requests: ``exc.request.url`` (a str); httpx: ``exc.request.url`` (an ``httpx.URL``;
    reading ``.request`` raises RuntimeError when it was never set); aiohttp:
    ``exc.request_info.real_url`` on a response error, only ``host``/``port``/``ssl`` on a
    connection error; urllib: ``HTTPError.url``.
    """
    for item in exception_chain(exc):
        try:
            request = getattr(item, "request", None)
        except Exception:  # noqa: BLE001 - httpx: "The .request property has not been set."
            request = None
        url = getattr(request, "url", None)
        if url is not None and type(url).__name__ in ("str", "URL"):
            return str(url)
        info = getattr(item, "request_info", None)
        real = getattr(info, "real_url", None)
        if real is not None:
            return str(real)
        host, port = getattr(item, "host", None), getattr(item, "port", None)
        if type(item).__module__.startswith("aiohttp") and isinstance(host, str):
            # aiohttp's ConnectionKey(host, port, is_ssl, ...)
            key = getattr(item, "_conn_key", None)
            scheme = "https" if getattr(key, "is_ssl", True) else "http"
            shown = f"[{host}]" if ":" in host else host
            return (
                f"{scheme}://{shown}:{port}/" if isinstance(port, int) else f"{scheme}://{shown}/"
            )
        if type(item).__module__ == "urllib.error" and isinstance(getattr(item, "url", None), str):
            return item.url  # type: ignore[attr-defined]
    return None


def _host_port_of(url: str | None) -> tuple[str | None, int | None]:
    if not url:
        return None, None
    try:
        parts = urlsplit(url if "://" in url else "//" + url)
        return parts.hostname, parts.port or (443 if parts.scheme in ("https", "") else 80)
    except ValueError:
        return None, None


#: The client each library's exceptions come from, by module; the outermost one named
#: in the chain is the client you called (httpx wraps httpcore, requests wraps urllib3).
_CLIENT_MODULES = {
    "requests": "requests",
    "urllib3": "urllib3",
    "httpx": "httpx",
    "httpcore": "httpcore",
    "aiohttp": "aiohttp",
    "urllib": "urllib",
    "http": "http.client",
}


def _via_of(chain: Sequence[BaseException]) -> str:
    for item in chain:  # outermost first
        top = type(item).__module__.split(".")[0]
        if top in _CLIENT_MODULES:
            return _CLIENT_MODULES[top]
    return "ssl"
