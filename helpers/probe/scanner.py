"""The scanner: :func:`scan` runs every step against one server (introduced in notebook 08).

:func:`scan` is the conductor; each step lives in its own module:

1. one handshake per version, pinned to it (``attempts``);
2. one handshake per TLS 1.2-or-older suite at the best legacy version, eight in
   flight at once (``suites``);
3. the certificate, read from any accepted handshake (``keys``);
4. a few recorded handshakes whose key-exchange group is read off the wire
   (``key_exchange``; for TLS 1.3 on Python >= 3.15, ``SSLSocket.group()`` says it);
5. one verifying handshake for the trust verdict and the HSTS header (``trust``,
   ``hsts``), run in the pool while step 4 records.

A target is a lab scenario name, a URL, ``host:port`` or ``(host, port)``
(:func:`_resolve_target`). Anything other than loopback and ``*.localhost`` is the real
internet, so it needs live mode (:mod:`helpers.live`); a lab name is answered only by a
running lab, never by DNS (:func:`helpers.names.refuse_unserved`). SNI carries host names only
(RFC 6066 §3): for an IP address the scan sends none, and the trust check matches the
address against the certificate's iPAddress SANs.
"""

from __future__ import annotations

import ipaddress
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from .. import live, names
from ..errors import PEMError, UsageError
from ..pki.panics import panics_as
from .attempts import _PRETTY, DEFAULT_TIMEOUT, VERSIONS, _handshake, _probe_context
from .key_exchange import _key_exchanges
from .keys import CertificateFacts
from .result import Scan
from .suites import _candidates, _suite_of
from .trust import _trust

__all__ = ["DEFAULT_WORKERS", "scan"]

DEFAULT_WORKERS = 8  # handshakes in flight at once


def _pretty(version: str) -> str:
    return _PRETTY.get(version, version)


def _is_local(host: str) -> bool:
    """Loopback, or a name that can only mean loopback (RFC 6761 §6.3: ``*.localhost``).

    Compared as the resolver will see the name (:mod:`helpers.names`): case, a trailing
    dot and Unicode full stops (``"valid.lab.localhost\u3002"``) do not matter.
    """
    name = names._normalise(host) or ""
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return name == "localhost" or name.endswith(".localhost")


def _certificate_facts(der: bytes, label: str) -> CertificateFacts:
    """Read the certificate a server sent; anything cryptography refuses is one sentence.

    The bytes come from the server, so they can be anything: cryptography raises
    ``ValueError`` (or ``InvalidVersion``) for what it cannot read and
    ``UnsupportedAlgorithm`` for a key or signature type it does not know, and its Rust code may
    even *panic*, a ``BaseException`` that ``except Exception`` would not catch
    (``helpers/pki/panics.py``).
    """
    what = f"The certificate {label} sent could not be parsed"
    hint = (
        "The server sent a certificate cryptography cannot read; try openssl s_client -showcerts."
    )
    with panics_as(PEMError, what, hint):
        try:
            return CertificateFacts.of(x509.load_der_x509_certificate(der))
        except (ValueError, x509.InvalidVersion, UnsupportedAlgorithm) as exc:
            raise PEMError(f"{what} ({exc}).", hint) from None


def _resolve_target(
    target: str | tuple[str, int], server_hostname: str | None, cafile: str | None
) -> tuple[str, tuple[str, int], str | None, str | None]:
    """(label, address to connect to, SNI name, CA file) for a scenario, URL or host:port."""
    if isinstance(target, tuple):
        host, port = target[0], int(target[1])
        return f"{host}:{port}", (host, port), server_hostname or host, cafile
    text = str(target).strip()
    from ..lab import SCENARIOS

    if text in SCENARIOS:
        from ..lab import get_lab

        lab = get_lab()
        return (
            text,
            lab.address(text),
            server_hostname or lab.host(text),
            cafile or str(lab.ca_bundle),
        )
    parts = urlsplit(text if "//" in text else f"//{text}")
    if not parts.hostname:
        raise UsageError(
            f"{text!r} is neither a lab scenario, a URL nor host:port.",
            "Try scan('valid'), scan('https://valid.lab.localhost:PORT/') or scan(('127.0.0.1', 8443)).",
        )
    host = parts.hostname
    port = parts.port or 443
    return f"{host}:{port}", (host, port), server_hostname or host, cafile


def scan(
    target: str | tuple[str, int],
    *,
    server_hostname: str | None = None,
    cafile: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    workers: int = DEFAULT_WORKERS,
    http: bool = True,
    label: str | None = None,
) -> Scan:
    """Probe one server: versions, suites, key exchange, certificate, trust and HSTS.

    ``target`` is a lab scenario name (``"dh-1024"``; the lab starts if needed and its
    CA is trusted), a URL, ``"host:port"`` or ``(host, port)``. ``server_hostname`` is
    the name sent in SNI and checked on the certificate (default: the host). ``cafile``
    is what the trust check trusts (default: the system store; the lab CA for lab
    scenarios). ``timeout`` is per handshake, ``workers`` the handshakes in flight.
    ``http=False`` skips the ``GET /`` that reads the HSTS header. ``label`` names the
    server in displays (default: the scenario name or ``host:port``).

    Hosts other than loopback and ``*.localhost`` need live mode (:mod:`helpers.live`).
    A lab name (``*.lab.localhost``) with no lab running raises
    :class:`~helpers.errors.LabError` before anything is looked up: lab names are
    answered by the lab inside this process and never sent to DNS (:mod:`helpers.names`).
    A certificate the server sent that cryptography cannot read is a
    :class:`~helpers.errors.PEMError`.
    """
    name, address, sni, ca = _resolve_target(target, server_hostname, cafile)
    names.refuse_unserved(address[0])  # a lab name no lab serves never reaches DNS
    if sni is not None:
        # The name as the resolver sees it (helpers.names): RFC 6066 §3 SNI has no trailing
        # dot, and ssl would send "valid.lab.localhost\u3002" as "valid.lab.localhost.".
        sni = names._normalise(sni) or sni
    if not _is_local(address[0]) and not live.enabled():
        live.require()
    sni_sent: str | None = sni
    if sni is not None:
        try:
            ipaddress.ip_address(sni.strip("[]"))
            sni_sent = None  # RFC 6066 §3: SNI carries host names, never addresses
        except ValueError:
            pass
    start = time.perf_counter()
    result = Scan(label or name, address[0], address[1], sni)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        hellos = dict(
            zip(
                VERSIONS,
                pool.map(
                    lambda v: _handshake(address, sni_sent, _probe_context(v), timeout), VERSIONS
                ),
                strict=True,
            )
        )
        result.handshakes += len(VERSIONS)
        for version, hello in hellos.items():
            result.versions[version] = hello.version is not None
            if hello.error:
                result.version_errors[version] = hello.error
        refused = [v for v, h in hellos.items() if h.client_certificate]
        if refused:
            # RFC 5246 §7.4.4: the CertificateRequest came after the ServerHello had agreed
            # on version and suite, so both count as accepted (attempts._agreed_before_refusal).
            result.client_certificate_required = True
            result.notes.append(
                "Client certificate required: the server sent a CertificateRequest and ended "
                f"the {', '.join(_pretty(v) for v in refused)} handshake without one "
                f"({hellos[refused[0]].client_certificate}). The versions and suites it agreed "
                "on are reported as accepted; in TLS 1.3 the refusal comes after the handshake."
            )
        if not result.accepted_versions:
            result.elapsed = time.perf_counter() - start
            result.notes.append("No TLS version was accepted: the port may not speak TLS.")
            return result
        tls13 = hellos["TLSv1.3"]
        if tls13.cipher is not None:
            result.tls13_suite, result.tls13_bits = tls13.cipher[0], tls13.cipher[2]
            result.tls13_group = tls13.group  # None before Python 3.15: read off the wire
        legacy = [v for v in VERSIONS[:-1] if result.versions[v]]
        if legacy:
            version = legacy[-1]
            candidates = _candidates(version)
            result.suites_version, result.suites_tried = version, len(candidates)
            outcomes = pool.map(
                lambda info: _handshake(
                    address, sni_sent, _probe_context(version, info["name"]), timeout
                ),
                candidates,
            )
            result.suites = [
                _suite_of(info, version)
                for info, hello in zip(candidates, outcomes, strict=True)
                if hello.version is not None
            ]
            result.handshakes += len(candidates)
        der = next((h.cert for h in hellos.values() if h.cert), None)
        if der:
            result.certificate = _certificate_facts(der, f"{address[0]}:{address[1]}")
        trust = pool.submit(_trust, address, sni, sni_sent, ca, timeout, http)
        result.key_exchanges = _key_exchanges(result, address, sni_sent, timeout)
        result.trust, result.hsts, result.http_status = trust.result()
        result.handshakes += 1
    result.elapsed = time.perf_counter() - start
    return result
